use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::harness::{Fault, FaultHarness, RetryAfterForm};
use crate::api::*;
use crate::error::{Error, ErrorKind, Result};
use crate::replenish::normal_quantile;
use crate::text::is_cjk;
use crate::types::*;

/// A deliberate contract breach, to prove the suite (or a layer) notices it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// Search and recommend ignore filters.
    IgnoreFilters,
    /// Search returns more hits than the limit.
    ExceedLimit,
    /// Removed products keep being found.
    IgnoreRemove,
    /// Streams send every text delta twice.
    DuplicateStreamText,
    /// Streams end without a `Finished` event.
    NoFinishedEvent,
    /// A quota failure is reported as a (retryable) rate limit.
    QuotaAsRateLimit,
    /// Forecast quantiles cross (the upper below the lower).
    CrossingQuantiles,
}

#[derive(Default)]
struct State {
    products: BTreeMap<ProductId, Product>,
    events: Vec<Event>,
    faults: HashMap<Capability, (Fault, Option<usize>)>,
    replies: VecDeque<String>,
}

struct Inner {
    info: ProviderInfo,
    state: Mutex<State>,
    misbehaviours: Mutex<Vec<Misbehaviour>>,
    attempts: AtomicUsize,
    calls: AtomicUsize,
    latency: Mutex<Option<Duration>>,
}

/// An in-memory provider of all four capabilities, for testing layers, routes and the
/// contract suite itself.
///
/// It behaves like a small, correct provider (substring search with every filter, facet and
/// sort; co-occurrence recommendations; scripted chat replies with tool calls and JSON mode;
/// naive forecasts with intervals), can be told to fail like a vendor would
/// ([`inject`](FaultHarness::inject), [`fail_next`](Self::fail_next)), to be slow
/// ([`with_latency`](Self::with_latency)) or to breach the contract ([`Misbehaviour`]).
/// It is its own [`FaultHarness`]: every call counts as one upstream attempt.
#[derive(Clone)]
pub struct ScriptedProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScriptedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedProvider")
            .field("name", &self.inner.info.name)
            .finish()
    }
}

impl ScriptedProvider {
    /// An in-process provider named `name` with every capability.
    pub fn new(name: impl Into<String>) -> Self {
        Self::from_info(ProviderInfo::local(name, "scripted", Capabilities::all()))
    }

    /// A provider with this identity (e.g. [`ProviderInfo::remote`] to act as a vendor).
    pub fn from_info(info: ProviderInfo) -> Self {
        ScriptedProvider {
            inner: Arc::new(Inner {
                info,
                state: Mutex::new(State::default()),
                misbehaviours: Mutex::new(Vec::new()),
                attempts: AtomicUsize::new(0),
                calls: AtomicUsize::new(0),
                latency: Mutex::new(None),
            }),
        }
    }

    /// Replaces the declared capabilities.
    #[must_use]
    pub fn with_capabilities(self, caps: Capabilities) -> Self {
        let mut info = self.inner.info.clone();
        info.capabilities = caps;
        let p = ScriptedProvider::from_info(info);
        *p.inner.misbehaviours.lock().expect("lock") =
            self.inner.misbehaviours.lock().expect("lock").clone();
        p
    }

    /// Adds a contract breach.
    #[must_use]
    pub fn misbehave(self, m: Misbehaviour) -> Self {
        self.inner.misbehaviours.lock().expect("lock").push(m);
        self
    }

    /// Makes every call take at least `d`.
    #[must_use]
    pub fn with_latency(self, d: Duration) -> Self {
        *self.inner.latency.lock().expect("lock") = Some(d);
        self
    }

    /// Queues a chat reply text (used before the default reply).
    pub fn push_reply(&self, text: impl Into<String>) {
        self.inner
            .state
            .lock()
            .expect("lock")
            .replies
            .push_back(text.into());
    }

    /// The next `times` calls of `capability` fail with `fault`, then calls succeed again.
    pub fn fail_next(&self, capability: Capability, fault: Fault, times: usize) {
        self.inner
            .state
            .lock()
            .expect("lock")
            .faults
            .insert(capability, (fault, Some(times)));
    }

    /// All calls made to this provider so far.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// This provider as its own fault harness.
    pub fn harness(&self) -> Arc<dyn FaultHarness> {
        Arc::new(self.clone())
    }

    fn handle(&self) -> Arc<Handle> {
        Arc::new(Handle(self.inner.clone()))
    }
}

impl Provider for ScriptedProvider {
    fn info(&self) -> &ProviderInfo {
        &self.inner.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        self.inner
            .info
            .capabilities
            .search
            .then(|| self.handle() as Arc<dyn Searcher>)
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        self.inner
            .info
            .capabilities
            .recommend
            .then(|| self.handle() as Arc<dyn Recommender>)
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        self.inner
            .info
            .capabilities
            .chat
            .then(|| self.handle() as Arc<dyn ChatModel>)
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        self.inner
            .info
            .capabilities
            .forecast
            .then(|| self.handle() as Arc<dyn Forecaster>)
    }
}

#[async_trait]
impl FaultHarness for ScriptedProvider {
    async fn inject(&self, capability: Capability, fault: Fault) -> bool {
        self.inner.attempts.store(0, Ordering::SeqCst);
        self.inner
            .state
            .lock()
            .expect("lock")
            .faults
            .insert(capability, (fault, None));
        true
    }
    async fn clear(&self) {
        self.inner.attempts.store(0, Ordering::SeqCst);
        self.inner.state.lock().expect("lock").faults.clear();
    }
    async fn attempts(&self) -> usize {
        self.inner.attempts.load(Ordering::SeqCst)
    }
}

struct Handle(Arc<Inner>);

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScriptedProvider({})", self.0.info.name)
    }
}

fn fault_error(f: Fault, quota_as_rate_limit: bool) -> Error {
    match f {
        Fault::RateLimited(RetryAfterForm::Seconds(s) | RetryAfterForm::HttpDate(s)) => {
            Error::new(ErrorKind::RateLimited, "throttled")
                .with_retry_after(Duration::from_secs(s))
                .with_status(429)
        }
        Fault::QuotaExhausted if quota_as_rate_limit => {
            Error::new(ErrorKind::RateLimited, "throttled").with_status(429)
        }
        Fault::QuotaExhausted => {
            Error::new(ErrorKind::QuotaExceeded, "quota exhausted").with_status(429)
        }
        Fault::ServerError(s) => Error::new(ErrorKind::Unavailable, "server error").with_status(s),
        Fault::Timeout => Error::new(ErrorKind::Timeout, "upstream did not answer in time"),
        Fault::ConnectionReset => Error::new(ErrorKind::Unavailable, "connection reset"),
        Fault::MalformedBody => Error::decode("malformed response body"),
        Fault::StreamCut => Error::new(ErrorKind::Unavailable, "stream cut mid-event"),
        Fault::SlowBody => Error::new(ErrorKind::Timeout, "upstream body stalled"),
        // Splitting the answer is not a failure: callers never see it.
        Fault::Rechunked => Error::new(ErrorKind::Unexpected, "rechunked is not an error"),
    }
}

impl Handle {
    fn has(&self, m: Misbehaviour) -> bool {
        self.0.misbehaviours.lock().expect("lock").contains(&m)
    }

    fn meta(&self) -> ResponseMeta {
        ResponseMeta::new(self.0.info.name.clone()).with_model("scripted")
    }

    /// Counts the attempt, waits the latency, and returns the active fault, if any.
    async fn enter(&self, cap: Capability, stream: bool) -> Result<Option<Fault>> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        self.0.attempts.fetch_add(1, Ordering::SeqCst);
        let latency = *self.0.latency.lock().expect("lock");
        if let Some(d) = latency {
            tokio::time::sleep(d).await;
        }
        let fault = {
            let mut st = self.0.state.lock().expect("lock");
            match st.faults.get_mut(&cap) {
                None => None,
                Some((f, None)) => Some(*f),
                Some((f, Some(n))) => {
                    let f = *f;
                    if *n <= 1 {
                        st.faults.remove(&cap);
                    } else {
                        *n -= 1;
                    }
                    Some(f)
                }
            }
        };
        match fault {
            None => Ok(None),
            Some(Fault::StreamCut) if stream => Ok(Some(Fault::StreamCut)),
            Some(Fault::StreamCut) => Ok(None),
            Some(Fault::Rechunked) => Ok(None),
            Some(f) => Err(fault_error(f, self.has(Misbehaviour::QuotaAsRateLimit))),
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in s.to_lowercase().chars() {
        if ch.is_alphanumeric() && !is_cjk(ch) {
            cur.push(ch);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if is_cjk(ch) {
                out.push(ch.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn score(p: &Product, q: &[String]) -> f32 {
    if q.is_empty() {
        return 1.0;
    }
    let title = p.title.to_lowercase()
        + " "
        + &p.localized
            .values()
            .map(|l| l.title.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
    let brand = p.brand.clone().unwrap_or_default().to_lowercase();
    let cat = p.category_path().to_lowercase();
    let desc = p.description.to_lowercase();
    q.iter()
        .map(|t| {
            3.0 * title.contains(t.as_str()) as u8 as f32
                + 2.0 * brand.contains(t.as_str()) as u8 as f32
                + cat.contains(t.as_str()) as u8 as f32
                + 0.5 * desc.contains(t.as_str()) as u8 as f32
        })
        .sum()
}

#[async_trait]
impl Searcher for Handle {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let mut report = IndexReport::new(0);
        let mut st = self.0.state.lock().expect("lock");
        for p in products {
            match p.validate() {
                Ok(()) => {
                    st.products.insert(p.id.clone(), p);
                    report.applied += 1;
                }
                Err(e) => report.rejected.push((p.id.clone(), e.message().to_owned())),
            }
        }
        Ok(report)
    }

    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        if self.has(Misbehaviour::IgnoreRemove) {
            return Ok(IndexReport::new(ids.len()));
        }
        let mut st = self.0.state.lock().expect("lock");
        let n = ids
            .iter()
            .filter(|id| st.products.remove(*id).is_some())
            .count();
        Ok(IndexReport::new(n))
    }

    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.enter(Capability::Search, false).await?;
        req.validate()?;
        let q = tokens(&req.query);
        let ignore = self.has(Misbehaviour::IgnoreFilters);
        let st = self.0.state.lock().expect("lock");
        let mut matched: Vec<(f32, &Product)> = st
            .products
            .values()
            .map(|p| (score(p, &q), p))
            .filter(|(s, p)| *s > 0.0 && (ignore || req.filters.matches(p)))
            .collect();
        match req.sort {
            SortBy::PriceAsc => matched.sort_by(|a, b| {
                a.1.price
                    .minor
                    .cmp(&b.1.price.minor)
                    .then(a.1.id.cmp(&b.1.id))
            }),
            SortBy::PriceDesc => matched.sort_by(|a, b| {
                b.1.price
                    .minor
                    .cmp(&a.1.price.minor)
                    .then(a.1.id.cmp(&b.1.id))
            }),
            SortBy::Newest => matched.sort_by(|a, b| {
                b.1.created_at
                    .cmp(&a.1.created_at)
                    .then(a.1.id.cmp(&b.1.id))
            }),
            _ => matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id))),
        }
        let facets = req
            .facets
            .iter()
            .map(|f| {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for (_, p) in &matched {
                    if let Some(l) = f.labels(p) {
                        *counts.entry(l).or_default() += 1;
                    }
                }
                let mut v: Vec<(String, u64)> = counts.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                FacetCounts::new(f.name(), v)
            })
            .collect();
        let take = if self.has(Misbehaviour::ExceedLimit) {
            req.limit + 5
        } else {
            req.limit
        };
        let hits = matched
            .iter()
            .skip(req.offset)
            .take(take)
            .map(|(s, p)| SearchHit::new(p.id.clone(), *s).with_product((*p).clone()))
            .collect();
        Ok(SearchResponse::new(
            hits,
            matched.len() as u64,
            self.meta().with_usage(Usage::new().with_units(1)),
        )
        .with_facets(facets))
    }
}

#[async_trait]
impl Recommender for Handle {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        self.0.state.lock().expect("lock").events.extend(events);
        Ok(())
    }

    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        self.enter(Capability::Recommend, false).await?;
        req.validate()?;
        let st = self.0.state.lock().expect("lock");
        let mut seeds: Vec<&ProductId> = req.session_items.iter().collect();
        if let Some(a) = &req.anchor {
            seeds.push(a);
        }
        let subject_items = |s: &SubjectId| -> Vec<&ProductId> {
            st.events
                .iter()
                .filter(|e| &e.subject == s)
                .map(|e| &e.product)
                .collect()
        };
        if let Some(s) = req.subject() {
            seeds.extend(subject_items(s));
        }
        let mut scores: BTreeMap<&ProductId, (f32, bool)> = BTreeMap::new();
        let subjects: std::collections::BTreeSet<&SubjectId> =
            st.events.iter().map(|e| &e.subject).collect();
        for s in subjects {
            let items = subject_items(s);
            let linked = items.iter().any(|i| seeds.contains(i));
            for i in items {
                let e = scores.entry(i).or_insert((0.0, false));
                e.0 += if linked { 1.0 } else { 0.1 };
                e.1 |= linked;
            }
        }
        let ignore = self.has(Misbehaviour::IgnoreFilters);
        let mut items: Vec<RecommendedItem> = scores
            .into_iter()
            .filter(|(id, _)| !seeds.contains(id) && !req.exclude.contains(id))
            .filter(|(id, _)| {
                ignore
                    || req.filters.is_empty()
                    || st.products.get(*id).is_some_and(|p| req.filters.matches(p))
            })
            .map(|(id, (s, linked))| {
                let reason = if linked {
                    Reason::new(ReasonKind::BoughtTogether, "often chosen together")
                } else {
                    Reason::new(ReasonKind::Popular, "popular")
                };
                RecommendedItem::new(id.clone(), s, reason)
            })
            .collect();
        items.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.product_id.cmp(&b.product_id))
        });
        items.truncate(req.limit);
        Ok(RecommendResponse::new(items, self.meta()).with_trace_id("scripted-trace"))
    }
}

impl Handle {
    fn answer(&self, req: &ChatRequest) -> ChatResponse {
        let user = req.last_user_text().unwrap_or_default();
        let forced = match &req.tool_choice {
            ToolChoice::Tool(n) => req.tools.iter().find(|t| &t.name == n),
            ToolChoice::Required => req.tools.first(),
            _ => None,
        };
        let answered = req.messages.last().is_some_and(|m| m.role == Role::Tool);
        if let Some(tool) = forced.filter(|_| !answered) {
            let digits: String = user
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
                .unwrap_or_default()
                .to_owned();
            let mut args = serde_json::Map::new();
            if let Some(req_props) = tool.parameters.get("required").and_then(|r| r.as_array()) {
                for p in req_props.iter().filter_map(|p| p.as_str()) {
                    args.insert(p.to_owned(), serde_json::Value::String(digits.clone()));
                }
            }
            let call = ToolCall::new(
                "call_scripted_0",
                tool.name.clone(),
                serde_json::Value::Object(args).to_string(),
            );
            return ChatResponse::new("", FinishReason::ToolCalls, self.meta())
                .with_tool_calls(vec![call]);
        }
        let base = self
            .0
            .state
            .lock()
            .expect("lock")
            .replies
            .pop_front()
            .unwrap_or_else(|| "Thanks for your message. This is a scripted reply.".to_owned());
        let text = match req.response_format {
            ResponseFormat::Text => base,
            _ => serde_json::json!({ "answer": base }).to_string(),
        };
        let usage = Usage::new()
            .with_input_tokens(user.split_whitespace().count() as u64)
            .with_output_tokens(text.split_whitespace().count() as u64);
        ChatResponse::new(text, FinishReason::Stop, self.meta().with_usage(usage))
    }
}

#[async_trait]
impl ChatModel for Handle {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.enter(Capability::Chat, false).await?;
        req.validate()?;
        Ok(self.answer(&req))
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let fault = self.enter(Capability::Chat, true).await?;
        req.validate()?;
        let r = self.answer(&req);
        let mut events: Vec<Result<ChatEvent>> = Vec::new();
        let mut pieces: Vec<String> = r.text.split_inclusive(' ').map(str::to_owned).collect();
        if pieces.is_empty() && !r.text.is_empty() {
            pieces.push(r.text.clone());
        }
        let dup = self.has(Misbehaviour::DuplicateStreamText);
        for p in pieces {
            events.push(Ok(ChatEvent::TextDelta { text: p.clone() }));
            if dup {
                events.push(Ok(ChatEvent::TextDelta { text: p }));
            }
        }
        for call in &r.tool_calls {
            events.push(Ok(ChatEvent::ToolCall { call: call.clone() }));
        }
        events.push(Ok(ChatEvent::Usage {
            usage: r.meta.usage.clone(),
        }));
        if fault == Some(Fault::StreamCut) {
            events.truncate(2.min(events.len()));
            events.push(Err(fault_error(Fault::StreamCut, false)));
        } else if !self.has(Misbehaviour::NoFinishedEvent) {
            events.push(Ok(ChatEvent::Finished {
                finish_reason: r.finish_reason.clone(),
                meta: r.meta.clone(),
            }));
        }
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[async_trait]
impl Forecaster for Handle {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        self.enter(Capability::Forecast, false).await?;
        req.validate()?;
        let cross = self.has(Misbehaviour::CrossingQuantiles);
        let out = req
            .series
            .iter()
            .map(|s| {
                if let Err(e) = s.validate(req.horizon) {
                    return SeriesForecast::failed(s.id.clone(), e);
                }
                if s.values.is_empty() {
                    return SeriesForecast::failed(
                        s.id.clone(),
                        Error::invalid_request(format!("series {:?} is empty", s.id)),
                    );
                }
                let m = s.season_length();
                let n = s.values.len();
                let point: Vec<f64> = (0..req.horizon)
                    .map(|h| {
                        if n >= m {
                            s.values[n - m + (h % m)]
                        } else {
                            s.values[n - 1]
                        }
                    })
                    .collect();
                let diffs: Vec<f64> = s.values.windows(2).map(|w| w[1] - w[0]).collect();
                let sigma = if diffs.is_empty() {
                    0.0
                } else {
                    (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt()
                };
                let quantiles = req
                    .quantiles
                    .iter()
                    .map(|&q| {
                        let z = normal_quantile(q) * if cross { -1.0 } else { 1.0 };
                        let v = point
                            .iter()
                            .enumerate()
                            .map(|(h, p)| p + z * sigma * ((h + 1) as f64).sqrt())
                            .collect();
                        QuantileForecast::new(q, v)
                    })
                    .collect();
                SeriesForecast::new(s.id.clone(), point, "seasonal_naive")
                    .with_quantiles(quantiles)
                    .with_timestamps(s.future_timestamps(req.horizon))
            })
            .collect();
        Ok(ForecastResponse::new(
            out,
            self.meta()
                .with_usage(Usage::new().with_units(req.series.len() as u64)),
        ))
    }
}

/// Builds [`ScriptedProvider`]s from config sections of `kind = "scripted"`, so routes and
/// profiles can be tested without any vendor.
///
/// ```toml
/// [providers.fake_vendor]
/// kind = "scripted"
/// capabilities = ["search", "chat"]   # default: all four
/// jurisdiction = "SG"                 # makes it a remote provider in that jurisdiction
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptedFactory;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ScriptedOptions {
    capabilities: Option<Vec<String>>,
    jurisdiction: Option<String>,
}

impl ScriptedFactory {
    fn parse(cfg: &crate::ProviderConfig) -> Result<(Capabilities, ScriptedOptions)> {
        let o: ScriptedOptions = cfg.options_as()?;
        let caps = match &o.capabilities {
            None => Capabilities::all(),
            Some(list) => {
                let mut c = Capabilities::none();
                for (i, name) in list.iter().enumerate() {
                    match Capability::parse(name) {
                        Some(Capability::Search) => c = c.with_search(),
                        Some(Capability::Recommend) => c = c.with_recommend(),
                        Some(Capability::Chat) => c = c.with_chat(true, true, true, true),
                        Some(Capability::Forecast) => c = c.with_forecast(),
                        _ => {
                            return Err(Error::config(format!(
                                "{}[{i}]: unknown capability {name:?} (expected search, recommend, chat or forecast)",
                                cfg.key_path("capabilities")
                            )));
                        }
                    }
                }
                c
            }
        };
        Ok((caps, o))
    }
}

#[async_trait]
impl crate::AdapterFactory for ScriptedFactory {
    fn kind(&self) -> &str {
        "scripted"
    }
    fn capabilities(&self, cfg: &crate::ProviderConfig) -> Result<Capabilities> {
        Ok(Self::parse(cfg)?.0)
    }
    async fn build(&self, ctx: crate::BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let (caps, o) = Self::parse(ctx.provider)?;
        let name = ctx.provider.name();
        let info = match o.jurisdiction {
            Some(j) => ProviderInfo::remote(
                name,
                "scripted",
                ctx.provider.region().map(str::to_owned),
                Some(Jurisdiction::new(j)),
                caps,
            ),
            None => ProviderInfo::local(name, "scripted", caps),
        };
        Ok(Arc::new(ScriptedProvider::from_info(info)))
    }
}
