//! The request the adapter sends and what it makes of answers, through wiremock on loopback:
//! body fields, headers, the JSON schema fallback, the Azure variant, config through the
//! registry, and where the provider says data goes.

use std::sync::Arc;

use merchant_ai::{
    ChatModel, ChatRequest, Config, EnvSource, ErrorKind, FinishReason, Message, Registry,
    RequestContext, ResponseFormat, Tool, ToolChoice, collect_stream,
};
use merchant_ai_openai::{AzureConfig, OpenAiConfig, OpenAiProvider};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn completion(content: &str) -> Value {
    json!({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m-1",
           "choices":[{"index":0,"message":{"role":"assistant","content":content},"finish_reason":"stop"}],
           "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
}

fn cfg(server: &MockServer) -> OpenAiConfig {
    OpenAiConfig {
        base_url: format!("{}/v1", server.uri()),
        chat_model: Some("m-1".into()),
        timeout_ms: 2_000,
        ..Default::default()
    }
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn chat(p: &OpenAiProvider) -> Arc<dyn ChatModel> {
    use merchant_ai::Provider;
    p.chat_model().unwrap()
}

#[tokio::test]
async fn request_carries_every_field_and_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-local"))
        .and(header("openai-organization", "org-1"))
        .and(header("openai-project", "proj-1"))
        .and(header("x-shop", "tea"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&server)
        .await;
    let mut c = cfg(&server);
    c.organization = Some("org-1".into());
    c.project = Some("proj-1".into());
    c.extra_headers.insert("x-shop".into(), "tea".into());
    c.extra_body
        .insert("enable_thinking".into(), toml::Value::Boolean(true));
    let p = OpenAiProvider::new("gpt", c, Some(SecretString::from("sk-local"))).unwrap();
    let mut opts = merchant_ai::ProviderOptions::new();
    opts.insert("enable_thinking".into(), json!(false));
    opts.insert("top_k".into(), json!(20));
    let req = ChatRequest::new(vec![
        Message::system("Be brief."),
        Message::user("What is this?").with_image("data:image/png;base64,iVBORw0KGgo="),
        Message::assistant_tool_calls(vec![merchant_ai::ToolCall::new(
            "call_1",
            "order_status",
            r#"{"order_id":"1"}"#,
        )]),
        Message::tool_result("call_1", r#"{"status":"shipped"}"#),
    ])
    .with_ctx(RequestContext::default().with_subject("cs-42"))
    .with_tool(Tool::new(
        "order_status",
        "Look up an order",
        json!({"type":"object","properties":{"order_id":{"type":"string"}}}),
    ))
    .with_tool_choice(ToolChoice::Tool("order_status".into()))
    .with_response_format(ResponseFormat::JsonObject)
    .with_temperature(0.5)
    .with_top_p(0.9)
    .with_max_tokens(64)
    .with_stop("END")
    .with_seed(7)
    .with_provider_options(opts);
    let r = chat(&p).chat(req).await.unwrap();
    assert_eq!(r.text, "ok");
    assert_eq!(r.format_used, Some(ResponseFormat::JsonObject));
    assert_eq!(r.meta.usage.input_tokens, Some(3));
    let b = &bodies(&server).await[0];
    assert_eq!(b["model"], "m-1");
    assert_eq!(
        b["messages"][0],
        json!({"role":"system","content":"Be brief."})
    );
    assert_eq!(b["messages"][1]["content"][1]["type"], "image_url");
    assert_eq!(
        b["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    assert_eq!(b["messages"][2]["content"], Value::Null);
    assert_eq!(
        b["messages"][2]["tool_calls"][0]["function"]["name"],
        "order_status"
    );
    assert_eq!(b["messages"][3]["tool_call_id"], "call_1");
    assert_eq!(b["tools"][0]["type"], "function");
    assert_eq!(b["tool_choice"]["function"]["name"], "order_status");
    assert_eq!(b["response_format"]["type"], "json_object");
    assert_eq!(b["temperature"], 0.5);
    assert!((b["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(b["max_tokens"], 64);
    assert_eq!(b["stop"], json!(["END"]));
    assert_eq!(b["seed"], 7);
    assert_eq!(
        b["enable_thinking"], false,
        "request options win over config"
    );
    assert_eq!(b["top_k"], 20);
    assert!(
        b.get("user").is_none(),
        "the subject is not sent by default"
    );
    assert!(b.get("stream").is_none());
}

#[tokio::test]
async fn user_only_when_configured_and_stream_asks_for_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
            "text/event-stream",
        ))
        .mount(&server)
        .await;
    let mut c = cfg(&server);
    c.send_user = true;
    let p = OpenAiProvider::new("gpt", c, None).unwrap();
    let req = ChatRequest::new(vec![Message::user("hi")])
        .with_ctx(RequestContext::default().with_subject("cs-42"));
    let r = collect_stream(chat(&p).chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(r.text, "hi");
    let b = &bodies(&server).await[0];
    assert_eq!(b["user"], "cs-42");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    let h = &server.received_requests().await.unwrap()[0].headers;
    assert!(
        h.get("authorization").is_none(),
        "no key configured, none sent"
    );
}

fn schema_format() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "policy".into(),
        schema: json!({"type":"object","required":["days","free"],
                       "properties":{"days":{"type":"integer"},"free":{"type":"boolean"}}}),
        strict: true,
    }
}

async fn rejecting_server(answer: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("json_schema"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error":{
            "message":"'response_format.type' must be 'json_object' or 'text'",
            "type":"invalid_request_error","param":"response_format","code":null}})))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("json_object"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(answer)))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn json_schema_falls_back_to_json_object_and_says_so() {
    let server = rejecting_server(r#"{"days": 30, "free": true}"#).await;
    let p = OpenAiProvider::new("gpt", cfg(&server), None).unwrap();
    let req = ChatRequest::new(vec![Message::user("policy as JSON")])
        .with_response_format(schema_format());
    let r = chat(&p).chat(req).await.unwrap();
    assert_eq!(r.format_used, Some(ResponseFormat::JsonObject));
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn json_object_fallback_checks_the_schema_locally() {
    let server = rejecting_server(r#"{"days": "thirty"}"#).await;
    let p = OpenAiProvider::new("gpt", cfg(&server), None).unwrap();
    let req = ChatRequest::new(vec![Message::user("policy as JSON")])
        .with_response_format(schema_format());
    let e = chat(&p).chat(req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("\"free\""), "{e}");
}

#[tokio::test]
async fn json_schema_accepted_is_reported_as_json_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion(r#"{"days":30,"free":true}"#)),
        )
        .mount(&server)
        .await;
    let p = OpenAiProvider::new("gpt", cfg(&server), None).unwrap();
    let req = ChatRequest::new(vec![Message::user("x")]).with_response_format(schema_format());
    let r = chat(&p).chat(req).await.unwrap();
    assert!(matches!(
        r.format_used,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    assert_eq!(
        bodies(&server).await[0]["response_format"]["json_schema"]["strict"],
        true
    );
}

#[tokio::test]
async fn azure_deployment_path_api_version_and_api_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/shop-gpt/chat/completions"))
        .and(query_param("api-version", "2024-10-21"))
        .and(header("api-key", "az-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("hello")))
        .mount(&server)
        .await;
    let c = OpenAiConfig {
        base_url: server.uri(),
        azure: Some(AzureConfig {
            api_version: "2024-10-21".into(),
            deployment: "shop-gpt".into(),
            embedding_deployment: None,
        }),
        ..Default::default()
    };
    let p = OpenAiProvider::new("az", c, Some(SecretString::from("az-key"))).unwrap();
    let r = chat(&p)
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(r.text, "hello");
    let b = &bodies(&server).await[0];
    assert!(
        b.get("model").is_none(),
        "Azure names the model by deployment"
    );
    let h = &server.received_requests().await.unwrap()[0].headers;
    assert!(h.get("authorization").is_none());
}

#[tokio::test]
async fn a_streamed_request_answered_with_plain_json_still_works() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("whole")))
        .mount(&server)
        .await;
    let p = OpenAiProvider::new("gpt", cfg(&server), None).unwrap();
    let r = collect_stream(
        chat(&p)
            .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.text, "whole");
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn config_through_the_registry_and_where_data_goes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("from the registry")))
        .mount(&server)
        .await;
    let toml = format!(
        r#"
default_profile = "dev"

[providers.local]
kind = "openai"
base_url = "{}/v1"
chat_model = "qwen2.5-7b-instruct"
local = true
extra_body = {{ enable_thinking = false }}

[providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"
region = "us-east"
jurisdiction = "US"
chat_model = "gpt-4o-mini"
timeout_ms = 30000

[profiles.dev.routes]
chat = ["local"]

[profiles.prod.routes]
chat = ["openai", "local"]
"#,
        server.uri()
    );
    let env = EnvSource::from_map([("OPENAI_API_KEY", "sk-registry")]);
    let config = Config::parse_with_env(&toml, env).unwrap();
    let reg = Registry::new().with(merchant_ai_openai::factory());
    let client = reg.build(&config, Some("dev")).await.unwrap();
    let r = client
        .chat_model()
        .unwrap()
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(r.text, "from the registry");
    assert_eq!(bodies(&server).await[0]["enable_thinking"], false);

    let prod = reg.build(&config, Some("prod")).await.unwrap();
    let table = prod.routes().to_string();
    assert!(table.contains("openai (openai, remote us-east)"), "{table}");
    assert!(table.contains("local (openai, in-process)"), "{table}");

    // A key named but not set fails validation by name; unknown keys are rejected.
    let bad = Config::parse_with_env(&toml, EnvSource::from_map::<&str, &str>([])).unwrap();
    let e = reg.validate(&bad, Some("prod")).unwrap_err();
    assert!(e.message().contains("OPENAI_API_KEY"), "{e}");
    let typo = Config::parse(
        "[providers.x]\nkind = \"openai\"\nchat_modle = \"m\"\n[profiles.default.routes]\nchat = [\"x\"]\n",
    )
    .unwrap();
    let e = reg.validate(&typo, None).unwrap_err();
    assert!(e.message().contains("chat_modle"), "{e}");
}

#[tokio::test]
async fn streamed_json_schema_fallback_is_checked_at_the_end() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("json_schema"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error":{
            "message":"response_format json_schema is not supported","type":"invalid_request_error"}})))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("json_object"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"days\\\": 30}\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
            "text/event-stream",
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    let p = OpenAiProvider::new("gpt", cfg(&server), None).unwrap();
    let req = ChatRequest::new(vec![Message::user("x")]).with_response_format(schema_format());
    let mut s = chat(&p).chat_stream(req).await.unwrap();
    let mut items = Vec::new();
    while let Some(i) = futures::StreamExt::next(&mut s).await {
        items.push(i);
    }
    let last = items.pop().unwrap().unwrap_err();
    assert_eq!(last.kind(), ErrorKind::Decode);
    assert!(last.message().contains("\"free\""), "{last}");
    assert!(items.iter().all(|i| i.is_ok()));
}
