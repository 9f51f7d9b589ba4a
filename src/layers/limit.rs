//! Client-side limits per provider: concurrent calls and requests per minute.
//!
//! Sits inside the retry layer, so every upstream attempt takes a slot and a token. A call
//! that cannot get both waits, but never past `max_wait_ms` nor the request's deadline; then
//! it fails with [`ErrorKind::RateLimited`] (vendor code `local_limit`, with the wait that would
//! have been needed as `retry_after`), marked exhausted so the retry layer does not spin on
//! it, and the fallback chain moves on to the next provider.
//!
//! ```toml
//! [profiles.prod.layers.limits]
//! max_concurrent = 32
//! requests_per_minute = 600
//! burst = 20              # tokens available at once (default: a tenth of a minute's worth)
//! max_wait_ms = 500
//! ```
//!
//! The token bucket is a few lines on `tokio::time` rather than a rate-limiting crate, so the
//! waiting respects the request deadline and tests run it on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// `[profiles.NAME.layers.limits]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// Turn the layer off without removing its settings.
    pub enabled: bool,
    /// Most calls in flight at once.
    pub max_concurrent: Option<usize>,
    /// Most requests started per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens available at once (default: a tenth of `requests_per_minute`, at least 1).
    pub burst: Option<u32>,
    /// Longest wait for a slot or a token, in milliseconds.
    pub max_wait_ms: u64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            enabled: true,
            max_concurrent: None,
            requests_per_minute: None,
            burst: None,
            max_wait_ms: 1_000,
        }
    }
}

impl LimitConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.max_concurrent == Some(0) {
            return Err(Error::config(format!(
                "{path}.max_concurrent: must be at least 1"
            )));
        }
        if self.requests_per_minute == Some(0) {
            return Err(Error::config(format!(
                "{path}.requests_per_minute: must be at least 1"
            )));
        }
        if self.burst == Some(0) {
            return Err(Error::config(format!("{path}.burst: must be at least 1")));
        }
        Ok(())
    }
}

struct Bucket {
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

/// One provider's limits, shared by its four capabilities.
pub struct Limiter {
    provider: String,
    max_wait: Duration,
    slots: Option<Arc<Semaphore>>,
    bucket: Option<Mutex<Bucket>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("provider", &self.provider)
            .field(
                "slots_free",
                &self.slots.as_ref().map(|s| s.available_permits()),
            )
            .finish()
    }
}

/// What a call holds while it runs.
pub struct Admission {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    /// Limits for `provider`.
    pub fn new(provider: impl Into<String>, cfg: &LimitConfig) -> Self {
        let bucket = cfg.requests_per_minute.map(|rpm| {
            let capacity = cfg.burst.unwrap_or((rpm / 10).max(1)) as f64;
            Mutex::new(Bucket {
                rate_per_sec: rpm as f64 / 60.0,
                capacity,
                tokens: capacity,
                last: Instant::now(),
            })
        });
        Limiter {
            provider: provider.into(),
            max_wait: Duration::from_millis(cfg.max_wait_ms),
            slots: cfg.max_concurrent.map(|n| Arc::new(Semaphore::new(n))),
            bucket,
        }
    }

    fn refused(&self, op: &str, what: &str, wait: Duration) -> Error {
        Error::new(
            ErrorKind::RateLimited,
            format!("client-side limit: {what} (waited the most allowed)"),
        )
        .with_vendor_code("local_limit")
        .with_retry_after(wait)
        .with_provider(self.provider.as_str())
        .with_operation(op)
        .exhausted()
    }

    /// Takes a token, or says how long until one is there.
    fn take_token(&self) -> std::result::Result<(), Duration> {
        let Some(b) = &self.bucket else {
            return Ok(());
        };
        let mut b = b.lock().expect("bucket lock");
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * b.rate_per_sec;
        b.tokens = (b.tokens + refill).min(b.capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / b.rate_per_sec))
        }
    }

    /// Waits for a slot and a token within `max_wait` and the deadline.
    pub async fn admit(&self, op: &str, ctx: &RequestContext) -> Result<Admission> {
        let budget = ctx
            .remaining()
            .map_or(self.max_wait, |left| left.min(self.max_wait));
        let until = Instant::now() + budget;
        let slot = match &self.slots {
            None => None,
            Some(s) => match tokio::time::timeout_at(until, s.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                Ok(Err(_)) => return Err(Error::new(ErrorKind::Unexpected, "limiter closed")),
                Err(_) => return Err(self.refused(op, "too many calls in flight", budget)),
            },
        };
        loop {
            match self.take_token() {
                Ok(()) => return Ok(Admission { _slot: slot }),
                Err(wait) => {
                    if Instant::now() + wait > until {
                        return Err(self.refused(op, "requests per minute reached", wait));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Wraps one capability handle with its provider's [`Limiter`].
#[derive(Debug)]
pub struct LimitLayer<T: ?Sized> {
    inner: Arc<T>,
    limiter: Arc<Limiter>,
}

impl<T: ?Sized> LimitLayer<T> {
    /// Limits calls to `inner`.
    pub fn new(inner: Arc<T>, limiter: Arc<Limiter>) -> Self {
        LimitLayer { inner, limiter }
    }
}

#[async_trait]
impl Searcher for LimitLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let _a = self
            .limiter
            .admit("upsert", &RequestContext::default())
            .await?;
        self.inner.upsert(products).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let _a = self
            .limiter
            .admit("remove", &RequestContext::default())
            .await?;
        self.inner.remove(ids).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let _a = self.limiter.admit("search", &req.ctx).await?;
        self.inner.search(req).await
    }
}

#[async_trait]
impl Recommender for LimitLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let _a = self
            .limiter
            .admit("record", &RequestContext::default())
            .await?;
        self.inner.record(events).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let _a = self.limiter.admit("recommend", &req.ctx).await?;
        self.inner.recommend(req).await
    }
}

#[async_trait]
impl Forecaster for LimitLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let _a = self.limiter.admit("forecast", &req.ctx).await?;
        self.inner.forecast(req).await
    }
}

#[async_trait]
impl ChatModel for LimitLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let _a = self.limiter.admit("chat", &req.ctx).await?;
        self.inner.chat(req).await
    }
    /// The slot is held until the stream ends or is dropped.
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let admission = self.limiter.admit("chat_stream", &req.ctx).await?;
        let stream = self.inner.chat_stream(req).await?;
        Ok(Box::pin(stream.map(move |ev| {
            let _held = &admission;
            ev
        })))
    }
}
