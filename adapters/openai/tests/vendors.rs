//! Non-streamed answers and error bodies in the shapes of OpenAI, Azure, vLLM, llama.cpp's
//! server, Ollama, DeepSeek and DashScope's compatible mode.

use merchant_ai::{ErrorKind, FinishReason};
use merchant_ai_openai::parse_error;
use merchant_ai_openai::wire::parse_completion;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

fn body(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

#[test]
fn openai_chat_with_parallel_tool_calls() {
    let c = parse_completion(&body(json!({
        "id": "chatcmpl-AZ1", "object": "chat.completion", "created": 1764115200,
        "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_7f6be3efb0", "service_tier": "default",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "refusal": null, "annotations": [],
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": "{\"order_id\":\"12345\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "stock_level", "arguments": "{\"sku\":\"TEA-01\"}"}}
                ]}}],
        "usage": {"prompt_tokens": 82, "completion_tokens": 40, "total_tokens": 122,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
    })))
    .unwrap();
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(c.tool_calls[1].name, "stock_level");
    assert_eq!(c.finish_reason, FinishReason::ToolCalls);
    assert_eq!(c.text, "");
    assert_eq!(c.usage.unwrap().output_tokens, Some(40));
}

#[test]
fn vllm_chat_with_reasoning_and_stop_reason() {
    let c = parse_completion(&body(json!({
        "id": "chatcmpl-8c2", "object": "chat.completion", "created": 1764115200,
        "model": "Qwen/Qwen3-8B", "prompt_logprobs": null, "kv_transfer_params": null,
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop", "stop_reason": null,
            "message": {"role": "assistant", "reasoning_content": "Think about shipping.",
                "content": "Shipping takes 3 days.", "tool_calls": []}}],
        "usage": {"prompt_tokens": 12, "total_tokens": 30, "completion_tokens": 18, "prompt_tokens_details": null}
    })))
    .unwrap();
    assert_eq!(c.text, "Shipping takes 3 days.");
    assert_eq!(c.reasoning.as_deref(), Some("Think about shipping."));
    assert!(c.tool_calls.is_empty());
}

#[test]
fn llamacpp_chat_with_timings() {
    let c = parse_completion(&body(json!({
        "choices": [{"finish_reason": "stop", "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?"}}],
        "created": 1764115200, "model": "gpt-3.5-turbo", "system_fingerprint": "b6123-1a2b3c",
        "object": "chat.completion", "usage": {"completion_tokens": 8, "prompt_tokens": 14, "total_tokens": 22},
        "id": "chatcmpl-Xq",
        "timings": {"prompt_n": 14, "prompt_ms": 31.2, "predicted_n": 8, "predicted_ms": 95.4}
    })))
    .unwrap();
    assert_eq!(c.text, "Hello! How can I help?");
    assert_eq!(c.usage.unwrap().input_tokens, Some(14));
}

#[test]
fn ollama_chat_with_a_tool_call_and_object_arguments() {
    let c = parse_completion(&body(json!({
        "id": "chatcmpl-412", "object": "chat.completion", "created": 1764115200, "model": "llama3.1:8b",
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "",
                "tool_calls": [{"id": "call_h3k9", "index": 0, "type": "function",
                    "function": {"name": "order_status", "arguments": {"order_id": "12345"}}}]}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 22, "total_tokens": 142}
    })))
    .unwrap();
    assert_eq!(
        c.tool_calls[0].arguments_json().unwrap()["order_id"],
        "12345"
    );
}

#[test]
fn deepseek_reasoner_keeps_reasoning_apart() {
    let c = parse_completion(&body(json!({
        "id": "930c60df", "object": "chat.completion", "created": 1764115200, "model": "deepseek-reasoner",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Returns within 30 days.",
                "reasoning_content": "The policy page says 30 days."}}],
        "usage": {"prompt_tokens": 15, "completion_tokens": 40, "total_tokens": 55,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 31},
            "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 15},
        "system_fingerprint": "fp_a1b2"
    })))
    .unwrap();
    assert_eq!(c.text, "Returns within 30 days.");
    assert_eq!(
        c.reasoning.as_deref(),
        Some("The policy page says 30 days.")
    );
    assert_eq!(c.usage.unwrap().reasoning_tokens, Some(31));
}

#[test]
fn dashscope_compatible_chat() {
    let c = parse_completion(&body(json!({
        "choices": [{"message": {"role": "assistant", "content": "我们的退货期是30天。"},
            "finish_reason": "stop", "index": 0, "logprobs": null}],
        "object": "chat.completion",
        "usage": {"prompt_tokens": 22, "completion_tokens": 9, "total_tokens": 31, "prompt_tokens_details": {"cached_tokens": 0}},
        "created": 1764115200, "system_fingerprint": null, "model": "qwen-plus", "id": "chatcmpl-e30f"
    })))
    .unwrap();
    assert_eq!(c.text, "我们的退货期是30天。");
    assert_eq!(c.model.as_deref(), Some("qwen-plus"));
}

#[test]
fn unknown_finish_reason_nulls_and_missing_fields() {
    let c = parse_completion(&body(json!({
        "choices": [{"message": {"role": null, "content": null}, "finish_reason": "abort"}]
    })))
    .unwrap();
    assert_eq!(c.finish_reason, FinishReason::Other("abort".into()));
    assert_eq!(c.text, "");
    assert!(c.usage.is_none());
    let c = parse_completion(&body(json!({
        "choices": [{"message": {"content": "x"}, "finish_reason": null}], "usage": null
    })))
    .unwrap();
    assert_eq!(c.finish_reason, FinishReason::Stop);
}

#[test]
fn malformed_bodies_are_decode_errors() {
    for b in [
        &b"{\"choices\": ["[..],
        b"<html>502 Bad Gateway</html>",
        b"{}",
        b"{\"choices\": []}",
        b"{\"choices\": [{\"message\": \"text\"}]}",
        b"",
    ] {
        let e = parse_completion(b).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Decode,
            "{}",
            String::from_utf8_lossy(b)
        );
    }
}

#[test]
fn an_error_in_a_200_body_is_mapped() {
    let e = parse_completion(&body(json!({
        "error": {"message": "Internal error", "type": "server_error", "code": 500}
    })))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[test]
fn vendor_error_bodies() {
    let none = HeaderMap::new();
    let cases: Vec<(u16, serde_json::Value, ErrorKind, Option<&str>)> = vec![
        // OpenAI
        (
            401,
            json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
            ErrorKind::Unauthenticated,
            Some("invalid_api_key"),
        ),
        (
            400,
            json!({"error": {"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
            ErrorKind::InvalidRequest,
            Some("context_length_exceeded"),
        ),
        (
            404,
            json!({"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}),
            ErrorKind::NotFound,
            Some("model_not_found"),
        ),
        (
            429,
            json!({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
            ErrorKind::QuotaExceeded,
            Some("insufficient_quota"),
        ),
        // Azure content filter
        (
            400,
            json!({"error": {"message": "The response was filtered", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}}}),
            ErrorKind::ContentRejected,
            Some("ResponsibleAIPolicyViolation"),
        ),
        // vLLM (top-level error object)
        (
            400,
            json!({"object": "error", "message": "max_tokens must be at least 1, got 0.", "type": "BadRequestError", "param": null, "code": 400}),
            ErrorKind::InvalidRequest,
            Some("BadRequestError"),
        ),
        (
            404,
            json!({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": null, "code": 404}}),
            ErrorKind::NotFound,
            Some("NotFoundError"),
        ),
        // llama.cpp server
        (
            400,
            json!({"error": {"code": 400, "message": "the request exceeds the available context size", "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096}}),
            ErrorKind::InvalidRequest,
            Some("exceed_context_size_error"),
        ),
        (
            503,
            json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
            ErrorKind::Unavailable,
            Some("unavailable_error"),
        ),
        // Ollama
        (
            404,
            json!({"error": {"message": "model \"llama9\" not found, try pulling it first", "type": "api_error", "param": null, "code": null}}),
            ErrorKind::NotFound,
            Some("api_error"),
        ),
        (
            500,
            json!({"error": "llama runner process has terminated"}),
            ErrorKind::Unavailable,
            None,
        ),
        // DeepSeek
        (
            402,
            json!({"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": null, "code": "invalid_request_error"}}),
            ErrorKind::QuotaExceeded,
            Some("invalid_request_error"),
        ),
        // DashScope compatible mode
        (
            400,
            json!({"error": {"code": "data_inspection_failed", "param": null, "message": "Input data may contain inappropriate content.", "type": "data_inspection_failed"},
            "id": "chatcmpl-1", "request_id": "ds-req-1"}),
            ErrorKind::ContentRejected,
            Some("data_inspection_failed"),
        ),
        (
            400,
            json!({"error": {"code": "Arrearage", "param": null, "message": "Access denied, please make sure your account is in good standing.", "type": "Arrearage"},
            "request_id": "ds-req-2"}),
            ErrorKind::QuotaExceeded,
            Some("Arrearage"),
        ),
        (
            429,
            json!({"error": {"code": "limit_requests", "param": null, "message": "Requests rate limit exceeded, please try again later.", "type": "limit_requests"}}),
            ErrorKind::RateLimited,
            Some("limit_requests"),
        ),
    ];
    for (status, b, kind, code) in cases {
        let e = parse_error(status, &none, &body(b.clone()));
        assert_eq!(e.kind(), kind, "{status} {b}");
        assert_eq!(e.vendor_code(), code, "{status} {b}");
        assert_eq!(e.status(), Some(status));
    }
    let e = parse_error(
        400,
        &none,
        &body(json!({"error": {"code": "Arrearage", "message": "x"}, "request_id": "ds-req-2"})),
    );
    assert_eq!(e.request_id(), Some("ds-req-2"));
    assert!(!e.is_retryable());
}

#[test]
fn rate_limit_headers_and_retry_hints() {
    let e = parse_error(
        429,
        &headers(&[
            ("retry-after", "7"),
            ("x-request-id", "req_abc"),
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6.2s"),
        ]),
        &body(
            json!({"error": {"message": "Rate limit reached for gpt-4o on tokens per min (TPM)", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}),
        ),
    );
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
    assert_eq!(e.request_id(), Some("req_abc"));
    assert!(
        e.message().contains("x-ratelimit-remaining-tokens=0"),
        "{e}"
    );
    assert!(e.message().contains("x-ratelimit-reset-tokens=6.2s"), "{e}");
    let e = parse_error(429, &headers(&[("x-acs-retry-after", "2500")]), b"");
    assert_eq!(
        e.retry_after(),
        Some(std::time::Duration::from_millis(2500))
    );
    let e = parse_error(429, &headers(&[("retry-after", "soon")]), b"not json");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), None);
}

#[test]
fn long_vendor_messages_are_cut() {
    let long = "x".repeat(5000);
    let e = parse_error(
        400,
        &HeaderMap::new(),
        &body(json!({"error": {"message": long}})),
    );
    assert!(e.message().len() < 400);
}
