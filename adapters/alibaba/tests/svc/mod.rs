//! Loopback fakes of OpenSearch, AIRec, PAI-Rec and PAI-EAS on wiremock, behind a TCP proxy
//! that can drop connections, and a `FaultHarness` over them.
//!
//! The fakes check what each service requires before answering: OpenSearch and AIRec
//! recompute the signature from the request as received (method, path, query, headers, body)
//! with the test secret; PAI-Rec and EAS compare the raw token. A request that fails the
//! check gets the vendor's signature error, so a contract scenario fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use merchant_ai::contract::proxy::FaultProxy;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai::{Capability, ProviderConfig};
use merchant_ai_alibaba::sign::{self, Credentials, SignInput};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const AK_ID: &str = "LTAI-test-id-7777";
pub const AK_SECRET: &str = "ak-SECRET-5151-do-not-log";
pub const TOKEN: &str = "eas-TOKEN-9393-do-not-log";

pub fn creds() -> Credentials {
    Credentials::new(SecretString::from(AK_ID), SecretString::from(AK_SECRET))
}

/// Which service a harness fakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Svc {
    OpenSearch,
    Airec,
    PaiRec,
    Eas,
}

impl Svc {
    pub fn capability(self) -> Capability {
        match self {
            Svc::OpenSearch => Capability::Search,
            Svc::Airec | Svc::PaiRec => Capability::Recommend,
            Svc::Eas => Capability::Forecast,
        }
    }
}

fn headers_of(r: &Request) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

fn header(r: &Request, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn query_pairs(r: &Request) -> Vec<(String, String)> {
    r.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// What a fake saw, for header assertions in tests.
#[derive(Default)]
pub struct Seen {
    pub bodies: Mutex<Vec<(String, Value)>>,
    pub bad_signatures: AtomicUsize,
}

// ---------------------------------------------------------------- OpenSearch

/// A tiny OpenSearch: documents pushed by bulk, searched with the clause syntax the adapter
/// emits (config, query, filter, sort, aggregate).
#[derive(Clone, Default)]
pub struct OpenSearchFake {
    pub docs: Arc<Mutex<BTreeMap<String, Value>>>,
    pub seen: Arc<Seen>,
}

fn os_fail(code: i64, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status":"FAIL","request_id":"os-fail",
        "result":{"searchtime":0.0,"total":0,"num":0,"viewtotal":0,"items":[],"facet":[]},
        "errors":[{"code":code,"message":msg}],"tracer":""}))
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    let mut out = String::new();
    let mut esc = false;
    for c in inner.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

fn field_eq(doc: &Value, field: &str, want: &str) -> bool {
    match doc.get(field) {
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(want)),
        Some(Value::String(s)) => s == want,
        Some(Value::Number(n)) => n.to_string() == want,
        _ => false,
    }
}

fn term_matches(doc: &Value, term: &str) -> bool {
    let term = term.trim();
    if let Some(inner) = term.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        return inner.split(" OR ").any(|t| term_matches(doc, t));
    }
    for op in [">=", "<="] {
        if let Some((f, v)) = term.split_once(op) {
            let x = doc.get(f.trim()).and_then(Value::as_i64).unwrap_or(0);
            let v: i64 = v.trim().parse().unwrap();
            return if op == ">=" { x >= v } else { x <= v };
        }
    }
    let (f, v) = term.split_once('=').unwrap();
    field_eq(doc, f.trim(), &unquote(v))
}

fn text_score(doc: &Value, text: &str) -> f64 {
    let hay = ["title", "description", "category", "brand"]
        .iter()
        .filter_map(|f| doc.get(*f).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let words: Vec<&str> = hay
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    text.to_lowercase()
        .split_whitespace()
        .map(|t| words.iter().filter(|w| w.starts_with(t)).count() as f64)
        .sum()
}

impl OpenSearchFake {
    fn verify(&self, r: &Request) -> bool {
        let h = headers_of(r);
        let auth = header(r, "authorization").unwrap_or_default();
        let q = query_pairs(r);
        let want = sign::opensearch_authorization(
            &creds(),
            &SignInput {
                method: r.method.as_str(),
                path: r.url.path(),
                query: &q,
                headers: &h,
            },
        );
        let md5_ok = r.body.is_empty()
            || header(r, "content-md5").as_deref() == Some(sign::md5_hex(&r.body).as_str());
        let ok = auth == want
            && md5_ok
            && header(r, "x-opensearch-nonce").is_some_and(|n| n.len() >= 15)
            && header(r, "date").is_some_and(|d| d.ends_with('Z'));
        if !ok {
            self.seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }

    fn bulk(&self, r: &Request) -> ResponseTemplate {
        let cmds: Vec<Value> = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) => return os_fail(4007, "bad json"),
        };
        self.seen
            .bodies
            .lock()
            .unwrap()
            .push((r.url.path().to_owned(), Value::Array(cmds.clone())));
        let mut docs = self.docs.lock().unwrap();
        for c in cmds {
            let id = c["fields"]["id"].as_str().unwrap_or_default().to_owned();
            match c["cmd"].as_str() {
                Some("ADD") => {
                    docs.insert(id, c["fields"].clone());
                }
                Some("DELETE") => {
                    docs.remove(&id);
                }
                _ => return os_fail(4007, "unknown cmd"),
            }
        }
        ResponseTemplate::new(200)
            .set_body_json(json!({"status":"OK","request_id":"os-push","result":true,"errors":[]}))
    }

    fn search(&self, r: &Request) -> ResponseTemplate {
        let q = query_pairs(r)
            .into_iter()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v)
            .unwrap_or_default();
        let mut start = 0usize;
        let mut hit = 10usize;
        let mut text: Option<String> = None;
        let mut filters: Vec<String> = Vec::new();
        let mut sort = String::new();
        let mut aggs: Vec<String> = Vec::new();
        for clause in q.split("&&") {
            let (name, body) = clause.split_once('=').unwrap_or((clause, ""));
            match name {
                "config" => {
                    for kv in body.split(',') {
                        if let Some((k, v)) = kv.split_once(':') {
                            match k {
                                "start" => start = v.parse().unwrap(),
                                "hit" => hit = v.parse().unwrap(),
                                _ => {}
                            }
                        }
                    }
                }
                "query" => {
                    if body != "doc_type:'product'" {
                        let (_, v) = body.split_once(':').unwrap();
                        text = Some(unquote(v));
                    }
                }
                "filter" => filters = body.split(" AND ").map(str::to_owned).collect(),
                "sort" => sort = body.to_owned(),
                "aggregate" => {
                    aggs = body
                        .split(';')
                        .map(|a| {
                            a.split(',')
                                .find_map(|kv| kv.strip_prefix("group_key:"))
                                .unwrap()
                                .to_owned()
                        })
                        .collect()
                }
                _ => return os_fail(6001, "unknown clause"),
            }
        }
        let docs = self.docs.lock().unwrap();
        let mut matched: Vec<(f64, &Value)> = docs
            .values()
            .filter(|d| filters.iter().all(|f| term_matches(d, f)))
            .filter_map(|d| match &text {
                None => Some((1.0, d)),
                Some(t) => {
                    let s = text_score(d, t);
                    (s > 0.0).then_some((s, d))
                }
            })
            .collect();
        let price = |d: &Value| d["price"].as_i64().unwrap_or(0);
        let id = |d: &Value| d["id"].as_str().unwrap_or_default().to_owned();
        matched.sort_by(|a, b| {
            let by_rank = b.0.total_cmp(&a.0).then_with(|| id(a.1).cmp(&id(b.1)));
            match sort.as_str() {
                "+price;-RANK" => price(a.1).cmp(&price(b.1)).then(by_rank),
                "-price;-RANK" => price(b.1).cmp(&price(a.1)).then(by_rank),
                "-created_at;-RANK" => b.1["created_at"]
                    .as_i64()
                    .cmp(&a.1["created_at"].as_i64())
                    .then(by_rank),
                _ => by_rank,
            }
        });
        let facet: Vec<Value> = aggs
            .iter()
            .map(|key| {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for (_, d) in &matched {
                    let v = match &d[key.as_str()] {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    *counts.entry(v).or_default() += 1;
                }
                json!({"key": key, "items": counts.iter().map(|(v, n)| json!({"value": v, "count": n})).collect::<Vec<_>>()})
            })
            .collect();
        let total = matched.len();
        let items: Vec<Value> = matched
            .iter()
            .skip(start)
            .take(hit)
            .map(|(s, d)| json!({"fields": {"id": d["id"]}, "property": {}, "attribute": {}, "variableValue": {}, "sortExprValues": [format!("{s:.4}")]}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"status":"OK","request_id":"os-search-1",
            "result":{"searchtime":0.001,"total":total,"num":items.len(),"viewtotal":total,
                      "items":items,"facet":facet},"errors":[],"tracer":""}))
    }
}

impl Respond for OpenSearchFake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if !self.verify(r) {
            return os_fail(4003, "signature mismatch");
        }
        let path = r.url.path();
        if r.method.as_str() == "POST" && path == "/v3/openapi/apps/shop/main/actions/bulk" {
            self.bulk(r)
        } else if r.method.as_str() == "GET" && path == "/v3/openapi/apps/shop/search" {
            self.search(r)
        } else {
            os_fail(2001, "app does not exist")
        }
    }
}

// ---------------------------------------------------------------- AIRec

/// AIRec: a fixed ranking, behaviour pushes recorded; ACS3 checked on every request.
#[derive(Clone, Default)]
pub struct AirecFake {
    pub seen: Arc<Seen>,
}

pub const RANKING: [&str; 8] = [
    "ct-003", "ct-001", "ct-002", "ct-004", "ct-006", "ct-007", "ct-008", "ct-009",
];

impl Respond for AirecFake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let h = headers_of(r);
        let q = query_pairs(r);
        // The host header reqwest sent is the signed one.
        let want = sign::acs3_authorization(
            &creds(),
            &SignInput {
                method: r.method.as_str(),
                path: r.url.path(),
                query: &q,
                headers: &h,
            },
        );
        let action = header(r, "x-acs-action").unwrap_or_default();
        let ok = header(r, "authorization").as_deref() == Some(want.as_str())
            && header(r, "x-acs-version").as_deref() == Some("2020-11-26")
            && header(r, "x-acs-content-sha256").as_deref()
                == Some(sign::sha256_hex(&r.body).as_str())
            && header(r, "x-acs-signature-nonce").is_some_and(|n| n.len() == 32)
            && header(r, "x-acs-date").is_some_and(|d| d.ends_with('Z'));
        if !ok {
            self.seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(400).set_body_json(json!({"RequestId":"sig-1","Code":"SignatureDoesNotMatch","Message":"The request signature does not conform to Aliyun standards."}));
        }
        let path = r.url.path();
        if action == "Recommend" && path == "/v2/openapi/instances/airec-cn-test/actions/recommend"
        {
            let n: usize = q
                .iter()
                .find(|(k, _)| k == "returnCount")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(10);
            let items: Vec<Value> = RANKING
                .iter()
                .take(n)
                .enumerate()
                .map(|(i, id)| json!({"itemId": id, "itemType": "item", "traceId": "ali",
                    "traceInfo": format!("1007.trace-{i}"), "weight": 1.0 - i as f64 * 0.1,
                    "flowWeight": 0.0, "position": i, "matchInfo": "i2i_common_common", "message": "Successful"}))
                .collect();
            return ResponseTemplate::new(200).set_body_json(json!({
                "requestId": "04707E49-642A-4649-827A-F8EEB07D4C27", "code": "200", "message": "success",
                "result": items}));
        }
        if action == "PushDocument"
            && path == "/v2/openapi/instances/airec-cn-test/tables/behavior/actions/bulk"
        {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            self.seen.bodies.lock().unwrap().push((path.to_owned(), v));
            return ResponseTemplate::new(200).set_body_json(
                json!({"result":true,"code":"0","requestId":"829F38F6-0000","message":"success"}),
            );
        }
        ResponseTemplate::new(404).set_body_json(
            json!({"requestId":"nf","code":"InstanceNotExist","message":"no such instance"}),
        )
    }
}

// ---------------------------------------------------------------- PAI-Rec

/// The PAI-Rec engine's feed and an SLS web-tracking logstore.
#[derive(Clone, Default)]
pub struct PaiRecFake {
    pub seen: Arc<Seen>,
}

impl Respond for PaiRecFake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let path = r.url.path();
        if path == "/logstores/behavior/track" {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let ok = header(r, "x-log-apiversion").as_deref() == Some("0.6.0")
                && header(r, "x-log-bodyrawsize") == Some(r.body.len().to_string());
            self.seen.bodies.lock().unwrap().push((path.to_owned(), v));
            return if ok {
                ResponseTemplate::new(200)
            } else {
                ResponseTemplate::new(400).set_body_string("bad web tracking request")
            };
        }
        if header(r, "authorization").as_deref() != Some(TOKEN) {
            self.seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(401).set_body_string("Authorization failed");
        }
        if path != "/api/predict/shop_rec/api/rec/feed" {
            return ResponseTemplate::new(404).set_body_string("service not found");
        }
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        self.seen
            .bodies
            .lock()
            .unwrap()
            .push((path.to_owned(), v.clone()));
        if v["uid"].as_str().unwrap_or_default().is_empty() {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"code":400,"msg":"uid not empty","request_id":"p-400"}));
        }
        let n = v["size"].as_u64().unwrap_or(10) as usize;
        let items: Vec<Value> = RANKING
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, id)| json!({"item_id": id, "score": 0.9 - i as f64 * 0.05, "retrieve_id": "u2i"}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"code":200,"msg":"success",
            "request_id":"c46c3f5e-6b32-4b5c-8aac-59a319941248","size":items.len(),
            "experiment_id":"ER2_L1#EG1#E2","items":items}))
    }
}

// ---------------------------------------------------------------- EAS

/// A forecasting model on EAS speaking the crate's contract: the last value as the mean, and
/// quantiles spread around it.
#[derive(Clone, Default)]
pub struct EasFake {
    pub seen: Arc<Seen>,
}

impl Respond for EasFake {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if header(r, "authorization").as_deref() != Some(TOKEN) {
            self.seen.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(401).set_body_string("Authorization failed");
        }
        if r.url.path() != "/api/predict/demand" {
            return ResponseTemplate::new(404).set_body_string("service demand2 not found");
        }
        let v: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) => return ResponseTemplate::new(400).set_body_string("invalid json"),
        };
        self.seen
            .bodies
            .lock()
            .unwrap()
            .push((r.url.path().to_owned(), v.clone()));
        let h = v["horizon"].as_u64().unwrap_or(1) as usize;
        let levels: Vec<f64> = v["quantiles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let forecasts: Vec<Value> = v["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let last = s["values"]
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let mut q = serde_json::Map::new();
                for l in &levels {
                    let key = format!("{l}");
                    q.insert(key, json!(vec![last * (0.5 + l); h]));
                }
                json!({"id": s["id"], "mean": vec![last; h], "quantiles": q})
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"model": "naive-last", "forecasts": forecasts}))
    }
}

// ---------------------------------------------------------------- faults

fn http_date(secs: u64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs as i64))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// The body a service sends with an error status: JSON for the POP services, plain text for
/// the EAS gateway.
fn error_body(svc: Svc, status: u16, code: &str, msg: &str) -> ResponseTemplate {
    match svc {
        Svc::Eas | Svc::PaiRec if code.is_empty() => {
            ResponseTemplate::new(status).set_body_string(msg.to_owned())
        }
        Svc::Eas | Svc::PaiRec => ResponseTemplate::new(status)
            .set_body_json(json!({"code": code, "message": msg, "request_id": "eas-err"})),
        _ => ResponseTemplate::new(status).set_body_json(
            json!({"RequestId": "pop-err", "Code": code, "Message": msg, "HostId": "h"}),
        ),
    }
}

fn malformed(svc: Svc) -> ResponseTemplate {
    let body = match svc {
        Svc::OpenSearch => r#"{"status":"OK","result":{"items":[{"fields":"#,
        Svc::Airec => r#"{"requestId":"x","result":[{"itemId":"#,
        Svc::PaiRec => r#"{"code":200,"items":[{"item_id""#,
        Svc::Eas => r#"{"forecasts":[{"id":"sku-weekly","mean":[1,"#,
    };
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

async fn mount_fault(server: &MockServer, svc: Svc, fault: Fault) {
    let t = match fault {
        Fault::RateLimited(form) => {
            let v = match form {
                RetryAfterForm::Seconds(s) => s.to_string(),
                RetryAfterForm::HttpDate(s) => http_date(s),
                _ => "1".into(),
            };
            error_body(
                svc,
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
            )
            .insert_header("retry-after", v.as_str())
        }
        Fault::QuotaExhausted => error_body(
            svc,
            400,
            "Arrearage",
            "The account is overdue (in arrears).",
        ),
        Fault::ServerError(s) => match svc {
            Svc::Eas | Svc::PaiRec => error_body(
                svc,
                s,
                "",
                "upstream connect error or disconnect/reset before headers",
            ),
            _ => error_body(
                svc,
                s,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            ),
        },
        Fault::Timeout => match svc {
            Svc::OpenSearch => OpenSearchFake::default().search_empty(),
            _ => ResponseTemplate::new(200).set_body_json(json!({})),
        }
        .set_delay(std::time::Duration::from_secs(3)),
        Fault::MalformedBody => malformed(svc),
        _ => return,
    };
    Mock::given(any()).respond_with(t).mount(server).await;
}

impl OpenSearchFake {
    fn search_empty(&self) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({"status":"OK","request_id":"slow",
            "result":{"searchtime":0.0,"total":0,"num":0,"viewtotal":0,"items":[],"facet":[]},"errors":[]}))
    }
}

/// The fault harness over one fake.
pub struct Harness {
    pub svc: Svc,
    pub server: MockServer,
    pub proxy: FaultProxy,
    pub os: OpenSearchFake,
    pub airec: AirecFake,
    pub pairec: PaiRecFake,
    pub eas: EasFake,
}

impl Harness {
    pub async fn start(svc: Svc) -> Harness {
        let server = MockServer::start().await;
        let proxy = FaultProxy::start(*server.address()).await.unwrap();
        let h = Harness {
            svc,
            server,
            proxy,
            os: OpenSearchFake::default(),
            airec: AirecFake::default(),
            pairec: PaiRecFake::default(),
            eas: EasFake::default(),
        };
        h.mount_normal().await;
        h
    }

    pub fn base_url(&self) -> String {
        self.proxy.url()
    }

    pub fn seen(&self) -> &Seen {
        match self.svc {
            Svc::OpenSearch => &self.os.seen,
            Svc::Airec => &self.airec.seen,
            Svc::PaiRec => &self.pairec.seen,
            Svc::Eas => &self.eas.seen,
        }
    }

    async fn mount_normal(&self) {
        let m = Mock::given(any());
        match self.svc {
            Svc::OpenSearch => m.respond_with(self.os.clone()),
            Svc::Airec => m.respond_with(self.airec.clone()),
            Svc::PaiRec => m.respond_with(self.pairec.clone()),
            Svc::Eas => m.respond_with(self.eas.clone()),
        }
        .mount(&self.server)
        .await;
    }

    async fn reset(&self) {
        self.server.reset().await;
        self.proxy.clear();
    }

    /// A provider section pointing at the fake.
    pub fn section(&self, name: &str) -> ProviderConfig {
        let env = merchant_ai::EnvSource::from_map([
            ("ALI_AK_ID", AK_ID),
            ("ALI_AK_SECRET", AK_SECRET),
            ("EAS_TOKEN", TOKEN),
        ]);
        let base = self.base_url();
        match self.svc {
            Svc::OpenSearch => ProviderConfig::new(name, "opensearch")
                .with_region("cn-hangzhou")
                .with_env(env.clone())
                .with_option("endpoint", base)
                .with_option("app", "shop")
                .with_option("access_key_id_env", "ALI_AK_ID")
                .with_option("access_key_secret_env", "ALI_AK_SECRET")
                .with_option("timeout_ms", 500i64)
                .with_option("connect_timeout_ms", 1000i64),
            Svc::Airec => ProviderConfig::new(name, "airec")
                .with_region("cn-hangzhou")
                .with_env(env.clone())
                .with_option("endpoint", base)
                .with_option("instance_id", "airec-cn-test")
                .with_option("access_key_id_env", "ALI_AK_ID")
                .with_option("access_key_secret_env", "ALI_AK_SECRET")
                .with_option("timeout_ms", 500i64)
                .with_option("connect_timeout_ms", 1000i64),
            Svc::PaiRec => ProviderConfig::new(name, "pairec")
                .with_region("ap-southeast-1")
                .with_env(env.clone())
                .with_api_key_env("EAS_TOKEN")
                .with_option("endpoint", format!("{base}/api/predict/shop_rec"))
                .with_option(
                    "behavior_log_url",
                    format!("{base}/logstores/behavior/track"),
                )
                .with_option("timeout_ms", 500i64)
                .with_option("connect_timeout_ms", 1000i64),
            Svc::Eas => ProviderConfig::new(name, "pai-eas")
                .with_region("cn-shanghai")
                .with_env(env.clone())
                .with_api_key_env("EAS_TOKEN")
                .with_option("endpoint", format!("{base}/api/predict/demand"))
                .with_option("timeout_ms", 500i64)
                .with_option("connect_timeout_ms", 1000i64),
        }
    }

    /// Builds the provider through its factory, as the CLI would.
    pub async fn provider(&self, name: &str) -> Arc<dyn merchant_ai::Provider> {
        use merchant_ai::AdapterFactory;
        let pc = self.section(name);
        let toml = format!(
            "[providers.{name}]\nkind = \"{}\"\n[profiles.default.routes]\n{} = [\"{name}\"]\n",
            pc.kind(),
            self.svc.capability()
        );
        let config = merchant_ai::Config::parse_with_env(&toml, pc.env().clone()).unwrap();
        let ctx = merchant_ai::BuildContext::new(&pc, &config);
        let r = match self.svc {
            Svc::OpenSearch => merchant_ai_alibaba::opensearch_factory().build(ctx).await,
            Svc::Airec => merchant_ai_alibaba::airec_factory().build(ctx).await,
            Svc::PaiRec => merchant_ai_alibaba::pairec_factory().build(ctx).await,
            Svc::Eas => merchant_ai_alibaba::eas_factory().build(ctx).await,
        };
        r.unwrap()
    }
}

#[async_trait]
impl FaultHarness for Harness {
    async fn inject(&self, capability: Capability, fault: Fault) -> bool {
        if capability != self.svc.capability() {
            return false;
        }
        self.reset().await;
        if self.proxy.inject(fault) {
            // A transport fault: the mock answers normally behind the proxy.
            self.mount_normal().await;
        } else {
            mount_fault(&self.server, self.svc, fault).await;
        }
        true
    }

    async fn clear(&self) {
        self.reset().await;
        self.mount_normal().await;
    }

    async fn attempts(&self) -> usize {
        self.server.received_requests().await.map_or(0, |r| r.len()) + self.proxy.resets()
    }

    async fn before_scenario(&self, _name: &str) {
        self.clear().await;
    }
}

/// The retry stack of the layered runs: 3 attempts, tiny backoff, no breaker or timeout layer.
pub fn layered(
    inner: Arc<dyn merchant_ai::Provider>,
    name: &str,
) -> Arc<dyn merchant_ai::Provider> {
    use merchant_ai::layers::*;
    let settings = LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            ..Default::default()
        }),
        timeout: Some(TimeoutConfig {
            enabled: false,
            ..Default::default()
        }),
        breaker: Some(BreakerConfig {
            enabled: false,
            ..Default::default()
        }),
        chaos: None,
        limits: None,
    };
    Arc::new(LayeredProvider::new(
        inner,
        ProviderLayers::new(name, &settings),
    ))
}
