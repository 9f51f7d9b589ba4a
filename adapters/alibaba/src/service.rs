//! Plumbing shared by the OpenSearch, AIRec, PAI-Rec and PAI-EAS clients: endpoints, the HTTP
//! client, credentials from `*_env` keys, and one mapping from a failed exchange to an
//! [`Error`].
//!
//! | signal | kind |
//! |---|---|
//! | a billing or quota code (`Arrearage`, `CommodityNotPurchased`, `PrepaidBillOverdue`, `PostpaidBillOverdue`, `Throttling.AllocationQuota`, `insufficient_quota`) | `QuotaExceeded`, not retryable |
//! | 429 (`Throttling`, `Throttling.RateQuota`, ...) | `RateLimited`, with `Retry-After` / `retry-after-ms` / `x-acs-retry-after` (ms) |
//! | a signature or key code (`SignatureDoesNotMatch`, `InvalidAccessKeyId*`, `IncompleteSignature`) or 401 | `Unauthenticated` |
//! | 403 | `PermissionDenied` |
//! | 404 | `NotFound` |
//! | 400, 409, 413, 415, 422 | `InvalidRequest` |
//! | 408 | `Timeout` |
//! | 5xx | `Unavailable` |
//!
//! Error bodies are read as JSON in either key casing (`code`/`Code`, `message`/`Message`,
//! `requestId`/`RequestId`/`request_id`); a body that is not JSON (EAS answers plain text) is
//! quoted, cut to 200 characters. No header value and no request content goes into a message.

use std::sync::Once;
use std::time::Duration;

use merchant_ai::{Error, ErrorKind, Jurisdiction, ProviderConfig, Result};
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::Value;

use crate::sign::Credentials;

const MAX_VENDOR_MESSAGE: usize = 200;

const QUOTA_CODES: &[&str] = &[
    "arrearage",
    "commoditynotpurchased",
    "prepaidbilloverdue",
    "postpaidbilloverdue",
    "throttling.allocationquota",
    "insufficient_quota",
    "quotaexceeded",
];

const AUTH_CODES: &[&str] = &[
    "signaturedoesnotmatch",
    "invalidaccesskeyid",
    "incompletesignature",
    "invalidapikey",
    "invalidsecuritytoken",
    "signaturenoncesed",
];

pub(crate) fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A parsed `scheme://host[:port][/base/path]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host[:port]` without a trailing slash.
    pub origin: String,
    /// `host[:port]`, the value of the `host` header.
    pub host: String,
    /// The path prefix, without a trailing slash (may be empty).
    pub base_path: String,
}

impl Endpoint {
    /// Parses `url`; the error names `key`.
    pub fn parse(url: &str, key: &str) -> Result<Endpoint> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::config(format!("{key}: must start with http:// or https://")))?;
        if scheme != "http" && scheme != "https" {
            return Err(Error::config(format!(
                "{key}: must start with http:// or https://"
            )));
        }
        if rest.contains(['?', '#', '@']) {
            return Err(Error::config(format!(
                "{key}: must not carry a query, fragment or user info"
            )));
        }
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(Error::config(format!("{key}: has no host")));
        }
        Ok(Endpoint {
            origin: format!("{scheme}://{host}"),
            host: host.to_owned(),
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// The region and jurisdiction of a provider section: `region` (core key) and an optional
/// `jurisdiction` override. A remote provider must end up with a jurisdiction.
pub(crate) fn residency(
    cfg: &ProviderConfig,
    jurisdiction: Option<&str>,
) -> Result<(Option<String>, Jurisdiction)> {
    let region = cfg.region().map(str::to_owned);
    let j = match (jurisdiction, region.as_deref()) {
        (Some(j), _) if !j.trim().is_empty() => Jurisdiction::new(j),
        (_, Some(r)) => crate::region::jurisdiction_of(r).ok_or_else(|| {
            Error::config(format!(
                "{}: region {r:?} has no known jurisdiction; set `jurisdiction`",
                cfg.key_path("region")
            ))
        })?,
        _ => {
            return Err(Error::config(format!(
                "{}: set `region` (e.g. \"ap-southeast-1\") or `jurisdiction`: where the data \
                 goes must be explicit",
                cfg.key_path("region")
            )));
        }
    };
    Ok((region, j))
}

/// The AccessKey pair (and STS token) named by `access_key_id_env`, `access_key_secret_env`
/// and `security_token_env`.
pub(crate) fn credentials(cfg: &ProviderConfig) -> Result<Credentials> {
    let need = |k: &str| -> Result<SecretString> {
        cfg.secret(k)?.ok_or_else(|| {
            Error::config(format!(
                "{}: name the environment variable holding it",
                cfg.key_path(k)
            ))
        })
    };
    let mut c = Credentials::new(need("access_key_id_env")?, need("access_key_secret_env")?);
    if let Some(t) = cfg.secret("security_token_env")? {
        c = c.with_security_token(t);
    }
    Ok(c)
}

/// An HTTP client with the given connect timeout and per-request timeout.
pub(crate) fn client(
    name: &str,
    timeout_ms: u64,
    connect_timeout_ms: u64,
) -> Result<reqwest::Client> {
    install_crypto();
    if timeout_ms == 0 || connect_timeout_ms == 0 {
        return Err(Error::config(format!(
            "providers.{name}.timeout_ms: timeouts must be at least 1 ms"
        )));
    }
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(connect_timeout_ms))
        .timeout(Duration::from_millis(timeout_ms))
        .build()
        .map_err(|e| {
            Error::config(format!(
                "providers.{name}: HTTP client: {}",
                e.without_url()
            ))
        })
}

/// Maps a transport error: timeouts to `Timeout`, everything else to `Unavailable` (a decode
/// failure of the body to `Decode`). The URL (and its query) is stripped.
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
    Error::new(kind, what).with_source(e.without_url())
}

/// The server's retry hint: `retry-after-ms`, `Retry-After` (seconds or HTTP-date), or
/// `x-acs-retry-after` (milliseconds).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let pairs = h
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    merchant_ai::retry_after::from_headers(pairs).or_else(|| {
        h.get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    })
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` present in `v` as text.
pub(crate) fn field(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(v.get(*k)))
}

pub(crate) fn cut(s: &str) -> String {
    let s = s.trim();
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VENDOR_MESSAGE)
        .collect();
    if s.chars().count() > MAX_VENDOR_MESSAGE {
        out.push_str("...");
    }
    out
}

fn contains_any(hay: &str, needles: &[&str]) -> bool {
    let hay = hay.to_ascii_lowercase();
    needles.iter().any(|n| hay.contains(n))
}

/// The kind for a vendor `code` under HTTP `status`.
pub(crate) fn kind_for(status: u16, code: &str) -> ErrorKind {
    if contains_any(code, QUOTA_CODES) {
        return ErrorKind::QuotaExceeded;
    }
    if contains_any(code, AUTH_CODES) {
        return ErrorKind::Unauthenticated;
    }
    if code.to_ascii_lowercase().starts_with("throttling") {
        return ErrorKind::RateLimited;
    }
    match status {
        429 => ErrorKind::RateLimited,
        402 => ErrorKind::QuotaExceeded,
        400 | 409 | 413 | 415 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        s if s >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

/// Maps a non-2xx answer of `service` (status, headers, body) to an [`Error`].
pub fn http_error(service: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let json: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let (code, message, rid) = match &json {
        Some(v) => {
            // OpenSearch puts its errors in an array.
            let first = v
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|a| a.first());
            let code =
                field(v, &["code", "Code"]).or_else(|| first.and_then(|e| field(e, &["code"])));
            let msg = field(v, &["message", "Message", "msg"])
                .or_else(|| first.and_then(|e| field(e, &["message"])));
            let rid = field(v, &["requestId", "RequestId", "request_id"]);
            (code, msg, rid)
        }
        None => {
            let t = String::from_utf8_lossy(body);
            let t = cut(&t);
            (None, (!t.is_empty()).then_some(t), None)
        }
    };
    let kind = kind_for(status, code.as_deref().unwrap_or_default());
    let what = match &message {
        Some(m) => cut(m),
        None => "no error body".to_owned(),
    };
    let mut e = Error::new(kind, format!("{service}: HTTP {status}: {what}")).with_status(status);
    if let Some(c) = code {
        e = e.with_vendor_code(c);
    }
    let rid = headers
        .get("x-acs-request-id")
        .or_else(|| headers.get("x-request-id"))
        .or_else(|| headers.get("x-eas-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(rid);
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

/// Sends a request and reads the whole body. A non-2xx status becomes [`http_error`]; a
/// transport failure [`transport_error`]. Returns the status, the headers and the body.
pub(crate) async fn exchange(
    service: &str,
    rb: reqwest::RequestBuilder,
) -> Result<(u16, HeaderMap, bytes::Bytes)> {
    let resp = rb.send().await.map_err(transport_error)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| {
        let e = transport_error(e);
        // A body that breaks off after the headers is a dropped connection, not bad data.
        if e.kind() == ErrorKind::Decode {
            Error::new(ErrorKind::Unavailable, e.message().to_owned())
        } else {
            e
        }
    })?;
    if !(200..300).contains(&status) {
        return Err(http_error(service, status, &headers, &body));
    }
    Ok((status, headers, body))
}

/// Parses a 2xx JSON body; the error says the body is not the documented JSON, never quoting it.
pub(crate) fn json_body(service: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        Error::decode(format!(
            "{service}: the answer is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// What a recommend answer said about one item, kept so a later feedback event quoting the
/// response's trace id can carry the vendor's own trace fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TraceEntry {
    /// The vendor's per-item trace id (AIRec `traceId`; PAI-Rec: the request id).
    pub trace_id: String,
    /// The vendor's per-item trace info (AIRec `traceInfo`; PAI-Rec: the experiment id).
    pub trace_info: String,
    /// The vendor scene the item was recommended in.
    pub scene: String,
}

/// A bounded map from (response trace id, item id) to [`TraceEntry`]: the oldest responses
/// are forgotten first.
#[derive(Debug)]
pub(crate) struct TraceBook {
    cap: usize,
    order: std::collections::VecDeque<String>,
    map: std::collections::HashMap<String, std::collections::HashMap<String, TraceEntry>>,
}

impl TraceBook {
    pub(crate) fn new(cap: usize) -> Self {
        TraceBook {
            cap: cap.max(1),
            order: Default::default(),
            map: Default::default(),
        }
    }
    pub(crate) fn insert(&mut self, trace: &str, items: Vec<(String, TraceEntry)>) {
        if !self.map.contains_key(trace) {
            self.order.push_back(trace.to_owned());
        }
        self.map
            .insert(trace.to_owned(), items.into_iter().collect());
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
    pub(crate) fn get(&self, trace: &str, item: &str) -> Option<&TraceEntry> {
        self.map.get(trace)?.get(item)
    }
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
    fn pop_errors_in_both_casings() {
        let e = http_error(
            "airec",
            400,
            &HeaderMap::new(),
            br#"{"requestId":"r1","code":"InvalidParameter","message":"bad userId"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert_eq!(e.request_id(), Some("r1"));
        assert_eq!(e.vendor_code(), Some("InvalidParameter"));
        let e = http_error(
            "airec",
            400,
            &HeaderMap::new(),
            br#"{"RequestId":"r2","Code":"SignatureDoesNotMatch","Message":"sig"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.request_id(), Some("r2"));
        let e = http_error(
            "airec",
            400,
            &HeaderMap::new(),
            br#"{"Code":"Arrearage","Message":"overdue"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(!e.is_retryable());
    }

    #[test]
    fn throttling_keeps_the_acs_hint() {
        let e = http_error(
            "airec",
            429,
            &h(&[("x-acs-retry-after", "1500")]),
            br#"{"Code":"Throttling.User","Message":"slow down"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn plain_text_bodies() {
        let e = http_error("pai-eas", 401, &HeaderMap::new(), b"Authorization failed\n");
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(e.message().contains("Authorization failed"), "{e}");
        let long = "x".repeat(1000);
        let e = http_error("pai-eas", 503, &HeaderMap::new(), long.as_bytes());
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().len() < 300);
        let e = http_error("pai-eas", 404, &HeaderMap::new(), b"");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.message().contains("no error body"));
    }

    #[test]
    fn trace_book_is_bounded() {
        let mut b = TraceBook::new(2);
        let e = |s: &str| TraceEntry {
            trace_id: s.into(),
            ..Default::default()
        };
        b.insert("t1", vec![("i".into(), e("a"))]);
        b.insert("t2", vec![("i".into(), e("b"))]);
        b.insert("t3", vec![("i".into(), e("c"))]);
        assert!(b.get("t1", "i").is_none());
        assert_eq!(b.get("t3", "i").unwrap().trace_id, "c");
        assert!(b.get("t3", "x").is_none());
    }

    #[test]
    fn endpoints_and_regions() {
        let e = Endpoint::parse("https://h.example.com:8443/api/predict/svc/", "k").unwrap();
        assert_eq!(e.origin, "https://h.example.com:8443");
        assert_eq!(e.host, "h.example.com:8443");
        assert_eq!(e.base_path, "/api/predict/svc");
        assert!(Endpoint::parse("ftp://x", "k").is_err());
        assert!(Endpoint::parse("https://x/?a=1", "k").is_err());
        let pc = |r: &str| ProviderConfig::new("x", "airec").with_region(r);
        assert_eq!(
            residency(&pc("cn-hangzhou"), None).unwrap().1.as_str(),
            "CN"
        );
        assert_eq!(
            residency(&pc("ap-southeast-1"), None).unwrap().1.as_str(),
            "SG"
        );
        assert_eq!(
            residency(&pc("mars-1"), Some("us")).unwrap().1.as_str(),
            "US"
        );
        let e = residency(&pc("mars-1"), None).unwrap_err();
        assert!(e.message().contains("providers.x.region"), "{e}");
        let e = residency(&ProviderConfig::new("x", "airec"), None).unwrap_err();
        assert!(e.message().contains("explicit"), "{e}");
    }
}
