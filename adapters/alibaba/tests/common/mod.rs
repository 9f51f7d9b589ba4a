//! A wiremock server programmed as DashScope (native chat, embeddings, rerank), behind a
//! loopback TCP proxy that can drop connections, and a `FaultHarness` over both.
//!
//! The normal answers only match requests carrying `Authorization: Bearer <KEY>` and the
//! workspace header (streams also `X-DashScope-SSE: enable`): a request without them gets
//! wiremock's 404, which fails the scenario.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use merchant_ai::Capability;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai_alibaba::dashscope::{DashScopeConfig, DashScopeProvider};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, Request, Respond, ResponseTemplate};

pub const KEY: &str = "sk-dashscope-SECRET-7777-never-log";
pub const WORKSPACE: &str = "llm-test-ws";
pub const REPLY: &str = "Returns are accepted within 30 days.";
pub const CHAT: &str = "/api/v1/services/aigc/text-generation/generation";
pub const EMBED: &str = "/api/v1/services/embeddings/text-embedding/text-embedding";
pub const RERANK: &str = "/api/v1/services/rerank/text-rerank/text-rerank";
pub const COMPAT_RERANK: &str = "/compatible-api/v1/reranks";
pub const DIM: usize = 8;

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/dashscope/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A proxy in front of the mock: forwards bytes, or drops the connection (counting it) when
/// `reset` is on.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    pub reset: Arc<AtomicBool>,
    pub resets: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reset = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicUsize::new(0));
        let (r, n) = (reset.clone(), resets.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream, r.clone(), n.clone()));
            }
        });
        Proxy {
            addr,
            reset,
            resets,
        }
    }
}

async fn forward(
    client: TcpStream,
    upstream: std::net::SocketAddr,
    reset: Arc<AtomicBool>,
    resets: Arc<AtomicUsize>,
) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut ur, &mut cw).await;
        let _ = cw.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if reset.load(Ordering::SeqCst) {
            resets.fetch_add(1, Ordering::SeqCst);
            back.abort();
            return;
        }
        if uw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    back.abort();
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

/// A deterministic embedding of a text: DIM values from its bytes.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIM];
    for w in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
        if w.is_empty() {
            continue;
        }
        let mut h: u64 = 1469598103934665603;
        for b in w.bytes() {
            h = (h ^ b as u64).wrapping_mul(1099511628211);
        }
        v[(h % DIM as u64) as usize] += 1.0;
    }
    if v.iter().all(|x| *x == 0.0) {
        v[0] = 1.0;
    }
    v
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
    pub proxy: Proxy,
}

impl Harness {
    pub async fn start() -> Harness {
        let server = MockServer::start().await;
        mount_normal(&server).await;
        let proxy = Proxy::start(*server.address()).await;
        Harness { server, proxy }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.proxy.addr)
    }

    pub fn config(&self) -> DashScopeConfig {
        DashScopeConfig {
            region: Some("ap-southeast-1".into()),
            base_url: Some(self.base_url()),
            workspace: Some(WORKSPACE.into()),
            chat_model: "qwen-plus".into(),
            embedding_model: Some("text-embedding-v4".into()),
            dimension: Some(DIM),
            rerank_model: Some("gte-rerank-v2".into()),
            timeout_ms: 500,
            connect_timeout_ms: 1_000,
            ..Default::default()
        }
    }

    pub fn provider(&self, name: &str) -> DashScopeProvider {
        DashScopeProvider::new(name, self.config(), Some(SecretString::from(KEY))).unwrap()
    }

    async fn reset(&self) {
        self.server.reset().await;
        self.proxy.reset.store(false, Ordering::SeqCst);
        self.proxy.resets.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl FaultHarness for Harness {
    async fn inject(&self, capability: Capability, fault: Fault) -> bool {
        let p = match capability {
            Capability::Chat => CHAT,
            Capability::Search => EMBED,
            _ => return false,
        };
        self.reset().await;
        if fault == Fault::ConnectionReset {
            self.proxy.reset.store(true, Ordering::SeqCst);
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
        self.server.received_requests().await.map_or(0, |r| r.len())
            + self.proxy.resets.load(Ordering::SeqCst)
    }

    async fn before_scenario(&self, _name: &str) {
        self.clear().await;
    }
}
