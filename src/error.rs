//! One error type for every capability and every provider.
//!
//! An [`Error`] tells the caller *what kind* of failure happened ([`ErrorKind`]), whether trying
//! again can help ([`Error::is_retryable`]), how long the vendor asked to wait
//! ([`Error::retry_after`]), and where it happened (provider, operation, vendor request id).
//! The message never contains a secret, a prompt or customer text: adapters describe the failure,
//! not the payload.

use std::fmt;
use std::time::Duration;

/// The result type of every fallible operation in merchant-ai.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong (bad parameter, empty input, inconsistent options).
    InvalidRequest,
    /// Missing or wrong credentials.
    Unauthenticated,
    /// Credentials are valid but not allowed to do this.
    PermissionDenied,
    /// The model, index, deployment or item does not exist.
    NotFound,
    /// The provider throttled the call; retrying later helps.
    RateLimited,
    /// The account's quota or balance is exhausted; retrying does not help.
    QuotaExceeded,
    /// The call did not finish in time.
    Timeout,
    /// The provider is down, overloaded or the connection failed.
    Unavailable,
    /// The provider does not offer this capability or option.
    Unsupported,
    /// The configuration is invalid.
    ConfigInvalid,
    /// The provider refused the content (moderation, content filter).
    ContentRejected,
    /// A local policy (consent, residency, redaction) refused the call.
    PolicyDenied,
    /// The provider answered with something that could not be decoded.
    Decode,
    /// Anything else.
    Unexpected,
}

impl ErrorKind {
    /// Whether an error of this kind is worth retrying by default.
    ///
    /// `RateLimited`, `Timeout` and `Unavailable` are; everything else, including
    /// `QuotaExceeded`, is not. An adapter may override this per error with
    /// [`Error::with_retryable`].
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Unavailable
        )
    }

    /// The stable snake_case name of this kind, as used in logs, audit records and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::ConfigInvalid => "config_invalid",
            ErrorKind::ContentRejected => "content_rejected",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::Decode => "decode",
            ErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every merchant-ai operation.
///
/// Build one with [`Error::new`] and the `with_*` methods:
///
/// ```
/// use merchant_ai::{Error, ErrorKind};
/// use std::time::Duration;
///
/// let err = Error::new(ErrorKind::RateLimited, "too many requests")
///     .with_provider("qwen")
///     .with_operation("chat")
///     .with_retry_after(Duration::from_secs(2))
///     .with_status(429);
/// assert!(err.is_retryable());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(
///     err.to_string(),
///     "rate_limited: too many requests (provider qwen, operation chat, status 429, retry after 2.000s)"
/// );
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
    provider: Option<String>,
    operation: Option<String>,
    request_id: Option<String>,
    status: Option<u16>,
    vendor_code: Option<String>,
    exhausted: bool,
    source: Option<Source>,
}

impl Error {
    /// A new error of `kind`. `message` describes the failure; it must not contain secrets or
    /// customer text.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                retryable: kind.default_retryable(),
                retry_after: None,
                provider: None,
                operation: None,
                request_id: None,
                status: None,
                vendor_code: None,
                exhausted: false,
                source: None,
            }),
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidRequest`] error.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidRequest, message)
    }

    /// Shorthand for an [`ErrorKind::ConfigInvalid`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConfigInvalid, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for an [`ErrorKind::Decode`] error.
    pub fn decode(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Decode, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human-readable description (without context fields).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether trying the same call again (after [`retry_after`](Self::retry_after)) may succeed.
    /// Always `false` once a retry layer gave up ([`is_exhausted`](Self::is_exhausted)).
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable && !self.inner.exhausted
    }

    /// How long the vendor asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The provider (configured name) that produced the error.
    pub fn provider(&self) -> Option<&str> {
        self.inner.provider.as_deref()
    }

    /// The operation that failed (`search`, `chat`, `chat_stream`, ...).
    pub fn operation(&self) -> Option<&str> {
        self.inner.operation.as_deref()
    }

    /// The vendor's request id, to quote in a support ticket.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// The HTTP status the vendor answered with, if any.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The vendor's own error code (`insufficient_quota`, `Throttling.RateQuota`, ...).
    pub fn vendor_code(&self) -> Option<&str> {
        self.inner.vendor_code.as_deref()
    }

    /// Whether a retry layer already retried this error as often as it was allowed to.
    pub fn is_exhausted(&self) -> bool {
        self.inner.exhausted
    }

    /// Overrides the default retryability of the kind.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = retryable;
        self
    }

    /// Records the wait the vendor asked for.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.inner.retry_after = Some(after);
        self
    }

    /// Records the provider name; keeps the first one set (the innermost).
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        if self.inner.provider.is_none() {
            self.inner.provider = Some(provider.into());
        }
        self
    }

    /// Records the operation; keeps the first one set (the innermost).
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        if self.inner.operation.is_none() {
            self.inner.operation = Some(operation.into());
        }
        self
    }

    /// Records the vendor's request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.inner.request_id = Some(id.into());
        self
    }

    /// Records the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Records the vendor's error code.
    pub fn with_vendor_code(mut self, code: impl Into<String>) -> Self {
        self.inner.vendor_code = Some(code.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Marks the error as final: retries were used up, do not retry again further out.
    pub fn exhausted(mut self) -> Self {
        self.inner.exhausted = true;
        self
    }

    /// The same error with the message prefixed, e.g. with a key path.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.inner.message = format!("{prefix}: {}", self.inner.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = &self.inner.provider {
            parts.push(format!("provider {p}"));
        }
        if let Some(o) = &self.inner.operation {
            parts.push(format!("operation {o}"));
        }
        if let Some(s) = self.inner.status {
            parts.push(format!("status {s}"));
        }
        if let Some(c) = &self.inner.vendor_code {
            parts.push(format!("code {c}"));
        }
        if let Some(r) = &self.inner.request_id {
            parts.push(format!("request id {r}"));
        }
        if let Some(d) = self.inner.retry_after {
            parts.push(format!("retry after {:.3}s", d.as_secs_f64()));
        }
        if self.inner.exhausted {
            parts.push("retries exhausted".into());
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("retryable", &self.is_retryable());
        if let Some(v) = &self.inner.retry_after {
            d.field("retry_after", v);
        }
        if let Some(v) = &self.inner.provider {
            d.field("provider", v);
        }
        if let Some(v) = &self.inner.operation {
            d.field("operation", v);
        }
        if let Some(v) = &self.inner.status {
            d.field("status", v);
        }
        if let Some(v) = &self.inner.vendor_code {
            d.field("vendor_code", v);
        }
        if let Some(v) = &self.inner.request_id {
            d.field("request_id", v);
        }
        if let Some(v) = &self.inner.source {
            d.field("source", &v.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl Clone for Error {
    /// Clones everything but the source chain, which is flattened into a message.
    fn clone(&self) -> Self {
        let i = &self.inner;
        Error {
            inner: Box::new(Inner {
                kind: i.kind,
                message: i.message.clone(),
                retryable: i.retryable,
                retry_after: i.retry_after,
                provider: i.provider.clone(),
                operation: i.operation.clone(),
                request_id: i.request_id.clone(),
                status: i.status,
                vendor_code: i.vendor_code.clone(),
                exhausted: i.exhausted,
                source: i
                    .source
                    .as_ref()
                    .map(|s| Box::new(FlatSource(s.to_string())) as Source),
            }),
        }
    }
}

#[derive(Debug)]
struct FlatSource(String);
impl fmt::Display for FlatSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for FlatSource {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        // serde_json's message names the position and the expected type, never the payload.
        Error::new(ErrorKind::Decode, format!("invalid JSON: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_kind_and_exhaustion() {
        assert!(Error::new(ErrorKind::Unavailable, "x").is_retryable());
        assert!(!Error::new(ErrorKind::QuotaExceeded, "x").is_retryable());
        assert!(
            !Error::new(ErrorKind::Unavailable, "x")
                .exhausted()
                .is_retryable()
        );
        assert!(
            Error::new(ErrorKind::Unexpected, "x")
                .with_retryable(true)
                .is_retryable()
        );
    }

    #[test]
    fn innermost_provider_wins_and_source_chain_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Error::new(ErrorKind::Unavailable, "connection failed")
            .with_source(io)
            .with_provider("inner")
            .with_provider("outer");
        assert_eq!(e.provider(), Some("inner"));
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "reset");
        let c = e.clone();
        assert_eq!(std::error::Error::source(&c).unwrap().to_string(), "reset");
    }
}
