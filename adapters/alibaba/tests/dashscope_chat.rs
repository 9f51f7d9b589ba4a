//! Native DashScope chat against wiremock: the headers and body it sends, the documented
//! answers (fixtures), streams with `:HTTP_STATUS` lines, the string "null" as a finish reason,
//! cumulative usage (last kept, never summed), errors inside a 200 stream, and the documented
//! error codes with their kinds and retry signals.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use merchant_ai::{
    ChatEvent, ChatModel, ChatRequest, Config, ErrorKind, FinishReason, Message, Provider,
    Registry, ResponseFormat, Tool, ToolCall, collect_stream,
};
use merchant_ai_alibaba::dashscope::{DashScopeConfig, DashScopeProvider, Mode};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn bare_server() -> MockServer {
    MockServer::start().await
}

fn provider_at(server: &MockServer, f: impl FnOnce(&mut DashScopeConfig)) -> DashScopeProvider {
    let mut c = DashScopeConfig {
        region: Some("ap-southeast-1".into()),
        base_url: Some(server.uri()),
        workspace: Some(WORKSPACE.into()),
        timeout_ms: 2_000,
        ..Default::default()
    };
    f(&mut c);
    DashScopeProvider::new("qwen", c, Some(SecretString::from(KEY))).unwrap()
}

async fn answer_with(server: &MockServer, t: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(CHAT))
        .respond_with(t)
        .mount(server)
        .await;
}

async fn last_body(server: &MockServer) -> (Value, wiremock::Request) {
    let reqs = server.received_requests().await.unwrap();
    let r = reqs.last().unwrap().clone();
    (serde_json::from_slice(&r.body).unwrap(), r)
}

fn hdr<'a>(r: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn chat(p: &DashScopeProvider) -> std::sync::Arc<dyn ChatModel> {
    p.chat_model().unwrap()
}

#[tokio::test]
async fn sends_the_documented_headers_and_body() {
    let s = bare_server().await;
    answer_with(
        &s,
        ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":"ok"}),
            "stop",
        )),
    )
    .await;
    let p = provider_at(&s, |c| {
        c.enable_search = Some(true);
        c.parameters.insert("top_k".into(), 20.into());
        c.extra_body.insert("debug_tag".into(), "unit".into());
    });
    let mut opts = merchant_ai::ProviderOptions::new();
    opts.insert("presence_penalty".into(), json!(0.5));
    let req = ChatRequest::new(vec![Message::system("Be terse."), Message::user("Hi")])
        .with_temperature(0.7)
        .with_top_p(0.8)
        .with_max_tokens(512)
        .with_seed(42)
        .with_stop("\n\n")
        .with_provider_options(opts);
    let r = chat(&p).chat(req).await.unwrap();
    assert_eq!(r.text, "ok");
    assert_eq!(r.meta.request_id.as_deref(), Some("req-chat"));
    assert_eq!(r.meta.model.as_deref(), Some("qwen-plus"));
    assert_eq!(r.meta.usage.input_tokens, Some(12));
    let (b, req) = last_body(&s).await;
    assert_eq!(
        hdr(&req, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(hdr(&req, "x-dashscope-workspace"), Some(WORKSPACE));
    assert_eq!(hdr(&req, "content-type"), Some("application/json"));
    assert_eq!(hdr(&req, "x-dashscope-sse"), None);
    assert_eq!(b["model"], "qwen-plus");
    assert_eq!(b["debug_tag"], "unit");
    assert_eq!(
        b["input"]["messages"][0],
        json!({"role":"system","content":"Be terse."})
    );
    let prm = &b["parameters"];
    assert_eq!(prm["result_format"], "message");
    assert_eq!(prm["enable_search"], true);
    assert_eq!(prm["top_k"], 20);
    assert_eq!(prm["presence_penalty"], 0.5);
    assert_eq!(prm["max_tokens"], 512);
    assert_eq!(prm["seed"], 42);
    assert_eq!(prm["stop"], json!(["\n\n"]));
    assert!(prm.get("incremental_output").is_none());

    // Streaming adds the SSE header and incremental output.
    s.reset().await;
    answer_with(
        &s,
        ResponseTemplate::new(200).set_body_raw(reply_stream(), "text/event-stream;charset=UTF-8"),
    )
    .await;
    let r = collect_stream(
        chat(&p)
            .chat_stream(ChatRequest::new(vec![Message::user("Hi")]))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.text, REPLY);
    let (b, req) = last_body(&s).await;
    assert_eq!(hdr(&req, "x-dashscope-sse"), Some("enable"));
    assert_eq!(hdr(&req, "accept"), Some("text/event-stream"));
    assert_eq!(
        hdr(&req, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(b["parameters"]["incremental_output"], true);
    assert!(
        b.get("stream").is_none(),
        "stream is a header, not a body field"
    );
}

#[tokio::test]
async fn documented_tool_call_answer_and_tool_result_turn() {
    let s = bare_server().await;
    answer_with(
        &s,
        ResponseTemplate::new(200)
            .set_body_raw(fixture("chat_tool_calls.json"), "application/json"),
    )
    .await;
    let p = provider_at(&s, |_| {});
    let tool = Tool::new(
        "get_weather",
        "Look up weather",
        json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
    );
    let req = ChatRequest::new(vec![Message::user("Weather in Hangzhou tomorrow?")])
        .with_tool(tool.clone());
    let r = chat(&p).chat(req).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls.len(), 1);
    let call = &r.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_1", "get_weather")
    );
    assert_eq!(call.arguments_json().unwrap(), json!({"city":"Hangzhou"}));
    assert_eq!(
        r.meta.request_id.as_deref(),
        Some("5354a793-a130-4b36-b1dc-2610c5f49071")
    );
    assert_eq!(r.meta.usage.output_tokens, Some(21));

    // The tool result turn: the assistant message, then the tool's answer; tools sent again.
    let req = ChatRequest::new(vec![
        Message::user("Weather in Hangzhou tomorrow?"),
        r.to_message(),
        Message::tool_result("call_1", "{\"temp\":21}"),
    ])
    .with_tool(tool);
    chat(&p).chat(req).await.unwrap();
    let (b, _) = last_body(&s).await;
    let m = &b["input"]["messages"];
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        m[1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Hangzhou\"}"
    );
    assert_eq!(
        m[2],
        json!({"role":"tool","content":"{\"temp\":21}","tool_call_id":"call_1"})
    );
    assert_eq!(
        b["parameters"]["tools"][0]["function"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn reasoning_is_kept_apart_and_json_mode_is_sent() {
    let s = bare_server().await;
    answer_with(
        &s,
        ResponseTemplate::new(200).set_body_raw(fixture("chat_reasoning.json"), "application/json"),
    )
    .await;
    let p = provider_at(&s, |c| c.enable_thinking = Some(true));
    let r = chat(&p)
        .chat(ChatRequest::new(vec![Message::user("2+2?")]))
        .await
        .unwrap();
    assert_eq!(r.text, "2 + 2 = 4");
    assert_eq!(r.reasoning.as_deref(), Some("Simple arithmetic."));
    assert_eq!(r.meta.usage.reasoning_tokens, Some(10));
    let (b, _) = last_body(&s).await;
    assert_eq!(b["parameters"]["enable_thinking"], true);

    // JSON mode with thinking on is refused before any call, naming the option.
    let n = s.received_requests().await.unwrap().len();
    let e = chat(&p)
        .chat(
            ChatRequest::new(vec![Message::user("answer in json")])
                .with_response_format(ResponseFormat::JsonObject),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("enable_thinking"), "{e}");
    assert_eq!(s.received_requests().await.unwrap().len(), n);

    // Without thinking, json_object goes out as documented.
    let p = provider_at(&s, |_| {});
    chat(&p)
        .chat(
            ChatRequest::new(vec![Message::user("answer in json")])
                .with_response_format(ResponseFormat::JsonObject),
        )
        .await
        .unwrap();
    let (b, _) = last_body(&s).await;
    assert_eq!(
        b["parameters"]["response_format"],
        json!({"type":"json_object"})
    );
}

async fn stream_events(body: Vec<u8>) -> Vec<merchant_ai::Result<ChatEvent>> {
    let s = bare_server().await;
    answer_with(
        &s,
        ResponseTemplate::new(200).set_body_raw(body, "text/event-stream;charset=UTF-8"),
    )
    .await;
    let p = provider_at(&s, |_| {});
    let st = chat(&p)
        .chat_stream(ChatRequest::new(vec![Message::user("Weather?")]))
        .await
        .unwrap();
    st.collect().await
}

#[tokio::test]
async fn documented_stream_keeps_the_last_cumulative_usage() {
    let evs = stream_events(fixture("stream_text.sse")).await;
    let texts: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e {
            Ok(ChatEvent::TextDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["Sunny", ", 24°C."]);
    let Some(Ok(ChatEvent::Finished {
        finish_reason,
        meta,
    })) = evs.last()
    else {
        panic!("no Finished: {evs:?}");
    };
    assert_eq!(*finish_reason, FinishReason::Stop);
    // The frames said 22/1 then 22/5: the total is the last, not 44/6.
    assert_eq!(meta.usage.input_tokens, Some(22));
    assert_eq!(meta.usage.output_tokens, Some(5));
    assert_eq!(meta.request_id.as_deref(), Some("r-1"));
    assert_eq!(meta.provider, "qwen");
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, Ok(ChatEvent::Finished { .. })))
            .count(),
        1
    );
}

#[tokio::test]
async fn streamed_tool_call_fragments_and_reasoning() {
    let evs = stream_events(fixture("stream_tools.sse")).await;
    let calls: Vec<&ToolCall> = evs
        .iter()
        .filter_map(|e| match e {
            Ok(ChatEvent::ToolCall { call }) => Some(call),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_1");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, "{\"city\":\"Hangzhou\"}");
    match evs.last() {
        Some(Ok(ChatEvent::Finished {
            finish_reason,
            meta,
        })) => {
            assert_eq!(*finish_reason, FinishReason::ToolCalls);
            assert_eq!(meta.usage.output_tokens, Some(21));
        }
        other => panic!("{other:?}"),
    }

    let evs = stream_events(fixture("stream_reasoning.sse")).await;
    let mut c = merchant_ai::StreamCollector::new();
    let mut resp = None;
    for e in evs {
        resp = resp.or(c.push(e.unwrap()));
    }
    let r = resp.unwrap();
    assert_eq!(r.text, "2 + 2 = 4");
    assert_eq!(
        r.reasoning.as_deref(),
        Some("The user asks 2+2. That is 4.")
    );
    assert_eq!(r.meta.usage.reasoning_tokens, Some(10));
    assert_eq!(r.meta.usage.output_tokens, Some(17));
}

#[tokio::test]
async fn errors_inside_a_200_stream() {
    // Moderation after some text: ContentRejected, not retryable, nothing after it.
    let evs = stream_events(fixture("stream_error.sse")).await;
    assert!(matches!(evs[0], Ok(ChatEvent::TextDelta { .. })));
    assert_eq!(evs.len(), 2, "{evs:?}");
    let e = evs[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ContentRejected);
    assert!(!e.is_retryable());
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.vendor_code(), Some("DataInspectionFailed"));
    assert_eq!(e.request_id(), Some("r-2"));
    assert_eq!(e.provider(), Some("qwen"));
    assert_eq!(e.operation(), Some("chat_stream"));

    // Throttled before any text: RateLimited, retryable.
    let evs = stream_events(fixture("stream_error_throttled.sse")).await;
    assert_eq!(evs.len(), 1);
    let e = evs[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.status(), Some(429));
}

#[tokio::test]
async fn documented_error_codes_map_to_kinds() {
    let cases: &[(u16, &str, &str, ErrorKind, bool)] = &[
        (
            401,
            "InvalidApiKey",
            "Invalid API-key provided.",
            ErrorKind::Unauthenticated,
            false,
        ),
        (
            400,
            "DataInspectionFailed",
            "Input data may contain inappropriate content.",
            ErrorKind::ContentRejected,
            false,
        ),
        (
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
            ErrorKind::QuotaExceeded,
            false,
        ),
        (
            400,
            "InvalidParameter",
            "Range of input length should be [1, 30720]",
            ErrorKind::InvalidRequest,
            false,
        ),
        (
            403,
            "Model.AccessDenied",
            "Model access denied.",
            ErrorKind::PermissionDenied,
            false,
        ),
        (
            404,
            "ModelNotFound",
            "Model not found (qwen-nope)!",
            ErrorKind::NotFound,
            false,
        ),
        (
            429,
            "Throttling.RateQuota",
            "Requests rate limit exceeded, please try again later.",
            ErrorKind::RateLimited,
            true,
        ),
        (
            429,
            "Throttling.AllocationQuota",
            "Allocated quota exceeded, please increase your quota limit.",
            ErrorKind::RateLimited,
            true,
        ),
        (
            429,
            "Throttling.AllocationQuota",
            "Free allocated quota exceeded.",
            ErrorKind::QuotaExceeded,
            false,
        ),
        (
            429,
            "CommodityNotPurchased",
            "Commodity has not purchased yet.",
            ErrorKind::QuotaExceeded,
            false,
        ),
        (
            500,
            "InternalError",
            "An internal error has occured, please try again later.",
            ErrorKind::Unavailable,
            true,
        ),
        (
            500,
            "RequestTimeOut",
            "Request timed out, please try again later.",
            ErrorKind::Timeout,
            true,
        ),
        (
            503,
            "ModelServingError",
            "Too many requests. Your requests are being throttled due to system capacity limits.",
            ErrorKind::Unavailable,
            true,
        ),
    ];
    for (status, code, msg, kind, retry) in cases {
        let s = bare_server().await;
        answer_with(
            &s,
            ResponseTemplate::new(*status)
                .set_body_json(json!({"code": code, "message": msg, "request_id": "rq-1"})),
        )
        .await;
        let p = provider_at(&s, |_| {});
        let e = chat(&p)
            .chat(ChatRequest::new(vec![Message::user("Hello")]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), *kind, "{code}: {e}");
        assert_eq!(e.is_retryable(), *retry, "{code}");
        assert_eq!(e.vendor_code(), Some(*code));
        assert_eq!(e.request_id(), Some("rq-1"));
        assert_eq!(e.status(), Some(*status));
        assert_eq!(
            s.received_requests().await.unwrap().len(),
            1,
            "{code}: retried"
        );
        if *code == "Throttling.AllocationQuota" && *retry {
            assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        }
    }
}

#[tokio::test]
async fn compatible_mode_goes_to_the_regions_compatible_base() {
    let s = bare_server().await;
    Mock::given(method("POST"))
        .and(path("/compatible-mode/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id":"chatcmpl-1","object":"chat.completion","created":1735120033,"model":"qwen-plus",
            "choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop","logprobs":null}],
            "usage":{"prompt_tokens":22,"completion_tokens":17,"total_tokens":39}})))
        .mount(&s)
        .await;
    let p = provider_at(&s, |c| {
        c.mode = Mode::Compatible;
        c.enable_search = Some(true);
    });
    assert_eq!(p.info().jurisdiction.as_ref().unwrap().as_str(), "SG");
    let r = chat(&p)
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(r.text, "hello");
    let (b, req) = last_body(&s).await;
    assert_eq!(
        hdr(&req, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(hdr(&req, "x-dashscope-workspace"), Some(WORKSPACE));
    assert_eq!(b["enable_search"], true);
    assert_eq!(b["messages"][0]["content"], "hi");
}

#[tokio::test]
async fn built_from_config_with_an_explicit_region() {
    let s = bare_server().await;
    answer_with(
        &s,
        ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":"ok"}),
            "stop",
        )),
    )
    .await;
    let toml = format!(
        r#"
[providers.qwen]
kind = "dashscope"
region = "ap-southeast-1"
api_key_env = "DASHSCOPE_API_KEY"
base_url = "{}"
workspace = "{WORKSPACE}"
chat_model = "qwen-max"

[profiles.prod.routes]
chat = ["qwen"]
"#,
        s.uri()
    );
    let env = merchant_ai::EnvSource::from_map([("DASHSCOPE_API_KEY", KEY)]);
    let cfg = Config::parse_with_env(&toml, env.clone()).unwrap();
    let reg = Registry::new().with(merchant_ai_alibaba::dashscope_factory());
    let client = reg.build(&cfg, Some("prod")).await.unwrap();
    let r = client
        .chat_model()
        .unwrap()
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    assert_eq!(r.text, "ok");
    let (b, _) = last_body(&s).await;
    assert_eq!(b["model"], "qwen-max");

    // No region: refused with the valid ids, never guessed from the key.
    let bad = toml
        .replace("region = \"ap-southeast-1\"\n", "")
        .replace(&format!("base_url = \"{}\"\n", s.uri()), "");
    let cfg = Config::parse_with_env(&bad, env.clone()).unwrap();
    let e = reg.build(&cfg, Some("prod")).await.unwrap_err();
    assert!(e.message().contains("providers.qwen.region"), "{e}");
    assert!(e.message().contains("ap-southeast-1"), "{e}");
    let bad = toml.replace("ap-southeast-1", "singapore");
    let cfg = Config::parse_with_env(&bad, env).unwrap();
    let e = reg.build(&cfg, Some("prod")).await.unwrap_err();
    assert!(e.message().contains("\"singapore\""), "{e}");
    assert!(e.message().contains("cn-beijing"), "{e}");
}

#[tokio::test]
async fn readme_singapore_profile_builds() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let at = readme
        .find("## Alibaba Cloud Model Studio (DashScope), Singapore")
        .expect("README section");
    let rest = &readme[at..];
    let start = rest.find("```toml\n").unwrap() + 8;
    let toml = &rest[start..start + rest[start..].find("```").unwrap()];
    let env = merchant_ai::EnvSource::from_map([("DASHSCOPE_API_KEY", KEY)]);
    let cfg = Config::parse_with_env(toml, env).unwrap();
    let pc = cfg.provider("qwen").unwrap();
    let f = merchant_ai_alibaba::dashscope_factory();
    let caps = merchant_ai::AdapterFactory::capabilities(&f, pc).unwrap();
    assert!(caps.chat && caps.chat_streaming && caps.chat_tools && caps.chat_json);
    let p = merchant_ai::AdapterFactory::build(&f, merchant_ai::BuildContext::new(pc, &cfg))
        .await
        .unwrap();
    let info = p.info();
    assert_eq!(info.region.as_deref(), Some("ap-southeast-1"));
    assert_eq!(info.jurisdiction.as_ref().unwrap().as_str(), "SG");
    assert!(info.data_leaves_process);
}

#[tokio::test]
async fn compatible_mode_classifies_codes_like_native() {
    let cases: &[(u16, &str, &str, ErrorKind)] = &[
        (
            429,
            "Throttling.AllocationQuota",
            "Allocated quota exceeded, please increase your quota limit.",
            ErrorKind::RateLimited,
        ),
        (
            429,
            "insufficient_quota",
            "Free allocated quota exceeded.",
            ErrorKind::QuotaExceeded,
        ),
        (
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
            ErrorKind::QuotaExceeded,
        ),
        (
            400,
            "data_inspection_failed",
            "Input data may contain inappropriate content.",
            ErrorKind::ContentRejected,
        ),
        (
            401,
            "invalid_api_key",
            "Incorrect API key provided.",
            ErrorKind::Unauthenticated,
        ),
    ];
    for (status, code, msg, kind) in cases {
        let s = bare_server().await;
        Mock::given(method("POST"))
            .and(path("/compatible-mode/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(*status).set_body_json(json!({
                "error":{"message":msg,"type":"invalid_request_error","param":null,"code":code},
                "request_id":"cm-1"})))
            .mount(&s)
            .await;
        let p = provider_at(&s, |c| c.mode = Mode::Compatible);
        let e = chat(&p)
            .chat(ChatRequest::new(vec![Message::user("hi")]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), *kind, "{code}: {e}");
        assert_eq!(e.is_retryable(), kind.default_retryable(), "{code}");
        assert_eq!(e.vendor_code(), Some(*code));
        assert_eq!(e.provider(), Some("qwen"));
        let e = match chat(&p)
            .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
            .await
        {
            Err(e) => e,
            Ok(mut st) => st.next().await.unwrap().unwrap_err(),
        };
        assert_eq!(e.kind(), *kind, "stream {code}: {e}");
    }
}

#[tokio::test]
async fn a_bare_override_is_remote_with_an_unknown_jurisdiction() {
    let s = bare_server().await;
    let p = provider_at(&s, |c| c.region = None);
    let info = p.info();
    assert!(
        info.data_leaves_process,
        "a loopback URL may be a proxy to DashScope"
    );
    assert_eq!(info.region, None);
    assert_eq!(info.jurisdiction, None);
    let p = provider_at(&s, |c| {
        c.region = None;
        c.jurisdiction = Some("sg".into());
    });
    assert_eq!(p.info().jurisdiction.as_ref().unwrap().as_str(), "SG");
}

#[tokio::test]
async fn stream_only_models_answer_chat_through_a_stream() {
    let s = bare_server().await;
    Mock::given(method("POST"))
        .and(path(CHAT))
        .and(wiremock::matchers::header("x-dashscope-sse", "enable"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("stream_reasoning.sse"), "text/event-stream"),
        )
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(CHAT))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code":"InvalidParameter",
            "message":"This model only support stream mode, please enable the stream parameter to access the model.",
            "request_id":"r-x"})))
        .with_priority(5)
        .mount(&s)
        .await;
    let p = provider_at(&s, |c| c.chat_model = "qwq-plus".into());
    let r = chat(&p)
        .chat(ChatRequest::new(vec![Message::user("2+2?")]))
        .await
        .unwrap();
    assert_eq!(r.text, "2 + 2 = 4");
    assert_eq!(
        r.reasoning.as_deref(),
        Some("The user asks 2+2. That is 4.")
    );
    assert_eq!(s.received_requests().await.unwrap().len(), 2);

    // Configured: straight to the stream.
    s.reset().await;
    Mock::given(method("POST"))
        .and(path(CHAT))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("stream_text.sse"), "text/event-stream"),
        )
        .mount(&s)
        .await;
    let p = provider_at(&s, |c| c.chat_via_stream = true);
    let r = chat(&p)
        .chat(ChatRequest::new(vec![Message::user("Weather?")]))
        .await
        .unwrap();
    assert_eq!(r.text, "Sunny, 24°C.");
    assert_eq!(r.meta.usage.output_tokens, Some(5));
    assert_eq!(r.meta.request_id.as_deref(), Some("r-1"));
    let reqs = s.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].headers.get("x-dashscope-sse").unwrap(), "enable");
}
