//! One mapping from an HTTP failure (status, headers, body) to an [`Error`].
//!
//! | status | kind |
//! |---|---|
//! | any, with a quota/billing code (`insufficient_quota`, `Arrearage`, ...) | `QuotaExceeded`, not retryable |
//! | any, with a content-policy code (`content_filter`, `data_inspection_failed`, ...) | `ContentRejected` |
//! | 400 | `InvalidRequest` (`context_length_exceeded` and other codes kept as the vendor code) |
//! | 401 | `Unauthenticated` |
//! | 402 | `QuotaExceeded` |
//! | 403 | `PermissionDenied` |
//! | 404 | `NotFound` |
//! | 408 | `Timeout` |
//! | other 429 | `RateLimited`, `retry_after` from `retry-after-ms`, `Retry-After` (seconds or HTTP-date) or `x-acs-retry-after` |
//! | 500, 502, 503, 504, 529 and other 5xx | `Unavailable` (504 too: the gateway gave up, the model may still be fine) |
//!
//! The request id comes from `x-request-id` (or `request-id`, `x-dashscope-request-id`, or the
//! body's `request_id`). Rate-limit headers (`x-ratelimit-*`) are not secret and are appended
//! to the message as `[x-ratelimit-remaining-requests=0, ...]`. The vendor's message is kept,
//! cut to 300 characters.

use std::time::Duration;

use merchant_ai::{Error, ErrorKind};
use reqwest::header::HeaderMap;
use serde_json::Value;

const MAX_VENDOR_MESSAGE: usize = 300;

/// Vendor codes that mean "the account is out of quota or money", not "slow down".
const QUOTA_CODES: &[&str] = &[
    "insufficient_quota",
    "billing_hard_limit_reached",
    "arrearage",
    "prepaidbilloverdue",
    "throttling.allocationquota",
    "quota_exceeded",
    "insufficient_balance",
];

/// Vendor codes that mean a content policy rejected the input or output.
const CONTENT_CODES: &[&str] = &[
    "content_filter",
    "content_policy_violation",
    "responsibleaipolicyviolation",
    "data_inspection_failed",
    "datainspectionfailed",
    "content_rejected",
];

/// The fields of an error body, in any of the shapes compatible servers use.
#[derive(Debug, Default)]
struct VendorError {
    message: Option<String>,
    code: Option<String>,
    kind: Option<String>,
    request_id: Option<String>,
}

fn as_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn vendor_error(body: &[u8]) -> VendorError {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return VendorError::default();
    };
    // {"error": {...}} (OpenAI, llama.cpp, Ollama, DeepSeek, DashScope), {"error": "text"}
    // (older Ollama), or the fields at the top (vLLM's {"object":"error",...}).
    let inner = match v.get("error") {
        Some(Value::Object(_)) => v.get("error").unwrap_or(&v),
        Some(Value::String(s)) => {
            return VendorError {
                message: Some(s.clone()),
                request_id: as_text(v.get("request_id")),
                ..Default::default()
            };
        }
        _ => &v,
    };
    let mut code = as_text(inner.get("code"));
    // Azure puts the policy code one level down.
    if let Some(ic) = as_text(inner.get("innererror").and_then(|i| i.get("code"))) {
        code = Some(ic);
    }
    VendorError {
        message: as_text(inner.get("message")),
        code,
        kind: as_text(inner.get("type")),
        request_id: as_text(v.get("request_id")).or_else(|| as_text(v.get("id"))),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The server's retry hint: `retry-after-ms`, then `Retry-After` (seconds or HTTP-date), then
/// `x-acs-retry-after` (milliseconds).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let pairs = h
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    merchant_ai::retry_after::from_headers(pairs).or_else(|| {
        // DashScope's compatible mode may answer with Alibaba's header, in milliseconds.
        header(h, "x-acs-retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_millis)
    })
}

fn ratelimit_headers(h: &HeaderMap) -> Vec<String> {
    let mut v: Vec<String> = h
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ratelimit-"))
        .filter_map(|(k, v)| Some(format!("{}={}", k.as_str(), v.to_str().ok()?)))
        .collect();
    v.sort();
    v
}

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_VENDOR_MESSAGE).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn contains_any(hay: &str, needles: &[&str]) -> bool {
    let hay = hay.to_ascii_lowercase();
    needles.iter().any(|n| hay.contains(n))
}

/// Maps a failed HTTP exchange to an [`Error`] (see the module docs for the table).
pub fn parse_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let ve = vendor_error(body);
    let code_l = ve.code.clone().unwrap_or_default().to_ascii_lowercase();
    let type_l = ve.kind.clone().unwrap_or_default().to_ascii_lowercase();
    let quota = contains_any(&code_l, QUOTA_CODES) || contains_any(&type_l, QUOTA_CODES);
    let content = contains_any(&code_l, CONTENT_CODES) || contains_any(&type_l, CONTENT_CODES);
    let kind = match status {
        // Quota and content-policy codes decide whatever the status (DashScope reports
        // `Arrearage` as a 400, and errors inside a 200 stream have no status of their own).
        _ if quota => ErrorKind::QuotaExceeded,
        _ if content => ErrorKind::ContentRejected,
        429 => ErrorKind::RateLimited,
        402 => ErrorKind::QuotaExceeded,
        400 | 409 | 413 | 415 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        s if s >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    };
    let what = match &ve.message {
        Some(m) => cut(m),
        None if body.is_empty() => "no error body".to_owned(),
        None => "an error body in an unknown shape".to_owned(),
    };
    let mut message = format!("HTTP {status}: {what}");
    let rl = ratelimit_headers(headers);
    if !rl.is_empty() {
        message.push_str(&format!(" [{}]", rl.join(", ")));
    }
    let mut e = Error::new(kind, message).with_status(status);
    // A numeric code only repeats the status (vLLM, llama.cpp): the type says more.
    let numeric = |c: &String| c.bytes().all(|b| b.is_ascii_digit());
    let code = match (ve.code, ve.kind) {
        (Some(c), Some(k)) if numeric(&c) => Some(k),
        (c, k) => c.or(k),
    };
    if let Some(c) = code {
        e = e.with_vendor_code(c);
    }
    let rid = header(headers, "x-request-id")
        .or_else(|| header(headers, "request-id"))
        .or_else(|| header(headers, "x-dashscope-request-id"))
        .map(str::to_owned)
        .or(ve.request_id);
    if let Some(r) = rid {
        e = e.with_request_id(r);
    }
    if kind == ErrorKind::RateLimited
        && let Some(d) = retry_after(headers)
    {
        e = e.with_retry_after(d);
    }
    e
}

/// Maps a transport error: timeouts to `Timeout`, everything else (refused, reset, closed,
/// TLS) to `Unavailable`. The URL is stripped so no query string reaches the message.
pub fn transport_error(e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Decode
    } else if e.is_builder() {
        ErrorKind::ConfigInvalid
    } else {
        ErrorKind::Unavailable
    };
    let what = if e.is_timeout() {
        "the server did not answer in time"
    } else if e.is_connect() {
        "could not connect to the server"
    } else if e.is_body() {
        "the response body broke off"
    } else {
        "the HTTP exchange failed"
    };
    let e = e.without_url();
    Error::new(kind, what).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
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
    fn quota_is_not_a_rate_limit() {
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let e = parse_error(429, &h(&[("retry-after", "20")]), body);
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(!e.is_retryable());
        assert_eq!(e.retry_after(), None);
        assert_eq!(e.vendor_code(), Some("insufficient_quota"));
    }

    #[test]
    fn rate_limit_keeps_hints_and_headers() {
        let e = parse_error(
            429,
            &h(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "9"),
                ("x-request-id", "req_1"),
                ("x-ratelimit-remaining-requests", "0"),
            ]),
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(e.request_id(), Some("req_1"));
        assert!(e.message().contains("x-ratelimit-remaining-requests=0"));
    }

    #[test]
    fn http_date_retry_after() {
        let when = chrono::Utc::now() + chrono::Duration::seconds(30);
        let v = when.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let d = retry_after(&h(&[("retry-after", &v)])).unwrap();
        assert!(d <= Duration::from_secs(31) && d >= Duration::from_secs(28));
        let past = retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]));
        assert_eq!(past, Some(Duration::ZERO));
    }

    #[test]
    fn statuses() {
        let cases = [
            (400, ErrorKind::InvalidRequest),
            (401, ErrorKind::Unauthenticated),
            (403, ErrorKind::PermissionDenied),
            (404, ErrorKind::NotFound),
            (408, ErrorKind::Timeout),
            (500, ErrorKind::Unavailable),
            (502, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (504, ErrorKind::Unavailable),
        ];
        for (s, k) in cases {
            assert_eq!(parse_error(s, &HeaderMap::new(), b"").kind(), k, "{s}");
        }
    }

    #[test]
    fn context_length_and_content_filter() {
        let e = parse_error(
            400,
            &HeaderMap::new(),
            br#"{"error":{"message":"maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert_eq!(e.vendor_code(), Some("context_length_exceeded"));
        let e = parse_error(
            400,
            &HeaderMap::new(),
            br#"{"error":{"message":"filtered","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::ContentRejected);
    }
}
