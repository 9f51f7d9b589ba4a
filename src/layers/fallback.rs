//! The fallback chain: a route of providers tried in order.
//!
//! - A read (`search`, `recommend`, `chat`, `forecast`) goes to the first provider; on an error
//!   that is transient (rate limit, timeout, unavailable; also after a retry layer gave up) or
//!   [`ErrorKind::Unsupported`], the next provider serves. Any other error (bad request, auth,
//!   quota, content rejected) is returned at once: another provider would not fix it, or must
//!   not see it.
//! - The request's deadline bounds the whole chain; once it passed, no further provider is
//!   tried.
//! - A chat stream falls back only until its first event: after that, an error reaches the
//!   caller, so no text is ever duplicated.
//! - A write (`upsert`, `remove`, `record`) goes to every provider of the route, so any of them
//!   can serve the reads that follow; it fails only when every provider failed.
//! - The response's [`ResponseMeta`] names the provider that served, its route position, the
//!   providers skipped and why, and the latency of the whole chain.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;

use super::first_event;
use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// Whether the next provider of a route should be tried after `e`.
pub fn should_fall_back(e: &Error) -> bool {
    let transient = e.kind().default_retryable() || e.is_retryable();
    let deadline_passed = e.kind() == ErrorKind::Timeout && !e.is_retryable() && !e.is_exhausted();
    (transient && !deadline_passed)
        || e.kind() == ErrorKind::Unsupported
        || super::policy::skip_of(e).is_some()
}

fn fill_meta(
    meta: &mut ResponseMeta,
    name: &str,
    pos: usize,
    notes: Vec<FallbackNote>,
    policy: Vec<PolicyNote>,
    start: Instant,
) {
    meta.provider = name.to_owned();
    meta.route_position = pos;
    meta.fallbacks = notes;
    meta.latency = start.elapsed();
    meta.governance.policy.splice(0..0, policy);
}

/// Records a policy skip (the provider's gate refused it) as a [`PolicyNote`].
fn note_policy(policy: &mut Vec<PolicyNote>, name: &str, e: &Error) {
    if let Some(s) = super::policy::skip_of(e) {
        policy.push(PolicyNote::new(name, s.rule.as_str(), s.action.as_str()));
    }
}

/// The error that ends a route: when every provider refused by policy, one
/// [`ErrorKind::PolicyDenied`] naming each provider's rule.
fn final_error(e: Error, policy: &[PolicyNote], op: &str) -> Error {
    if super::policy::skip_of(&e).is_none() || policy.is_empty() {
        return e;
    }
    let rules: Vec<String> = policy
        .iter()
        .map(|n| format!("{} (rule {})", n.provider, n.rule))
        .collect();
    Error::new(
        ErrorKind::PolicyDenied,
        format!(
            "no provider of the {op} route may receive this request: {}",
            rules.join(", ")
        ),
    )
    .with_operation(op)
    .with_retryable(false)
}

async fn run_chain<H: ?Sized, T, F>(
    route: &[(String, Arc<H>)],
    ctx: &RequestContext,
    op: &'static str,
    mut call: F,
) -> Result<T>
where
    F: FnMut(Arc<H>) -> BoxFuture<'static, Result<T>>,
    T: HasMeta,
{
    let start = Instant::now();
    let mut notes = Vec::new();
    let mut policy = Vec::new();
    let mut last: Option<Error> = None;
    for (pos, (name, h)) in route.iter().enumerate() {
        if let Err(e) = ctx.check_deadline() {
            return Err(last.map_or(e.clone(), |l| e.context(format!("after {l}"))));
        }
        let attempt = call(h.clone());
        let outcome = match ctx.remaining() {
            Some(left) => tokio::time::timeout(left, attempt)
                .await
                .unwrap_or_else(|_| Err(deadline_error())),
            None => attempt.await,
        };
        match outcome {
            Ok(mut r) => {
                fill_meta(r.meta_mut(), name, pos, notes, policy, start);
                return Ok(r);
            }
            Err(e) => {
                let e = e.with_provider(name.as_str()).with_operation(op);
                note_policy(&mut policy, name, &e);
                if should_fall_back(&e) && pos + 1 < route.len() {
                    tracing::warn!(provider = %name, operation = op, kind = %e.kind(), "falling back to the next provider");
                    notes.push(FallbackNote::new(name.as_str(), skip_reason(&e)));
                    last = Some(e);
                } else {
                    return Err(final_error(e, &policy, op));
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::config(format!("the route for {op} is empty"))))
}

/// Why a provider was skipped: `circuit_open` when its breaker refused, else the error kind.
fn skip_reason(e: &Error) -> &str {
    if super::policy::skip_of(e).is_some() {
        return "policy";
    }
    match e.vendor_code() {
        Some("circuit_open") => "circuit_open",
        _ => e.kind().as_str(),
    }
}

fn deadline_error() -> Error {
    Error::new(ErrorKind::Timeout, "the request's deadline passed").with_retryable(false)
}

/// Responses that carry [`ResponseMeta`].
pub trait HasMeta {
    /// The metadata.
    fn meta_mut(&mut self) -> &mut ResponseMeta;
}
impl HasMeta for SearchResponse {
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}
impl HasMeta for RecommendResponse {
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}
impl HasMeta for ChatResponse {
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}
impl HasMeta for ForecastResponse {
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}

async fn broadcast<H: ?Sized, T, F>(
    route: &[(String, Arc<H>)],
    op: &'static str,
    mut call: F,
) -> Result<Vec<(String, Result<T>)>>
where
    F: FnMut(Arc<H>) -> BoxFuture<'static, Result<T>>,
{
    let mut out = Vec::with_capacity(route.len());
    for (name, h) in route {
        let r = call(h.clone())
            .await
            .map_err(|e| e.with_provider(name.as_str()).with_operation(op));
        if let Err(e) = &r {
            tracing::warn!(provider = %name, operation = op, kind = %e.kind(), "write failed on one provider of the route");
        }
        out.push((name.clone(), r));
    }
    if out.iter().all(|(_, r)| r.is_err()) {
        let (_, first) = out.into_iter().next().expect("route is not empty");
        return Err(first.err().expect("all failed"));
    }
    Ok(out)
}

fn merge_reports(results: Vec<(String, Result<IndexReport>)>) -> IndexReport {
    let mut report: Option<IndexReport> = None;
    let mut errors = Vec::new();
    for (name, r) in results {
        match r {
            Ok(rep) if report.is_none() => report = Some(rep),
            Ok(_) => {}
            Err(e) => errors.push((name, e.to_string())),
        }
    }
    let mut report = report.unwrap_or_default();
    report.provider_errors.extend(errors);
    report
}

/// A [`Searcher`] over a route of searchers.
#[derive(Debug)]
pub struct FallbackSearcher {
    route: Vec<(String, Arc<dyn Searcher>)>,
}

impl FallbackSearcher {
    /// A chain over `route` (non-empty, in order).
    pub fn new(route: Vec<(String, Arc<dyn Searcher>)>) -> Self {
        FallbackSearcher { route }
    }
}

#[async_trait]
impl Searcher for FallbackSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let r = broadcast(&self.route, "upsert", |s| {
            let a = products.clone();
            Box::pin(async move { s.upsert(a).await })
        })
        .await?;
        Ok(merge_reports(r))
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let r = broadcast(&self.route, "remove", |s| {
            let a = ids.clone();
            Box::pin(async move { s.remove(a).await })
        })
        .await?;
        Ok(merge_reports(r))
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        run_chain(&self.route, &req.ctx, "search", |s| {
            let a = req.clone();
            Box::pin(async move { s.search(a).await })
        })
        .await
    }
}

/// A [`Recommender`] over a route of recommenders.
#[derive(Debug)]
pub struct FallbackRecommender {
    route: Vec<(String, Arc<dyn Recommender>)>,
}

impl FallbackRecommender {
    /// A chain over `route` (non-empty, in order).
    pub fn new(route: Vec<(String, Arc<dyn Recommender>)>) -> Self {
        FallbackRecommender { route }
    }
}

#[async_trait]
impl Recommender for FallbackRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        broadcast(&self.route, "record", |r| {
            let a = events.clone();
            Box::pin(async move { r.record(a).await })
        })
        .await?;
        Ok(())
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        run_chain(&self.route, &req.ctx, "recommend", |r| {
            let a = req.clone();
            Box::pin(async move { r.recommend(a).await })
        })
        .await
    }
}

/// A [`Forecaster`] over a route of forecasters.
#[derive(Debug)]
pub struct FallbackForecaster {
    route: Vec<(String, Arc<dyn Forecaster>)>,
}

impl FallbackForecaster {
    /// A chain over `route` (non-empty, in order).
    pub fn new(route: Vec<(String, Arc<dyn Forecaster>)>) -> Self {
        FallbackForecaster { route }
    }
}

#[async_trait]
impl Forecaster for FallbackForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        run_chain(&self.route, &req.ctx, "forecast", |f| {
            let a = req.clone();
            Box::pin(async move { f.forecast(a).await })
        })
        .await
    }
}

/// A [`ChatModel`] over a route of chat models.
#[derive(Debug)]
pub struct FallbackChat {
    route: Vec<(String, Arc<dyn ChatModel>)>,
}

impl FallbackChat {
    /// A chain over `route` (non-empty, in order).
    pub fn new(route: Vec<(String, Arc<dyn ChatModel>)>) -> Self {
        FallbackChat { route }
    }
}

#[async_trait]
impl ChatModel for FallbackChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        run_chain(&self.route, &req.ctx, "chat", |c| {
            let a = req.clone();
            Box::pin(async move { c.chat(a).await })
        })
        .await
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let start = Instant::now();
        let mut notes: Vec<FallbackNote> = Vec::new();
        let mut policy: Vec<PolicyNote> = Vec::new();
        let mut last: Option<Error> = None;
        for (pos, (name, c)) in self.route.iter().enumerate() {
            if let Err(e) = req.ctx.check_deadline() {
                return Err(last.map_or(e.clone(), |l| e.context(format!("after {l}"))));
            }
            let is_last = pos + 1 == self.route.len();
            let attempt = async { first_event(c.chat_stream(req.clone()).await?).await };
            let outcome = match req.ctx.remaining() {
                Some(left) => tokio::time::timeout(left, attempt)
                    .await
                    .unwrap_or_else(|_| Err(deadline_error())),
                None => attempt.await,
            };
            match outcome {
                Ok((first, rest)) => {
                    let name = name.clone();
                    let notes = std::mem::take(&mut notes);
                    let policy = std::mem::take(&mut policy);
                    let patch = move |ev: Result<ChatEvent>| match ev {
                        Ok(ChatEvent::Finished {
                            finish_reason,
                            mut meta,
                        }) => {
                            fill_meta(&mut meta, &name, pos, notes.clone(), policy.clone(), start);
                            Ok(ChatEvent::Finished {
                                finish_reason,
                                meta,
                            })
                        }
                        Err(e) => Err(e.with_provider(name.as_str()).with_operation("chat_stream")),
                        other => other,
                    };
                    let s = futures::stream::once(async move { Ok(first) })
                        .chain(rest)
                        .map(patch);
                    return Ok(Box::pin(s));
                }
                Err(e) => {
                    let e = e.with_provider(name.as_str()).with_operation("chat_stream");
                    note_policy(&mut policy, name, &e);
                    if should_fall_back(&e) && !is_last {
                        tracing::warn!(provider = %name, operation = "chat_stream", kind = %e.kind(), "falling back to the next provider before the first event");
                        notes.push(FallbackNote::new(name.as_str(), skip_reason(&e)));
                        last = Some(e);
                    } else {
                        return Err(final_error(e, &policy, "chat_stream"));
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::config("the route for chat is empty")))
    }
}
