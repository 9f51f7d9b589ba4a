//! # merchant-ai-candle
//!
//! The [merchant-ai](merchant_ai) adapter for local models run with candle.

#![warn(missing_docs)]

pub mod forecast;

pub use forecast::{NeuralForecastConfig, NeuralForecaster};
