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
use wiremock::{Mock, MockServer, ResponseTemplate};

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

pub async fn mount_normal(server: &MockServer) {
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

async fn mount_fault(server: &MockServer, fault: Fault) {
    let any = || Mock::given(method("POST")).and(path("/v1/chat/completions"));
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
        if capability != Capability::Chat {
            return false;
        }
        self.reset().await;
        if self.proxy.inject(fault) {
            // A transport fault: the mock answers normally behind the proxy.
            mount_normal(&self.server).await;
        } else {
            mount_fault(&self.server, fault).await;
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
