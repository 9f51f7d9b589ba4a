//! A wiremock server behind the contract suite's loopback fault proxy, programmed as
//! an OpenAI-compatible chat server, and a `FaultHarness` over it.

#![allow(dead_code)]

use async_trait::async_trait;
use merchant_ai::contract::proxy::FaultProxy;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai::{Capability, ProviderConfig};
use merchant_ai_openai::{OpenAiConfig, OpenAiProvider};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const KEY: &str = "sk-test-SECRET-4242-do-not-log";
pub const REPLY: &str = "Returns are accepted within 30 days.";

pub fn sse(chunks: &[serde_json::Value]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str("data: ");
        s.push_str(&c.to_string());
        s.push_str("\n\n");
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn completion(message: serde_json::Value, finish: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764000000, "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    })
}

pub fn reply_stream() -> String {
    let c = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"test-model",
               "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
    };
    sse(&[
        c(json!({"role":"assistant","content":""}), json!(null)),
        c(json!({"content":"Returns are accepted "}), json!(null)),
        c(json!({"content":"within 30 days."}), json!(null)),
        c(json!({}), json!("stop")),
        json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"test-model",
               "choices":[],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}),
    ])
}

/// Answers `/v1/embeddings` like a real server, with deterministic vectors computed from each
/// input text (the core's hash embedder), in `float` or `base64` as asked, honouring
/// `dimensions`.
pub struct EmbedResponder;

pub const EMBED_DIM: usize = 256;

impl Respond for EmbedResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
            return ResponseTemplate::new(400).set_body_json(
                json!({"error": {"message": "bad JSON", "type": "invalid_request_error"}}),
            );
        };
        let inputs: Vec<String> = match &v["input"] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => {
                return ResponseTemplate::new(400).set_body_json(
                    json!({"error": {"message": "'input' is required", "type": "invalid_request_error"}}),
                );
            }
        };
        let dim = v["dimensions"].as_u64().map_or(EMBED_DIM, |d| d as usize);
        let e = merchant_ai::semantic::HashEmbedder::new(dim).unwrap();
        let b64 = v["encoding_format"].as_str() == Some("base64");
        let data: Vec<serde_json::Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let vec = e.vector(t);
                let emb = if b64 {
                    use base64::Engine;
                    let bytes: Vec<u8> = vec.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(vec)
                };
                json!({"object": "embedding", "index": i, "embedding": emb})
            })
            .collect();
        let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
        ResponseTemplate::new(200)
            .insert_header("x-request-id", "req-embed")
            .set_body_json(json!({
                "object": "list", "data": data, "model": v["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
            }))
    }
}

/// Answers `/v1/rerank` (Jina/Cohere/vLLM shape) scoring each document by the cosine of its
/// hash vector with the query's.
pub struct RerankResponder;

impl Respond for RerankResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
            return ResponseTemplate::new(400);
        };
        let e = merchant_ai::semantic::HashEmbedder::new(EMBED_DIM).unwrap();
        let q = e.vector(v["query"].as_str().unwrap_or_default());
        let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-9);
        let docs = v["documents"].as_array().cloned().unwrap_or_default();
        let mut results: Vec<(usize, f32)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let dv = e.vector(d.as_str().unwrap_or_default());
                let dot: f32 = q.iter().zip(&dv).map(|(a, b)| a * b).sum();
                (i, dot / norm(&q) / norm(&dv))
            })
            .collect();
        results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let top = v["top_n"].as_u64().map_or(results.len(), |n| n as usize);
        results.truncate(top);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "rerank-1", "model": v["model"],
            "results": results.iter().map(|(i, s)| json!({"index": i, "relevance_score": s})).collect::<Vec<_>>(),
            "usage": {"total_tokens": 42}
        }))
    }
}

pub async fn mount_semantic(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(EmbedResponder)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/rerank"))
        .respond_with(RerankResponder)
        .mount(server)
        .await;
}

pub async fn mount_normal(server: &MockServer) {
    mount_semantic(server).await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"stream\":true"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req-stream")
                .set_body_raw(reply_stream(), "text/event-stream"),
        )
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"tools\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function",
                   "function":{"name":"order_status","arguments":"{\"order_id\":\"12345\"}"}}]}),
            "tool_calls",
        )))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("json_object"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":"{\"return_days\": 30, \"free\": true}"}),
            "stop",
        )))
        .with_priority(3)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req-chat")
                .set_body_json(completion(
                    json!({"role":"assistant","content":REPLY}),
                    "stop",
                )),
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

async fn mount_fault(server: &MockServer, fault: Fault, at: &'static str) {
    let any = || Mock::given(method("POST")).and(path(at));
    let err = |status: u16, body: serde_json::Value| {
        ResponseTemplate::new(status)
            .insert_header("x-request-id", "req-fault")
            .set_body_json(body)
    };
    match fault {
        Fault::RateLimited(form) => {
            let v = match form {
                RetryAfterForm::Seconds(s) => s.to_string(),
                RetryAfterForm::HttpDate(s) => http_date(s),
                _ => "1".into(),
            };
            any()
                .respond_with(
                    err(429, json!({"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}))
                        .insert_header("retry-after", v.as_str())
                        .insert_header("x-ratelimit-remaining-requests", "0"),
                )
                .mount(server)
                .await;
        }
        Fault::QuotaExhausted => {
            any()
                .respond_with(err(429, json!({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})))
                .mount(server)
                .await;
        }
        Fault::ServerError(s) => {
            any()
                .respond_with(err(s, json!({"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}})))
                .mount(server)
                .await;
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
                .and(body_string_contains("\"stream\":true"))
                .respond_with(ResponseTemplate::new(200).set_body_raw(
                    "data: {\"choices\": [{\"delta\": {\"content\": oops}}]\n\n",
                    "text/event-stream",
                ))
                .with_priority(1)
                .mount(server)
                .await;
            any()
                .respond_with(ResponseTemplate::new(200).set_body_raw(
                    "{\"id\": \"chatcmpl-1\", \"choices\": [",
                    "application/json",
                ))
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
        format!("{}/v1", self.proxy.url())
    }

    pub fn config(&self) -> OpenAiConfig {
        OpenAiConfig {
            base_url: self.base_url(),
            chat_model: Some("test-model".into()),
            timeout_ms: 500,
            connect_timeout_ms: 1_000,
            jurisdiction: Some("US".into()),
            ..Default::default()
        }
    }

    /// Chat plus embeddings (search and recommend), optionally with a reranker.
    pub fn semantic_config(&self, rerank: bool) -> OpenAiConfig {
        OpenAiConfig {
            embedding_model: Some("test-embed".into()),
            rerank_model: rerank.then(|| "test-rerank".into()),
            ..self.config()
        }
    }

    pub fn semantic_provider(&self, name: &str, rerank: bool) -> OpenAiProvider {
        OpenAiProvider::new(
            name,
            self.semantic_config(rerank),
            Some(SecretString::from(KEY)),
        )
        .unwrap()
    }

    pub fn provider(&self, name: &str) -> OpenAiProvider {
        OpenAiProvider::new(name, self.config(), Some(SecretString::from(KEY))).unwrap()
    }

    async fn reset(&self) {
        self.server.reset().await;
        self.proxy.clear();
    }
}

#[async_trait]
impl FaultHarness for Harness {
    async fn inject(&self, capability: Capability, fault: Fault) -> bool {
        let at = match capability {
            Capability::Chat => "/v1/chat/completions",
            // Search embeds the query: its faults are the embeddings endpoint's. There is no
            // stream to cut.
            Capability::Search if fault != Fault::StreamCut => "/v1/embeddings",
            // Recommend reads the stored item vectors: it makes no upstream call to fail.
            _ => return false,
        };
        self.reset().await;
        if self.proxy.inject(fault) {
            // A transport fault: the mock answers normally behind the proxy.
            mount_normal(&self.server).await;
        } else {
            mount_fault(&self.server, fault, at).await;
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

/// A provider section as the CLI would read it (for Debug checks).
pub fn provider_config(base_url: &str) -> ProviderConfig {
    ProviderConfig::new("gpt", "openai")
        .with_api_key_env("OPENAI_API_KEY")
        .with_env(merchant_ai::EnvSource::from_map([("OPENAI_API_KEY", KEY)]))
        .with_option("base_url", base_url)
        .with_option("chat_model", "test-model")
}
