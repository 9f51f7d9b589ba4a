//! The HTTP client shared by chat, embeddings and rerank: one connection pool, the
//! `Authorization: Bearer` header (marked sensitive, never in `Debug`), the workspace header,
//! timeouts. It never retries: the core's retry layer does, once per call.

use std::fmt;
use std::sync::Once;
use std::time::Duration;

use merchant_ai::{Error, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::parse_error;
use crate::region::Endpoint;

/// The workspace header.
pub const WORKSPACE_HEADER: &str = "x-dashscope-workspace";
/// The streaming header.
pub const SSE_HEADER: &str = "x-dashscope-sse";

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed a provider already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How a client is set up.
#[derive(Clone)]
pub struct ClientOptions {
    /// The provider's configured name (for errors).
    pub name: String,
    /// Where requests go.
    pub endpoint: Endpoint,
    /// The API key.
    pub api_key: Option<SecretString>,
    /// `X-DashScope-WorkSpace`.
    pub workspace: Option<String>,
    /// Headers added to every request (not secret).
    pub extra_headers: Vec<(String, String)>,
    /// Longest silence while waiting for bytes.
    pub read_timeout: Duration,
    /// Longest connect.
    pub connect_timeout: Duration,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for one DashScope endpoint.
#[derive(Clone)]
pub struct Client {
    pub(crate) name: String,
    pub(crate) http: reqwest::Client,
    pub(crate) headers: HeaderMap,
    pub(crate) endpoint: Endpoint,
    /// `timeout_ms`: the longest wait for headers, a whole body, or the next stream event.
    pub(crate) timeout: std::time::Duration,
}

/// Reads a whole response body within `limit`: a body that trickles in is a timeout.
pub async fn read_body(
    resp: reqwest::Response,
    limit: std::time::Duration,
) -> Result<bytes::Bytes> {
    match tokio::time::timeout(limit, resp.bytes()).await {
        Ok(r) => r.map_err(merchant_ai_openai::transport_error),
        Err(_) => Err(Error::new(
            merchant_ai::ErrorKind::Timeout,
            "the response body did not arrive within timeout_ms",
        )),
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashScopeClient")
            .field("name", &self.name)
            .field("root", &self.endpoint.root())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client; the key goes into a sensitive `Authorization` header and nowhere else.
    pub fn new(o: ClientOptions) -> Result<Self> {
        install_crypto();
        let bad = |what: &str| Error::config(format!("providers.{}: invalid {what}", o.name));
        let mut headers = HeaderMap::new();
        if let Some(k) = &o.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose_secret()))
                .map_err(|_| bad("API key (not a valid header value)"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Some(ws) = &o.workspace {
            headers.insert(
                WORKSPACE_HEADER,
                HeaderValue::from_str(ws).map_err(|_| bad("workspace"))?,
            );
        }
        for (k, v) in &o.extra_headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("extra_headers"))?;
            headers.insert(
                name,
                HeaderValue::from_str(v).map_err(|_| bad("extra_headers"))?,
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(o.connect_timeout)
            .read_timeout(o.read_timeout)
            .build()
            .map_err(|e| Error::config(format!("providers.{}: HTTP client: {e}", o.name)))?;
        Ok(Client {
            name: o.name,
            http,
            headers,
            endpoint: o.endpoint,
            timeout: o.read_timeout,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// POSTs JSON to `url`; a non-2xx answer becomes its [`Error`]. With `stream`, asks for
    /// server-sent events (`X-DashScope-SSE: enable`, `Accept: text/event-stream`).
    pub async fn post(&self, url: &str, body: &Value, stream: bool) -> Result<reqwest::Response> {
        let bytes = serde_json::to_vec(body)?;
        let mut rb = self
            .http
            .post(url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        rb = if stream {
            rb.header(SSE_HEADER, "enable")
                .header(reqwest::header::ACCEPT, "text/event-stream")
        } else {
            rb.header(reqwest::header::ACCEPT, "application/json")
        };
        let resp = rb
            .body(bytes)
            .send()
            .await
            .map_err(merchant_ai_openai::transport_error)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = read_body(resp, self.timeout).await.unwrap_or_default();
        let e = parse_error(status, &headers, &body);
        tracing::debug!(provider = %self.name, status, kind = %e.kind(), code = ?e.vendor_code(), "dashscope error");
        Err(e)
    }

    /// POSTs JSON and reads the whole 2xx body.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<(bytes::Bytes, HeaderMap)> {
        let resp = self.post(url, body, false).await?;
        let headers = resp.headers().clone();
        let b = read_body(resp, self.timeout).await?;
        Ok((b, headers))
    }
}

/// The request id from response headers.
pub fn header_request_id(h: &HeaderMap) -> Option<String> {
    ["x-request-id", "x-dashscope-request-id", "request-id"]
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()).map(str::to_owned))
}
