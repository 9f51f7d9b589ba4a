//! # merchant-ai-candle
//!
//! The [merchant-ai](merchant_ai) adapter for local models run with candle.

#![warn(missing_docs)]

pub mod chat;

pub use chat::{CandleChat, ChatConfig, Engine, GenerationTimings, TemplateKind};
