//! Hybrid search: a semantic and a keyword [`Searcher`] fused by reciprocal rank fusion.
//!
//! [`HybridSearcher`] asks both searchers at once for a larger candidate window than the page
//! requested, fuses the two rankings with [`rrf`] (`score = Σ wᵢ / (k + rankᵢ)`, ranks from 1)
//! and cuts the page from the fused list. RRF needs no score calibration between the two
//! sides: only ranks count, so a BM25 score and a cosine similarity combine fairly.
//!
//! Behaviour, per [`SearchMode`]:
//! - `Keyword`: the keyword searcher alone; `Semantic`: the semantic searcher alone (their
//!   answers and errors pass through, with `meta.provider` set to the hybrid's name);
//! - `Auto` and `Hybrid`: fused, `mode = Hybrid`.
//!
//! A fused answer:
//! - each side gets the request with `offset = 0` and `limit` = the candidate window:
//!   `(offset + limit) × window_factor`, at least `min_window`, at most `max_window` (at most
//!   [`SearchRequest::MAX_LIMIT`]). A fixed `min_window` keeps the first pages of a result
//!   list consistent with each other; a page beyond `max_window` fused candidates is empty;
//! - `total` is approximate: the larger of the number of distinct fused candidates and each
//!   side's own `total` (the true union of all matches is not known without fetching it);
//! - facets are the keyword searcher's (counted over its matches);
//! - hits carry the product record when either side attached one (the keyword side's first);
//! - a sort other than [`SortBy::Relevance`] is not fused: the keyword searcher's ordering
//!   answers (the semantic one's if the keyword side falls back), since ranks of a price sort
//!   carry no relevance;
//! - if one side fails with a transient error (rate limit, timeout, unavailable) or
//!   `Unsupported` ([`should_fall_back`]), the other side answers alone, paged the same way,
//!   and `meta.fallbacks` names the side that failed and why; any other error is returned; if
//!   both fail, the keyword side's error is returned.
//!
//! Writes (`upsert`, `remove`) go to both sides concurrently. When either fails, its error is
//! returned after both ran (the keyword side's when both failed), so an index is never
//! silently out of step. When both succeed, the report counts the items applied on both,
//! lists items either side rejected (reason prefixed `semantic:` / `keyword:`), and carries
//! the partial failures each side reported in [`IndexReport::provider_errors`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::api::Searcher;
use crate::error::{Error, Result};
use crate::layers::fallback::should_fall_back;
use crate::types::*;

/// Reciprocal rank fusion of ranked id lists.
///
/// Each list is `(weight, ids best first)`; an id at 1-based rank `r` of a list of weight `w`
/// earns `w / (k + r)`, summed over the lists it appears in (only its first occurrence in a
/// list counts). The result is best first, ties by ascending id. A `k` that is negative or not
/// finite is taken as 60 (the usual default), and a weight that is not finite as 0, so the
/// scores are always finite.
///
/// ```
/// use merchant_ai::ProductId;
/// use merchant_ai::hybrid::rrf;
/// let id = ProductId::new;
/// let fused = rrf(&[(1.0, vec![id("a"), id("b")]), (1.0, vec![id("b"), id("c")])], 60.0);
/// assert_eq!(fused[0].0, id("b")); // 1/62 + 1/61 beats a's 1/61
/// assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
/// ```
pub fn rrf(lists: &[(f32, Vec<ProductId>)], k: f32) -> Vec<(ProductId, f32)> {
    let k = if k.is_finite() && k >= 0.0 {
        f64::from(k)
    } else {
        60.0
    };
    let mut scores: HashMap<&ProductId, f64> = HashMap::new();
    let mut seen: std::collections::HashSet<&ProductId> = std::collections::HashSet::new();
    for (w, ids) in lists {
        let w = if w.is_finite() { f64::from(*w) } else { 0.0 };
        seen.clear();
        for (i, id) in ids.iter().enumerate() {
            if seen.insert(id) {
                *scores.entry(id).or_insert(0.0) += w / (k + (i + 1) as f64);
            }
        }
    }
    let mut out: Vec<(ProductId, f32)> = scores
        .into_iter()
        .map(|(id, s)| (id.clone(), s as f32))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Tuning of a [`HybridSearcher`]; every field has a default.
///
/// ```toml
/// k = 60.0
/// semantic_weight = 1.0
/// keyword_weight = 1.0
/// window_factor = 3
/// min_window = 100
/// max_window = 1000
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridConfig {
    /// The RRF constant `k` (default 60): larger flattens the advantage of top ranks.
    pub k: f32,
    /// Weight of the semantic ranking (default 1).
    pub semantic_weight: f32,
    /// Weight of the keyword ranking (default 1).
    pub keyword_weight: f32,
    /// Candidates asked of each side per result needed (`offset + limit`), default 3.
    pub window_factor: usize,
    /// Fewest candidates asked of each side (default 100).
    pub min_window: usize,
    /// Most candidates asked of each side (default and maximum 1000).
    pub max_window: usize,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            k: 60.0,
            semantic_weight: 1.0,
            keyword_weight: 1.0,
            window_factor: 3,
            min_window: 100,
            max_window: SearchRequest::MAX_LIMIT,
        }
    }
}

impl HybridConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `k`.
    #[must_use]
    pub fn with_k(mut self, k: f32) -> Self {
        self.k = k;
        self
    }
    /// Sets both weights.
    #[must_use]
    pub fn with_weights(mut self, semantic: f32, keyword: f32) -> Self {
        self.semantic_weight = semantic;
        self.keyword_weight = keyword;
        self
    }
    /// Sets the candidate window: factor, floor and cap.
    #[must_use]
    pub fn with_window(mut self, factor: usize, min: usize, max: usize) -> Self {
        self.window_factor = factor;
        self.min_window = min;
        self.max_window = max;
        self
    }
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.k.is_finite() && self.k >= 0.0) {
            return Err(Error::config(format!(
                "hybrid.k must be a finite number >= 0, got {}",
                self.k
            )));
        }
        for (name, w) in [
            ("semantic_weight", self.semantic_weight),
            ("keyword_weight", self.keyword_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::config(format!(
                    "hybrid.{name} must be a finite number >= 0, got {w}"
                )));
            }
        }
        if self.semantic_weight == 0.0 && self.keyword_weight == 0.0 {
            return Err(Error::config(
                "hybrid.semantic_weight and hybrid.keyword_weight are both 0",
            ));
        }
        if self.window_factor == 0 {
            return Err(Error::config("hybrid.window_factor must be at least 1"));
        }
        if self.max_window == 0 || self.max_window > SearchRequest::MAX_LIMIT {
            return Err(Error::config(format!(
                "hybrid.max_window must be between 1 and {}, got {}",
                SearchRequest::MAX_LIMIT,
                self.max_window
            )));
        }
        if self.min_window > self.max_window {
            return Err(Error::config(format!(
                "hybrid.min_window {} is above hybrid.max_window {}",
                self.min_window, self.max_window
            )));
        }
        Ok(())
    }

    /// Candidates to ask of each side for a page ending at `end = offset + limit`.
    pub fn window(&self, end: usize) -> usize {
        end.saturating_mul(self.window_factor)
            .max(end)
            .max(self.min_window)
            .min(self.max_window)
            .clamp(1, SearchRequest::MAX_LIMIT)
    }
}

/// A [`Searcher`] fusing a semantic and a keyword searcher. See the [module docs](self).
#[derive(Debug)]
pub struct HybridSearcher {
    name: String,
    semantic: Arc<dyn Searcher>,
    keyword: Arc<dyn Searcher>,
    config: HybridConfig,
}

/// Which side of the hybrid.
#[derive(Clone, Copy)]
enum Side {
    Semantic,
    Keyword,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Semantic => "semantic",
            Side::Keyword => "keyword",
        }
    }
}

impl HybridSearcher {
    /// A hybrid named `name` (reported in `meta.provider`) with the default [`HybridConfig`].
    pub fn new(
        name: impl Into<String>,
        semantic: Arc<dyn Searcher>,
        keyword: Arc<dyn Searcher>,
    ) -> Self {
        HybridSearcher {
            name: name.into(),
            semantic,
            keyword,
            config: HybridConfig::default(),
        }
    }

    /// Replaces the tuning; `ConfigInvalid` naming the field if it is out of range.
    pub fn with_config(mut self, config: HybridConfig) -> Result<Self> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tuning in force.
    pub fn config(&self) -> &HybridConfig {
        &self.config
    }

    fn note(side: Side, e: &Error) -> FallbackNote {
        FallbackNote::new(
            e.provider().unwrap_or(side.label()).to_owned(),
            e.kind().as_str(),
        )
    }

    /// One side's answer as the hybrid's: its own paging passes through.
    fn pass_through(&self, mut r: SearchResponse, start: Instant) -> SearchResponse {
        r.meta.provider = self.name.clone();
        r.meta.latency = start.elapsed();
        r
    }

    /// A window answer of one side, paged for the caller, after the other side failed.
    fn alone(
        &self,
        mut r: SearchResponse,
        req: &SearchRequest,
        failed: (Side, &Error),
        start: Instant,
    ) -> SearchResponse {
        tracing::warn!(
            provider = %self.name,
            side = failed.0.label(),
            kind = %failed.1.kind(),
            "hybrid search answered from one side"
        );
        r.hits = std::mem::take(&mut r.hits)
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .collect();
        let mut notes = vec![Self::note(failed.0, failed.1)];
        notes.append(&mut r.meta.fallbacks);
        r.meta.fallbacks = notes;
        r.meta.provider = self.name.clone();
        r.meta.latency = start.elapsed();
        r
    }

    /// Both sides with a window request; fused when both answer.
    async fn fused(&self, req: SearchRequest, start: Instant) -> Result<SearchResponse> {
        let window = self.config.window(req.offset.saturating_add(req.limit));
        let sub = req.clone().with_offset(0).with_limit(window);
        let (sem, kw) = futures::join!(self.semantic.search(sub.clone()), self.keyword.search(sub));
        let (sem, kw) = match (sem, kw) {
            (Ok(s), Ok(k)) => (s, k),
            (Err(_), Err(k)) => return Err(k),
            (Ok(s), Err(k)) if should_fall_back(&k) => {
                return Ok(self.alone(s, &req, (Side::Keyword, &k), start));
            }
            (Err(s), Ok(k)) if should_fall_back(&s) => {
                return Ok(self.alone(k, &req, (Side::Semantic, &s), start));
            }
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => return Err(e),
        };
        if req.sort != SortBy::Relevance {
            // Ranks of a non-relevance sort carry no relevance: the keyword order answers.
            let mut r = kw;
            r.hits = r
                .hits
                .into_iter()
                .skip(req.offset)
                .take(req.limit)
                .collect();
            r.meta.usage = add_usage(&r.meta.usage, &sem.meta.usage);
            return Ok(self.pass_through(r, start));
        }
        let ids = |r: &SearchResponse| r.hits.iter().map(|h| h.product_id.clone()).collect();
        let fused = rrf(
            &[
                (self.config.semantic_weight, ids(&sem)),
                (self.config.keyword_weight, ids(&kw)),
            ],
            self.config.k,
        );
        let union = fused.len() as u64;
        let mut products: HashMap<ProductId, Product> = HashMap::new();
        for h in sem.hits.into_iter().chain(kw.hits) {
            if let Some(p) = h.product {
                // The keyword side comes second and wins.
                products.insert(h.product_id, p);
            }
        }
        let hits = fused
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .map(|(id, score)| {
                let p = products.remove(&id);
                let hit = SearchHit::new(id, score);
                match p {
                    Some(p) => hit.with_product(p),
                    None => hit,
                }
            })
            .collect();
        let total = union.max(sem.total).max(kw.total);
        let mut meta = ResponseMeta::new(self.name.clone())
            .with_usage(add_usage(&kw.meta.usage, &sem.meta.usage));
        meta.fallbacks = kw
            .meta
            .fallbacks
            .into_iter()
            .chain(sem.meta.fallbacks)
            .collect();
        meta.latency = start.elapsed();
        Ok(SearchResponse::new(hits, total, meta)
            .with_facets(kw.facets)
            .with_mode(SearchMode::Hybrid))
    }
}

/// Adds up two usages: counts that either knows, and the cost when the currencies agree (the
/// first one's otherwise).
pub(crate) fn add_usage(a: &Usage, b: &Usage) -> Usage {
    let add = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
    };
    let mut u = Usage::new();
    u.input_tokens = add(a.input_tokens, b.input_tokens);
    u.output_tokens = add(a.output_tokens, b.output_tokens);
    u.reasoning_tokens = add(a.reasoning_tokens, b.reasoning_tokens);
    u.units = add(a.units, b.units);
    u.cost = match (a.cost, b.cost) {
        (Some(x), Some(y)) if x.currency == y.currency => {
            Some(Cost::new(x.micros.saturating_add(y.micros), x.currency))
        }
        (x, y) => x.or(y),
    };
    u
}

/// Merges the two sides' write results; see the [module docs](self).
fn merge_writes(sem: Result<IndexReport>, kw: Result<IndexReport>) -> Result<IndexReport> {
    let (sem, kw) = match (sem, kw) {
        (Ok(s), Ok(k)) => (s, k),
        (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
    };
    let mut report = IndexReport::new(sem.applied.min(kw.applied));
    let mut seen = std::collections::HashSet::new();
    for (side, rejected) in [(Side::Keyword, kw.rejected), (Side::Semantic, sem.rejected)] {
        for (id, reason) in rejected {
            if seen.insert(id.clone()) {
                report
                    .rejected
                    .push((id, format!("{}: {reason}", side.label())));
            }
        }
    }
    for (side, errors) in [
        (Side::Keyword, kw.provider_errors),
        (Side::Semantic, sem.provider_errors),
    ] {
        for (provider, e) in errors {
            report
                .provider_errors
                .push((format!("{}/{provider}", side.label()), e));
        }
    }
    Ok(report)
}

#[async_trait]
impl Searcher for HybridSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let (sem, kw) = futures::join!(
            self.semantic.upsert(products.clone()),
            self.keyword.upsert(products)
        );
        merge_writes(sem, kw)
    }

    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let (sem, kw) = futures::join!(self.semantic.remove(ids.clone()), self.keyword.remove(ids));
        merge_writes(sem, kw)
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let start = Instant::now();
        req.validate()?;
        match req.mode {
            SearchMode::Keyword => Ok(self.pass_through(self.keyword.search(req).await?, start)),
            SearchMode::Semantic => Ok(self.pass_through(self.semantic.search(req).await?, start)),
            _ => self.fused(req, start).await,
        }
    }
}
