//! # merchant-ai-alibaba
//!
//! The [merchant-ai](merchant_ai) adapter for Alibaba Cloud.

#![warn(missing_docs)]

pub mod opensearch;
pub mod region;
pub mod service;
pub mod sign;

pub use opensearch::factory as opensearch_factory;
