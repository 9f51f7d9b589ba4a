//! A wiremock server programmed as DashScope (native chat, embeddings, rerank), behind a
//! loopback TCP proxy that can drop connections, and a `FaultHarness` over both.
//!
//! The normal answers only match requests carrying `Authorization: Bearer <KEY>` and the
//! workspace header (streams also `X-DashScope-SSE: enable`): a request without them gets
//! wiremock's 404, which fails the scenario.

#![allow(dead_code)]

use async_trait::async_trait;
use merchant_ai::Capability;
use merchant_ai::contract::proxy::FaultProxy;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai_alibaba::dashscope::{DashScopeConfig, DashScopeProvider};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, Respond, ResponseTemplate};

pub const KEY: &str = "sk-dashscope-SECRET-7777-never-log";
pub const WORKSPACE: &str = "llm-test-ws";
pub const REPLY: &str = "Returns are accepted within 30 days.";
pub const CHAT: &str = "/api/v1/services/aigc/text-generation/generation";
pub const EMBED: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";
pub const RERANK: &str = "/api/v1/services/rerank/text-rerank/text-rerank";
pub const COMPAT_RERANK: &str = "/compatible-api/v1/reranks";
pub const DIM: usize = 256;

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/dashscope/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// One DashScope frame.
pub fn frame(id: usize, event: &str, status: u16, data: &Value) -> String {
    format!("id:{id}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{data}\n\n")
}

fn result(content: &str, finish: &str, out: u64) -> Value {
    json!({"output":{"choices":[{"message":{"role":"assistant","content":content},"finish_reason":finish}]},
           "usage":{"input_tokens":12,"output_tokens":out,"total_tokens":12+out},"request_id":"req-stream"})
}

/// REPLY in three incremental frames, cumulative usage, no `[DONE]`.
pub fn reply_stream() -> String {
    [
        frame(
            1,
            "result",
            200,
            &result("Returns are accepted ", "null", 4),
        ),
        frame(2, "result", 200, &result("within 30 days.", "null", 7)),
        frame(3, "result", 200, &result("", "stop", 8)),
    ]
    .concat()
}

pub fn completion(message: Value, finish: &str) -> Value {
    json!({"output":{"choices":[{"finish_reason":finish,"message":message}]},
           "usage":{"input_tokens":12,"output_tokens":8,"total_tokens":20},"request_id":"req-chat"})
}

/// A deterministic embedding of a text (the core's offline hashed-trigram embedder), so
/// semantic search over the mock ranks by spelling.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    merchant_ai::semantic::HashEmbedder::new(DIM)
        .unwrap()
        .vector(text)
}

/// Answers an embeddings call with one vector per text, in reverse order (the adapter must
/// re-order by `text_index`).
struct EmbedResponder;

impl Respond for EmbedResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let texts: Vec<String> = v["input"]["texts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| t.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        if texts.len() > 10 {
            return ResponseTemplate::new(400).set_body_json(json!({"code":"InvalidParameter",
                "message":"batch size is invalid, it should not be larger than 10.","request_id":"e-x"}));
        }
        let items: Vec<Value> = texts
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| json!({"text_index": i, "embedding": fake_embedding(t)}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"output":{"embeddings":items},
            "usage":{"total_tokens": texts.len() * 3},"request_id":"e-1"}))
    }
}

/// Answers a gte-rerank call by the cosine of the hashed embeddings of query and documents,
/// best first, `top_n` at most.
struct RerankResponder;

impl Respond for RerankResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let q = fake_embedding(v["input"]["query"].as_str().unwrap_or(""));
        let docs = v["input"]["documents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut scored: Vec<(usize, f32)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let e = fake_embedding(d.as_str().unwrap_or(""));
                (i, q.iter().zip(&e).map(|(a, b)| a * b).sum())
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(
            v["parameters"]["top_n"]
                .as_u64()
                .unwrap_or(docs.len() as u64) as usize,
        );
        let results: Vec<Value> = scored
            .iter()
            .map(|(i, s)| json!({"index": i, "relevance_score": s}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"output":{"results":results},
            "usage":{"total_tokens": 10},"request_id":"k-1"}))
    }
}

fn authed(m: MockBuilder) -> MockBuilder {
    m.and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("x-dashscope-workspace", WORKSPACE))
}

pub async fn mount_normal(server: &MockServer) {
    authed(Mock::given(method("POST")).and(path(CHAT)))
        .and(header("x-dashscope-sse", "enable"))
        .and(header("accept", "text/event-stream"))
        .and(body_string_contains("\"incremental_output\":true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(reply_stream(), "text/event-stream;charset=UTF-8"),
        )
        .with_priority(1)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path(CHAT)))
        .and(body_string_contains("\"tools\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":"","tool_calls":[{"index":0,"id":"call_abc","type":"function",
                   "function":{"name":"order_status","arguments":"{\"order_id\":\"12345\"}"}}]}),
            "tool_calls",
        )))
        .with_priority(2)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path(CHAT)))
        .and(body_string_contains("json_object"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":"{\"return_days\": 30, \"free\": true}"}),
            "stop",
        )))
        .with_priority(3)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path(CHAT)))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":REPLY}),
            "stop",
        )))
        .with_priority(10)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path(EMBED)))
        .respond_with(EmbedResponder)
        .with_priority(10)
        .mount(server)
        .await;
    authed(Mock::given(method("POST")).and(path(RERANK)))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("rerank_gte.json"), "application/json"),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

fn http_date(secs: u64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs as i64))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Programs `fault` on every POST to `p` (chat, or embeddings for search).
pub async fn mount_fault(server: &MockServer, p: &str, fault: Fault) {
    let any = || Mock::given(method("POST")).and(path(p.to_owned()));
    let err = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    match fault {
        Fault::RateLimited(form) => {
            let v = match form {
                RetryAfterForm::Seconds(s) => s.to_string(),
                RetryAfterForm::HttpDate(s) => http_date(s),
                _ => "1".into(),
            };
            any()
                .respond_with(
                    err(429, json!({"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later.","request_id":"req-429"}))
                        .insert_header("retry-after", v.as_str()),
                )
                .mount(server)
                .await;
        }
        Fault::QuotaExhausted => {
            // A 429 that is billing, not a rate window: never retried.
            any()
                .respond_with(
                    err(429, json!({"code":"PrepaidBillOverdue","message":"The prepaid bill is overdue.","request_id":"req-quota"}))
                        .insert_header("retry-after", "5"),
                )
                .mount(server)
                .await;
        }
        Fault::ServerError(s) => {
            let t = match s {
                500 => err(
                    500,
                    json!({"code":"InternalError","message":"An internal error has occured, please try again later.","request_id":"req-5xx"}),
                ),
                503 => err(
                    503,
                    json!({"code":"ModelUnavailable","message":"Model is unavailable, please try again later.","request_id":"req-5xx"}),
                ),
                // Gateways answer with plain text.
                _ => ResponseTemplate::new(s)
                    .set_body_raw("<html><body>gateway error</body></html>", "text/html"),
            };
            any().respond_with(t).mount(server).await;
        }
        Fault::Timeout => {
            any()
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(completion(
                            json!({"role":"assistant","content":REPLY}),
                            "stop",
                        ))
                        .set_delay(std::time::Duration::from_secs(3)),
                )
                .mount(server)
                .await;
        }
        Fault::MalformedBody => {
            any()
                .and(header("x-dashscope-sse", "enable"))
                .respond_with(ResponseTemplate::new(200).set_body_raw(
                    "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\": oops}}]}}\n\n",
                    "text/event-stream",
                ))
                .with_priority(1)
                .mount(server)
                .await;
            any()
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_raw("{\"output\": {\"choices\": [", "application/json"),
                )
                .with_priority(5)
                .mount(server)
                .await;
        }
        Fault::StreamCut => {
            let mut body = reply_stream();
            let cut = body.find("within").unwrap();
            body.truncate(cut + 3);
            any()
                .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
                .mount(server)
                .await;
        }
        _ => {}
    }
}

/// The fault harness over the mock and the proxy.
pub struct Harness {
    pub server: MockServer,
    pub proxy: FaultProxy,
}

impl Harness {
    pub async fn start() -> Harness {
        let server = MockServer::start().await;
        mount_normal(&server).await;
        let proxy = FaultProxy::start(*server.address()).await.unwrap();
        Harness { server, proxy }
    }

    pub fn base_url(&self) -> String {
        self.proxy.url()
    }

    pub fn config(&self) -> DashScopeConfig {
        DashScopeConfig {
            region: Some("ap-southeast-1".into()),
            base_url: Some(self.base_url()),
            workspace: Some(WORKSPACE.into()),
            chat_model: "qwen-plus".into(),
            embedding_model: Some("text-embedding-v4".into()),
            dimension: Some(DIM),
            timeout_ms: 500,
            connect_timeout_ms: 1_000,
            ..Default::default()
        }
    }

    pub fn provider(&self, name: &str) -> DashScopeProvider {
        DashScopeProvider::new(name, self.config(), Some(SecretString::from(KEY))).unwrap()
    }

    /// The same, reranking semantic search with gte-rerank-v2.
    pub fn provider_with_rerank(&self, name: &str) -> DashScopeProvider {
        let mut c = self.config();
        c.rerank_model = Some("gte-rerank-v2".into());
        DashScopeProvider::new(name, c, Some(SecretString::from(KEY))).unwrap()
    }

    async fn reset(&self) {
        self.server.reset().await;
        self.proxy.clear();
    }
}

#[async_trait]
impl FaultHarness for Harness {
    async fn inject(&self, capability: Capability, fault: Fault) -> bool {
        let p = match capability {
            Capability::Chat => CHAT,
            // Search embeds the query: its faults are the embeddings endpoint's. There is no
            // stream to cut.
            Capability::Search if fault != Fault::StreamCut => EMBED,
            // Recommend reads the stored item vectors: it makes no upstream call to fail.
            _ => return false,
        };
        self.reset().await;
        if self.proxy.inject(fault) {
            // A transport fault: the mock answers normally behind the proxy.
            mount_normal(&self.server).await;
        } else {
            mount_fault(&self.server, p, fault).await;
        }
        true
    }

    async fn clear(&self) {
        self.reset().await;
        mount_normal(&self.server).await;
    }

    async fn attempts(&self) -> usize {
        self.server.received_requests().await.map_or(0, |r| r.len()) + self.proxy.resets()
    }

    async fn before_scenario(&self, _name: &str) {
        self.clear().await;
    }
}
