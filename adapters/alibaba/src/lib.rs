//! # merchant-ai-alibaba
//!
//! The [merchant-ai](merchant_ai) adapter for Alibaba Cloud.

#![warn(missing_docs)]

pub mod region;
pub mod sign;
