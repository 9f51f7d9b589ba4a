//! The fault harness: how the suite makes an adapter's upstream fail.
//!
//! An HTTP adapter's test implements [`FaultHarness`] over its mock server (wiremock): for a
//! [`Fault`], the mock answers as the vendor would (a 429 with `Retry-After`, a quota error
//! body, a 503, a response slower than the adapter's timeout, a dropped connection, a
//! malformed body, a stream cut mid-event, a body that trickles in, an answer split at every
//! byte) and counts the requests it received. The suite then
//! checks the adapter maps each fault to the right [`ErrorKind`](crate::ErrorKind), with the
//! retry signal, in exactly the expected number of upstream attempts.

use std::time::Duration;

use async_trait::async_trait;

use crate::api::Capability;

/// How a 429 states when to come back.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfterForm {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` this many seconds in the future.
    HttpDate(u64),
}

/// A failure of the upstream service.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttled, with a retry hint.
    RateLimited(RetryAfterForm),
    /// The account's quota or balance is used up (not retryable).
    QuotaExhausted,
    /// An HTTP 5xx status.
    ServerError(u16),
    /// The upstream answers slower than the adapter's timeout.
    Timeout,
    /// The connection is dropped before a response.
    ConnectionReset,
    /// A 200 whose body is not what the vendor documents.
    MalformedBody,
    /// A stream cut off in the middle of an event, after some events were sent.
    StreamCut,
    /// The response head arrives at once, then the body trickles in slower than the adapter's
    /// timeout (a stuck upstream that did answer).
    SlowBody,
    /// The normal answer, delivered one byte per TCP write: every chunk boundary a decoder can
    /// meet. Not a failure: the call must succeed with the same result as unsplit.
    Rechunked,
}

impl Fault {
    /// Every fault of the matrix, in order.
    pub const MATRIX: [Fault; 13] = [
        Fault::RateLimited(RetryAfterForm::Seconds(2)),
        Fault::RateLimited(RetryAfterForm::HttpDate(3)),
        Fault::QuotaExhausted,
        Fault::ServerError(500),
        Fault::ServerError(502),
        Fault::ServerError(503),
        Fault::ServerError(504),
        Fault::Timeout,
        Fault::ConnectionReset,
        Fault::MalformedBody,
        Fault::StreamCut,
        Fault::SlowBody,
        Fault::Rechunked,
    ];

    /// A stable snake_case name for scenario names.
    pub fn name(&self) -> String {
        match self {
            Fault::RateLimited(RetryAfterForm::Seconds(_)) => {
                "rate_limited_retry_after_seconds".into()
            }
            Fault::RateLimited(RetryAfterForm::HttpDate(_)) => {
                "rate_limited_retry_after_date".into()
            }
            Fault::QuotaExhausted => "quota_exhausted".into(),
            Fault::ServerError(s) => format!("server_error_{s}"),
            Fault::Timeout => "timeout".into(),
            Fault::ConnectionReset => "connection_reset".into(),
            Fault::MalformedBody => "malformed_body".into(),
            Fault::StreamCut => "stream_cut".into(),
            Fault::SlowBody => "slow_body".into(),
            Fault::Rechunked => "rechunked".into(),
        }
    }

    /// The retry hint this fault carries, for the suite's checks.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Fault::RateLimited(RetryAfterForm::Seconds(s) | RetryAfterForm::HttpDate(s)) => {
                Some(Duration::from_secs(*s))
            }
            _ => None,
        }
    }
}

/// Makes an adapter's upstream fail on demand and counts upstream attempts.
#[async_trait]
pub trait FaultHarness: Send + Sync {
    /// From now until [`clear`](Self::clear), requests of `capability` fail with `fault`.
    /// Resets the attempt counter. Returns `false` when this harness cannot produce that fault
    /// for that capability (the scenario is skipped and reported by name).
    async fn inject(&self, capability: Capability, fault: Fault) -> bool;
    /// Back to normal answers; resets the attempt counter.
    async fn clear(&self);
    /// Upstream requests received since the last `inject` or `clear`.
    async fn attempts(&self) -> usize;
    /// Called before each scenario with its name, so a mock can program the answers that
    /// scenario needs. Does nothing by default.
    async fn before_scenario(&self, _name: &str) {}
}
