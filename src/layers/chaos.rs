//! Chaos: fault injection for outage drills in staging.
//!
//! Sits innermost, right above the adapter, so the timeout, retry, breaker and fallback layers
//! react to injected faults exactly as to real ones. Configured per provider:
//!
//! ```toml
//! [profiles.staging.layers.providers.qwen.chaos]
//! error_rate = 0.2          # share of calls that fail
//! error = "unavailable"     # rate_limited, quota_exceeded, unavailable, timeout, decode
//! retry_after_ms = 2000     # hint on injected rate limits
//! latency_ms = 300          # added to every call
//! stream_cut_after = 3      # cut streams after this many events
//! seed = 42
//! ```
//!
//! Every provider stack also carries a [`Chaos`] switch whose [`force_down`](Chaos::force_down)
//! makes every call fail as unavailable: `merchant-ai drill` uses it to take providers down in
//! turn. The switch counts the calls that reach the adapter ([`Chaos::upstream_calls`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;

use super::rng::SeededRng;
use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// `[profiles.NAME.layers.chaos]` or per provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// Turn injection off without removing the settings.
    pub enabled: bool,
    /// Share of calls that fail, in [0, 1].
    pub error_rate: f64,
    /// The kind of injected errors.
    pub error: String,
    /// `Retry-After` of injected rate limits, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// Latency added to every call, in milliseconds.
    pub latency_ms: u64,
    /// Cut every stream after this many events.
    pub stream_cut_after: Option<usize>,
    /// Seed of the injection generator.
    pub seed: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            enabled: true,
            error_rate: 0.0,
            error: "unavailable".into(),
            retry_after_ms: None,
            latency_ms: 0,
            stream_cut_after: None,
            seed: 42,
        }
    }
}

const KINDS: &[(&str, ErrorKind)] = &[
    ("rate_limited", ErrorKind::RateLimited),
    ("quota_exceeded", ErrorKind::QuotaExceeded),
    ("unavailable", ErrorKind::Unavailable),
    ("timeout", ErrorKind::Timeout),
    ("decode", ErrorKind::Decode),
];

impl ChaosConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(Error::config(format!(
                "{path}.error_rate: must be between 0 and 1"
            )));
        }
        if !KINDS.iter().any(|(k, _)| *k == self.error) {
            return Err(Error::config(format!(
                "{path}.error: {:?} is not one of {}",
                self.error,
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }
    fn kind(&self) -> ErrorKind {
        KINDS
            .iter()
            .find(|(k, _)| *k == self.error)
            .map_or(ErrorKind::Unavailable, |(_, v)| *v)
    }
}

/// The chaos switch of one provider, shared by its four capabilities.
pub struct Chaos {
    provider: String,
    cfg: Option<ChaosConfig>,
    down: AtomicBool,
    calls: AtomicU64,
    rng: SeededRng,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("provider", &self.provider)
            .field("cfg", &self.cfg)
            .field("down", &self.is_down())
            .finish()
    }
}

impl Chaos {
    /// A switch for `provider`, injecting by `cfg` when given and enabled.
    pub fn new(provider: impl Into<String>, cfg: Option<ChaosConfig>) -> Self {
        let cfg = cfg.filter(|c| c.enabled);
        let seed = cfg.as_ref().map_or(42, |c| c.seed).max(1);
        Chaos {
            provider: provider.into(),
            cfg,
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            rng: SeededRng::new(seed),
        }
    }

    /// Makes every call fail as unavailable (`true`) or restores normal service.
    pub fn force_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether the provider is forced down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Calls that reached the adapter (or were failed in its place).
    pub fn upstream_calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn roll(&self) -> f64 {
        self.rng.next_f64()
    }

    fn injected(&self, op: &str, kind: ErrorKind, retry_after: Option<u64>) -> Error {
        let mut e = Error::new(kind, format!("chaos: injected {kind}"))
            .with_vendor_code("chaos")
            .with_provider(self.provider.as_str())
            .with_operation(op);
        if let Some(ms) = retry_after {
            e = e.with_retry_after(Duration::from_millis(ms));
        }
        e
    }

    /// Counts the call, adds latency, and fails it when the switch or the dice say so.
    async fn enter(&self, op: &str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.is_down() {
            return Err(self.injected(op, ErrorKind::Unavailable, None));
        }
        let Some(cfg) = &self.cfg else {
            return Ok(());
        };
        if cfg.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(cfg.latency_ms)).await;
        }
        if cfg.error_rate > 0.0 && self.roll() < cfg.error_rate {
            let kind = cfg.kind();
            let hint = (kind == ErrorKind::RateLimited)
                .then_some(cfg.retry_after_ms)
                .flatten();
            return Err(self.injected(op, kind, hint));
        }
        Ok(())
    }
}

/// Wraps one capability handle with its provider's [`Chaos`].
#[derive(Debug)]
pub struct ChaosLayer<T: ?Sized> {
    inner: Arc<T>,
    chaos: Arc<Chaos>,
}

impl<T: ?Sized> ChaosLayer<T> {
    /// Injects faults into calls to `inner`.
    pub fn new(inner: Arc<T>, chaos: Arc<Chaos>) -> Self {
        ChaosLayer { inner, chaos }
    }
}

#[async_trait]
impl Searcher for ChaosLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.chaos.enter("upsert").await?;
        self.inner.upsert(products).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        self.chaos.enter("remove").await?;
        self.inner.remove(ids).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.chaos.enter("search").await?;
        self.inner.search(req).await
    }
}

#[async_trait]
impl Recommender for ChaosLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        self.chaos.enter("record").await?;
        self.inner.record(events).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        self.chaos.enter("recommend").await?;
        self.inner.recommend(req).await
    }
}

#[async_trait]
impl Forecaster for ChaosLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        self.chaos.enter("forecast").await?;
        self.inner.forecast(req).await
    }
}

#[async_trait]
impl ChatModel for ChaosLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.chaos.enter("chat").await?;
        self.inner.chat(req).await
    }
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        self.chaos.enter("chat_stream").await?;
        let stream = self.inner.chat_stream(req).await?;
        let cut = self.chaos.cfg.as_ref().and_then(|c| c.stream_cut_after);
        let Some(n) = cut else {
            return Ok(stream);
        };
        let err = self
            .chaos
            .injected("chat_stream", ErrorKind::Unavailable, None);
        // Passes `n` events, then fails instead of the next one (a shorter stream is untouched).
        let cut_stream =
            futures::stream::unfold((stream, 0usize, false), move |(mut inner, seen, done)| {
                let err = err.clone();
                async move {
                    if done {
                        return None;
                    }
                    let item = inner.next().await?;
                    if seen == n {
                        return Some((Err(err), (inner, seen, true)));
                    }
                    let stop = item.is_err();
                    Some((item, (inner, seen + 1, stop)))
                }
            });
        Ok(Box::pin(cut_stream))
    }
}
