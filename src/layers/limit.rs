//! Client-side limits per provider: concurrent calls, requests per minute and, for chat,
//! tokens per minute.
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
//! burst = 20              # requests available at once (default: a tenth of a minute's worth)
//! tokens_per_minute = 200000
//! max_wait_ms = 500
//! ```
//!
//! Tokens: a chat call reserves an estimate before it starts (prompt characters / 4 plus
//! `max_tokens`, or 256 when unset) and settles with the usage the provider reports when it
//! ends (the difference is taken or given back); a streamed call settles at its `Finished`
//! event. Other capabilities take no tokens.
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
    /// Requests available at once (default: a tenth of `requests_per_minute`, at least 1).
    pub burst: Option<u32>,
    /// Most chat tokens (input + output) per minute.
    pub tokens_per_minute: Option<u64>,
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
            tokens_per_minute: None,
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
        if self.tokens_per_minute == Some(0) {
            return Err(Error::config(format!(
                "{path}.tokens_per_minute: must be at least 1"
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

impl Bucket {
    fn new(per_minute: f64, capacity: f64) -> Self {
        Bucket {
            rate_per_sec: per_minute / 60.0,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }
    fn refill(&mut self) {
        let now = Instant::now();
        let add = now.duration_since(self.last).as_secs_f64() * self.rate_per_sec;
        self.tokens = (self.tokens + add).min(self.capacity);
        self.last = now;
    }
    /// Takes `n`, or says how long until `n` are there.
    fn take(&mut self, n: f64) -> std::result::Result<(), Duration> {
        self.refill();
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (n - self.tokens) / self.rate_per_sec,
            ))
        }
    }
    /// Settles a reservation: a positive `delta` is taken (the balance may go below zero),
    /// a negative one given back.
    fn settle(&mut self, delta: f64) {
        self.refill();
        self.tokens = (self.tokens - delta).min(self.capacity);
    }
}

/// One provider's limits, shared by its four capabilities.
pub struct Limiter {
    provider: String,
    max_wait: Duration,
    slots: Option<Arc<Semaphore>>,
    bucket: Option<Mutex<Bucket>>,
    chat_tokens: Option<Mutex<Bucket>>,
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

/// A rough token estimate of a chat request: prompt characters / 4 plus the output allowance.
pub fn estimate_chat_tokens(req: &ChatRequest) -> u64 {
    let chars: usize = req.messages.iter().map(|m| m.text().chars().count()).sum();
    (chars as u64).div_ceil(4) + u64::from(req.max_tokens.unwrap_or(256))
}

impl Limiter {
    /// Limits for `provider`.
    pub fn new(provider: impl Into<String>, cfg: &LimitConfig) -> Self {
        let bucket = cfg.requests_per_minute.map(|rpm| {
            let capacity = cfg.burst.unwrap_or((rpm / 10).max(1)) as f64;
            Mutex::new(Bucket::new(rpm as f64, capacity))
        });
        let chat_tokens = cfg
            .tokens_per_minute
            .map(|tpm| Mutex::new(Bucket::new(tpm as f64, tpm as f64)));
        Limiter {
            provider: provider.into(),
            max_wait: Duration::from_millis(cfg.max_wait_ms),
            slots: cfg.max_concurrent.map(|n| Arc::new(Semaphore::new(n))),
            bucket,
            chat_tokens,
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

    fn take_request(&self) -> std::result::Result<(), Duration> {
        match &self.bucket {
            None => Ok(()),
            Some(b) => b.lock().expect("bucket lock").take(1.0),
        }
    }

    fn take_chat_tokens(&self, n: u64) -> std::result::Result<(), Duration> {
        match &self.chat_tokens {
            None => Ok(()),
            Some(b) => b.lock().expect("bucket lock").take(n as f64),
        }
    }

    /// Settles a chat token reservation of `reserved` with the `actual` usage.
    pub fn settle_chat_tokens(&self, reserved: u64, actual: Option<u64>) {
        if let (Some(b), Some(actual)) = (&self.chat_tokens, actual) {
            b.lock()
                .expect("bucket lock")
                .settle(actual as f64 - reserved as f64);
        }
    }

    /// Waits for a slot, a request token and `chat_tokens` tokens within `max_wait` and the
    /// deadline.
    pub async fn admit(
        &self,
        op: &str,
        ctx: &RequestContext,
        chat_tokens: u64,
    ) -> Result<Admission> {
        if let Some(b) = &self.chat_tokens {
            let cap = b.lock().expect("bucket lock").capacity;
            if chat_tokens as f64 > cap {
                return Err(self
                    .refused(
                        op,
                        "the request needs more tokens than tokens_per_minute",
                        Duration::ZERO,
                    )
                    .with_retryable(false));
            }
        }
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
            match self.take_request() {
                Ok(()) => break,
                Err(wait) => {
                    if Instant::now() + wait > until {
                        return Err(self.refused(op, "requests per minute reached", wait));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if chat_tokens > 0 {
            loop {
                match self.take_chat_tokens(chat_tokens) {
                    Ok(()) => break,
                    Err(wait) => {
                        if Instant::now() + wait > until {
                            return Err(self.refused(op, "tokens per minute reached", wait));
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        Ok(Admission { _slot: slot })
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

    fn chat_tokens(&self, req: &ChatRequest) -> u64 {
        if self.limiter.chat_tokens.is_some() {
            estimate_chat_tokens(req)
        } else {
            0
        }
    }
}

#[async_trait]
impl Searcher for LimitLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let _a = self
            .limiter
            .admit("upsert", &RequestContext::default(), 0)
            .await?;
        self.inner.upsert(products).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let _a = self
            .limiter
            .admit("remove", &RequestContext::default(), 0)
            .await?;
        self.inner.remove(ids).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let _a = self.limiter.admit("search", &req.ctx, 0).await?;
        self.inner.search(req).await
    }
}

#[async_trait]
impl Recommender for LimitLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let _a = self
            .limiter
            .admit("record", &RequestContext::default(), 0)
            .await?;
        self.inner.record(events).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let _a = self.limiter.admit("recommend", &req.ctx, 0).await?;
        self.inner.recommend(req).await
    }
}

#[async_trait]
impl Forecaster for LimitLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let _a = self.limiter.admit("forecast", &req.ctx, 0).await?;
        self.inner.forecast(req).await
    }
}

#[async_trait]
impl ChatModel for LimitLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let reserved = self.chat_tokens(&req);
        let _a = self.limiter.admit("chat", &req.ctx, reserved).await?;
        let r = self.inner.chat(req).await;
        let actual = match &r {
            Ok(resp) => resp.meta.usage.total_tokens(),
            Err(_) => Some(0),
        };
        self.limiter.settle_chat_tokens(reserved, actual);
        r
    }
    /// The slot is held until the stream ends or is dropped.
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let reserved = self.chat_tokens(&req);
        let admission = self
            .limiter
            .admit("chat_stream", &req.ctx, reserved)
            .await?;
        let stream = match self.inner.chat_stream(req).await {
            Ok(s) => s,
            Err(e) => {
                self.limiter.settle_chat_tokens(reserved, Some(0));
                return Err(e);
            }
        };
        let limiter = self.limiter.clone();
        Ok(Box::pin(stream.map(move |ev| {
            let _held = &admission;
            if let Ok(ChatEvent::Finished { meta, .. }) = &ev {
                limiter.settle_chat_tokens(reserved, meta.usage.total_tokens());
            }
            ev
        })))
    }
}
