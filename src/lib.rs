//! # merchant-ai
//!
//! AI for merchants without vendor lock-in. Your application codes against four traits,
//! [`Searcher`], [`Recommender`], [`ChatModel`] and [`Forecaster`]; a config file decides, per
//! environment, which provider serves each of them and which providers take over when it fails.
//!
//! ```no_run
//! # async fn demo() -> merchant_ai::Result<()> {
//! use merchant_ai::{Config, Registry, SearchRequest};
//!
//! let config = Config::from_file("merchant-ai.toml")?;
//! let registry = Registry::new(); // .with(merchant_ai_rules::factory()) and friends
//! let client = registry.build(&config, None).await?; // profile from MERCHANT_AI_PROFILE
//! let hits = client.searcher()?.search(SearchRequest::new("running shoes")).await?;
//! println!("served by {}", hits.meta.provider);
//! # Ok(()) }
//! ```
//!
//! # Contract
//!
//! Each trait documents its contract (see [`Searcher`], [`Recommender`], [`ChatModel`],
//! [`Forecaster`]). In short:
//! - Every request carries a [`RequestContext`] (tenant, pseudonymous subject, consent, the
//!   subject's jurisdiction, data class, deadline, trace id).
//! - Every response carries [`ResponseMeta`]: which provider and model served it, its position
//!   in the route and the providers skipped before it, usage and cost, latency.
//! - Every failure is one [`Error`] with an [`ErrorKind`], a retry signal
//!   ([`Error::is_retryable`], [`Error::retry_after`]) and context; never a panic on vendor
//!   input; never a secret or customer text in a message or `Debug` output.
//! - A capability a provider lacks is declared in [`Capabilities`]; calling it gives
//!   [`ErrorKind::Unsupported`], and config validation refuses a route that needs it.
//!
//! The `contract` feature ships the conformance suite every adapter runs
//! (`contract` module), so third-party adapters are held to the same rules.
//!
//! # Layer order
//!
//! A client built from config wraps each capability in layers. The order, outermost first:
//!
//! ```text
//! observe -> policy (consent, residency) -> redact -> cache -> fallback[ breaker -> retry -> timeout -> adapter ]
//! ```
//!
//! - the fallback chain is the profile's route: on a retryable or unsupported error the next
//!   provider serves, and [`ResponseMeta::fallbacks`] records who was skipped and why; a chat
//!   stream falls back only before its first event reached the caller;
//! - timeout sits inside retry (each attempt has its own), and the request's deadline spans all
//!   attempts and fallbacks;
//! - the cache sits after redaction, so no cache key holds personal data;
//! - exactly one retry loop exists per call: adapters never retry on their own.
//!
//! Built today: fallback ([`layers::fallback`]), and per provider, outermost first, the circuit
//! breaker ([`layers::breaker`]), retry with backoff, `Retry-After` and a retry budget
//! ([`layers::retry`]), client-side limits ([`layers::limit`]), timeouts per attempt, to the
//! first stream event and between events ([`layers::timeout`]), and fault injection for drills
//! ([`layers::chaos`], see also [`drill`]). Each profile configures them (`[profiles.NAME.layers]`, see
//! [`layers`]); every layer can be turned off with `enabled = false`. The response cache
//! ([`layers::cache`], `[profiles.NAME.cache]`) sits outside the fallback chain. Observe,
//! policy and redact take the positions above as they land.
//!
//! # Features
//!
//! - `contract`: the conformance suite (the `contract` module), the fault harness trait
//!   through which HTTP adapters map faults onto their mock server, and a scripted in-memory
//!   provider for testing layers and the suite itself.
//!
//! Adapters live in their own crates (`merchant-ai-rules`, ...) so that heavy dependencies stay
//! out of the core; register their factories in a [`Registry`].

#![warn(missing_docs)]

pub mod api;
pub mod business_rules;
pub mod config;
pub mod drill;
pub mod embedding;
pub mod error;
pub mod hybrid;
pub mod layers;
pub mod registry;
pub mod replenish;
pub mod retry_after;
pub mod semantic;
pub mod text;
pub mod types;
pub mod vector;

#[cfg(feature = "contract")]
pub mod contract;

pub use api::{
    Capabilities, Capability, ChatModel, Forecaster, Provider, ProviderInfo, Recommender, Searcher,
};
pub use config::{Config, EnvSource, ProviderConfig, SecretString};
pub use error::{Error, ErrorKind, Result};
pub use registry::{AdapterFactory, BuildContext, Client, Registry, RouteTable};
pub use replenish::{Replenishment, ReplenishmentPolicy, StockPosition, replenish};
pub use types::*;

/// Re-exported so adapters and applications use the same versions.
pub use async_trait::async_trait;
pub use chrono;
pub use futures;
pub use serde_json;
