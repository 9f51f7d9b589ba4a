//! Semantic search and embedding recommendations over any [`Embedder`].
//!
//! Every adapter that can embed text (a remote embeddings API, a local model) gets a
//! [`Searcher`] and a [`Recommender`] from this module instead of writing its own: they rank,
//! filter, page, facet and explain the same way whichever model made the vectors.
//!
//! - [`EmbeddingStore`]: the catalog as the semantic side sees it: each product's record and
//!   the embedding of its text ([`product_text`]) in an exact cosine
//!   [`VectorIndex`]. A product whose text did not change is not embedded again on upsert.
//! - [`SemanticSearcher`]: embeds the query ([`EmbedPurpose::Query`]), takes the products most
//!   similar to it that pass the filters ([`SemanticSearchConfig::max_candidates`] at most,
//!   similarity above [`SemanticSearchConfig::min_score`]) as the matches, counts facets over
//!   them, sorts and pages them, and optionally reranks the top window with a [`Reranker`].
//!   An empty query matches every product that passes the filters, with no model call.
//! - [`EmbeddingRecommender`]: records events; recommends items similar to the anchor (or the
//!   cart) and, for a subject, to their profile: the recency-weighted mean of the vectors of
//!   the items they interacted with ([`EventWeights`], [`EmbeddingRecommendConfig::half_life_days`]).
//!   The merchant's [`BusinessRules`] apply as in every recommender; each item carries a
//!   [`Reason`] naming what it is similar to.
//! - [`HashEmbedder`]: a deterministic, offline [`Embedder`] (hashed character trigrams and
//!   words). It knows spelling, not meaning; it serves tests, demos and as a baseline.
//!
//! [`SemanticConfig`] deserializes from an adapter's provider options, so every embedding
//! adapter takes the same keys:
//!
//! ```toml
//! [providers.openai.semantic.text]
//! include_description = true
//! max_chars = 2000
//!
//! [providers.openai.semantic.search]
//! min_score = 0.0          # cosine similarity a match must exceed
//! max_candidates = 1000    # most matches per query (total and facets count these)
//! rerank_window = 50       # top matches sent to the reranker, when one is configured
//!
//! [providers.openai.semantic.recommend]
//! half_life_days = 7.0     # recency weighting of the subject profile
//! profile_blend = 0.2      # weight of the subject profile next to an anchor
//! [providers.openai.semantic.recommend.weights]
//! purchase = 5.0
//! view = 1.0
//! [providers.openai.semantic.recommend.rules]
//! max_per_category = 3
//! ```
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use merchant_ai::semantic::{HashEmbedder, SemanticConfig};
//! use merchant_ai::{Currency, Money, Product, Searcher, SearchRequest};
//!
//! let embedder = Arc::new(HashEmbedder::new(256)?);
//! let stack = SemanticConfig::default().build("demo", embedder, None)?;
//! let cny = |m| Money::new(m, Currency::CNY);
//! stack.searcher.upsert(vec![
//!     Product::new("t1", "Porcelain teapot", cny(12900)),
//!     Product::new("s1", "Trail running shoe", cny(59900)),
//! ]).await?;
//! let r = stack.searcher.search(SearchRequest::new("teapots")).await?;
//! assert_eq!(r.hits[0].product_id.as_str(), "t1");
//! assert_eq!(r.meta.model.as_deref(), Some("hash-trigram-256"));
//! # Ok::<(), merchant_ai::Error>(())
//! # }).unwrap();
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{Recommender, Searcher};
use crate::business_rules::{BusinessRules, Candidate};
use crate::embedding::{EmbedPurpose, EmbedRequest, Embedder, Embeddings, RerankRequest, Reranker};
use crate::error::{Error, ErrorKind, Result};
use crate::hybrid::add_usage;
use crate::types::*;
use crate::vector::{VectorIndex, dot};

// ---------------------------------------------------------------------------------------------
// Product text
// ---------------------------------------------------------------------------------------------

/// What of a product is embedded (`[...semantic.text]`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductTextConfig {
    /// Include the description (default `true`).
    pub include_description: bool,
    /// Include titles and descriptions in other languages (default `true`), so a query in
    /// any of them finds the product.
    pub include_localized: bool,
    /// Include attributes and tags (default `true`).
    pub include_attributes: bool,
    /// Cut the text to this many characters (default 2000); at least 1.
    pub max_chars: usize,
}

impl Default for ProductTextConfig {
    fn default() -> Self {
        ProductTextConfig {
            include_description: true,
            include_localized: true,
            include_attributes: true,
            max_chars: 2000,
        }
    }
}

impl ProductTextConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the character cap.
    #[must_use]
    pub fn with_max_chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }
    /// Includes the description or not.
    #[must_use]
    pub fn with_description(mut self, on: bool) -> Self {
        self.include_description = on;
        self
    }
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_chars == 0 {
            return Err(Error::config("semantic.text.max_chars must be at least 1"));
        }
        Ok(())
    }
}

/// The text of `p` that is embedded and sent to a reranker: title, localized titles, brand,
/// category path, tags and attributes, description, one per line, cut to `cfg.max_chars`.
///
/// ```
/// use merchant_ai::semantic::{ProductTextConfig, product_text};
/// use merchant_ai::{Currency, Money, Product};
/// let p = Product::new("s1", "Trail running shoe", Money::new(59900, Currency::CNY))
///     .with_brand("Peakline")
///     .with_category(["Sports", "Running"])
///     .with_localized_title("zh", "越野跑鞋");
/// assert_eq!(
///     product_text(&p, &ProductTextConfig::default()),
///     "Trail running shoe\n越野跑鞋\nBrand: Peakline\nCategory: Sports > Running"
/// );
/// ```
pub fn product_text(p: &Product, cfg: &ProductTextConfig) -> String {
    let mut lines: Vec<String> = vec![p.title.trim().to_owned()];
    if cfg.include_localized {
        for l in p.localized.values() {
            let t = l.title.trim();
            if !t.is_empty() && t != p.title.trim() {
                lines.push(t.to_owned());
            }
        }
    }
    if let Some(b) = p.brand.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        lines.push(format!("Brand: {b}"));
    }
    if !p.category.is_empty() {
        lines.push(format!("Category: {}", p.category_path()));
    }
    if cfg.include_attributes {
        if !p.tags.is_empty() {
            lines.push(format!("Tags: {}", p.tags.join(", ")));
        }
        if !p.attributes.is_empty() {
            let a: Vec<String> = p
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            lines.push(a.join("; "));
        }
    }
    if cfg.include_description {
        let d = p.description.trim();
        if !d.is_empty() {
            lines.push(d.to_owned());
        }
        if cfg.include_localized {
            for l in p.localized.values() {
                let d = l.description.trim();
                if !d.is_empty() {
                    lines.push(d.to_owned());
                }
            }
        }
    }
    let text = lines.join("\n");
    match text.char_indices().nth(cfg.max_chars.max(1)) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

/// FNV-1a 64 of a string: stable across runs and platforms.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------------------------
// A deterministic embedder
// ---------------------------------------------------------------------------------------------

/// A deterministic, offline [`Embedder`]: each word and each character trigram of the
/// lower-cased text (words padded with a space, so prefixes and suffixes count) is hashed to
/// one of `dimension` signed buckets.
///
/// It matches spelling and shared word parts ("teapot" finds "teapots", "tea"), never meaning
/// ("sneakers" does not find "running shoe"). Useful for tests, demos, and as the baseline a
/// real embedding model must beat.
///
/// ```
/// # futures::executor::block_on(async {
/// use merchant_ai::embedding::{EmbedRequest, Embedder};
/// use merchant_ai::semantic::HashEmbedder;
/// let e = HashEmbedder::new(64)?;
/// let out = e.embed(EmbedRequest::new(vec!["teapot".into(), "".into()])).await?;
/// assert_eq!(out.vectors.len(), 2);
/// assert!(out.vectors[1].iter().all(|x| *x == 0.0)); // no features: a zero vector
/// # Ok::<(), merchant_ai::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    model: String,
}

impl HashEmbedder {
    /// An embedder of `dimension` values; `ConfigInvalid` if it is 0.
    pub fn new(dimension: usize) -> Result<Self> {
        if dimension == 0 {
            return Err(Error::config(
                "hash embedder: the dimension must be at least 1",
            ));
        }
        Ok(HashEmbedder {
            dim: dimension,
            model: format!("hash-trigram-{dimension}"),
        })
    }

    /// The vector of one text (not normalized; all zeros when the text has no word).
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        let mut add = |feature: &str, w: f32| {
            let h = fnv(feature);
            let i = (h % self.dim as u64) as usize;
            v[i] += if h >> 63 == 0 { w } else { -w };
        };
        let lower = text.to_lowercase();
        for word in lower.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            add(&format!("w:{word}"), 1.0);
            let chars: Vec<char> = std::iter::once(' ')
                .chain(word.chars())
                .chain(std::iter::once(' '))
                .collect();
            let n = if chars.len() <= 4 { 2 } else { 3 };
            let mut buf = String::with_capacity(16);
            for g in chars.windows(n) {
                buf.clear();
                buf.push_str("g:");
                buf.extend(g);
                add(&buf, 1.0);
            }
        }
        v
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> Option<usize> {
        Some(self.dim)
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings> {
        let vectors: Vec<Vec<f32>> = req.texts.iter().map(|t| self.vector(t)).collect();
        let usage = Usage::new().with_units(req.texts.len() as u64);
        Ok(Embeddings::new(vectors, self.model.clone()).with_usage(usage))
    }
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

struct Stored {
    product: Arc<Product>,
    text_hash: u64,
}

#[derive(Default)]
struct StoreState {
    index: VectorIndex,
    products: HashMap<ProductId, Stored>,
}

/// Products and their embeddings, shared by a [`SemanticSearcher`] and an
/// [`EmbeddingRecommender`] (the recommender reads the vectors the searcher's upserts made).
pub struct EmbeddingStore {
    embedder: Arc<dyn Embedder>,
    text: ProductTextConfig,
    state: RwLock<StoreState>,
}

impl fmt::Debug for EmbeddingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.read();
        f.debug_struct("EmbeddingStore")
            .field("model", &self.embedder.model())
            .field("products", &st.products.len())
            .field("dimension", &st.index.dimension())
            .finish()
    }
}

impl EmbeddingStore {
    /// An empty store embedding with `embedder` and the default [`ProductTextConfig`].
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        EmbeddingStore {
            embedder,
            text: ProductTextConfig::default(),
            state: RwLock::new(StoreState::default()),
        }
    }

    /// Sets what of a product is embedded; `ConfigInvalid` naming the field if out of range.
    pub fn with_text_config(mut self, text: ProductTextConfig) -> Result<Self> {
        text.validate()?;
        self.text = text;
        Ok(self)
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// What of a product is embedded.
    pub fn text_config(&self) -> &ProductTextConfig {
        &self.text
    }

    /// Number of products held.
    pub fn len(&self) -> usize {
        self.read().products.len()
    }

    /// Whether no product is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of a product.
    pub fn product(&self, id: &ProductId) -> Option<Arc<Product>> {
        self.read().products.get(id).map(|s| s.product.clone())
    }

    /// The stored (unit-length) vector of a product.
    pub fn vector(&self, id: &ProductId) -> Option<Vec<f32>> {
        self.read().index.get(id).map(<[f32]>::to_vec)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, StoreState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, StoreState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks an embedder's answer for `n` texts: count, one dimension, and the dimension the
    /// index holds. Values are checked per vector by the caller.
    fn check_answer(&self, e: &Embeddings, n: usize) -> Result<()> {
        let model = self.embedder.model();
        if e.vectors.len() != n {
            return Err(Error::decode(format!(
                "embedder {model}: {} vectors for {n} texts",
                e.vectors.len()
            )));
        }
        let Some(first) = e.vectors.first() else {
            return Ok(());
        };
        let dim = first.len();
        if dim == 0 {
            return Err(Error::decode(format!("embedder {model}: an empty vector")));
        }
        if let Some(v) = e.vectors.iter().find(|v| v.len() != dim) {
            return Err(Error::decode(format!(
                "embedder {model}: vectors of dimensions {dim} and {} in one answer",
                v.len()
            )));
        }
        if let Some(d) = self.read().index.dimension()
            && d != dim
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "embedder {model}: vectors of dimension {dim}, but the index holds dimension {d} \
                     (the model or its dimensions changed: re-create the index)"
                ),
            ));
        }
        Ok(())
    }

    /// Adds or replaces products: validates them ([`Product::validate`]; invalid ones are
    /// listed in the report), embeds the text of those that are new or whose text changed in
    /// one [`Embedder::embed`] call, and stores them. The last occurrence of an id in one batch
    /// wins. Fails as a whole (nothing stored) when the embedder fails.
    pub async fn upsert(
        &self,
        products: Vec<Product>,
        ctx: &RequestContext,
    ) -> Result<IndexReport> {
        let mut report = IndexReport::default();
        let mut seen = HashSet::new();
        let mut batch: Vec<Product> = Vec::with_capacity(products.len());
        for p in products.into_iter().rev() {
            if !seen.insert(p.id.clone()) {
                continue;
            }
            match p.validate() {
                Ok(()) => batch.push(p),
                Err(e) => report.rejected.push((p.id.clone(), e.message().to_owned())),
            }
        }
        batch.reverse();
        report.rejected.reverse();
        let texts: Vec<String> = batch.iter().map(|p| product_text(p, &self.text)).collect();
        let hashes: Vec<u64> = texts.iter().map(|t| fnv(t)).collect();
        let todo: Vec<usize> = {
            let st = self.read();
            (0..batch.len())
                .filter(|&i| {
                    st.products.get(&batch[i].id).is_none_or(|s| {
                        s.text_hash != hashes[i] || !st.index.contains(&batch[i].id)
                    })
                })
                .collect()
        };
        let mut vectors: HashMap<usize, Vec<f32>> = HashMap::new();
        if !todo.is_empty() {
            let req = EmbedRequest::new(todo.iter().map(|&i| texts[i].clone()).collect())
                .with_purpose(EmbedPurpose::Document)
                .with_context(ctx.clone());
            let e = self.embedder.embed(req).await?;
            self.check_answer(&e, todo.len())?;
            vectors = todo.iter().copied().zip(e.vectors).collect();
        }
        let mut st = self.write();
        for (i, p) in batch.into_iter().enumerate() {
            if let Some(v) = vectors.remove(&i)
                && let Err(e) = st.index.upsert(p.id.clone(), &v)
            {
                let what = e.message().to_owned();
                st.index.remove(&p.id);
                st.products.remove(&p.id);
                report
                    .rejected
                    .push((p.id, format!("the embedding is unusable: {what}")));
                continue;
            }
            report.applied += 1;
            st.products.insert(
                p.id.clone(),
                Stored {
                    product: Arc::new(p),
                    text_hash: hashes[i],
                },
            );
        }
        Ok(report)
    }

    /// Removes products; unknown ids are ignored. Reports how many were there.
    pub fn remove(&self, ids: &[ProductId]) -> IndexReport {
        let mut st = self.write();
        let mut applied = 0;
        for id in ids {
            st.index.remove(id);
            if st.products.remove(id).is_some() {
                applied += 1;
            }
        }
        IndexReport::new(applied)
    }

    /// Embeds one query text. `Ok(None)` when the embedder gives it no direction (a zero
    /// vector: nothing can match).
    async fn embed_query(
        &self,
        text: &str,
        ctx: &RequestContext,
    ) -> Result<(Option<Vec<f32>>, Embeddings)> {
        let req = EmbedRequest::new(vec![text.to_owned()])
            .with_purpose(EmbedPurpose::Query)
            .with_context(ctx.clone());
        let mut e = self.embedder.embed(req).await?;
        self.check_answer(&e, 1)?;
        let v = e.vectors.pop().unwrap_or_default();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::decode(format!(
                "embedder {}: a query vector value is not finite",
                self.embedder.model()
            )));
        }
        let zero = v.iter().all(|x| *x == 0.0);
        Ok(((!zero).then_some(v), e))
    }
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

/// Tuning of a [`SemanticSearcher`] (`[...semantic.search]`); every field has a default.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemanticSearchConfig {
    /// A product matches a query when its cosine similarity is above this (default 0.0);
    /// between -1 and 1.
    pub min_score: f32,
    /// Most matches per query (default 1000): the most similar products passing the filters.
    /// `total` and facets count these.
    pub max_candidates: usize,
    /// How many top matches a [`Reranker`] reorders, when one is set (default 50; 0 = never).
    /// Reranking applies to relevance order with a non-empty query.
    pub rerank_window: usize,
}

impl Default for SemanticSearchConfig {
    fn default() -> Self {
        SemanticSearchConfig {
            min_score: 0.0,
            max_candidates: 1000,
            rerank_window: 50,
        }
    }
}

impl SemanticSearchConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the similarity a match must exceed.
    #[must_use]
    pub fn with_min_score(mut self, s: f32) -> Self {
        self.min_score = s;
        self
    }
    /// Sets the most matches per query.
    #[must_use]
    pub fn with_max_candidates(mut self, n: usize) -> Self {
        self.max_candidates = n;
        self
    }
    /// Sets the rerank window.
    #[must_use]
    pub fn with_rerank_window(mut self, n: usize) -> Self {
        self.rerank_window = n;
        self
    }
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.min_score.is_finite() && (-1.0..=1.0).contains(&self.min_score)) {
            return Err(Error::config(format!(
                "semantic.search.min_score must be between -1 and 1, got {}",
                self.min_score
            )));
        }
        if self.max_candidates == 0 {
            return Err(Error::config(
                "semantic.search.max_candidates must be at least 1",
            ));
        }
        if self.rerank_window > SearchRequest::MAX_LIMIT {
            return Err(Error::config(format!(
                "semantic.search.rerank_window must be at most {}, got {}",
                SearchRequest::MAX_LIMIT,
                self.rerank_window
            )));
        }
        Ok(())
    }
}

/// A [`Searcher`] over an [`EmbeddingStore`]. See the [module docs](self).
#[derive(Debug)]
pub struct SemanticSearcher {
    name: String,
    store: Arc<EmbeddingStore>,
    reranker: Option<Arc<dyn Reranker>>,
    config: SemanticSearchConfig,
}

impl SemanticSearcher {
    /// A searcher named `name` (reported in `meta.provider`) over `store`.
    pub fn new(name: impl Into<String>, store: Arc<EmbeddingStore>) -> Self {
        SemanticSearcher {
            name: name.into(),
            store,
            reranker: None,
            config: SemanticSearchConfig::default(),
        }
    }

    /// Reranks the top matches with `reranker`.
    #[must_use]
    pub fn with_reranker(mut self, reranker: Arc<dyn Reranker>) -> Self {
        self.reranker = Some(reranker);
        self
    }

    /// Replaces the tuning; `ConfigInvalid` naming the field if out of range.
    pub fn with_config(mut self, config: SemanticSearchConfig) -> Result<Self> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &Arc<EmbeddingStore> {
        &self.store
    }

    /// Reorders the first `window` matches by the reranker's scores (see `search`).
    async fn rerank(
        &self,
        reranker: &Arc<dyn Reranker>,
        req: &SearchRequest,
        matches: &mut Vec<(f32, Arc<Product>)>,
    ) -> Result<crate::embedding::Reranked> {
        let window = self.config.rerank_window.min(matches.len());
        let docs: Vec<String> = matches[..window]
            .iter()
            .map(|(_, p)| product_text(p, &self.store.text))
            .collect();
        let rr = reranker
            .rerank(
                RerankRequest::new(req.query.trim(), docs)
                    .with_top_n(window)
                    .with_context(req.ctx.clone()),
            )
            .await?;
        let mut taken = vec![false; window];
        let mut scored: Vec<(f32, usize)> = Vec::with_capacity(window);
        for r in &rr.results {
            if r.index >= window {
                return Err(Error::decode(format!(
                    "reranker {}: result index {} is beyond the {window} documents sent",
                    reranker.model(),
                    r.index
                )));
            }
            if !r.score.is_finite() {
                return Err(Error::decode(format!(
                    "reranker {}: the score of document {} is not finite",
                    reranker.model(),
                    r.index
                )));
            }
            if std::mem::replace(&mut taken[r.index], true) {
                continue;
            }
            scored.push((r.score, r.index));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let floor = scored.iter().map(|s| s.0).fold(f32::INFINITY, f32::min);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        let old = std::mem::take(matches);
        let mut slots: Vec<Option<(f32, Arc<Product>)>> = old.into_iter().map(Some).collect();
        for &(s, i) in &scored {
            if let Some((_, p)) = slots[i].take() {
                matches.push((s, p));
            }
        }
        // The rest keeps its vector order, scored strictly below every reranked match.
        for (c, p) in slots.into_iter().flatten() {
            matches.push((floor - 1.0 + (c - 1.0) / 2.0, p));
        }
        Ok(rr)
    }
}

#[async_trait]
impl Searcher for SemanticSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.store
            .upsert(products, &RequestContext::default())
            .await
    }

    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        Ok(self.store.remove(&ids))
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let started = Instant::now();
        req.validate()?;
        req.ctx.check_deadline()?;
        let query = req.query.trim();
        let mut usage = Usage::new();
        let mut request_id = None;
        let mut matches: Vec<(f32, Arc<Product>)> = if query.is_empty() {
            let st = self.store.read();
            let mut all: Vec<(f32, Arc<Product>)> = st
                .products
                .values()
                .filter(|s| req.filters.matches(&s.product))
                .map(|s| (0.0, s.product.clone()))
                .collect();
            all.sort_by(|a, b| a.1.id.cmp(&b.1.id));
            all
        } else {
            let (qv, e) = self.store.embed_query(query, &req.ctx).await?;
            usage = e.usage;
            request_id = e.request_id;
            match qv {
                None => Vec::new(),
                Some(qv) => {
                    let st = self.store.read();
                    let hits = st
                        .index
                        .search_filtered(&qv, self.config.max_candidates, |id| {
                            st.products
                                .get(id)
                                .is_some_and(|s| req.filters.matches(&s.product))
                        })
                        .map_err(|e| {
                            Error::decode(format!(
                                "embedder {}: unusable query vector: {}",
                                self.store.embedder.model(),
                                e.message()
                            ))
                        })?;
                    hits.into_iter()
                        .filter(|h| h.score > self.config.min_score)
                        .filter_map(|h| {
                            st.products.get(&h.id).map(|s| (h.score, s.product.clone()))
                        })
                        .collect()
                }
            }
        };
        let total = matches.len() as u64;
        let facets = FacetCounts::tally(&req.facets, matches.iter().map(|(_, p)| p.as_ref()));
        let mut model = self.store.embedder.model().to_owned();
        if req.sort != SortBy::Relevance {
            matches.sort_by(|a, b| {
                req.sort
                    .compare_products(&a.1, &b.1)
                    .then_with(|| b.0.total_cmp(&a.0))
                    .then_with(|| a.1.id.cmp(&b.1.id))
            });
        } else if let Some(rr) = &self.reranker
            && !query.is_empty()
            && self.config.rerank_window > 0
            && req.offset < self.config.rerank_window
            && !matches.is_empty()
        {
            let r = self.rerank(rr, &req, &mut matches).await?;
            usage = add_usage(&usage, &r.usage);
            model = format!("{model} + {}", rr.model());
            request_id = r.request_id.or(request_id);
        }
        let hits: Vec<SearchHit> = matches
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .map(|(s, p)| SearchHit::new(p.id.clone(), s).with_product((*p).clone()))
            .collect();
        let mut meta = ResponseMeta::new(self.name.clone())
            .with_model(model)
            .with_usage(usage)
            .with_latency(started.elapsed());
        meta.request_id = request_id;
        Ok(SearchResponse::new(hits, total, meta)
            .with_facets(facets)
            .with_mode(SearchMode::Semantic))
    }
}

// ---------------------------------------------------------------------------------------------
// Recommend
// ---------------------------------------------------------------------------------------------

pub use crate::business_rules::EventWeights;

/// Tuning of an [`EmbeddingRecommender`] (`[...semantic.recommend]`); every field has a default.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingRecommendConfig {
    /// The merchant's rules (`[...semantic.recommend.rules]`), as in every recommender.
    pub rules: BusinessRules,
    /// Weight of each event kind in the profile.
    pub weights: EventWeights,
    /// Half-life of an event's weight in the profile, in days (default 7), counted back from
    /// the subject's latest event (never the wall clock: results are deterministic).
    pub half_life_days: f64,
    /// Half-life of popularity (the cold-start fallback), in days (default 14).
    pub popularity_half_life_days: f64,
    /// How many of a subject's latest events are kept for the profile (default 50).
    pub max_history: usize,
    /// Weight of each session item of the request in the profile, as if just seen
    /// (default 2).
    pub session_weight: f64,
    /// Weight of the subject's profile next to the anchor on product pages and in the cart
    /// (default 0.2; 0 = the anchor alone).
    pub profile_blend: f64,
    /// Nearest neighbours fetched per requested item before the rules apply (default 4).
    pub overfetch: usize,
}

impl Default for EmbeddingRecommendConfig {
    fn default() -> Self {
        EmbeddingRecommendConfig {
            rules: BusinessRules::default(),
            weights: EventWeights::default(),
            half_life_days: 7.0,
            popularity_half_life_days: 14.0,
            max_history: 50,
            session_weight: 2.0,
            profile_blend: 0.2,
            overfetch: 4,
        }
    }
}

impl EmbeddingRecommendConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the business rules.
    #[must_use]
    pub fn with_rules(mut self, rules: BusinessRules) -> Self {
        self.rules = rules;
        self
    }
    /// Sets the event weights.
    #[must_use]
    pub fn with_weights(mut self, weights: EventWeights) -> Self {
        self.weights = weights;
        self
    }
    /// Sets the profile half-life in days.
    #[must_use]
    pub fn with_half_life_days(mut self, days: f64) -> Self {
        self.half_life_days = days;
        self
    }
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.rules.validate()?;
        self.weights.validate("semantic.recommend.weights")?;
        for (n, d) in [
            ("half_life_days", self.half_life_days),
            ("popularity_half_life_days", self.popularity_half_life_days),
        ] {
            if !(d.is_finite() && d > 0.0) {
                return Err(Error::config(format!(
                    "semantic.recommend.{n} must be a number above 0, got {d}"
                )));
            }
        }
        for (n, w) in [
            ("session_weight", self.session_weight),
            ("profile_blend", self.profile_blend),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::config(format!(
                    "semantic.recommend.{n} must be a finite number >= 0, got {w}"
                )));
            }
        }
        if self.max_history == 0 {
            return Err(Error::config(
                "semantic.recommend.max_history must be at least 1",
            ));
        }
        if self.overfetch == 0 {
            return Err(Error::config(
                "semantic.recommend.overfetch must be at least 1",
            ));
        }
        Ok(())
    }
}

#[derive(Default)]
struct SubjectHistory {
    /// (product, weight, time), oldest first, at most `max_history`.
    events: VecDeque<(ProductId, f64, DateTime<Utc>)>,
    bought: HashSet<ProductId>,
    last_purchase: Option<(DateTime<Utc>, ProductId)>,
}

#[derive(Default)]
struct RecState {
    subjects: HashMap<SubjectId, SubjectHistory>,
    /// Per product, the sum of `weight * 2^((t - epoch) / half_life)`.
    popularity: HashMap<ProductId, f64>,
    epoch: Option<DateTime<Utc>>,
}

/// A [`Recommender`] over an [`EmbeddingStore`]. See the [module docs](self).
pub struct EmbeddingRecommender {
    name: String,
    store: Arc<EmbeddingStore>,
    config: EmbeddingRecommendConfig,
    state: RwLock<RecState>,
}

impl fmt::Debug for EmbeddingRecommender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects = self
            .state
            .read()
            .map(|s| s.subjects.len())
            .unwrap_or_default();
        f.debug_struct("EmbeddingRecommender")
            .field("name", &self.name)
            .field("store", &self.store)
            .field("subjects", &subjects)
            .finish()
    }
}

/// What a candidate is similar to, for its reason.
enum Seed {
    Anchor(String),
    Cart,
    Profile(Vec<(f64, Arc<Product>, Vec<f32>)>),
}

impl EmbeddingRecommender {
    /// A recommender named `name` over `store`, with the default tuning.
    pub fn new(name: impl Into<String>, store: Arc<EmbeddingStore>) -> Self {
        EmbeddingRecommender {
            name: name.into(),
            store,
            config: EmbeddingRecommendConfig::default(),
            state: RwLock::new(RecState::default()),
        }
    }

    /// Replaces the tuning; `ConfigInvalid` naming the field if out of range.
    pub fn with_config(mut self, config: EmbeddingRecommendConfig) -> Result<Self> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &Arc<EmbeddingStore> {
        &self.store
    }

    fn ingest(&self, st: &mut RecState, e: &Event) {
        let w = self.config.weights.of(e);
        let h = st.subjects.entry(e.subject.clone()).or_default();
        // Keep the history in time order whatever order the batches come in.
        let pos = h.events.partition_point(|x| x.2 <= e.timestamp);
        h.events.insert(pos, (e.product.clone(), w, e.timestamp));
        while h.events.len() > self.config.max_history {
            h.events.pop_front();
        }
        match e.kind {
            EventKind::Purchase => {
                h.bought.insert(e.product.clone());
                if h.last_purchase.as_ref().is_none_or(|l| l.0 <= e.timestamp) {
                    h.last_purchase = Some((e.timestamp, e.product.clone()));
                }
            }
            EventKind::Return => {
                h.bought.remove(&e.product);
            }
            _ => {}
        }
        // Popularity, decayed exponentially from a moving epoch (rescaled to stay finite).
        let hl = self.config.popularity_half_life_days * 86_400.0;
        let epoch = *st.epoch.get_or_insert(e.timestamp);
        let mut x = (e.timestamp - epoch).num_milliseconds() as f64 / 1000.0 / hl;
        if x > 256.0 {
            let f = (-x).exp2();
            for v in st.popularity.values_mut() {
                *v *= f;
            }
            st.epoch = Some(e.timestamp);
            x = 0.0;
        }
        let c = w.max(0.0) * x.max(-1000.0).exp2();
        if c > 0.0 {
            *st.popularity.entry(e.product.clone()).or_insert(0.0) += c;
        }
    }

    /// The subject's profile items: (weight, product, vector), decayed from the latest event,
    /// plus the request's session items.
    fn profile_items(
        &self,
        st: &RecState,
        store: &StoreState,
        req: &RecommendRequest,
    ) -> Vec<(f64, Arc<Product>, Vec<f32>)> {
        let mut acc: HashMap<ProductId, f64> = HashMap::new();
        let mut order: Vec<ProductId> = Vec::new();
        if let Some(h) = req.subject().and_then(|s| st.subjects.get(s))
            && let Some(latest) = h.events.back().map(|x| x.2)
        {
            let hl = self.config.half_life_days * 86_400.0;
            for (p, w, t) in &h.events {
                let age = (latest - *t).num_milliseconds() as f64 / 1000.0;
                let d = (-age / hl).exp2();
                let e = acc.entry(p.clone()).or_insert_with(|| {
                    order.push(p.clone());
                    0.0
                });
                *e += w * d;
            }
        }
        for p in &req.session_items {
            let e = acc.entry(p.clone()).or_insert_with(|| {
                order.push(p.clone());
                0.0
            });
            *e += self.config.session_weight;
        }
        order
            .into_iter()
            .filter_map(|id| {
                let w = acc
                    .get(&id)
                    .copied()
                    .filter(|w| *w != 0.0 && w.is_finite())?;
                let p = store.products.get(&id)?.product.clone();
                let v = store.index.get(&id)?.to_vec();
                Some((w, p, v))
            })
            .collect()
    }

    fn recommend_sync(&self, req: &RecommendRequest) -> Vec<RecommendedItem> {
        let cfg = &self.config;
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let store = self.store.read();
        let history = req.subject().and_then(|s| st.subjects.get(s));
        let bought: HashSet<ProductId> = history.map(|h| h.bought.clone()).unwrap_or_default();
        let profile = self.profile_items(&st, &store, req);
        let dim = store.index.dimension().unwrap_or(0);
        let mean = |items: &[(f64, &[f32])]| -> Option<Vec<f32>> {
            if dim == 0 || items.is_empty() {
                return None;
            }
            let mut m = vec![0f64; dim];
            for (w, v) in items {
                for (a, b) in m.iter_mut().zip(v.iter()) {
                    *a += w * f64::from(*b);
                }
            }
            let n = m.iter().map(|x| x * x).sum::<f64>().sqrt();
            (n > 1e-9 && n.is_finite()).then(|| m.iter().map(|x| (x / n) as f32).collect())
        };
        let profile_vec = {
            let items: Vec<(f64, &[f32])> =
                profile.iter().map(|(w, _, v)| (*w, v.as_slice())).collect();
            mean(&items)
        };
        let blend = |seed: Vec<f32>| -> Vec<f32> {
            match &profile_vec {
                Some(p) if cfg.profile_blend > 0.0 => {
                    let items = [(1.0, seed.as_slice()), (cfg.profile_blend, p.as_slice())];
                    mean(&items).unwrap_or(seed)
                }
                _ => seed,
            }
        };
        let mut exclude_extra: Vec<ProductId> = Vec::new();
        let anchor = match req.scene {
            Scene::PostPurchase => req
                .anchor
                .clone()
                .or_else(|| history.and_then(|h| h.last_purchase.as_ref().map(|l| l.1.clone()))),
            _ => req.anchor.clone(),
        };
        let anchor_vec = anchor.as_ref().and_then(|a| store.index.get(a));
        let (query, seed): (Option<Vec<f32>>, Option<Seed>) = match (&req.scene, anchor_vec) {
            (Scene::Cart, _) => {
                let ids: Vec<&ProductId> = req.session_items.iter().chain(anchor.iter()).collect();
                let items: Vec<(f64, &[f32])> = ids
                    .iter()
                    .filter_map(|id| store.index.get(id).map(|v| (1.0, v)))
                    .collect();
                exclude_extra.extend(ids.into_iter().cloned());
                match mean(&items) {
                    Some(m) => (Some(blend(m)), Some(Seed::Cart)),
                    None => (profile_vec.clone(), Some(Seed::Profile(profile.clone()))),
                }
            }
            (_, Some(v)) => {
                let a = anchor.clone().unwrap_or_else(|| ProductId::new(""));
                let title = store
                    .products
                    .get(&a)
                    .map(|s| s.product.title.clone())
                    .unwrap_or_default();
                exclude_extra.push(a);
                (Some(blend(v.to_vec())), Some(Seed::Anchor(title)))
            }
            _ => (profile_vec.clone(), Some(Seed::Profile(profile.clone()))),
        };
        let mut rreq = req.clone();
        rreq.exclude.extend(exclude_extra);
        let skip: HashSet<&ProductId> = rreq
            .exclude
            .iter()
            .chain(req.anchor.iter())
            .chain(bought.iter().filter(|_| cfg.rules.drop_bought))
            .collect();
        let usable = |id: &ProductId| -> bool {
            !skip.contains(id)
                && store.products.get(id).is_some_and(|s| {
                    req.filters.matches(&s.product)
                        && (!cfg.rules.drop_out_of_stock || s.product.in_stock())
                        && cfg.rules.margin_ok(&s.product)
                })
        };
        // Similar items score in [1, 2] (cosine mapped up), popular fill in [0, 1): a popular
        // item never outranks a similar one before the score rules apply.
        let mut held: Vec<(f32, Arc<Product>, Reason)> = Vec::new();
        let mut in_held: HashSet<ProductId> = HashSet::new();
        if let (Some(q), Some(seed)) = (&query, &seed) {
            let k = req
                .limit
                .saturating_mul(cfg.overfetch)
                .saturating_add(cfg.rules.pin.len())
                .saturating_add(16);
            let k = if cfg.rules.boost.is_empty() && cfg.rules.bury.is_empty() {
                k
            } else {
                store.products.len()
            };
            let hits = store
                .index
                .search_filtered(q, k, |id| usable(id))
                .unwrap_or_default();
            for h in hits {
                let Some(s) = store.products.get(&h.id) else {
                    continue;
                };
                let reason = match seed {
                    Seed::Anchor(t) => Reason::new(ReasonKind::Similar, format!("similar to {t}")),
                    Seed::Cart => {
                        Reason::new(ReasonKind::Similar, "similar to the items in the cart")
                    }
                    Seed::Profile(items) => {
                        let v = store.index.get(&h.id).unwrap_or(&[]);
                        let best = items.iter().filter(|(w, _, _)| *w > 0.0).max_by(|a, b| {
                            dot(v, &a.2)
                                .total_cmp(&dot(v, &b.2))
                                .then_with(|| b.1.id.cmp(&a.1.id))
                        });
                        match best {
                            Some((_, p, _)) => Reason::new(
                                ReasonKind::Personalized,
                                format!("because of your interest in {}", p.title),
                            ),
                            None => Reason::new(ReasonKind::Personalized, "matches your history"),
                        }
                    }
                };
                in_held.insert(h.id.clone());
                held.push((
                    1.0 + (h.score.clamp(-1.0, 1.0) + 1.0) / 2.0,
                    s.product.clone(),
                    reason,
                ));
            }
        }
        // Fill: popular items, then the rest of the catalog (newest first), so a cold start
        // still answers.
        if held.len() < req.limit.saturating_add(cfg.rules.pin.len()) || query.is_none() {
            let pmax = st.popularity.values().copied().fold(0.0, f64::max);
            let mut rest: Vec<(f64, &Stored)> = store
                .products
                .values()
                .filter(|s| !in_held.contains(&s.product.id) && usable(&s.product.id))
                .map(|s| (st.popularity.get(&s.product.id).copied().unwrap_or(0.0), s))
                .collect();
            rest.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then_with(|| SortBy::Newest.compare_products(&a.1.product, &b.1.product))
                    .then_with(|| a.1.product.id.cmp(&b.1.product.id))
            });
            for (pop, s) in rest {
                let (score, reason) = if pop > 0.0 && pmax > 0.0 {
                    (
                        (0.5 + 0.49 * pop / pmax) as f32,
                        Reason::new(ReasonKind::Popular, "popular now"),
                    )
                } else {
                    (0.25, Reason::new(ReasonKind::Popular, "from the catalog"))
                };
                held.push((score, s.product.clone(), reason));
            }
        }
        let cands: Vec<Candidate<'_>> = held
            .iter()
            .map(|(s, p, r)| Candidate::new(p.id.clone(), *s, r.clone()).with_product(p))
            .collect();
        cfg.rules.apply(&rreq, cands, &bought, |id| {
            store.products.get(id).map(|s| s.product.clone())
        })
    }
}

/// FNV-1a over the parts of a request that decide its answer.
fn trace_id(req: &RecommendRequest) -> String {
    let mut key = format!(
        "{}\u{1}{}\u{1}{}\u{1}",
        req.scene.as_str(),
        req.subject().map_or("", |s| s.as_str()),
        req.anchor.as_ref().map_or("", |s| s.as_str())
    );
    for i in req
        .session_items
        .iter()
        .chain([&ProductId::new("|")])
        .chain(&req.exclude)
    {
        key.push_str(i.as_str());
        key.push('\u{1}');
    }
    key.push_str(&format!("{}\u{1}{:?}", req.limit, req.filters));
    format!("emb-{:016x}", fnv(&key))
}

impl EmbeddingRecommender {
    /// Drops everything recorded about `subject` (its event history, purchases and last
    /// purchase); returns how many records went. Popularity is an anonymous aggregate and stays.
    pub fn forget_subject(&self, subject: &SubjectId) -> u64 {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.subjects.remove(subject).map_or(0, |h| {
            (h.events.len() + h.bought.len() + usize::from(h.last_purchase.is_some())) as u64
        })
    }
}

#[async_trait]
impl crate::erasure::SubjectEraser for EmbeddingRecommender {
    async fn forget(&self, subject: &SubjectId) -> Result<u64> {
        Ok(self.forget_subject(subject))
    }
}

#[async_trait]
impl Recommender for EmbeddingRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        for (n, e) in events.iter().enumerate() {
            if e.subject.as_str().trim().is_empty() {
                return Err(Error::invalid_request(format!(
                    "events[{n}]: subject is empty"
                )));
            }
            if e.product.as_str().trim().is_empty() {
                return Err(Error::invalid_request(format!(
                    "events[{n}]: product is empty"
                )));
            }
        }
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].timestamp);
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        for i in order {
            self.ingest(&mut st, &events[i]);
        }
        Ok(())
    }

    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let started = Instant::now();
        req.validate()?;
        req.ctx.check_deadline()?;
        let items = self.recommend_sync(&req);
        let meta = ResponseMeta::new(self.name.clone())
            .with_model(self.store.embedder.model().to_owned())
            .with_latency(started.elapsed());
        let trace = req.ctx.trace_id.clone().unwrap_or_else(|| trace_id(&req));
        Ok(RecommendResponse::new(items, meta).with_trace_id(trace))
    }
}

// ---------------------------------------------------------------------------------------------
// Config and assembly
// ---------------------------------------------------------------------------------------------

/// Everything an embedding adapter configures (`[providers.NAME.semantic]`); every table and
/// field has a default. See the [module docs](self) for a TOML example.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemanticConfig {
    /// What of a product is embedded.
    pub text: ProductTextConfig,
    /// Search tuning.
    pub search: SemanticSearchConfig,
    /// Recommendation tuning.
    pub recommend: EmbeddingRecommendConfig,
}

/// A searcher and a recommender sharing one [`EmbeddingStore`].
#[derive(Debug, Clone)]
pub struct SemanticStack {
    /// The shared products and vectors.
    pub store: Arc<EmbeddingStore>,
    /// The searcher.
    pub searcher: Arc<SemanticSearcher>,
    /// The recommender.
    pub recommender: Arc<EmbeddingRecommender>,
}

impl SemanticConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets what of a product is embedded.
    #[must_use]
    pub fn with_text(mut self, text: ProductTextConfig) -> Self {
        self.text = text;
        self
    }
    /// Sets the search tuning.
    #[must_use]
    pub fn with_search(mut self, search: SemanticSearchConfig) -> Self {
        self.search = search;
        self
    }
    /// Sets the recommendation tuning.
    #[must_use]
    pub fn with_recommend(mut self, recommend: EmbeddingRecommendConfig) -> Self {
        self.recommend = recommend;
        self
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.text.validate()?;
        self.search.validate()?;
        self.recommend.validate()
    }

    /// Builds a searcher and a recommender named `name` over one store embedding with
    /// `embedder`; search reranks with `reranker` when given.
    pub fn build(
        &self,
        name: &str,
        embedder: Arc<dyn Embedder>,
        reranker: Option<Arc<dyn Reranker>>,
    ) -> Result<SemanticStack> {
        self.validate()?;
        let store = Arc::new(EmbeddingStore::new(embedder).with_text_config(self.text.clone())?);
        let mut searcher =
            SemanticSearcher::new(name, store.clone()).with_config(self.search.clone())?;
        if let Some(r) = reranker {
            searcher = searcher.with_reranker(r);
        }
        let recommender =
            EmbeddingRecommender::new(name, store.clone()).with_config(self.recommend.clone())?;
        Ok(SemanticStack {
            store,
            searcher: Arc::new(searcher),
            recommender: Arc::new(recommender),
        })
    }
}
