//! The response cache: identical requests within a TTL are answered once.
//!
//! - It sits outside the fallback chain and after redaction (see the crate's layer order), so a
//!   cache key never holds personal data that redaction removes.
//! - The key is a SHA-256 of the normalized request: the request as JSON without the fields
//!   that do not change the answer (deadline, trace id, the bypass flag). Only the digest is
//!   kept, never the request text.
//! - Size-bounded (entries), with a TTL per capability; a capability without a TTL is not
//!   cached. Chat is cached only when the request is deterministic (temperature 0 or a seed).
//!   Streams are never cached.
//! - Identical concurrent requests are single-flighted: one call upstream, everyone gets its
//!   answer. Errors are never cached.
//! - `RequestContext::bypass_cache` skips the cache for one request.
//! - Writes invalidate: `upsert` and `remove` clear cached searches, `record` clears cached
//!   recommendations.
//! - A cached answer says so: [`ResponseMeta::cached`] is `true`.
//!
//! ```toml
//! [profiles.prod.cache]
//! max_entries = 10000
//! search_ttl_ms = 60000
//! recommend_ttl_ms = 30000
//! forecast_ttl_ms = 3600000
//! chat_ttl_ms = 0          # 0 = not cached
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, Result};
use crate::types::*;

/// `[profiles.NAME.cache]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Turn the cache off without removing its settings.
    pub enabled: bool,
    /// Most entries kept per capability.
    pub max_entries: u64,
    /// TTL of search results in milliseconds (0 = not cached).
    pub search_ttl_ms: u64,
    /// TTL of recommendations in milliseconds (0 = not cached).
    pub recommend_ttl_ms: u64,
    /// TTL of forecasts in milliseconds (0 = not cached).
    pub forecast_ttl_ms: u64,
    /// TTL of deterministic chat replies in milliseconds (0 = not cached).
    pub chat_ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_entries: 10_000,
            search_ttl_ms: 60_000,
            recommend_ttl_ms: 30_000,
            forecast_ttl_ms: 3_600_000,
            chat_ttl_ms: 0,
        }
    }
}

impl CacheConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.enabled && self.max_entries == 0 {
            return Err(Error::config(format!(
                "{path}.max_entries: must be at least 1 (or set enabled = false)"
            )));
        }
        Ok(())
    }
}

type Key = [u8; 32];

/// The digest of a request with its volatile context fields cleared.
fn key<T: Serialize>(kind: &str, req: &T) -> Result<Key> {
    let mut v = serde_json::to_value(req)?;
    if let Some(ctx) = v.get_mut("ctx").and_then(|c| c.as_object_mut()) {
        ctx.remove("trace_id");
        ctx.remove("bypass_cache");
    }
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&v)?);
    Ok(h.finalize().into())
}

fn new_cache<V: Clone + Send + Sync + 'static>(max: u64, ttl_ms: u64) -> Option<Cache<Key, V>> {
    (ttl_ms > 0).then(|| {
        Cache::builder()
            .max_capacity(max)
            .time_to_live(Duration::from_millis(ttl_ms))
            .build()
    })
}

/// Serves `req` from `cache` or runs `call(req)`. The key is built only when the cache will be
/// used (a cache for this capability, no bypass), so a disabled cache costs nothing per call.
async fn cached<V, R, C, F>(
    cache: &Option<Cache<Key, V>>,
    kind: &str,
    req: R,
    bypass: bool,
    call: C,
) -> Result<V>
where
    V: Clone + Send + Sync + 'static + super::fallback::HasMeta,
    R: Serialize,
    C: FnOnce(R) -> F,
    F: Future<Output = Result<V>>,
{
    let Some(cache) = cache.as_ref().filter(|_| !bypass) else {
        return call(req).await;
    };
    let Ok(k) = key(kind, &req) else {
        return call(req).await;
    };
    let call = call(req);
    let mut hit = true;
    let r = cache
        .try_get_with(k, async {
            hit = false;
            call.await
        })
        .await;
    match r {
        Ok(mut v) => {
            if hit {
                v.meta_mut().cached = true;
            }
            Ok(v)
        }
        Err(e) => Err((*e).clone()),
    }
}

/// A cached [`Searcher`].
#[derive(Debug)]
pub struct CachedSearcher {
    inner: Arc<dyn Searcher>,
    cache: Option<Cache<Key, SearchResponse>>,
}

impl CachedSearcher {
    /// Caches `inner`'s answers by `cfg`.
    pub fn new(inner: Arc<dyn Searcher>, cfg: &CacheConfig) -> Self {
        CachedSearcher {
            inner,
            cache: new_cache(cfg.max_entries, cfg.search_ttl_ms),
        }
    }
    fn invalidate(&self) {
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }
}

#[async_trait]
impl Searcher for CachedSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let r = self.inner.upsert(products).await;
        self.invalidate();
        r
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let r = self.inner.remove(ids).await;
        self.invalidate();
        r
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let bypass = req.ctx.bypass_cache;
        cached(&self.cache, "search", req, bypass, |r| self.inner.search(r)).await
    }
}

/// A cached [`Recommender`].
#[derive(Debug)]
pub struct CachedRecommender {
    inner: Arc<dyn Recommender>,
    cache: Option<Cache<Key, RecommendResponse>>,
}

impl CachedRecommender {
    /// Caches `inner`'s answers by `cfg`.
    pub fn new(inner: Arc<dyn Recommender>, cfg: &CacheConfig) -> Self {
        CachedRecommender {
            inner,
            cache: new_cache(cfg.max_entries, cfg.recommend_ttl_ms),
        }
    }
}

#[async_trait]
impl Recommender for CachedRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let r = self.inner.record(events).await;
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
        r
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let bypass = req.ctx.bypass_cache;
        cached(&self.cache, "recommend", req, bypass, |r| {
            self.inner.recommend(r)
        })
        .await
    }
}

/// A cached [`Forecaster`].
#[derive(Debug)]
pub struct CachedForecaster {
    inner: Arc<dyn Forecaster>,
    cache: Option<Cache<Key, ForecastResponse>>,
}

impl CachedForecaster {
    /// Caches `inner`'s answers by `cfg`.
    pub fn new(inner: Arc<dyn Forecaster>, cfg: &CacheConfig) -> Self {
        CachedForecaster {
            inner,
            cache: new_cache(cfg.max_entries, cfg.forecast_ttl_ms),
        }
    }
}

#[async_trait]
impl Forecaster for CachedForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let bypass = req.ctx.bypass_cache;
        cached(&self.cache, "forecast", req, bypass, |r| {
            self.inner.forecast(r)
        })
        .await
    }
}

/// A cached [`ChatModel`] (deterministic requests only; streams pass through).
#[derive(Debug)]
pub struct CachedChat {
    inner: Arc<dyn ChatModel>,
    cache: Option<Cache<Key, ChatResponse>>,
}

impl CachedChat {
    /// Caches `inner`'s deterministic answers by `cfg`.
    pub fn new(inner: Arc<dyn ChatModel>, cfg: &CacheConfig) -> Self {
        CachedChat {
            inner,
            cache: new_cache(cfg.max_entries, cfg.chat_ttl_ms),
        }
    }
}

#[async_trait]
impl ChatModel for CachedChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let deterministic = req.temperature == Some(0.0) || req.seed.is_some();
        let bypass = req.ctx.bypass_cache || !deterministic;
        cached(&self.cache, "chat", req, bypass, |r| self.inner.chat(r)).await
    }
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        self.inner.chat_stream(req).await
    }
}
