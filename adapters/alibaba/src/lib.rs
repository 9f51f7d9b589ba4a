//! # merchant-ai-alibaba
//!
//! The [merchant-ai](merchant_ai) adapter for Alibaba Cloud.

#![warn(missing_docs)]

pub mod dashscope;
pub mod region;
pub mod sign;

pub use dashscope::factory as dashscope_factory;
