//! The PAI-Rec engine as a [`Recommender`]: kind `pairec` (Alibaba's recommended engine for
//! new builds).
//!
//! - **recommend**: `POST {endpoint}/api/rec/feed` with `uid`, `size`, `scene_id`,
//!   `features` (from `provider_options.features`), `item_id` (the anchor, for related-item
//!   scenes) and `debug: false`. On EAS the endpoint is the service URL,
//!   `https://{uid}.{region}.pai-eas.aliyuncs.com/api/predict/{service}`, and the EAS token is
//!   sent raw in `Authorization` (`api_key_env`); a self-hosted engine may need no token.
//! - **in-body codes** (the engine answers HTTP 200 either way): `200` success; `299` success
//!   with fewer items than asked ("items size not enough"); `400` `InvalidRequest`, not
//!   retryable; `500` `Unavailable`, retryable (the retry layer tries again); any other code
//!   `Unexpected`.
//! - **trace id**: the response's `request_id`; the `experiment_id` is remembered with it so
//!   feedback events can carry both.
//! - **record**: PAI-Rec learns from behaviour tables the merchant feeds (typically from
//!   Simple Log Service). With `behavior_log_url` set to a logstore's web-tracking URL
//!   (`https://{project}.{region}.log.aliyuncs.com/logstores/{logstore}/track`, web tracking
//!   enabled on the logstore), each event is written there as one log with `user_id`,
//!   `item_id`, `event`, `value`, `scene_id`, `request_id`, `exp_id` and `event_time`; without
//!   it `record` answers `Unsupported` naming the key.
//! - **filters** are not supported (candidate filtering is engine configuration): a request
//!   with filters gets `Unsupported`.
//!
//! ```toml
//! [providers.pairec]
//! kind = "pairec"
//! region = "ap-southeast-1"
//! endpoint = "https://123456789.ap-southeast-1.pai-eas.aliyuncs.com/api/predict/shop_rec"
//! api_key_env = "PAIREC_EAS_TOKEN"
//! behavior_log_url = "https://shop-logs.ap-southeast-1.log.aliyuncs.com/logstores/behavior/track"
//! scenes = { home = "home_feed" }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Error, ErrorKind, Event, Forecaster,
    Provider, ProviderConfig, ProviderInfo, Reason, ReasonKind, RecommendRequest,
    RecommendResponse, RecommendedItem, Recommender, ResponseMeta, Result, Searcher,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::service::{self, Endpoint, TraceBook, TraceEntry};

/// The `kind` of the PAI-Rec adapter.
pub const KIND: &str = "pairec";

/// Options of a `[providers.NAME]` section of kind `pairec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaiRecConfig {
    /// The engine's base URL (required); `/api/rec/feed` is appended.
    pub endpoint: String,
    /// merchant-ai scene name to PAI-Rec scene id; unmapped scenes are sent by name.
    pub scenes: BTreeMap<String, String>,
    /// The scene of events that quote no known recommendation. Default `home`.
    pub default_scene: String,
    /// The uid sent when a request has no subject. Default `anonymous`.
    pub anonymous_user: String,
    /// A Simple Log Service web-tracking URL that behaviour is written to.
    pub behavior_log_url: Option<String>,
    /// The `__topic__` of behaviour logs. Default `merchant-ai`.
    pub behavior_topic: String,
    /// Recent responses remembered for feedback trace fields. Default 10 000.
    pub trace_memory: usize,
    /// Where the data is processed, overriding the region's jurisdiction.
    pub jurisdiction: Option<String>,
    /// Whole-request timeout in milliseconds. Default 5 000.
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds. Default 3 000.
    pub connect_timeout_ms: u64,
}

impl Default for PaiRecConfig {
    fn default() -> Self {
        PaiRecConfig {
            endpoint: String::new(),
            scenes: BTreeMap::new(),
            default_scene: "home".into(),
            anonymous_user: "anonymous".into(),
            behavior_log_url: None,
            behavior_topic: "merchant-ai".into(),
            trace_memory: 10_000,
            jurisdiction: None,
            timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
        }
    }
}

impl PaiRecConfig {
    /// Checks the options; the error names the key.
    pub fn validate(&self, cfg: &ProviderConfig) -> Result<()> {
        if self.endpoint.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: the PAI-Rec engine URL is required",
                cfg.key_path("endpoint")
            )));
        }
        Endpoint::parse(&self.endpoint, &cfg.key_path("endpoint"))?;
        if let Some(u) = &self.behavior_log_url {
            Endpoint::parse(u, &cfg.key_path("behavior_log_url"))?;
        }
        if self.anonymous_user.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: must not be empty",
                cfg.key_path("anonymous_user")
            )));
        }
        Ok(())
    }

    fn scene(&self, name: &str) -> String {
        self.scenes
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }
}

/// A parsed feed answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    /// The in-body code (200 or 299).
    pub code: i64,
    /// `request_id`.
    pub request_id: Option<String>,
    /// `experiment_id`.
    pub experiment_id: Option<String>,
    /// `(item_id, score, retrieve_id)`, in the engine's order.
    pub items: Vec<(String, Option<f64>, String)>,
}

/// Parses a feed answer and its in-body code (see the module docs for the mapping).
pub fn parse_feed(body: &[u8]) -> Result<Feed> {
    let v = service::json_body(KIND, body)?;
    let code = v
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.trim().parse().ok()))
        .ok_or_else(|| Error::decode(format!("{KIND}: the answer has no numeric code")))?;
    let rid = service::field(&v, &["request_id", "requestId"]);
    let msg = service::field(&v, &["msg", "message"]).unwrap_or_default();
    let fail = |kind: ErrorKind| {
        let mut e = Error::new(kind, format!("{KIND}: code {code}: {}", service::cut(&msg)))
            .with_vendor_code(code.to_string());
        if let Some(r) = &rid {
            e = e.with_request_id(r.clone());
        }
        e
    };
    match code {
        200 | 299 => {}
        400 => return Err(fail(ErrorKind::InvalidRequest)),
        500 => return Err(fail(ErrorKind::Unavailable)),
        _ => return Err(fail(ErrorKind::Unexpected)),
    }
    let list = match v.get("items") {
        Some(Value::Array(a)) => a.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(Error::decode(format!("{KIND}: items is not a list"))),
    };
    let mut items = Vec::with_capacity(list.len());
    for it in list {
        let id = service::field(it, &["item_id", "itemId"])
            .ok_or_else(|| Error::decode(format!("{KIND}: an item has no item_id")))?;
        let score = it
            .get("score")
            .and_then(|s| s.as_f64().or_else(|| s.as_str()?.parse().ok()))
            .filter(|s| s.is_finite());
        let retrieve = service::field(it, &["retrieve_id"]).unwrap_or_default();
        items.push((id, score, retrieve));
    }
    Ok(Feed {
        code,
        request_id: rid,
        experiment_id: service::field(&v, &["experiment_id", "exp_id"]),
        items,
    })
}

struct Inner {
    name: String,
    http: reqwest::Client,
    feed_url: String,
    cfg: PaiRecConfig,
    token: Option<SecretString>,
    traces: Mutex<TraceBook>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaiRecRecommender")
            .field("name", &self.name)
            .field("feed_url", &self.feed_url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// The PAI-Rec recommender.
#[derive(Debug, Clone)]
pub struct PaiRecRecommender(Arc<Inner>);

impl PaiRecRecommender {
    fn tag(&self, e: Error, op: &str) -> Error {
        e.with_provider(self.0.name.clone()).with_operation(op)
    }

    fn log_entry(&self, e: &Event) -> Value {
        let cfg = &self.0.cfg;
        let known = e.trace_id.as_deref().and_then(|t| {
            self.0
                .traces
                .lock()
                .ok()?
                .get(t, e.product.as_str())
                .cloned()
        });
        let (rid, exp, scene) = match known {
            Some(t) => (t.trace_id, t.trace_info, t.scene),
            None => (
                e.trace_id.clone().unwrap_or_default(),
                String::new(),
                cfg.scene(&cfg.default_scene),
            ),
        };
        let value = match e.value {
            Some(v) => v.to_string(),
            None => e.quantity.to_string(),
        };
        // Web tracking takes string values only.
        json!({
            "user_id": e.subject.as_str(),
            "item_id": e.product.as_str(),
            "event": e.kind.as_str(),
            "value": value,
            "scene_id": scene,
            "request_id": rid,
            "exp_id": exp,
            "event_time": e.timestamp.timestamp().to_string(),
        })
    }
}

#[async_trait]
impl Recommender for PaiRecRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let Some(url) = &self.0.cfg.behavior_log_url else {
            return Err(self.tag(
                Error::unsupported(format!(
                    "providers.{}.behavior_log_url: PAI-Rec learns from behaviour tables; set \
                     a Simple Log Service web-tracking URL to write events there",
                    self.0.name
                )),
                "record",
            ));
        };
        for chunk in events.chunks(1000) {
            let logs: Vec<Value> = chunk.iter().map(|e| self.log_entry(e)).collect();
            let body = serde_json::to_vec(&json!({
                "__topic__": self.0.cfg.behavior_topic,
                "__source__": "merchant-ai",
                "__logs__": logs,
            }))?;
            let rb = self
                .0
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("x-log-apiversion", "0.6.0")
                .header("x-log-bodyrawsize", body.len().to_string())
                .body(body);
            tracing::debug!(provider = %self.0.name, events = chunk.len(), "pairec behaviour log");
            service::exchange("sls", rb)
                .await
                .map_err(|e| self.tag(e, "record"))?;
        }
        Ok(())
    }

    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let started = Instant::now();
        req.validate().map_err(|e| self.tag(e, "recommend"))?;
        if !req.filters.is_empty() {
            return Err(self.tag(
                Error::unsupported(
                    "filters: PAI-Rec filters candidates in its engine configuration",
                ),
                "recommend",
            ));
        }
        let cfg = &self.0.cfg;
        let scene = cfg.scene(req.scene.as_str());
        let uid = req
            .subject()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| cfg.anonymous_user.clone());
        let mut skip: HashSet<&str> = req.exclude.iter().map(|p| p.as_str()).collect();
        if let Some(a) = &req.anchor {
            skip.insert(a.as_str());
        }
        let mut body = json!({
            "uid": uid,
            "size": req.limit + skip.len(),
            "scene_id": scene,
            "debug": false,
        });
        if let Some(f) = req.provider_options.get("features") {
            body["features"] = f.clone();
        }
        if let Some(a) = &req.anchor {
            body["item_id"] = json!(a.as_str());
        }
        let bytes = serde_json::to_vec(&body)?;
        let mut rb = self
            .0
            .http
            .post(&self.0.feed_url)
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(t) = &self.0.token {
            let mut v =
                reqwest::header::HeaderValue::from_str(t.expose_secret()).map_err(|_| {
                    self.tag(
                        Error::config("the PAI-Rec token is not a valid header value"),
                        "recommend",
                    )
                })?;
            v.set_sensitive(true);
            rb = rb.header("authorization", v);
        }
        tracing::debug!(provider = %self.0.name, limit = req.limit, "pairec feed");
        let (_, _, resp) = service::exchange(KIND, rb)
            .await
            .map_err(|e| self.tag(e, "recommend"))?;
        let feed = parse_feed(&resp).map_err(|e| self.tag(e, "recommend"))?;
        if feed.code == 299 {
            tracing::debug!(provider = %self.0.name, "pairec: fewer items than asked (299)");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut book = Vec::new();
        let mut prev = f32::INFINITY;
        for (i, (id, score, retrieve)) in feed.items.into_iter().enumerate() {
            if skip.contains(id.as_str()) || !seen.insert(id.clone()) {
                continue;
            }
            if out.len() == req.limit {
                break;
            }
            let s = score
                .map(|s| s as f32)
                .unwrap_or(1.0 / (1.0 + i as f32))
                .min(prev);
            prev = s;
            let detail = if retrieve.is_empty() {
                "PAI-Rec".to_owned()
            } else {
                format!("PAI-Rec {}", service::cut(&retrieve))
            };
            book.push((
                id.clone(),
                TraceEntry {
                    trace_id: feed.request_id.clone().unwrap_or_default(),
                    trace_info: feed.experiment_id.clone().unwrap_or_default(),
                    scene: scene.clone(),
                },
            ));
            out.push(RecommendedItem::new(
                id,
                s,
                Reason::new(ReasonKind::Model, detail),
            ));
        }
        if let (Some(t), Ok(mut b)) = (&feed.request_id, self.0.traces.lock()) {
            b.insert(t, book);
        }
        let mut meta = ResponseMeta::new(self.0.name.clone()).with_latency(started.elapsed());
        meta.request_id = feed.request_id.clone();
        meta.model = feed.experiment_id.clone();
        let mut r = RecommendResponse::new(out, meta);
        if let Some(t) = feed.request_id {
            r = r.with_trace_id(t);
        }
        Ok(r)
    }
}

/// A provider offering PAI-Rec as its recommender.
#[derive(Debug)]
pub struct PaiRecProvider {
    info: ProviderInfo,
    rec: Arc<PaiRecRecommender>,
}

impl PaiRecProvider {
    /// Builds the provider; `token` goes raw into `Authorization` and nowhere else.
    pub fn new(cfg: &ProviderConfig, c: PaiRecConfig, token: Option<SecretString>) -> Result<Self> {
        c.validate(cfg)?;
        let (region, j) = service::residency(cfg, c.jurisdiction.as_deref())?;
        let http = service::client(cfg.name(), c.timeout_ms, c.connect_timeout_ms)?;
        let feed_url = format!("{}/api/rec/feed", c.endpoint.trim().trim_end_matches('/'));
        let info = ProviderInfo::remote(
            cfg.name(),
            KIND,
            region,
            Some(j),
            Capabilities::none().with_recommend(),
        );
        let traces = Mutex::new(TraceBook::new(c.trace_memory));
        Ok(PaiRecProvider {
            info,
            rec: Arc::new(PaiRecRecommender(Arc::new(Inner {
                name: cfg.name().to_owned(),
                http,
                feed_url,
                cfg: c,
                token,
                traces,
            }))),
        })
    }
}

impl Provider for PaiRecProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        None
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        Some(self.rec.clone())
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_alibaba::pairec_factory())`.
pub fn factory() -> PaiRecFactory {
    PaiRecFactory
}

/// Builds [`PaiRecProvider`]s from `kind = "pairec"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaiRecFactory;

#[async_trait]
impl AdapterFactory for PaiRecFactory {
    fn kind(&self) -> &str {
        KIND
    }
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: PaiRecConfig = cfg.options_as()?;
        c.validate(cfg)?;
        service::residency(cfg, c.jurisdiction.as_deref())?;
        Ok(Capabilities::none().with_recommend())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let c: PaiRecConfig = ctx.provider.options_as()?;
        let token = ctx.provider.api_key()?;
        Ok(Arc::new(PaiRecProvider::new(ctx.provider, c, token)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = br#"{"code":200,"msg":"success","request_id":"c46c3f5e-6b32-4b5c-8aac-59a319941248","size":2,
 "experiment_id":"ER2_L1#EG1#E2","items":[{"item_id":"248791390","score":0.91,"retrieve_id":"u2i"},
                                          {"item_id":"1111","score":0.77,"retrieve_id":"item_list"}]}"#;

    #[test]
    fn code_200() {
        let f = parse_feed(OK).unwrap();
        assert_eq!(f.code, 200);
        assert_eq!(
            f.request_id.as_deref(),
            Some("c46c3f5e-6b32-4b5c-8aac-59a319941248")
        );
        assert_eq!(f.experiment_id.as_deref(), Some("ER2_L1#EG1#E2"));
        assert_eq!(f.items[0], ("248791390".into(), Some(0.91), "u2i".into()));
        assert_eq!(f.items.len(), 2);
    }

    #[test]
    fn code_299_still_returns_items() {
        let f = parse_feed(br#"{"code":299,"msg":"items size not enough","request_id":"r","items":[{"item_id":"1","score":0.5}]}"#).unwrap();
        assert_eq!(f.code, 299);
        assert_eq!(f.items.len(), 1);
    }

    #[test]
    fn code_400_and_500() {
        let e = parse_feed(br#"{"code":400,"msg":"uid not empty","request_id":"r4"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(!e.is_retryable());
        assert_eq!(e.vendor_code(), Some("400"));
        assert_eq!(e.request_id(), Some("r4"));
        let e = parse_feed(br#"{"code":500,"msg":"engine error","request_id":"r5"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        let e = parse_feed(br#"{"code":701,"msg":"?"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert_eq!(
            parse_feed(br#"{"msg":"x"}"#).unwrap_err().kind(),
            ErrorKind::Decode
        );
        assert_eq!(parse_feed(b"oops").unwrap_err().kind(), ErrorKind::Decode);
    }
}
