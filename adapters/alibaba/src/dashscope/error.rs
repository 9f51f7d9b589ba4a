//! DashScope's error codes mapped to [`ErrorKind`]s and retryability.
//!
//! The code decides first; the HTTP status only when the code is unknown. Quota and billing
//! codes are never retryable; moderation is `ContentRejected`.
//!
//! | code(s) | kind | retryable |
//! |---|---|---|
//! | `DataInspectionFailed`, `data_inspection_failed` | `ContentRejected` | no |
//! | `Arrearage`, `CommodityNotPurchased`, `PrepaidBillOverdue`, `PostpaidBillOverdue`, `AllocationQuota.FreeTierOnly`, a "free ... quota" exhausted | `QuotaExceeded` | no |
//! | `Throttling.AllocationQuota`, `insufficient_quota` (the TPM/TPS window) | `RateLimited` | yes, waiting at least [`TPM_WINDOW`] unless the server says |
//! | `Throttling`, `Throttling.RateQuota`, `Throttling.BurstRate`, `LimitRequests`, `limit_requests`, `limit_burst_rate` | `RateLimited` | yes, `Retry-After` kept |
//! | `InvalidApiKey`, `invalid_api_key` | `Unauthenticated` | no |
//! | `AccessDenied*`, `Model.AccessDenied`, `Workspace.AccessDenied`, `App.AccessDenied` | `PermissionDenied` | no |
//! | `ModelNotFound`, `model_not_found`, `Model.NotExist`, `model_not_supported`, `WorkSpaceNotFound`, `NotFound` | `NotFound` | no |
//! | `InvalidParameter`, `BadRequest.*`, `InvalidURL`, `CustomRoleBlocked`, `FaqRuleBlocked` | `InvalidRequest` | no |
//! | `UnsupportedOperation` | `Unsupported` | no |
//! | `RequestTimeOut`, `InternalError.Timeout` | `Timeout` | yes |
//! | `InternalError*`, `SystemError`, `ModelServiceFailed`, `InvokePluginFailed`, `AppProcessFailed`, `RewriteFailed`, `RetrivalFailed`, `ModelServingError`, `ModelUnavailable`, `ServiceUnavailable`, `GatewayTimeout` | `Unavailable` | yes |
//! | unknown code | by status: 400/413 `InvalidRequest`, 401 `Unauthenticated`, 403 `PermissionDenied`, 404 `NotFound`, 408 `Timeout`, 429 `RateLimited`, 5xx `Unavailable` | the kind's default |
//!
//! The request id comes from the body's `request_id` (or the `x-request-id`,
//! `x-dashscope-request-id` headers). The vendor's message is kept, cut to 200 characters;
//! DashScope's messages describe the failure, not the input.

use std::time::Duration;

use merchant_ai::{Error, ErrorKind};
use reqwest::header::HeaderMap;
use serde_json::Value;

const MAX_VENDOR_MESSAGE: usize = 200;

/// The wait suggested for `Throttling.AllocationQuota` when the server gives none: the
/// tokens-per-minute window it counts against.
pub const TPM_WINDOW: Duration = Duration::from_secs(60);

/// The kind a documented DashScope error `code` stands for (the message tells a free-tier
/// quota from a rate window); `None` for a code this table does not know.
pub fn code_kind(code: &str, message: &str) -> Option<ErrorKind> {
    use ErrorKind::*;
    let c = code.trim();
    let lc = c.to_ascii_lowercase();
    let free_quota = {
        let m = message.to_ascii_lowercase();
        m.contains("free") && m.contains("quota")
    };
    Some(match c {
        "DataInspectionFailed" | "data_inspection_failed" => ContentRejected,
        "Arrearage"
        | "CommodityNotPurchased"
        | "PrepaidBillOverdue"
        | "PostpaidBillOverdue"
        | "AllocationQuota.FreeTierOnly" => QuotaExceeded,
        "Throttling.AllocationQuota" | "insufficient_quota" if free_quota => QuotaExceeded,
        "Throttling.AllocationQuota" | "insufficient_quota" => RateLimited,
        "InvalidApiKey" | "invalid_api_key" => Unauthenticated,
        "ModelNotFound"
        | "model_not_found"
        | "Model.NotExist"
        | "model_not_supported"
        | "WorkSpaceNotFound"
        | "NotFound" => NotFound,
        "InvalidParameter"
        | "invalid_parameter_error"
        | "InvalidURL"
        | "CustomRoleBlocked"
        | "FaqRuleBlocked" => InvalidRequest,
        "UnsupportedOperation" => Unsupported,
        "RequestTimeOut" | "InternalError.Timeout" => Timeout,
        "SystemError" | "ModelServiceFailed" | "InvokePluginFailed" | "AppProcessFailed"
        | "RewriteFailed" | "RetrivalFailed" | "ModelServingError" | "ModelUnavailable"
        | "ServiceUnavailable" | "GatewayTimeout" | "internal_error" => Unavailable,
        _ if lc.starts_with("throttling") || lc == "limitrequests" || lc.starts_with("limit_") => {
            RateLimited
        }
        _ if c.starts_with("InternalError") => Unavailable,
        _ if c.starts_with("BadRequest") => InvalidRequest,
        _ if c.starts_with("AccessDenied") || c.ends_with(".AccessDenied") => PermissionDenied,
        _ => return None,
    })
}

/// The kind and retryability of a DashScope error `code` (with the HTTP status, when known,
/// for unknown codes, and the message, which tells a free-tier quota from a rate window).
pub fn classify(code: &str, status: Option<u16>, message: &str) -> (ErrorKind, bool) {
    use ErrorKind::*;
    let kind = code_kind(code, message).unwrap_or(match status {
        Some(400 | 409 | 413 | 415 | 422) => InvalidRequest,
        Some(401) => Unauthenticated,
        Some(402) => QuotaExceeded,
        Some(403) => PermissionDenied,
        Some(404) => NotFound,
        Some(408) => Timeout,
        Some(429) => RateLimited,
        Some(s) if s >= 500 => Unavailable,
        _ => Unexpected,
    });
    (kind, kind.default_retryable())
}

/// Re-reads an error of the compatible mode (mapped by `merchant-ai-openai`) by its DashScope
/// code, so both modes classify the same code alike (e.g. `Throttling.AllocationQuota` is a
/// rate window, `Arrearage` billing). Errors without a known code pass unchanged.
pub fn reclassify(e: Error) -> Error {
    let Some(code) = e.vendor_code().map(str::to_owned) else {
        return e;
    };
    let Some(kind) = code_kind(&code, e.message()) else {
        return e;
    };
    if kind == e.kind() {
        return e;
    }
    let mut n = Error::new(kind, e.message().to_owned()).with_vendor_code(code.clone());
    if let Some(s) = e.status() {
        n = n.with_status(s);
    }
    if let Some(r) = e.request_id() {
        n = n.with_request_id(r.to_owned());
    }
    if let Some(p) = e.provider() {
        n = n.with_provider(p.to_owned());
    }
    if let Some(o) = e.operation() {
        n = n.with_operation(o.to_owned());
    }
    if kind == ErrorKind::RateLimited {
        n = n.with_retry_after(e.retry_after().unwrap_or(TPM_WINDOW));
    }
    n
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_VENDOR_MESSAGE).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// The code, message and request id of an error body: DashScope's flat
/// `{"code","message","request_id"}`, the compatible mode's `{"error":{...}}`, or POP's
/// capitalised keys.
pub fn fields(body: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let inner = match body.get("error") {
        Some(e @ Value::Object(_)) => e,
        _ => body,
    };
    let code = text(inner.get("code")).or_else(|| text(inner.get("Code")));
    let message = text(inner.get("message")).or_else(|| text(inner.get("Message")));
    let rid = text(body.get("request_id"))
        .or_else(|| text(body.get("RequestId")))
        .or_else(|| text(body.get("requestId")));
    (code, message, rid)
}

/// An [`Error`] from a code, a message and the status (of the response, or of an in-stream
/// `:HTTP_STATUS` line).
pub fn from_code(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    request_id: Option<&str>,
) -> Error {
    let (kind, retryable) = classify(code.unwrap_or_default(), status, message.unwrap_or(""));
    let what = match message {
        Some(m) => cut(m),
        None => "no error message".to_owned(),
    };
    let text = match status {
        Some(s) => format!("HTTP {s}: {what}"),
        None => what,
    };
    let mut e = Error::new(kind, text).with_retryable(retryable);
    if let Some(s) = status {
        e = e.with_status(s);
    }
    if let Some(c) = code {
        e = e.with_vendor_code(c);
    }
    if let Some(r) = request_id {
        e = e.with_request_id(r);
    }
    if kind == ErrorKind::RateLimited && code == Some("Throttling.AllocationQuota") {
        e = e.with_retry_after(TPM_WINDOW);
    }
    e
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The server's retry hint: `retry-after-ms` or `Retry-After` (seconds or HTTP-date) through
/// [`merchant_ai::retry_after`], else Alibaba's `x-acs-retry-after` (milliseconds).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let pairs = h
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    merchant_ai::retry_after::from_headers(pairs).or_else(|| {
        header(h, "x-acs-retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_millis)
    })
}

/// Maps a non-2xx response (status, headers, body) to an [`Error`].
pub fn parse_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (code, message, rid) = fields(&v);
    let message = message.or_else(|| {
        Some(if body.is_empty() {
            "no error body".to_owned()
        } else {
            "an error body in an unknown shape".to_owned()
        })
    });
    let rid = rid.or_else(|| {
        header(headers, "x-request-id")
            .or_else(|| header(headers, "x-dashscope-request-id"))
            .map(str::to_owned)
    });
    let mut e = from_code(
        code.as_deref(),
        message.as_deref(),
        Some(status),
        rid.as_deref(),
    );
    if e.kind() == ErrorKind::RateLimited
        && let Some(d) = retry_after(headers)
    {
        e = e.with_retry_after(d);
    }
    e
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
    fn documented_codes() {
        use ErrorKind::*;
        let cases: &[(&str, u16, ErrorKind, bool)] = &[
            ("InvalidParameter", 400, InvalidRequest, false),
            ("invalid_parameter_error", 400, InvalidRequest, false),
            ("DataInspectionFailed", 400, ContentRejected, false),
            ("data_inspection_failed", 400, ContentRejected, false),
            ("BadRequest.EmptyInput", 400, InvalidRequest, false),
            ("BadRequest.TooLarge", 400, InvalidRequest, false),
            ("InvalidURL", 400, InvalidRequest, false),
            ("UnsupportedOperation", 400, Unsupported, false),
            ("CustomRoleBlocked", 400, InvalidRequest, false),
            ("Arrearage", 400, QuotaExceeded, false),
            ("InvalidApiKey", 401, Unauthenticated, false),
            ("invalid_api_key", 401, Unauthenticated, false),
            ("AccessDenied", 403, PermissionDenied, false),
            ("AccessDenied.Unpurchased", 403, PermissionDenied, false),
            ("Model.AccessDenied", 403, PermissionDenied, false),
            ("Workspace.AccessDenied", 403, PermissionDenied, false),
            ("AllocationQuota.FreeTierOnly", 403, QuotaExceeded, false),
            ("ModelNotFound", 404, NotFound, false),
            ("model_not_found", 404, NotFound, false),
            ("WorkSpaceNotFound", 404, NotFound, false),
            ("Throttling", 429, RateLimited, true),
            ("Throttling.RateQuota", 429, RateLimited, true),
            ("LimitRequests", 429, RateLimited, true),
            ("limit_requests", 429, RateLimited, true),
            ("Throttling.BurstRate", 429, RateLimited, true),
            ("limit_burst_rate", 429, RateLimited, true),
            ("Throttling.AllocationQuota", 429, RateLimited, true),
            ("insufficient_quota", 429, RateLimited, true),
            ("CommodityNotPurchased", 429, QuotaExceeded, false),
            ("PrepaidBillOverdue", 429, QuotaExceeded, false),
            ("PostpaidBillOverdue", 429, QuotaExceeded, false),
            ("InternalError", 500, Unavailable, true),
            ("InternalError.Algo", 500, Unavailable, true),
            ("InternalError.Timeout", 500, Timeout, true),
            ("SystemError", 500, Unavailable, true),
            ("ModelServiceFailed", 500, Unavailable, true),
            ("RequestTimeOut", 500, Timeout, true),
            ("ModelServingError", 503, Unavailable, true),
            ("ModelUnavailable", 503, Unavailable, true),
            ("SomethingNew", 418, Unexpected, false),
            ("SomethingNew", 502, Unavailable, true),
        ];
        for (code, status, kind, retry) in cases {
            let (k, r) = classify(code, Some(*status), "");
            assert_eq!((k, r), (*kind, *retry), "{code}");
        }
        // "Free allocated quota exceeded" is the free tier running out: billing, not a window.
        let (k, r) = classify(
            "Throttling.AllocationQuota",
            Some(429),
            "Free allocated quota exceeded.",
        );
        assert_eq!((k, r), (ErrorKind::QuotaExceeded, false));
    }

    #[test]
    fn bodies_headers_and_hints() {
        let e = parse_error(
            429,
            &h(&[("retry-after", "7")]),
            br#"{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later.","request_id":"r-9"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.request_id(), Some("r-9"));
        assert_eq!(e.vendor_code(), Some("Throttling.RateQuota"));
        assert_eq!(e.status(), Some(429));

        let e = parse_error(
            429,
            &h(&[("x-acs-retry-after", "1500")]),
            br#"{"code":"Throttling","message":"slow down"}"#,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));

        let e = parse_error(
            429,
            &HeaderMap::new(),
            br#"{"code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit."}"#,
        );
        assert_eq!(e.retry_after(), Some(TPM_WINDOW));

        let e = parse_error(
            429,
            &h(&[("retry-after", "20")]),
            br#"{"code":"PrepaidBillOverdue","message":"The prepaid bill is overdue."}"#,
        );
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(!e.is_retryable());
        assert_eq!(e.retry_after(), None);

        // The compatible mode's nesting.
        let e = parse_error(
            401,
            &h(&[("x-request-id", "hdr-1")]),
            br#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.request_id(), Some("hdr-1"));

        // Plain text or empty bodies.
        let e = parse_error(502, &HeaderMap::new(), b"<html>Bad gateway</html>");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("unknown shape"));
        let e = parse_error(503, &HeaderMap::new(), b"");
        assert!(e.is_retryable());
    }
}
