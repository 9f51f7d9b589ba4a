//! The observe layer: tracing spans, metrics, cost and the audit log, outermost in the stack.
//!
//! Every call (search, recommend, chat, chat stream, forecast) gets:
//!
//! - a `tracing` span named `gen_ai` with the OpenTelemetry GenAI semantic-convention
//!   attributes: `gen_ai.operation.name`, `gen_ai.provider.name` (the adapter kind),
//!   `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens`,
//!   `gen_ai.usage.output_tokens`, `error.type`, and `otel.name` (`"{operation} {model}"`),
//!   plus `merchant_ai.provider` (the configured name), `merchant_ai.route_position`,
//!   `merchant_ai.fallbacks`, `merchant_ai.cost_micros`, `merchant_ai.decision`;
//! - its cost from the profile's [`PricingTable`] in [`Usage::cost`] (for streams from the
//!   final usage, so streamed and non-streamed calls cost the same);
//! - metrics through the [`Metrics`] trait (duration, tokens, cost, errors by kind, fallbacks,
//!   time to a stream's first event; see [`crate::metrics`]);
//! - one [`AuditRecord`] in the [`AuditLog`] (see [`crate::audit`]).
//!
//! Spans and records hold names, counts and numbers. Customer text (queries, messages,
//! replies) is logged only when the profile turns content logging on (`log_content = true`),
//! as `tracing` events with target `merchant_ai::content` inside the call's span.
//!
//! ```toml
//! [profiles.prod.observe]
//! log_content = false                          # the default
//! audit_path = "/var/log/merchant-ai/audit.jsonl"
//! audit_queue = 4096
//! ```
//!
//! Writes (`upsert`, `remove`, `record`) get a span only: they are not model calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tracing::Span;
use tracing::field::Empty;

use crate::api::{Capability, ChatModel, Forecaster, Recommender, Searcher};
use crate::audit::{AuditLog, AuditRecord, AuditSink, JsonLinesAuditSink, Outcome, guarded};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{self, Metrics};
use crate::pricing::PricingTable;
use crate::types::*;

/// `[profiles.NAME.observe]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveConfig {
    /// Turn the layer off (no spans, metrics, cost or audit records).
    pub enabled: bool,
    /// Log customer text (queries, messages, replies) as `tracing` events. Off by default.
    pub log_content: bool,
    /// Append audit records as JSON lines to this file.
    pub audit_path: Option<PathBuf>,
    /// Most audit records waiting to be written; beyond it records are dropped and counted.
    pub audit_queue: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            enabled: true,
            log_content: false,
            audit_path: None,
            audit_queue: 4096,
        }
    }
}

impl ObserveConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.audit_queue == 0 || self.audit_queue > 10_000_000 {
            return Err(Error::config(format!(
                "{path}.audit_queue: must be between 1 and 10000000 (got {})",
                self.audit_queue
            )));
        }
        if let Some(p) = &self.audit_path
            && p.as_os_str().is_empty()
        {
            return Err(Error::config(format!("{path}.audit_path: is empty")));
        }
        Ok(())
    }
}

/// What the observe layer reports to: metrics, the audit log, prices. Shared by the four
/// capabilities of a client (and its shadow and canary calls).
#[derive(Debug, Default)]
pub struct Observer {
    metrics: Option<Arc<dyn Metrics>>,
    audit: Option<AuditLog>,
    pricing: PricingTable,
    log_content: bool,
    kinds: RwLock<BTreeMap<String, String>>,
}

impl Observer {
    /// Spans only: no metrics, no audit log, no prices.
    pub fn new() -> Self {
        Self::default()
    }

    /// From a profile's settings: the audit log goes to `audit` when given, else to the
    /// configured `audit_path`, else nowhere.
    pub fn from_config(
        cfg: &ObserveConfig,
        pricing: PricingTable,
        metrics: Option<Arc<dyn Metrics>>,
        audit: Option<Arc<dyn AuditSink>>,
    ) -> Result<Self> {
        let sink: Option<Arc<dyn AuditSink>> = match (audit, &cfg.audit_path) {
            (Some(s), _) => Some(s),
            (None, Some(p)) => Some(Arc::new(JsonLinesAuditSink::open(p)?)),
            (None, None) => None,
        };
        Ok(Observer {
            audit: sink.map(|s| AuditLog::new(s, cfg.audit_queue).with_metrics(metrics.clone())),
            metrics,
            pricing,
            log_content: cfg.log_content,
            kinds: RwLock::default(),
        })
    }

    /// Reports to `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics.clone());
        if let Some(a) = self.audit.take() {
            self.audit = Some(a.with_metrics(Some(metrics)));
        }
        self
    }

    /// Writes audit records to `sink` through a queue of `queue` records.
    #[must_use]
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>, queue: usize) -> Self {
        self.audit = Some(AuditLog::new(sink, queue).with_metrics(self.metrics.clone()));
        self
    }

    /// Prices calls with `pricing`.
    #[must_use]
    pub fn with_pricing(mut self, pricing: PricingTable) -> Self {
        self.pricing = pricing;
        self
    }

    /// Logs customer text (off by default).
    #[must_use]
    pub fn with_log_content(mut self, on: bool) -> Self {
        self.log_content = on;
        self
    }

    /// Records the adapter kind of a provider name (for `gen_ai.provider.name`).
    pub fn set_provider_kind(&self, provider: &str, kind: &str) {
        if let Ok(mut k) = self.kinds.write() {
            k.insert(provider.to_owned(), kind.to_owned());
        }
    }

    fn kind_of(&self, provider: &str) -> Option<String> {
        self.kinds.read().ok()?.get(provider).cloned()
    }

    /// The audit log, if one is configured.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// The metrics, if any.
    pub fn metrics(&self) -> Option<&Arc<dyn Metrics>> {
        self.metrics.as_ref()
    }

    /// The pricing table.
    pub fn pricing(&self) -> &PricingTable {
        &self.pricing
    }

    /// Submits an audit record (e.g. of an erasure); a no-op without an audit log.
    pub fn record(&self, rec: AuditRecord) {
        if let Some(a) = &self.audit {
            a.submit(rec);
        }
    }

    /// Adds to a counter, never failing.
    pub fn count(&self, name: &'static str, labels: &[metrics::Label<'_>], v: u64) {
        if let Some(m) = &self.metrics {
            guarded(|| m.counter(name, labels, v));
        }
    }

    /// Records a histogram value, never failing.
    pub fn observe(&self, name: &'static str, labels: &[metrics::Label<'_>], v: f64) {
        if let Some(m) = &self.metrics {
            guarded(|| m.histogram(name, labels, v));
        }
    }

    /// Fills [`Usage::cost`] from the pricing table (zero for a cache hit).
    pub fn price(&self, meta: &mut ResponseMeta) {
        let c = if meta.cached {
            self.pricing.zero(&meta.provider)
        } else {
            self.pricing.cost(
                &meta.provider,
                meta.model.as_deref(),
                &meta.usage,
                meta.latency,
            )
        };
        if let Some(c) = c {
            meta.usage.cost = Some(c);
        }
    }

    fn begin(
        &self,
        cap: Capability,
        op: &'static str,
        ctx: &RequestContext,
        request_model: Option<&str>,
    ) -> Call {
        let span = tracing::info_span!(
            "gen_ai",
            otel.name = %match request_model { Some(m) => format!("{op} {m}"), None => op.to_owned() },
            gen_ai.operation.name = op,
            gen_ai.provider.name = Empty,
            gen_ai.request.model = request_model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            "error.type" = Empty,
            merchant_ai.capability = cap.as_str(),
            merchant_ai.provider = Empty,
            merchant_ai.route_position = Empty,
            merchant_ai.fallbacks = Empty,
            merchant_ai.cost_micros = Empty,
            merchant_ai.decision = Empty,
            merchant_ai.trace_id = ctx.trace_id.as_deref(),
        );
        Call {
            cap,
            op,
            start: Instant::now(),
            span,
            // Only the audit record needs the context.
            ctx: self.audit.as_ref().map(|_| ctx.clone()).unwrap_or_default(),
        }
    }

    fn end_ok(&self, call: &Call, meta: &mut ResponseMeta) {
        self.price(meta);
        let elapsed = call.start.elapsed();
        let kind = self.kind_of(&meta.provider);
        let span = &call.span;
        span.record(
            "gen_ai.provider.name",
            kind.as_deref().unwrap_or(&meta.provider),
        );
        span.record("merchant_ai.provider", meta.provider.as_str());
        if let Some(m) = &meta.model {
            span.record("gen_ai.response.model", m.as_str());
        }
        if let Some(t) = meta.usage.input_tokens {
            span.record("gen_ai.usage.input_tokens", t);
        }
        if let Some(t) = meta.usage.output_tokens {
            span.record("gen_ai.usage.output_tokens", t);
        }
        span.record("merchant_ai.route_position", meta.route_position);
        span.record("merchant_ai.fallbacks", meta.fallbacks.len());
        if let Some(c) = meta.usage.cost {
            span.record("merchant_ai.cost_micros", c.micros);
        }
        let decision = match &meta.decision {
            Decision::NeedsReview { rule, .. } => rule.as_str(),
            _ => "automatic",
        };
        span.record("merchant_ai.decision", decision);

        if let Some(m) = &self.metrics {
            let pk = kind.as_deref().unwrap_or("");
            let model = meta.model.as_deref().unwrap_or("");
            let labels = [
                ("gen_ai.operation.name", call.op),
                ("gen_ai.provider.name", pk),
                ("merchant_ai.provider", meta.provider.as_str()),
                ("gen_ai.response.model", model),
            ];
            guarded(|| {
                m.histogram(metrics::OPERATION_DURATION, &labels, elapsed.as_secs_f64());
                m.counter(
                    metrics::CALLS,
                    &[
                        ("gen_ai.operation.name", call.op),
                        ("merchant_ai.provider", meta.provider.as_str()),
                        ("outcome", "ok"),
                    ],
                    1,
                );
                for (ty, v) in [
                    ("input", meta.usage.input_tokens),
                    ("output", meta.usage.output_tokens),
                ] {
                    if let Some(v) = v {
                        let l = [
                            labels[0],
                            labels[1],
                            labels[2],
                            labels[3],
                            ("gen_ai.token.type", ty),
                        ];
                        m.histogram(metrics::TOKEN_USAGE, &l, v as f64);
                    }
                }
                if let Some(c) = meta.usage.cost {
                    m.counter(
                        metrics::COST_MICROS,
                        &[
                            ("merchant_ai.provider", meta.provider.as_str()),
                            ("currency", c.currency.code()),
                        ],
                        c.micros.max(0) as u64,
                    );
                }
                for f in &meta.fallbacks {
                    m.counter(
                        metrics::FALLBACKS,
                        &[
                            ("gen_ai.operation.name", call.op),
                            ("merchant_ai.provider", f.provider.as_str()),
                            ("reason", f.reason.as_str()),
                        ],
                        1,
                    );
                }
            });
        }
        if let Some(a) = &self.audit {
            let mut r = AuditRecord::new(call.cap, call.op).with_context(&call.ctx);
            r.provider = Some(meta.provider.clone());
            r.provider_kind = kind;
            r.model = meta.model.clone();
            r.route_position = Some(meta.route_position);
            r.fallbacks = meta.fallbacks.clone();
            r.policy = meta.governance.policy.clone();
            r.redactions = meta.governance.redactions.clone();
            r.decision = meta.decision.clone();
            r.usage = meta.usage.clone();
            r.latency_ms = elapsed.as_secs_f64() * 1000.0;
            r.cached = meta.cached;
            a.submit(r);
        }
    }

    fn end_err(&self, call: &Call, e: &Error, outcome: Outcome) {
        let elapsed = call.start.elapsed();
        let kind_str = match outcome {
            Outcome::Cancelled => "cancelled",
            _ => e.kind().as_str(),
        };
        call.span.record("error.type", kind_str);
        if let Some(p) = e.provider() {
            call.span.record("merchant_ai.provider", p);
        }
        let provider = e.provider().unwrap_or("");
        if let Some(m) = &self.metrics {
            guarded(|| {
                m.histogram(
                    metrics::OPERATION_DURATION,
                    &[
                        ("gen_ai.operation.name", call.op),
                        ("merchant_ai.provider", provider),
                        ("error.type", kind_str),
                    ],
                    elapsed.as_secs_f64(),
                );
                let outcome_s = if outcome == Outcome::Cancelled {
                    "cancelled"
                } else {
                    "error"
                };
                m.counter(
                    metrics::CALLS,
                    &[
                        ("gen_ai.operation.name", call.op),
                        ("merchant_ai.provider", provider),
                        ("outcome", outcome_s),
                    ],
                    1,
                );
                if outcome == Outcome::Error {
                    m.counter(
                        metrics::ERRORS,
                        &[
                            ("gen_ai.operation.name", call.op),
                            ("merchant_ai.provider", provider),
                            ("error.type", kind_str),
                        ],
                        1,
                    );
                }
            });
        }
        if let Some(a) = &self.audit {
            let mut r = AuditRecord::new(call.cap, call.op).with_context(&call.ctx);
            if !provider.is_empty() {
                r.provider = Some(provider.to_owned());
                r.provider_kind = self.kind_of(provider);
            }
            r.latency_ms = elapsed.as_secs_f64() * 1000.0;
            r.outcome = outcome;
            if outcome == Outcome::Error {
                r.error_kind = Some(e.kind());
            }
            a.submit(r);
        }
    }

    fn content(&self, call: &Call, direction: &'static str, text: impl FnOnce() -> String) {
        if self.log_content {
            let t = text();
            call.span.in_scope(|| {
                tracing::info!(target: "merchant_ai::content", direction, content = %t, "gen_ai content");
            });
        }
    }
}

struct Call {
    cap: Capability,
    op: &'static str,
    start: Instant,
    span: Span,
    ctx: RequestContext,
}

/// Wraps one capability handle with an [`Observer`].
#[derive(Debug)]
pub struct ObserveLayer<T: ?Sized> {
    inner: Arc<T>,
    obs: Arc<Observer>,
}

impl<T: ?Sized> ObserveLayer<T> {
    /// Observes calls to `inner`.
    pub fn new(inner: Arc<T>, obs: Arc<Observer>) -> Self {
        ObserveLayer { inner, obs }
    }
}

trait Metaed {
    fn meta_mut(&mut self) -> &mut ResponseMeta;
}
macro_rules! metaed {
    ($($t:ty),*) => {$(impl Metaed for $t { fn meta_mut(&mut self) -> &mut ResponseMeta { &mut self.meta } })*};
}
metaed!(
    SearchResponse,
    RecommendResponse,
    ChatResponse,
    ForecastResponse
);

impl<T: ?Sized> ObserveLayer<T> {
    async fn run<R: Metaed>(
        &self,
        call: Call,
        fut: impl std::future::Future<Output = Result<R>>,
    ) -> Result<R> {
        let span = call.span.clone();
        let out = tracing::Instrument::instrument(fut, span).await;
        match out {
            Ok(mut r) => {
                self.obs.end_ok(&call, r.meta_mut());
                Ok(r)
            }
            Err(e) => {
                self.obs.end_err(&call, &e, Outcome::Error);
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Searcher for ObserveLayer<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let span = tracing::info_span!("merchant_ai.write", gen_ai.operation.name = "upsert");
        tracing::Instrument::instrument(self.inner.upsert(products), span).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let span = tracing::info_span!("merchant_ai.write", gen_ai.operation.name = "remove");
        tracing::Instrument::instrument(self.inner.remove(ids), span).await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        let call = self.obs.begin(Capability::Search, "search", &req.ctx, None);
        self.obs.content(&call, "input", || req.query.clone());
        self.run(call, self.inner.search(req)).await
    }
}

#[async_trait]
impl Recommender for ObserveLayer<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let span = tracing::info_span!("merchant_ai.write", gen_ai.operation.name = "record");
        tracing::Instrument::instrument(self.inner.record(events), span).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let call = self
            .obs
            .begin(Capability::Recommend, "recommend", &req.ctx, None);
        self.run(call, self.inner.recommend(req)).await
    }
}

#[async_trait]
impl Forecaster for ObserveLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let call = self.obs.begin(
            Capability::Forecast,
            "forecast",
            &req.ctx,
            req.method.as_deref(),
        );
        self.run(call, self.inner.forecast(req)).await
    }
}

fn messages_text(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .map(|m| format!("{:?}: {}", m.role, m.text()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait]
impl ChatModel for ObserveLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let call = self
            .obs
            .begin(Capability::Chat, "chat", &req.ctx, req.model.as_deref());
        self.obs.content(&call, "input", || messages_text(&req));
        let log = self.obs.log_content;
        let span = call.span.clone();
        let r = self.run(call, self.inner.chat(req)).await;
        if log && let Ok(resp) = &r {
            span.in_scope(|| {
                tracing::info!(target: "merchant_ai::content", direction = "output", content = %resp.text, "gen_ai content");
            });
        }
        r
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let call = self.obs.begin(
            Capability::Chat,
            "chat_stream",
            &req.ctx,
            req.model.as_deref(),
        );
        self.obs.content(&call, "input", || messages_text(&req));
        let span = call.span.clone();
        match tracing::Instrument::instrument(self.inner.chat_stream(req), span).await {
            Ok(s) => Ok(Box::pin(ObservedStream {
                inner: s,
                obs: self.obs.clone(),
                call: Some(call),
                last_usage: None,
                first: true,
                text: String::new(),
            })),
            Err(e) => {
                self.obs.end_err(&call, &e, Outcome::Error);
                Err(e)
            }
        }
    }
}

/// A chat stream that records its call when it finishes, fails, or is dropped.
struct ObservedStream {
    inner: ChatStream,
    obs: Arc<Observer>,
    call: Option<Call>,
    last_usage: Option<Usage>,
    first: bool,
    text: String,
}

impl Stream for ObservedStream {
    type Item = Result<ChatEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(call) = &this.call else {
            return Poll::Ready(None);
        };
        let polled = {
            let _g = call.span.enter();
            this.inner.poll_next_unpin(cx)
        };
        let item = match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(i) => i,
        };
        if this.first && matches!(item, Some(Ok(_))) {
            this.first = false;
            let ttfe = call.start.elapsed().as_secs_f64();
            this.obs.observe(
                metrics::TIME_TO_FIRST_EVENT,
                &[("gen_ai.operation.name", "chat_stream")],
                ttfe,
            );
        }
        match item {
            Some(Ok(ChatEvent::Usage { usage })) => {
                this.last_usage = Some(usage.clone());
                Poll::Ready(Some(Ok(ChatEvent::Usage { usage })))
            }
            Some(Ok(ChatEvent::TextDelta { text })) => {
                if this.obs.log_content {
                    this.text.push_str(&text);
                }
                Poll::Ready(Some(Ok(ChatEvent::TextDelta { text })))
            }
            Some(Ok(ChatEvent::Finished {
                finish_reason,
                mut meta,
            })) => {
                if meta.usage == Usage::default()
                    && let Some(u) = this.last_usage.take()
                {
                    meta.usage = u;
                }
                if let Some(call) = this.call.take() {
                    this.obs.end_ok(&call, &mut meta);
                    let text = std::mem::take(&mut this.text);
                    this.obs.content(&call, "output", || text);
                }
                Poll::Ready(Some(Ok(ChatEvent::Finished {
                    finish_reason,
                    meta,
                })))
            }
            Some(Ok(ev)) => Poll::Ready(Some(Ok(ev))),
            Some(Err(e)) => {
                if let Some(call) = this.call.take() {
                    this.obs.end_err(&call, &e, Outcome::Error);
                }
                Poll::Ready(Some(Err(e)))
            }
            None => {
                if let Some(call) = this.call.take() {
                    let e = Error::new(
                        ErrorKind::Unavailable,
                        "the stream ended without a finished event",
                    );
                    this.obs.end_err(&call, &e, Outcome::Error);
                }
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ObservedStream {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let e = Error::new(ErrorKind::Unexpected, "cancelled");
            self.obs.end_err(&call, &e, Outcome::Cancelled);
        }
    }
}

/// Wraps a capability handle with the observe layer (`dyn Searcher`, `dyn Recommender`,
/// `dyn ChatModel`, `dyn Forecaster`).
pub trait Observable: 'static {
    /// Wraps `inner`.
    fn observed(inner: Arc<Self>, obs: Arc<Observer>) -> Arc<Self>;
}

macro_rules! observable {
    ($($t:ident),*) => {$(
        impl Observable for dyn $t {
            fn observed(inner: Arc<Self>, obs: Arc<Observer>) -> Arc<Self> {
                Arc::new(ObserveLayer::new(inner, obs))
            }
        }
    )*};
}
observable!(Searcher, Recommender, ChatModel, Forecaster);

/// The operations settings of a profile: `observe`, `thresholds`, `shadow` and `pricing`.
#[derive(Debug, Clone, Default)]
pub struct OpsConfig {
    /// `[profiles.NAME.observe]` (`None`: defaults).
    pub observe: Option<ObserveConfig>,
    /// `[profiles.NAME.thresholds]` (`None`: no rules).
    pub thresholds: Option<crate::thresholds::ThresholdsConfig>,
    /// `[profiles.NAME.shadow.CAPABILITY]`.
    pub shadow: super::shadow::ShadowsConfig,
    /// `[profiles.NAME.pricing.PROVIDER]`.
    pub pricing: PricingTable,
}

impl OpsConfig {
    /// Parses one of the profile keys `observe`, `thresholds`, `shadow`, `pricing` under
    /// `path` (the profile's key path); `defined` tells whether a provider name is defined.
    /// Errors name the key path.
    pub fn parse_key(
        &mut self,
        key: &str,
        v: toml::Value,
        path: &str,
        defined: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let kpath = format!("{path}.{key}");
        let de = |e: toml::de::Error| Error::config(format!("{kpath}: {}", e.message().trim()));
        match key {
            "observe" => {
                let c: ObserveConfig = v.try_into().map_err(de)?;
                c.validate(&kpath)?;
                self.observe = Some(c);
            }
            "thresholds" => {
                let c: crate::thresholds::ThresholdsConfig = v.try_into().map_err(de)?;
                c.validate(&kpath)?;
                self.thresholds = Some(c);
            }
            "shadow" => {
                let s = super::shadow::parse_shadows(v, &kpath)?;
                for (cap, c) in &s {
                    if !defined(&c.candidate) {
                        return Err(Error::config(format!(
                            "{kpath}.{cap}.candidate: provider {:?} is not defined",
                            c.candidate
                        )));
                    }
                }
                self.shadow = s;
            }
            "pricing" => {
                let t = PricingTable::from_toml(v, &kpath)?;
                if let Some(p) = t.providers().find(|p| !defined(p)) {
                    return Err(Error::config(format!(
                        "{kpath}.{p}: provider {p:?} is not defined"
                    )));
                }
                self.pricing = t;
            }
            other => {
                return Err(Error::config(format!("{path}.{other}: unknown key")));
            }
        }
        Ok(())
    }
}
