//! The timeout layer: one deadline per attempt, and for streams a time to the first event and a
//! longest silence between events.
//!
//! It sits inside the retry layer, so each attempt has its own time; the request's deadline
//! ([`RequestContext::deadline`]) spans all attempts and fallbacks and is enforced by the
//! layers around it. A timed-out attempt is an [`ErrorKind::Timeout`] error, retryable.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;

use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// `[profiles.NAME.layers.timeout]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Turn the layer off without removing its settings.
    pub enabled: bool,
    /// Longest one attempt of a non-streamed call may take, in milliseconds.
    pub attempt_ms: u64,
    /// Longest wait for a stream's first event, in milliseconds.
    pub first_event_ms: u64,
    /// Longest silence between two events of a stream, in milliseconds.
    pub stall_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            enabled: true,
            attempt_ms: 30_000,
            first_event_ms: 15_000,
            stall_ms: 30_000,
        }
    }
}

impl TimeoutConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        for (k, v) in [
            ("attempt_ms", self.attempt_ms),
            ("first_event_ms", self.first_event_ms),
            ("stall_ms", self.stall_ms),
        ] {
            if v == 0 {
                return Err(Error::config(format!("{path}.{k}: must be above 0")));
            }
        }
        Ok(())
    }
}

/// Wraps one capability handle with per-attempt timeouts.
#[derive(Debug)]
pub struct TimeoutLayer<T: ?Sized> {
    inner: Arc<T>,
    cfg: TimeoutConfig,
    provider: String,
}

impl<T: ?Sized> TimeoutLayer<T> {
    /// Times calls to `inner` (served by `provider`) out by `cfg`.
    pub fn new(inner: Arc<T>, provider: impl Into<String>, cfg: TimeoutConfig) -> Self {
        TimeoutLayer {
            inner,
            cfg,
            provider: provider.into(),
        }
    }

    fn timeout_error(&self, op: &str, what: &str, limit: Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("{what} took longer than {} ms", limit.as_millis()),
        )
        .with_provider(self.provider.as_str())
        .with_operation(op)
    }

    async fn timed<V>(&self, op: &str, fut: impl Future<Output = Result<V>>) -> Result<V> {
        let limit = Duration::from_millis(self.cfg.attempt_ms);
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout_error(op, "the attempt", limit)),
        }
    }
}

#[async_trait]
impl Searcher for TimeoutLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.timed("upsert", self.inner.upsert(products)).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        self.timed("remove", self.inner.remove(ids)).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.timed("search", self.inner.search(req)).await
    }
}

#[async_trait]
impl Recommender for TimeoutLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        self.timed("record", self.inner.record(events)).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        self.timed("recommend", self.inner.recommend(req)).await
    }
}

#[async_trait]
impl Forecaster for TimeoutLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        self.timed("forecast", self.inner.forecast(req)).await
    }
}

#[async_trait]
impl ChatModel for TimeoutLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.timed("chat", self.inner.chat(req)).await
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let first_limit = Duration::from_millis(self.cfg.first_event_ms);
        let stall_limit = Duration::from_millis(self.cfg.stall_ms);
        let open = tokio::time::timeout(first_limit, self.inner.chat_stream(req));
        let stream = match open.await {
            Ok(r) => r?,
            Err(_) => {
                return Err(self.timeout_error("chat_stream", "opening the stream", first_limit));
            }
        };
        let first_err = self.timeout_error("chat_stream", "the first event", first_limit);
        let stall_err =
            self.timeout_error("chat_stream", "the silence between two events", stall_limit);
        // State: the inner stream, whether an event arrived, whether we stopped.
        let s = futures::stream::unfold((stream, false, false), move |(mut inner, seen, done)| {
            let first_err = first_err.clone();
            let stall_err = stall_err.clone();
            async move {
                if done {
                    return None;
                }
                let limit = if seen { stall_limit } else { first_limit };
                match tokio::time::timeout(limit, inner.next()).await {
                    Ok(Some(Ok(ev))) => Some((Ok(ev), (inner, true, false))),
                    Ok(Some(Err(e))) => Some((Err(e), (inner, seen, true))),
                    Ok(None) => None,
                    Err(_) => {
                        let e = if seen { stall_err } else { first_err };
                        // Dropping the inner stream cancels the generation upstream.
                        Some((Err(e), (inner, seen, true)))
                    }
                }
            }
        });
        Ok(Box::pin(s))
    }
}
