//! The retry layer: the one retry loop of a call.
//!
//! - Only errors that say they are retryable ([`Error::is_retryable`]) are retried: throttling,
//!   timeouts, unavailability. Quota, bad requests, auth and content errors are returned at
//!   once.
//! - Delays grow exponentially from `initial_backoff` to `max_backoff` with full jitter from a
//!   seeded generator. A vendor's `Retry-After` (already parsed by the adapter into
//!   [`Error::retry_after`]) is a floor under the delay; a hint above `retry_after_cap` is not
//!   waited for: the error is returned with the hint, for the caller or the next provider.
//! - The request's deadline is respected: a retry whose delay would end past it is not made.
//! - A retry budget per provider (a token bucket shared by all its capabilities, as in AWS's
//!   standard mode) bounds the extra load on a provider that is down: each retry takes tokens,
//!   each success puts one back; with the bucket empty, errors are returned without retrying.
//! - A chat stream is retried only until its first event; after that an error reaches the
//!   caller as it is.
//! - When retries end, the error is marked [`Error::exhausted`], so no layer further out retries
//!   it again (a fallback chain still moves on to the next provider).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::rng::SeededRng;
use super::{first_event, prepend};
use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// `[profiles.NAME.layers.retry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Turn the layer off without removing its settings.
    pub enabled: bool,
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Largest delay between attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Growth factor of the delay.
    pub multiplier: f64,
    /// A `Retry-After` longer than this (milliseconds) is not waited for.
    pub retry_after_cap_ms: u64,
    /// Seed of the jitter generator (deterministic delays for tests and drills).
    pub seed: u64,
    /// The per-provider retry budget.
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 5_000,
            multiplier: 2.0,
            retry_after_cap_ms: 120_000,
            seed: 0x5eed,
            budget: BudgetConfig::default(),
        }
    }
}

impl RetryConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::config(format!(
                "{path}.max_attempts: must be at least 1"
            )));
        }
        if self.multiplier.is_nan() || self.multiplier < 1.0 {
            return Err(Error::config(format!(
                "{path}.multiplier: must be at least 1.0"
            )));
        }
        if self.initial_backoff_ms > self.max_backoff_ms {
            return Err(Error::config(format!(
                "{path}.initial_backoff_ms: larger than max_backoff_ms"
            )));
        }
        Ok(())
    }
}

/// `[profiles.NAME.layers.retry.budget]`: a token bucket per provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Turn the budget off (unbounded retries up to `max_attempts`).
    pub enabled: bool,
    /// Tokens in a full bucket.
    pub capacity: u64,
    /// Tokens a retry takes.
    pub retry_cost: u64,
    /// Tokens a retry after a timeout takes.
    pub timeout_retry_cost: u64,
    /// Tokens a successful call gives back.
    pub success_refund: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            enabled: true,
            capacity: 500,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_refund: 1,
        }
    }
}

/// A provider's retry budget, shared by all its capabilities.
#[derive(Debug)]
pub struct RetryBudget {
    cfg: BudgetConfig,
    tokens: AtomicU64,
}

impl RetryBudget {
    /// A full bucket.
    pub fn new(cfg: BudgetConfig) -> Self {
        RetryBudget {
            tokens: AtomicU64::new(cfg.capacity),
            cfg,
        }
    }
    /// Takes the tokens for one retry after `kind`; `false` when the bucket cannot pay.
    pub fn withdraw(&self, kind: ErrorKind) -> bool {
        if !self.cfg.enabled {
            return true;
        }
        let cost = if kind == ErrorKind::Timeout {
            self.cfg.timeout_retry_cost
        } else {
            self.cfg.retry_cost
        };
        self.tokens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| t.checked_sub(cost))
            .is_ok()
    }
    /// Gives tokens back after a success.
    pub fn refund(&self) {
        let cap = self.cfg.capacity;
        let add = self.cfg.success_refund;
        let _ = self
            .tokens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some((t + add).min(cap))
            });
    }
    /// Tokens left.
    pub fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::SeqCst)
    }
}

type RetryObserver = dyn Fn(&RetryEvent) + Send + Sync;

/// The retry state of one provider: policy, budget and jitter generator.
pub struct Retry {
    cfg: RetryConfig,
    provider: String,
    budget: Arc<RetryBudget>,
    rng: SeededRng,
    observer: Option<Arc<RetryObserver>>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("provider", &self.provider)
            .field("cfg", &self.cfg)
            .field("budget_tokens", &self.budget.tokens())
            .finish()
    }
}

/// A retry about to happen, for observers (metrics, drills, tests).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryEvent {
    /// The provider.
    pub provider: String,
    /// The operation.
    pub operation: &'static str,
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// The error kind of that attempt.
    pub kind: ErrorKind,
    /// The delay before the next attempt.
    pub delay: Duration,
}

impl Retry {
    /// The retry state for `provider`.
    pub fn new(provider: impl Into<String>, cfg: RetryConfig) -> Self {
        let seed = cfg.seed.max(1);
        Retry {
            budget: Arc::new(RetryBudget::new(cfg.budget.clone())),
            cfg,
            provider: provider.into(),
            rng: SeededRng::new(seed),
            observer: None,
        }
    }

    /// Calls `f` for every retry (after the delay is chosen, before sleeping).
    #[must_use]
    pub fn with_observer(mut self, f: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The budget.
    pub fn budget(&self) -> &Arc<RetryBudget> {
        &self.budget
    }

    fn jitter(&self, upper: Duration) -> Duration {
        upper.mul_f64(self.rng.next_f64())
    }

    /// The delay after failed attempt `attempt` (1-based), before the floor of a Retry-After.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.cfg.initial_backoff_ms as f64
            * self.cfg.multiplier.powi(attempt.saturating_sub(1) as i32);
        let upper = Duration::from_millis(base.min(self.cfg.max_backoff_ms as f64) as u64);
        // "Equal jitter": half fixed, half random, so a retry never comes immediately.
        upper / 2 + self.jitter(upper / 2)
    }

    /// Decides whether to retry after `err` on attempt `attempt`: the delay, or the error to
    /// return.
    fn next_delay(
        &self,
        op: &'static str,
        ctx: &RequestContext,
        attempt: u32,
        err: Error,
    ) -> std::result::Result<Duration, Error> {
        if !err.is_retryable() {
            return Err(err);
        }
        if attempt >= self.cfg.max_attempts {
            return Err(err.exhausted());
        }
        let mut delay = self.backoff(attempt);
        if let Some(hint) = err.retry_after() {
            if hint > Duration::from_millis(self.cfg.retry_after_cap_ms) {
                return Err(err.exhausted());
            }
            delay = delay.max(hint);
        }
        if ctx.remaining().is_some_and(|left| left <= delay) {
            return Err(err.exhausted());
        }
        if !self.budget.withdraw(err.kind()) {
            tracing::warn!(provider = %self.provider, operation = op, "retry budget exhausted; not retrying");
            return Err(err.exhausted());
        }
        let ev = RetryEvent {
            provider: self.provider.clone(),
            operation: op,
            attempt,
            kind: err.kind(),
            delay,
        };
        tracing::debug!(provider = %ev.provider, operation = op, attempt, kind = %ev.kind, delay_ms = delay.as_millis() as u64, "retrying");
        if let Some(o) = &self.observer {
            o(&ev);
        }
        Ok(delay)
    }

    async fn run<T, F>(&self, op: &'static str, ctx: &RequestContext, mut call: F) -> Result<T>
    where
        F: FnMut() -> BoxFuture<'static, Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => {
                    self.budget.refund();
                    return Ok(v);
                }
                Err(e) => {
                    let delay = self.next_delay(op, ctx, attempt, e)?;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Wraps one capability handle of a provider with the provider's [`Retry`].
#[derive(Debug)]
pub struct RetryLayer<T: ?Sized> {
    inner: Arc<T>,
    retry: Arc<Retry>,
}

impl<T: ?Sized> RetryLayer<T> {
    /// Retries calls to `inner` by `retry`'s policy.
    pub fn new(inner: Arc<T>, retry: Arc<Retry>) -> Self {
        RetryLayer { inner, retry }
    }
}

macro_rules! retried {
    ($self:ident, $op:literal, $ctx:expr, |$h:ident, $a:ident| $call:expr, $arg:expr) => {{
        let inner = $self.inner.clone();
        let arg = $arg;
        $self
            .retry
            .run($op, $ctx, move || {
                let $h = inner.clone();
                let $a = arg.clone();
                Box::pin(async move { $call.await })
            })
            .await
    }};
}

#[async_trait]
impl Searcher for RetryLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        retried!(
            self,
            "upsert",
            &RequestContext::default(),
            |h, a| h.upsert(a),
            products
        )
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        retried!(
            self,
            "remove",
            &RequestContext::default(),
            |h, a| h.remove(a),
            ids
        )
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let ctx = req.ctx.clone();
        retried!(self, "search", &ctx, |h, a| h.search(a), req)
    }
}

#[async_trait]
impl Recommender for RetryLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        retried!(
            self,
            "record",
            &RequestContext::default(),
            |h, a| h.record(a),
            events
        )
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let ctx = req.ctx.clone();
        retried!(self, "recommend", &ctx, |h, a| h.recommend(a), req)
    }
}

#[async_trait]
impl Forecaster for RetryLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let ctx = req.ctx.clone();
        retried!(self, "forecast", &ctx, |h, a| h.forecast(a), req)
    }
}

#[async_trait]
impl ChatModel for RetryLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let ctx = req.ctx.clone();
        retried!(self, "chat", &ctx, |h, a| h.chat(a), req)
    }

    /// Retries opening the stream and waiting for its first event; never after it.
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let ctx = req.ctx.clone();
        let (first, rest) = retried!(
            self,
            "chat_stream",
            &ctx,
            |h, a| async move { first_event(h.chat_stream(a).await?).await },
            req
        )?;
        Ok(prepend(first, rest))
    }
}
