//! Shadow and canary traffic: try a candidate provider on a share of real calls.
//!
//! - **shadow**: the route answers as usual; for a share of calls the same request is also
//!   sent to the candidate in a background task, off the caller's latency path, and its answer
//!   is compared with the served one and thrown away. The caller's answer never changes.
//! - **canary**: for a share of calls the candidate answers instead of the route; when it
//!   fails (any error), the route answers and [`ResponseMeta::fallbacks`] names the candidate.
//!   With `compare = true` the route is also asked in the background and the answers compared.
//!
//! Agreement is measured per capability: the overlap of the top `top_k` product ids for search
//! and recommend (`top_k_overlap`), character-bigram similarity of the replies for chat
//! (`text_similarity`, works for English and Chinese alike), and for forecasts one minus the
//! mean absolute difference of the point forecasts relative to the served forecast's level
//! (`forecast_agreement`, with that relative difference recorded too). Each comparison goes to
//! the metrics ([`SHADOW_AGREEMENT`](crate::metrics::SHADOW_AGREEMENT),
//! [`SHADOW_CALLS`](crate::metrics::SHADOW_CALLS)) and to the audit log as a record with role
//! `shadow` or `canary` and its [`Agreement`].
//!
//! Mirrored calls are bounded: at most `max_in_flight` run at once (beyond it a call is not
//! mirrored, and that is counted), each within `timeout_ms`. A subject who denied consent is
//! never mirrored or routed to a candidate whose data leaves the process, nor is sensitive
//! data. The layer sits under the cache and the redaction layer, so the candidate receives the
//! same redacted request the route does.
//!
//! ```toml
//! [profiles.prod.shadow.chat]
//! candidate = "qwen-next"    # a provider defined in [providers]
//! mode = "shadow"            # or "canary"
//! share = 0.1                # share of calls
//! seed = 7
//! max_in_flight = 16
//! timeout_ms = 30000
//!
//! [profiles.prod.shadow.search]
//! candidate = "vector"
//! mode = "canary"
//! share = 0.05
//! compare = true
//! top_k = 10
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, oneshot};

use super::observe::Observer;
use super::rng::SeededRng;
use crate::api::{Capability, ChatModel, Forecaster, ProviderInfo, Recommender, Searcher};
use crate::audit::{Agreement, AuditRecord, CallRole};
use crate::error::{Error, Result};
use crate::metrics;
use crate::types::*;

/// Shadow or canary.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowMode {
    /// Mirror calls to the candidate; the route answers.
    #[default]
    Shadow,
    /// Route calls to the candidate; the route answers when it fails.
    Canary,
}

impl ShadowMode {
    fn as_str(self) -> &'static str {
        match self {
            ShadowMode::Shadow => "shadow",
            ShadowMode::Canary => "canary",
        }
    }
}

/// `[profiles.NAME.shadow.CAPABILITY]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Turn it off without removing the settings.
    pub enabled: bool,
    /// The candidate provider's name.
    pub candidate: String,
    /// Shadow or canary.
    pub mode: ShadowMode,
    /// Share of calls, in [0, 1].
    pub share: f64,
    /// Seed of the sampling generator.
    pub seed: u64,
    /// Most mirrored calls running at once.
    pub max_in_flight: usize,
    /// Deadline of a mirrored call, in milliseconds.
    pub timeout_ms: u64,
    /// Ids compared for search and recommend.
    pub top_k: usize,
    /// Canary: also ask the route in the background and compare.
    pub compare: bool,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            enabled: true,
            candidate: String::new(),
            mode: ShadowMode::Shadow,
            share: 0.1,
            seed: 7,
            max_in_flight: 16,
            timeout_ms: 30_000,
            top_k: 10,
            compare: false,
        }
    }
}

impl ShadowConfig {
    /// Mirrors (or routes) `share` of the calls to `candidate`.
    pub fn new(candidate: impl Into<String>, mode: ShadowMode, share: f64) -> Self {
        ShadowConfig {
            candidate: candidate.into(),
            mode,
            share,
            ..Default::default()
        }
    }

    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.candidate.is_empty() {
            return Err(Error::config(format!(
                "{path}.candidate: missing (the provider to try)"
            )));
        }
        if !(self.share.is_finite() && (0.0..=1.0).contains(&self.share)) {
            return Err(Error::config(format!(
                "{path}.share: must be between 0 and 1 (got {})",
                self.share
            )));
        }
        if self.max_in_flight == 0 {
            return Err(Error::config(format!(
                "{path}.max_in_flight: must be at least 1"
            )));
        }
        if self.timeout_ms == 0 {
            return Err(Error::config(format!(
                "{path}.timeout_ms: must be at least 1"
            )));
        }
        if self.top_k == 0 {
            return Err(Error::config(format!("{path}.top_k: must be at least 1")));
        }
        Ok(())
    }
}

/// `[profiles.NAME.shadow]`: per capability.
pub type ShadowsConfig = BTreeMap<Capability, ShadowConfig>;

/// Parses a `shadow` table; errors name the key path under `path`.
pub fn parse_shadows(v: toml::Value, path: &str) -> Result<ShadowsConfig> {
    let raw: BTreeMap<String, ShadowConfig> = v
        .try_into()
        .map_err(|e: toml::de::Error| Error::config(format!("{path}: {}", e.message().trim())))?;
    let mut out = BTreeMap::new();
    for (k, c) in raw {
        let Some(cap) = Capability::parse(&k) else {
            return Err(Error::config(format!(
                "{path}.{k}: unknown capability (expected one of: search, recommend, chat, forecast)"
            )));
        };
        c.validate(&format!("{path}.{k}"))?;
        out.insert(cap, c);
    }
    Ok(out)
}

/// Counts of one capability's shadow or canary traffic.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShadowStats {
    /// Calls sampled for the candidate.
    pub sampled: u64,
    /// Background calls started.
    pub mirrored: u64,
    /// Background calls not started because `max_in_flight` were running.
    pub skipped_busy: u64,
    /// Calls not sampled because consent or the data class forbid the candidate.
    pub skipped_policy: u64,
    /// Comparisons recorded.
    pub compared: u64,
    /// Candidate calls that failed.
    pub candidate_errors: u64,
    /// Canary calls the candidate served.
    pub canary_served: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sampled: AtomicU64,
    mirrored: AtomicU64,
    skipped_busy: AtomicU64,
    skipped_policy: AtomicU64,
    compared: AtomicU64,
    candidate_errors: AtomicU64,
    canary_served: AtomicU64,
}

/// The shadow or canary state of one capability.
pub struct Shadow {
    cap: Capability,
    cfg: ShadowConfig,
    info: ProviderInfo,
    rng: SeededRng,
    sem: Arc<Semaphore>,
    obs: Option<Arc<Observer>>,
    counters: Counters,
}

impl fmt::Debug for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow")
            .field("capability", &self.cap)
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shadow {
    /// Shadow or canary traffic for `cap` to the candidate described by `info`, reporting to
    /// `obs`.
    pub fn new(
        cap: Capability,
        cfg: ShadowConfig,
        info: ProviderInfo,
        obs: Option<Arc<Observer>>,
    ) -> Self {
        Shadow {
            cap,
            rng: SeededRng::new(cfg.seed),
            sem: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            cfg,
            info,
            obs,
            counters: Counters::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ShadowConfig {
        &self.cfg
    }

    /// The counts so far.
    pub fn stats(&self) -> ShadowStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ShadowStats {
            sampled: l(&c.sampled),
            mirrored: l(&c.mirrored),
            skipped_busy: l(&c.skipped_busy),
            skipped_policy: l(&c.skipped_policy),
            compared: l(&c.compared),
            candidate_errors: l(&c.candidate_errors),
            canary_served: l(&c.canary_served),
        }
    }

    /// Whether this call goes to the candidate.
    fn sample(&self, ctx: &RequestContext) -> bool {
        if !self.cfg.enabled || self.cfg.share <= 0.0 {
            return false;
        }
        if !(self.cfg.share >= 1.0 || self.rng.next_f64() < self.cfg.share) {
            return false;
        }
        if self.info.data_leaves_process
            && (ctx.consent == Consent::Denied || ctx.data_class == DataClass::Sensitive)
        {
            self.counters.skipped_policy.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.counters.sampled.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.sem.clone().try_acquire_owned() {
            Ok(p) => {
                self.counters.mirrored.fetch_add(1, Ordering::Relaxed);
                Some(p)
            }
            Err(_) => {
                self.counters.skipped_busy.fetch_add(1, Ordering::Relaxed);
                if let Some(o) = &self.obs {
                    o.count(
                        metrics::SHADOW_CALLS,
                        &[
                            ("mode", self.cfg.mode.as_str()),
                            ("merchant_ai.provider", &self.cfg.candidate),
                            ("outcome", "skipped_busy"),
                        ],
                        1,
                    );
                }
                None
            }
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }

    /// Records one candidate outcome (and the agreement, when both answered).
    fn record(
        &self,
        op: &'static str,
        ctx: &RequestContext,
        candidate_meta: Option<ResponseMeta>,
        candidate_err: Option<&Error>,
        latency: Duration,
        agreement: Option<Agreement>,
    ) {
        if candidate_err.is_some() {
            self.counters
                .candidate_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        if agreement.is_some() {
            self.counters.compared.fetch_add(1, Ordering::Relaxed);
        }
        let Some(obs) = &self.obs else {
            return;
        };
        let mode = self.cfg.mode.as_str();
        let cand = self.cfg.candidate.as_str();
        let outcome = if candidate_err.is_some() {
            "error"
        } else {
            "ok"
        };
        obs.count(
            metrics::SHADOW_CALLS,
            &[
                ("mode", mode),
                ("merchant_ai.provider", cand),
                ("outcome", outcome),
            ],
            1,
        );
        if let Some(a) = &agreement {
            obs.observe(
                metrics::SHADOW_AGREEMENT,
                &[
                    ("mode", mode),
                    ("merchant_ai.provider", cand),
                    ("measure", a.measure.as_str()),
                    ("merchant_ai.capability", self.cap.as_str()),
                ],
                a.value,
            );
        }
        let role = match self.cfg.mode {
            ShadowMode::Shadow => CallRole::Shadow,
            ShadowMode::Canary => CallRole::Canary,
        };
        let mut r = AuditRecord::new(self.cap, op)
            .with_role(role)
            .with_context(ctx)
            .with_provider(cand);
        r.provider_kind = Some(self.info.kind.clone());
        r.latency_ms = latency.as_secs_f64() * 1000.0;
        if let Some(mut m) = candidate_meta {
            m.provider = cand.to_owned();
            obs.price(&mut m);
            r.model = m.model;
            r.usage = m.usage;
            r.redactions = m.governance.redactions;
            r.policy = m.governance.policy;
        }
        if let Some(e) = candidate_err {
            r = r.with_error(e.kind());
        }
        r.agreement = agreement;
        obs.record(r);
    }
}

// ---------------------------------------------------------------------------------------------
// Agreement measures

/// Overlap of the top `k` ids of two rankings: shared ids / the longer top list (1 when both
/// are empty).
pub fn top_k_overlap(a: &[ProductId], b: &[ProductId], k: usize) -> f64 {
    let a: Vec<&ProductId> = a.iter().take(k).collect();
    let b: HashSet<&ProductId> = b.iter().take(k).collect();
    let n = a.len().max(b.len());
    if n == 0 {
        return 1.0;
    }
    let shared = a
        .iter()
        .collect::<HashSet<_>>()
        .iter()
        .filter(|x| b.contains(**x))
        .count();
    shared as f64 / n as f64
}

/// Similarity of two texts in [0, 1]: the Dice coefficient of their character bigrams, ignoring
/// case, spaces and punctuation (works without word boundaries, so for Chinese too).
pub fn text_similarity(a: &str, b: &str) -> f64 {
    fn grams(s: &str) -> HashMap<(char, char), u32> {
        let cs: Vec<char> = s
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let mut m = HashMap::new();
        if cs.len() == 1 {
            *m.entry((cs[0], ' ')).or_insert(0) += 1;
        }
        for w in cs.windows(2) {
            *m.entry((w[0], w[1])).or_insert(0) += 1;
        }
        m
    }
    let (ga, gb) = (grams(a), grams(b));
    let (na, nb): (u32, u32) = (ga.values().sum(), gb.values().sum());
    if na + nb == 0 {
        return 1.0;
    }
    let shared: u32 = ga
        .iter()
        .map(|(g, n)| (*n).min(gb.get(g).copied().unwrap_or(0)))
        .sum();
    2.0 * shared as f64 / (na + nb) as f64
}

/// Agreement of two forecasts: per series (matched by id), the mean absolute difference of the
/// point forecasts relative to the mean absolute level of `served`; returns (agreement = 1 -
/// that difference, clamped to [0, 1], the difference), averaged over the series both answered.
pub fn forecast_agreement(
    served: &ForecastResponse,
    other: &ForecastResponse,
) -> Option<(f64, f64)> {
    let mut diffs = Vec::new();
    for s in &served.series {
        if s.error.is_some() || s.point.is_empty() {
            continue;
        }
        let Some(o) = other
            .series
            .iter()
            .find(|o| o.id == s.id && o.error.is_none())
        else {
            continue;
        };
        let n = s.point.len().min(o.point.len());
        if n == 0 {
            continue;
        }
        let mad: f64 = (0..n).map(|i| (s.point[i] - o.point[i]).abs()).sum::<f64>() / n as f64;
        let level: f64 = s.point[..n].iter().map(|v| v.abs()).sum::<f64>() / n as f64;
        let rd = if level > 0.0 {
            mad / level
        } else if mad == 0.0 {
            0.0
        } else {
            1.0
        };
        if rd.is_finite() {
            diffs.push(rd);
        }
    }
    if diffs.is_empty() {
        return None;
    }
    let rd = diffs.iter().sum::<f64>() / diffs.len() as f64;
    Some(((1.0 - rd).clamp(0.0, 1.0), rd))
}

fn agreement(baseline: &str, measure: &str, value: f64, rd: Option<f64>) -> Agreement {
    Agreement {
        baseline: baseline.to_owned(),
        measure: measure.to_owned(),
        value,
        relative_difference: rd,
    }
}

// ---------------------------------------------------------------------------------------------
// The layer

/// A route (`primary`) with a candidate beside it.
#[derive(Debug)]
pub struct ShadowLayer<T: ?Sized> {
    primary: Arc<T>,
    candidate: Arc<T>,
    shadow: Arc<Shadow>,
}

impl<T: ?Sized> ShadowLayer<T> {
    /// `candidate` (its provider's layered handle) beside the route `primary`.
    pub fn new(primary: Arc<T>, candidate: Arc<T>, shadow: Arc<Shadow>) -> Self {
        ShadowLayer {
            primary,
            candidate,
            shadow,
        }
    }
}

/// What of an answer is compared.
trait Comparable: Clone + Send + Sync + 'static {
    fn meta(&self) -> &ResponseMeta;
    fn meta_mut(&mut self) -> &mut ResponseMeta;
    fn compare(&self, other: &Self, top_k: usize) -> Option<(&'static str, f64, Option<f64>)>;
}

fn ids_search(r: &SearchResponse) -> Vec<ProductId> {
    r.hits.iter().map(|h| h.product_id.clone()).collect()
}
fn ids_rec(r: &RecommendResponse) -> Vec<ProductId> {
    r.items.iter().map(|h| h.product_id.clone()).collect()
}

impl Comparable for SearchResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
    fn compare(&self, o: &Self, k: usize) -> Option<(&'static str, f64, Option<f64>)> {
        Some((
            "top_k_overlap",
            top_k_overlap(&ids_search(self), &ids_search(o), k),
            None,
        ))
    }
}
impl Comparable for RecommendResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
    fn compare(&self, o: &Self, k: usize) -> Option<(&'static str, f64, Option<f64>)> {
        Some((
            "top_k_overlap",
            top_k_overlap(&ids_rec(self), &ids_rec(o), k),
            None,
        ))
    }
}
impl Comparable for ChatResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
    fn compare(&self, o: &Self, _: usize) -> Option<(&'static str, f64, Option<f64>)> {
        Some((
            "text_similarity",
            text_similarity(&self.text, &o.text),
            None,
        ))
    }
}
impl Comparable for ForecastResponse {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
    fn compare(&self, o: &Self, _: usize) -> Option<(&'static str, f64, Option<f64>)> {
        forecast_agreement(self, o).map(|(a, rd)| ("forecast_agreement", a, Some(rd)))
    }
}

type Call<R> = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, Result<R>> + Send>;

impl Shadow {
    /// Runs a request/response call under this shadow's mode. `served`/`other` make the call
    /// on the route and on the candidate.
    async fn run<R: Comparable>(
        self: &Arc<Self>,
        op: &'static str,
        ctx: &RequestContext,
        route: Call<R>,
        candidate: Call<R>,
    ) -> Result<R> {
        if !self.sample(ctx) {
            return route().await;
        }
        match self.cfg.mode {
            ShadowMode::Shadow => {
                let permit = self.permit();
                let started = Instant::now();
                let bg = permit.map(|p| {
                    let sh = self.clone();
                    let ctx = ctx.clone();
                    let fut = candidate();
                    let (tx, rx) = oneshot::channel::<R>();
                    let timeout = self.timeout();
                    // The candidate runs beside the route; the comparison waits for both.
                    tokio::spawn(async move {
                        let _p = p;
                        let c = tokio::time::timeout(timeout, fut)
                            .await
                            .unwrap_or_else(|_| Err(timeout_error()));
                        let lat = started.elapsed();
                        let served = rx.await.ok();
                        sh.finish(op, &ctx, served.as_ref(), c, lat);
                    });
                    tx
                });
                let r = route().await;
                if let (Some(tx), Ok(resp)) = (bg, &r) {
                    let _ = tx.send(clone_for_compare(resp));
                }
                r
            }
            ShadowMode::Canary => {
                let started = Instant::now();
                let c = tokio::time::timeout(self.timeout(), candidate())
                    .await
                    .unwrap_or_else(|_| Err(timeout_error()));
                let lat = started.elapsed();
                match c {
                    Ok(mut resp) => {
                        self.counters.canary_served.fetch_add(1, Ordering::Relaxed);
                        resp.meta_mut().provider = self.cfg.candidate.clone();
                        if self.cfg.compare
                            && let Some(p) = self.permit()
                        {
                            let sh = self.clone();
                            let ctx = ctx.clone();
                            let fut = route();
                            let mine = clone_for_compare(&resp);
                            let timeout = self.timeout();
                            tokio::spawn(async move {
                                let _p = p;
                                if let Ok(Ok(base)) = tokio::time::timeout(timeout, fut).await {
                                    let a = base.compare(&mine, sh.cfg.top_k).map(|(m, v, rd)| {
                                        agreement(&base.meta().provider, m, v, rd)
                                    });
                                    sh.record(op, &ctx, Some(mine.meta().clone()), None, lat, a);
                                }
                            });
                        } else {
                            self.record(op, ctx, Some(resp.meta().clone()), None, lat, None);
                        }
                        Ok(resp)
                    }
                    Err(e) => {
                        self.record(op, ctx, None, Some(&e), lat, None);
                        let mut r = route().await?;
                        r.meta_mut().fallbacks.insert(
                            0,
                            FallbackNote::new(self.cfg.candidate.as_str(), e.kind().as_str()),
                        );
                        Ok(r)
                    }
                }
            }
        }
    }

    fn finish<R: Comparable>(
        &self,
        op: &'static str,
        ctx: &RequestContext,
        served: Option<&R>,
        candidate: Result<R>,
        lat: Duration,
    ) {
        match candidate {
            Ok(c) => {
                let a = served.and_then(|s| {
                    s.compare(&c, self.cfg.top_k)
                        .map(|(m, v, rd)| agreement(&s.meta().provider, m, v, rd))
                });
                self.record(op, ctx, Some(c.meta().clone()), None, lat, a);
            }
            Err(e) => self.record(op, ctx, None, Some(&e), lat, None),
        }
    }
}

fn clone_for_compare<R: Comparable>(r: &R) -> R {
    r.clone()
}

fn timeout_error() -> Error {
    Error::new(
        crate::ErrorKind::Timeout,
        "the shadow call did not finish within timeout_ms",
    )
}

#[async_trait]
impl Searcher for ShadowLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        // The candidate needs the catalog too; its failure never fails the write.
        if let Err(e) = self.candidate.upsert(products.clone()).await {
            tracing::warn!(candidate = %self.shadow.cfg.candidate, kind = %e.kind(), "candidate upsert failed");
        }
        self.primary.upsert(products).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        if let Err(e) = self.candidate.remove(ids.clone()).await {
            tracing::warn!(candidate = %self.shadow.cfg.candidate, kind = %e.kind(), "candidate remove failed");
        }
        self.primary.remove(ids).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let ctx = req.ctx.clone();
        let (p, c, r2) = (self.primary.clone(), self.candidate.clone(), req.clone());
        self.shadow
            .run(
                "search",
                &ctx,
                Box::new(move || Box::pin(async move { p.search(req).await })),
                Box::new(move || Box::pin(async move { c.search(r2).await })),
            )
            .await
    }
}

#[async_trait]
impl Recommender for ShadowLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        if let Err(e) = self.candidate.record(events.clone()).await {
            tracing::warn!(candidate = %self.shadow.cfg.candidate, kind = %e.kind(), "candidate record failed");
        }
        self.primary.record(events).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let ctx = req.ctx.clone();
        let (p, c, r2) = (self.primary.clone(), self.candidate.clone(), req.clone());
        self.shadow
            .run(
                "recommend",
                &ctx,
                Box::new(move || Box::pin(async move { p.recommend(req).await })),
                Box::new(move || Box::pin(async move { c.recommend(r2).await })),
            )
            .await
    }
}

#[async_trait]
impl Forecaster for ShadowLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let ctx = req.ctx.clone();
        let (p, c, r2) = (self.primary.clone(), self.candidate.clone(), req.clone());
        self.shadow
            .run(
                "forecast",
                &ctx,
                Box::new(move || Box::pin(async move { p.forecast(req).await })),
                Box::new(move || Box::pin(async move { c.forecast(r2).await })),
            )
            .await
    }
}

#[async_trait]
impl ChatModel for ShadowLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let ctx = req.ctx.clone();
        let (p, c, r2) = (self.primary.clone(), self.candidate.clone(), req.clone());
        self.shadow
            .run(
                "chat",
                &ctx,
                Box::new(move || Box::pin(async move { p.chat(req).await })),
                Box::new(move || Box::pin(async move { c.chat(r2).await })),
            )
            .await
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let sh = self.shadow.clone();
        if !sh.sample(&req.ctx) {
            return self.primary.chat_stream(req).await;
        }
        match sh.cfg.mode {
            ShadowMode::Shadow => {
                let stream = self.primary.chat_stream(req.clone()).await?;
                let Some(permit) = sh.permit() else {
                    return Ok(stream);
                };
                let (tx, rx) = oneshot::channel::<ChatResponse>();
                let started = Instant::now();
                let c = self.candidate.clone();
                let ctx = req.ctx.clone();
                let sh2 = sh.clone();
                let timeout = sh.timeout();
                tokio::spawn(async move {
                    let _p = permit;
                    let cand = tokio::time::timeout(timeout, c.chat(req))
                        .await
                        .unwrap_or_else(|_| Err(timeout_error()));
                    let lat = started.elapsed();
                    let served = rx.await.ok();
                    sh2.finish("chat_stream", &ctx, served.as_ref(), cand, lat);
                });
                Ok(Box::pin(tee(stream, tx)))
            }
            ShadowMode::Canary => {
                let started = Instant::now();
                let attempt = async {
                    super::first_event(self.candidate.chat_stream(req.clone()).await?).await
                };
                let first = tokio::time::timeout(sh.timeout(), attempt)
                    .await
                    .unwrap_or_else(|_| Err(timeout_error()));
                match first {
                    Ok((ev, rest)) => {
                        sh.counters.canary_served.fetch_add(1, Ordering::Relaxed);
                        let cand = sh.cfg.candidate.clone();
                        let ctx = req.ctx.clone();
                        let sh2 = sh.clone();
                        let s = super::prepend(ev, rest).map(move |ev| match ev {
                            Ok(ChatEvent::Finished {
                                finish_reason,
                                mut meta,
                            }) => {
                                meta.provider = cand.clone();
                                sh2.record(
                                    "chat_stream",
                                    &ctx,
                                    Some(meta.clone()),
                                    None,
                                    started.elapsed(),
                                    None,
                                );
                                Ok(ChatEvent::Finished {
                                    finish_reason,
                                    meta,
                                })
                            }
                            other => other,
                        });
                        Ok(Box::pin(s))
                    }
                    Err(e) => {
                        sh.record(
                            "chat_stream",
                            &req.ctx,
                            None,
                            Some(&e),
                            started.elapsed(),
                            None,
                        );
                        let note = FallbackNote::new(sh.cfg.candidate.as_str(), e.kind().as_str());
                        let s = self.primary.chat_stream(req).await?;
                        Ok(Box::pin(s.map(move |ev| match ev {
                            Ok(ChatEvent::Finished {
                                finish_reason,
                                mut meta,
                            }) => {
                                meta.fallbacks.insert(0, note.clone());
                                Ok(ChatEvent::Finished {
                                    finish_reason,
                                    meta,
                                })
                            }
                            other => other,
                        })))
                    }
                }
            }
        }
    }
}

/// Passes a stream through and, when it finishes, sends the assembled response to `tx`.
fn tee(
    stream: ChatStream,
    tx: oneshot::Sender<ChatResponse>,
) -> impl futures::Stream<Item = Result<ChatEvent>> + Send + 'static {
    let mut collector = StreamCollector::new();
    let mut tx = Some(tx);
    stream.map(move |ev| {
        if let Ok(e) = &ev
            && let Some(resp) = collector.push(e.clone())
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(resp);
        }
        ev
    })
}

/// Puts a candidate beside a route (`dyn Searcher`, `dyn Recommender`, `dyn ChatModel`,
/// `dyn Forecaster`).
pub trait Shadowable: 'static {
    /// Wraps the route `primary` with `candidate` beside it.
    fn shadowed(primary: Arc<Self>, candidate: Arc<Self>, shadow: Arc<Shadow>) -> Arc<Self>;
}

macro_rules! shadowable {
    ($($t:ident),*) => {$(
        impl Shadowable for dyn $t {
            fn shadowed(primary: Arc<Self>, candidate: Arc<Self>, shadow: Arc<Shadow>) -> Arc<Self> {
                Arc::new(ShadowLayer::new(primary, candidate, shadow))
            }
        }
    )*};
}
shadowable!(Searcher, Recommender, ChatModel, Forecaster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures() {
        let ids = |v: &[&str]| v.iter().map(|s| ProductId::from(*s)).collect::<Vec<_>>();
        assert_eq!(
            top_k_overlap(&ids(&["a", "b", "c"]), &ids(&["c", "b", "a"]), 3),
            1.0
        );
        assert_eq!(top_k_overlap(&ids(&["a", "b"]), &ids(&["a", "x"]), 2), 0.5);
        assert_eq!(
            top_k_overlap(&ids(&["a", "b", "z"]), &ids(&["a", "b", "y"]), 2),
            1.0
        );
        assert_eq!(top_k_overlap(&[], &[], 5), 1.0);
        assert_eq!(text_similarity("Hello there!", "hello there"), 1.0);
        assert!(text_similarity("跑步鞋很轻", "跑步鞋很重") > 0.5);
        assert!(text_similarity("abc", "xyz") == 0.0);
        let f = |v: Vec<f64>| {
            ForecastResponse::new(
                vec![SeriesForecast::new("s", v, "m")],
                ResponseMeta::new("p"),
            )
        };
        let (a, rd) = forecast_agreement(&f(vec![10.0, 10.0]), &f(vec![12.0, 8.0])).unwrap();
        assert!((rd - 0.2).abs() < 1e-12 && (a - 0.8).abs() < 1e-12);
    }

    #[test]
    fn config_errors_name_keys() {
        let v: toml::Value = toml::from_str("[chat]\ncandidate = \"x\"\nshare = 2.0").unwrap();
        let e = parse_shadows(v, "profiles.p.shadow").unwrap_err();
        assert!(e.message().contains("profiles.p.shadow.chat.share"), "{e}");
        let v: toml::Value = toml::from_str("[chatt]\ncandidate = \"x\"").unwrap();
        assert!(
            parse_shadows(v, "s")
                .unwrap_err()
                .message()
                .contains("s.chatt")
        );
        let v: toml::Value = toml::from_str("[chat]\nshare = 0.5").unwrap();
        assert!(
            parse_shadows(v, "s")
                .unwrap_err()
                .message()
                .contains("s.chat.candidate")
        );
    }
}
