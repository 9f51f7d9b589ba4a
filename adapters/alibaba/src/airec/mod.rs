//! AIRec (API 2020-11-26) as a [`Recommender`]: kind `airec`.
//!
//! AIRec is documented but treated by Alibaba as legacy; [PAI-Rec](crate::pairec) is the
//! engine for new builds. Both are separate kinds so each section only takes its own keys.
//!
//! - **recommend**: `GET /v2/openapi/instances/{instance}/actions/recommend` with `userId`,
//!   `sceneId`, `returnCount` (and `items` = the anchor), ACS3-signed (`x-acs-action:
//!   Recommend`, `x-acs-version: 2020-11-26`; `signature = "roa"` selects the legacy
//!   HMAC-SHA1 scheme instead). The anchor and `exclude` are removed from the
//!   answer (the adapter asks for that many more). Scores are the vendor's `weight`, kept in
//!   the vendor's order. The response's `trace_id` is the first item's `traceInfo`.
//! - **record**: `POST /v2/openapi/instances/{instance}/tables/behavior/actions/bulk`
//!   (`x-acs-action: PushDocument`) with one `add` per event, 100 per request. An event whose
//!   `trace_id` quotes a recent recommend response gets that item's `trace_id`/`trace_info`
//!   and scene (`"ali"`: the item came from AIRec); otherwise `trace_id` is `"selfhold"` and
//!   the event's own trace id, if any, is sent as `trace_info`. Kinds: view and click
//!   `click`, add to cart `cart`, purchase `buy`, rating `evaluate`; returns have no AIRec
//!   behaviour and are not sent.
//! - **filters** are not supported (AIRec filters candidates by its own scene rules): a
//!   request with filters gets `Unsupported`, so a route falls through to a provider that can.
//! - **users**: AIRec needs a user id; without a subject, `anonymous_user` is sent.
//!
//! ```toml
//! [providers.airec]
//! kind = "airec"
//! region = "cn-hangzhou"                   # endpoint defaults to airec.{region}.aliyuncs.com
//! instance_id = "airec-cn-xxxxxxxx"
//! access_key_id_env = "ALIBABA_CLOUD_ACCESS_KEY_ID"
//! access_key_secret_env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
//! scenes = { product_page = "detail" }     # merchant-ai scene -> AIRec scene id
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Error, Event, EventKind, Forecaster,
    Provider, ProviderConfig, ProviderInfo, Reason, ReasonKind, RecommendRequest,
    RecommendResponse, RecommendedItem, Recommender, ResponseMeta, Result, Searcher,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::service::{self, Endpoint, TraceBook, TraceEntry};
use crate::sign::{Signer, canonical_query, encode_path};

/// The `kind` of the AIRec adapter.
pub const KIND: &str = "airec";

/// The API version signed into every call.
pub const API_VERSION: &str = "2020-11-26";

/// Behaviour records per push request.
pub const PUSH_BATCH: usize = 100;

/// Options of a `[providers.NAME]` section of kind `airec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AirecConfig {
    /// The API endpoint; default `https://airec.{region}.aliyuncs.com`.
    pub endpoint: Option<String>,
    /// The AIRec instance id (required).
    pub instance_id: String,
    /// The signature scheme: `acs3` (ACS3-HMAC-SHA256, default) or `roa` (the legacy
    /// HMAC-SHA1 `acs AK:sig` scheme, for gateways that predate ACS3).
    pub signature: String,
    /// merchant-ai scene name (`home`, `product_page`, ...) to AIRec scene id; unmapped scenes
    /// are sent by name.
    pub scenes: BTreeMap<String, String>,
    /// The scene of events that quote no known recommendation. Default `home`.
    pub default_scene: String,
    /// The `item_type` of pushed behaviour. Default `item`.
    pub item_type: String,
    /// The `platform` of pushed behaviour. Default `web`.
    pub platform: String,
    /// The user id sent when a request has no subject. Default `anonymous`.
    pub anonymous_user: String,
    /// Recent responses remembered for feedback trace fields. Default 10 000.
    pub trace_memory: usize,
    /// The env var holding the AccessKey id.
    pub access_key_id_env: Option<String>,
    /// The env var holding the AccessKey secret.
    pub access_key_secret_env: Option<String>,
    /// The env var holding an STS token (optional).
    pub security_token_env: Option<String>,
    /// Where the data is processed, overriding the region's jurisdiction.
    pub jurisdiction: Option<String>,
    /// Whole-request timeout in milliseconds. Default 10 000.
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds. Default 5 000.
    pub connect_timeout_ms: u64,
}

impl Default for AirecConfig {
    fn default() -> Self {
        AirecConfig {
            endpoint: None,
            instance_id: String::new(),
            signature: "acs3".into(),
            scenes: BTreeMap::new(),
            default_scene: "home".into(),
            item_type: "item".into(),
            platform: "web".into(),
            anonymous_user: "anonymous".into(),
            trace_memory: 10_000,
            access_key_id_env: None,
            access_key_secret_env: None,
            security_token_env: None,
            jurisdiction: None,
            timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
        }
    }
}

impl AirecConfig {
    /// Checks the options; the error names the key.
    pub fn validate(&self, cfg: &ProviderConfig) -> Result<()> {
        if self.instance_id.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: the AIRec instance id is required",
                cfg.key_path("instance_id")
            )));
        }
        if self.anonymous_user.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: must not be empty",
                cfg.key_path("anonymous_user")
            )));
        }
        if self.signature != "acs3" && self.signature != "roa" {
            return Err(Error::config(format!(
                "{}: must be \"acs3\" or \"roa\", got {:?}",
                cfg.key_path("signature"),
                self.signature
            )));
        }
        self.endpoint(cfg)?;
        Ok(())
    }

    fn endpoint(&self, cfg: &ProviderConfig) -> Result<Endpoint> {
        match (&self.endpoint, cfg.region()) {
            (Some(e), _) => Endpoint::parse(e, &cfg.key_path("endpoint")),
            (None, Some(r)) => Endpoint::parse(
                &format!("https://airec.{r}.aliyuncs.com"),
                &cfg.key_path("region"),
            ),
            (None, None) => Err(Error::config(format!(
                "{}: set `endpoint` or `region`",
                cfg.key_path("endpoint")
            ))),
        }
    }

    fn scene(&self, name: &str) -> String {
        self.scenes
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }
}

/// The AIRec behaviour type of an event kind (`None`: not sent).
pub fn behaviour(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::View | EventKind::Click => Some("click"),
        EventKind::AddToCart => Some("cart"),
        EventKind::Purchase => Some("buy"),
        EventKind::Rating => Some("evaluate"),
        _ => None,
    }
}

/// One parsed recommended item of an AIRec answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AirecItem {
    /// `itemId`.
    pub item_id: String,
    /// `weight`, if given.
    pub weight: Option<f64>,
    /// `traceId`.
    pub trace_id: String,
    /// `traceInfo`.
    pub trace_info: String,
    /// `matchInfo`.
    pub match_info: String,
}

/// Parses a recommend answer: the request id and the items. A body without a `result` list,
/// or with an error `code`, is an error.
pub fn parse_recommend(body: &[u8]) -> Result<(Option<String>, Vec<AirecItem>)> {
    let v = service::json_body(KIND, body)?;
    let rid = service::field(&v, &["requestId", "RequestId", "request_id"]);
    let code = service::field(&v, &["code", "Code"]);
    if let Some(c) = &code
        && c != "200"
        && c != "0"
        && !c.eq_ignore_ascii_case("success")
        && v.get("result").is_none_or(Value::is_null)
    {
        let msg = service::field(&v, &["message", "Message"]).unwrap_or_default();
        let mut e = Error::new(
            service::kind_for(200, c),
            format!("{KIND}: error code in the answer: {}", service::cut(&msg)),
        )
        .with_vendor_code(c.clone());
        if let Some(r) = rid {
            e = e.with_request_id(r);
        }
        return Err(e);
    }
    let list = v
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::decode(format!("{KIND}: the answer has no result list")))?;
    let mut items = Vec::with_capacity(list.len());
    for it in list {
        let Some(id) = service::field(it, &["itemId", "item_id"]) else {
            return Err(Error::decode(format!(
                "{KIND}: a result item has no itemId"
            )));
        };
        items.push(AirecItem {
            item_id: id,
            weight: it
                .get("weight")
                .and_then(|w| w.as_f64().or_else(|| w.as_str()?.parse().ok()))
                .filter(|w| w.is_finite()),
            trace_id: service::field(it, &["traceId"]).unwrap_or_else(|| "ali".into()),
            trace_info: service::field(it, &["traceInfo"]).unwrap_or_default(),
            match_info: service::field(it, &["matchInfo"]).unwrap_or_default(),
        });
    }
    Ok((rid, items))
}

struct Inner {
    name: String,
    http: reqwest::Client,
    endpoint: Endpoint,
    cfg: AirecConfig,
    signer: Signer,
    traces: Mutex<TraceBook>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirecRecommender")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint.origin)
            .field("instance_id", &self.cfg.instance_id)
            .finish_non_exhaustive()
    }
}

/// The AIRec recommender.
#[derive(Debug, Clone)]
pub struct AirecRecommender(Arc<Inner>);

impl AirecRecommender {
    fn tag(&self, e: Error, op: &str) -> Error {
        e.with_provider(self.0.name.clone()).with_operation(op)
    }

    fn path(&self, tail: &str) -> String {
        format!(
            "{}/v2/openapi/instances/{}{tail}",
            self.0.endpoint.base_path,
            encode_path(&self.0.cfg.instance_id)
        )
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        action: &str,
        body: Option<Vec<u8>>,
    ) -> reqwest::RequestBuilder {
        let ct = body.as_ref().map(|_| "application/json; charset=utf-8");
        let bytes = body.clone().unwrap_or_default();
        let headers = if self.0.cfg.signature == "roa" {
            self.0
                .signer
                .roa(method, path, query, action, API_VERSION, ct, &bytes)
        } else {
            self.0.signer.acs3(
                method,
                &self.0.endpoint.host,
                path,
                query,
                action,
                API_VERSION,
                ct,
                &bytes,
            )
        };
        let q = canonical_query(query);
        let url = if q.is_empty() {
            format!("{}{path}", self.0.endpoint.origin)
        } else {
            format!("{}{path}?{q}", self.0.endpoint.origin)
        };
        let mut rb = if method == "POST" {
            self.0.http.post(url).body(bytes)
        } else {
            self.0.http.get(url)
        };
        for (k, v) in &headers {
            // reqwest sets `host` itself from the URL; the signed value is the same.
            if k != "host" {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        rb.header("accept", "application/json")
    }

    fn behaviour_doc(&self, e: &Event) -> Option<Value> {
        let bhv = behaviour(e.kind)?;
        let cfg = &self.0.cfg;
        let known = e.trace_id.as_deref().and_then(|t| {
            self.0
                .traces
                .lock()
                .ok()?
                .get(t, e.product.as_str())
                .cloned()
        });
        let (trace_id, trace_info, scene) = match (known, &e.trace_id) {
            (Some(t), _) => (t.trace_id, t.trace_info, t.scene),
            (None, Some(t)) => ("selfhold".into(), t.clone(), cfg.scene(&cfg.default_scene)),
            (None, None) => (
                "selfhold".into(),
                String::new(),
                cfg.scene(&cfg.default_scene),
            ),
        };
        let value = match e.kind {
            EventKind::Rating => e.value.unwrap_or(0.0).to_string(),
            _ => e.quantity.max(1).to_string(),
        };
        Some(json!({"cmd": "add", "fields": {
            "user_id": e.subject.as_str(),
            "item_id": e.product.as_str(),
            "item_type": cfg.item_type,
            "bhv_type": bhv,
            "bhv_value": value,
            "trace_id": trace_id,
            "trace_info": trace_info,
            "scene_id": scene,
            "platform": cfg.platform,
            "bhv_time": e.timestamp.timestamp().to_string(),
        }}))
    }
}

#[async_trait]
impl Recommender for AirecRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let docs: Vec<Value> = events
            .iter()
            .filter_map(|e| self.behaviour_doc(e))
            .collect();
        let path = self.path("/tables/behavior/actions/bulk");
        for chunk in docs.chunks(PUSH_BATCH) {
            let body = serde_json::to_vec(chunk)?;
            let rb = self.request("POST", &path, &[], "PushDocument", Some(body));
            tracing::debug!(provider = %self.0.name, events = chunk.len(), "airec push");
            let (_, _, body) = service::exchange(KIND, rb)
                .await
                .map_err(|e| self.tag(e, "record"))?;
            let v = service::json_body(KIND, &body).map_err(|e| self.tag(e, "record"))?;
            if v.get("result").and_then(Value::as_bool) == Some(false) {
                let msg = service::field(&v, &["message", "Message"]).unwrap_or_default();
                return Err(self.tag(
                    Error::new(
                        merchant_ai::ErrorKind::Unexpected,
                        format!("{KIND}: the push was refused: {}", service::cut(&msg)),
                    ),
                    "record",
                ));
            }
        }
        Ok(())
    }

    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let started = Instant::now();
        req.validate().map_err(|e| self.tag(e, "recommend"))?;
        if !req.filters.is_empty() {
            return Err(self.tag(
                Error::unsupported(
                    "filters: AIRec filters candidates by its scene rules; configure them there",
                ),
                "recommend",
            ));
        }
        let cfg = &self.0.cfg;
        let scene = cfg.scene(req.scene.as_str());
        let user = req
            .subject()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| cfg.anonymous_user.clone());
        let mut skip: HashSet<&str> = req.exclude.iter().map(|p| p.as_str()).collect();
        if let Some(a) = &req.anchor {
            skip.insert(a.as_str());
        }
        let count = (req.limit + skip.len()).min(RecommendRequest::MAX_LIMIT + 50);
        let mut query = vec![
            ("userId".to_owned(), user),
            ("sceneId".to_owned(), scene.clone()),
            ("returnCount".to_owned(), count.to_string()),
        ];
        if let Some(a) = &req.anchor {
            query.push(("items".to_owned(), a.as_str().to_owned()));
        }
        let path = self.path("/actions/recommend");
        let rb = self.request("GET", &path, &query, "Recommend", None);
        tracing::debug!(provider = %self.0.name, limit = req.limit, "airec recommend");
        let (_, headers, body) = service::exchange(KIND, rb)
            .await
            .map_err(|e| self.tag(e, "recommend"))?;
        let (rid, items) = parse_recommend(&body).map_err(|e| self.tag(e, "recommend"))?;
        let rid = rid.or_else(|| {
            headers
                .get("x-acs-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut book = Vec::new();
        let mut prev = f32::INFINITY;
        for (i, it) in items.into_iter().enumerate() {
            if skip.contains(it.item_id.as_str()) || !seen.insert(it.item_id.clone()) {
                continue;
            }
            if out.len() == req.limit {
                break;
            }
            let score = it
                .weight
                .map(|w| w as f32)
                .unwrap_or(1.0 / (1.0 + i as f32))
                .min(prev);
            prev = score;
            let detail = if it.match_info.is_empty() {
                "AIRec".to_owned()
            } else {
                format!("AIRec {}", service::cut(&it.match_info))
            };
            book.push((
                it.item_id.clone(),
                TraceEntry {
                    trace_id: it.trace_id.clone(),
                    trace_info: it.trace_info.clone(),
                    scene: scene.clone(),
                },
            ));
            out.push(RecommendedItem::new(
                it.item_id,
                score,
                Reason::new(ReasonKind::Model, detail),
            ));
        }
        let trace = book
            .first()
            .map(|(_, t)| t.trace_info.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| rid.clone());
        if let (Some(t), Ok(mut b)) = (&trace, self.0.traces.lock()) {
            b.insert(t, book);
        }
        let mut meta = ResponseMeta::new(self.0.name.clone()).with_latency(started.elapsed());
        meta.request_id = rid;
        let mut r = RecommendResponse::new(out, meta);
        if let Some(t) = trace {
            r = r.with_trace_id(t);
        }
        Ok(r)
    }
}

/// A provider offering AIRec as its recommender.
#[derive(Debug)]
pub struct AirecProvider {
    info: ProviderInfo,
    rec: Arc<AirecRecommender>,
}

impl AirecProvider {
    /// Builds the provider from its section and a signer (tests pass one with a fixed clock
    /// and nonce).
    pub fn new(cfg: &ProviderConfig, c: AirecConfig, signer: Signer) -> Result<Self> {
        c.validate(cfg)?;
        let (region, j) = service::residency(cfg, c.jurisdiction.as_deref())?;
        let endpoint = c.endpoint(cfg)?;
        let http = service::client(cfg.name(), c.timeout_ms, c.connect_timeout_ms)?;
        let info = ProviderInfo::remote(
            cfg.name(),
            KIND,
            region,
            Some(j),
            Capabilities::none().with_recommend(),
        );
        let traces = Mutex::new(TraceBook::new(c.trace_memory));
        Ok(AirecProvider {
            info,
            rec: Arc::new(AirecRecommender(Arc::new(Inner {
                name: cfg.name().to_owned(),
                http,
                endpoint,
                cfg: c,
                signer,
                traces,
            }))),
        })
    }
}

impl Provider for AirecProvider {
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

/// The factory to register: `Registry::new().with(merchant_ai_alibaba::airec_factory())`.
pub fn factory() -> AirecFactory {
    AirecFactory
}

/// Builds [`AirecProvider`]s from `kind = "airec"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct AirecFactory;

#[async_trait]
impl AdapterFactory for AirecFactory {
    fn kind(&self) -> &str {
        KIND
    }
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: AirecConfig = cfg.options_as()?;
        c.validate(cfg)?;
        service::residency(cfg, c.jurisdiction.as_deref())?;
        Ok(Capabilities::none().with_recommend())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let c: AirecConfig = ctx.provider.options_as()?;
        let signer = Signer::new(service::credentials(ctx.provider)?);
        Ok(Arc::new(AirecProvider::new(ctx.provider, c, signer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use merchant_ai::ErrorKind;

    #[test]
    fn recommend_fixture() {
        let body = br#"{"requestId":"04707E49-642A-4649-827A-F8EEB07D4C27","code":"200","message":"success",
 "result":[{"itemId":"123","itemType":"item","traceId":"ali","traceInfo":"1007.62381","weight":1.0,"flowWeight":0.0,"position":0,"matchInfo":"i2i_common_common","message":"Successful"}]}"#;
        let (rid, items) = parse_recommend(body).unwrap();
        assert_eq!(rid.as_deref(), Some("04707E49-642A-4649-827A-F8EEB07D4C27"));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].item_id, "123");
        assert_eq!(items[0].trace_info, "1007.62381");
        assert_eq!(items[0].weight, Some(1.0));
        assert_eq!(items[0].match_info, "i2i_common_common");
    }

    #[test]
    fn error_code_in_a_200_and_bad_shapes() {
        let e =
            parse_recommend(br#"{"requestId":"r","code":"InvalidParameter","message":"userId"}"#)
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert_eq!(e.vendor_code(), Some("InvalidParameter"));
        let e = parse_recommend(br#"{"requestId":"r"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        let e = parse_recommend(br#"{"result":[{"weight":1}]}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert_eq!(parse_recommend(b"[").unwrap_err().kind(), ErrorKind::Decode);
    }

    #[test]
    fn behaviour_types() {
        assert_eq!(behaviour(EventKind::Purchase), Some("buy"));
        assert_eq!(behaviour(EventKind::AddToCart), Some("cart"));
        assert_eq!(behaviour(EventKind::View), Some("click"));
        assert_eq!(behaviour(EventKind::Return), None);
    }
}
