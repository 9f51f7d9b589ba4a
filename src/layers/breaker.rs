//! The circuit breaker: stop calling a provider that keeps failing, probe it now and then.
//!
//! - **Closed**: calls pass. The outcome of the last `window` calls is kept; when at least
//!   `min_calls` of them are known and the share of failures reaches `failure_ratio`, the
//!   breaker opens. A failure is a transient error (throttled, timed out, unavailable); any
//!   other answer, even an error such as a bad request, shows the provider is up.
//! - **Open**: calls fail at once with [`ErrorKind::Unavailable`] (vendor code
//!   `circuit_open`, retryable, with the time left as `retry_after`), so the fallback chain skips
//!   the provider without an attempt. The cooldown is `cooldown_ms`, or the provider's own
//!   `Retry-After` when longer (capped at `max_cooldown_ms`).
//! - **Half-open**: after the cooldown one call goes through as a probe while the others are
//!   still refused. Success closes the breaker; failure opens it for another cooldown.
//!
//! So a dead provider costs at most one failed call per cooldown window, not one per request.
//! The breaker is per provider, shared by its four capabilities, and reads time from
//! `tokio::time`, so tests run it on a paused clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{first_event, prepend};
use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// `[profiles.NAME.layers.breaker]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Turn the layer off without removing its settings.
    pub enabled: bool,
    /// Share of failed calls in the window that opens the breaker.
    pub failure_ratio: f64,
    /// Calls the window must hold before the ratio counts.
    pub min_calls: usize,
    /// Most recent calls considered.
    pub window: usize,
    /// How long the breaker stays open, in milliseconds.
    pub cooldown_ms: u64,
    /// Upper bound of a cooldown stretched by a `Retry-After`, in milliseconds.
    pub max_cooldown_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            failure_ratio: 0.5,
            min_calls: 5,
            window: 20,
            cooldown_ms: 5_000,
            max_cooldown_ms: 120_000,
        }
    }
}

impl BreakerConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(Error::config(format!(
                "{path}.failure_ratio: must be in (0, 1]"
            )));
        }
        if self.min_calls == 0 || self.window < self.min_calls {
            return Err(Error::config(format!(
                "{path}.window: must be at least min_calls, and min_calls at least 1"
            )));
        }
        Ok(())
    }
}

/// The breaker's state, for metrics and drills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused.
    Open,
    /// One probe is allowed.
    HalfOpen,
}

enum State {
    Closed { outcomes: VecDeque<bool> },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Whether a call was let through as a normal call or as the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Normal,
    Probe,
}

/// One provider's circuit breaker.
pub struct Breaker {
    cfg: BreakerConfig,
    provider: String,
    state: Mutex<State>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("provider", &self.provider)
            .field("state", &self.state())
            .finish()
    }
}

fn is_failure(e: &Error) -> bool {
    e.kind().default_retryable()
}

impl Breaker {
    /// A closed breaker for `provider`.
    pub fn new(provider: impl Into<String>, cfg: BreakerConfig) -> Self {
        Breaker {
            cfg,
            provider: provider.into(),
            state: Mutex::new(State::Closed {
                outcomes: VecDeque::new(),
            }),
        }
    }

    /// The current state (an expired open state reads as half-open).
    pub fn state(&self) -> BreakerState {
        match &*self.state.lock().expect("breaker lock") {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= *until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Closes the breaker and forgets past outcomes (e.g. between drill scenarios).
    pub fn reset(&self) {
        *self.state.lock().expect("breaker lock") = State::Closed {
            outcomes: VecDeque::new(),
        };
    }

    fn refused(&self, op: &str, left: Duration) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            "the circuit breaker is open after repeated failures",
        )
        .with_vendor_code("circuit_open")
        .with_retry_after(left)
        .with_provider(self.provider.as_str())
        .with_operation(op)
    }

    fn admit(&self, op: &str) -> Result<Admission> {
        let mut st = self.state.lock().expect("breaker lock");
        let now = Instant::now();
        match &mut *st {
            State::Closed { .. } => Ok(Admission::Normal),
            State::Open { until } if now < *until => Err(self.refused(op, *until - now)),
            State::Open { .. } => {
                *st = State::HalfOpen { probing: true };
                Ok(Admission::Probe)
            }
            State::HalfOpen { probing: true } => {
                Err(self.refused(op, Duration::from_millis(self.cfg.cooldown_ms)))
            }
            State::HalfOpen { probing } => {
                *probing = true;
                Ok(Admission::Probe)
            }
        }
    }

    fn open(&self, st: &mut State, hint: Option<Duration>) {
        let base = Duration::from_millis(self.cfg.cooldown_ms);
        let cap = Duration::from_millis(self.cfg.max_cooldown_ms);
        let cooldown = hint.map_or(base, |h| base.max(h.min(cap)));
        tracing::warn!(provider = %self.provider, cooldown_ms = cooldown.as_millis() as u64, "circuit breaker opened");
        *st = State::Open {
            until: Instant::now() + cooldown,
        };
    }

    fn record(&self, adm: Admission, outcome: std::result::Result<(), &Error>) {
        let failed = outcome.err().filter(|e| is_failure(e));
        let mut st = self.state.lock().expect("breaker lock");
        if adm == Admission::Probe {
            match failed {
                Some(e) => self.open(&mut st, e.retry_after()),
                None => {
                    tracing::info!(provider = %self.provider, "circuit breaker closed after a successful probe");
                    *st = State::Closed {
                        outcomes: VecDeque::new(),
                    };
                }
            }
            return;
        }
        let State::Closed { outcomes } = &mut *st else {
            // A call admitted while closed that ends after the breaker opened: nothing to add.
            return;
        };
        outcomes.push_back(failed.is_some());
        while outcomes.len() > self.cfg.window {
            outcomes.pop_front();
        }
        let failures = outcomes.iter().filter(|f| **f).count();
        if outcomes.len() >= self.cfg.min_calls
            && failures as f64 >= self.cfg.failure_ratio * outcomes.len() as f64
        {
            let hint = failed.and_then(Error::retry_after);
            self.open(&mut st, hint);
        }
    }

    async fn guard<T>(&self, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let adm = self.admit(op)?;
        let r = fut.await;
        self.record(adm, r.as_ref().map(|_| ()));
        r
    }
}

/// Wraps one capability handle with its provider's [`Breaker`].
#[derive(Debug)]
pub struct BreakerLayer<T: ?Sized> {
    inner: Arc<T>,
    breaker: Arc<Breaker>,
}

impl<T: ?Sized> BreakerLayer<T> {
    /// Guards calls to `inner` with `breaker`.
    pub fn new(inner: Arc<T>, breaker: Arc<Breaker>) -> Self {
        BreakerLayer { inner, breaker }
    }
}

#[async_trait]
impl Searcher for BreakerLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.breaker
            .guard("upsert", self.inner.upsert(products))
            .await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        self.breaker.guard("remove", self.inner.remove(ids)).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.breaker.guard("search", self.inner.search(req)).await
    }
}

#[async_trait]
impl Recommender for BreakerLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        self.breaker
            .guard("record", self.inner.record(events))
            .await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        self.breaker
            .guard("recommend", self.inner.recommend(req))
            .await
    }
}

#[async_trait]
impl Forecaster for BreakerLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        self.breaker
            .guard("forecast", self.inner.forecast(req))
            .await
    }
}

#[async_trait]
impl ChatModel for BreakerLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.breaker.guard("chat", self.inner.chat(req)).await
    }
    /// A stream counts as a success once its first event arrived.
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let inner = self.inner.clone();
        let (first, rest) = self
            .breaker
            .guard("chat_stream", async move {
                first_event(inner.chat_stream(req).await?).await
            })
            .await?;
        Ok(prepend(first, rest))
    }
}
