use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Free-form options passed through to one provider untouched (the escape hatch for vendor
/// parameters the normalized request does not model).
pub type ProviderOptions = serde_json::Map<String, serde_json::Value>;

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name(s.clone())
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A product's id in the merchant's catalog (SKU or internal id). Not personal data.
    ProductId
);
string_id!(
    /// A pseudonymous subject (shopper) id. Never an email, phone number or name: map those to a
    /// stable pseudonym before they reach merchant-ai.
    SubjectId
);

/// An ISO 4217 currency code (three upper-case letters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Chinese yuan.
    pub const CNY: Currency = Currency(*b"CNY");
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// Singapore dollar.
    pub const SGD: Currency = Currency(*b"SGD");
    /// Hong Kong dollar.
    pub const HKD: Currency = Currency(*b"HKD");
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency(*b"JPY");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"GBP");

    /// Parses a code such as `"CNY"`. Errors name the bad value.
    pub fn new(code: &str) -> Result<Self> {
        let b = code.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_uppercase) {
            return Err(Error::invalid_request(format!(
                "currency {code:?} is not an ISO 4217 code (three upper-case letters, e.g. \"CNY\")"
            )));
        }
        Ok(Currency([b[0], b[1], b[2]]))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("validated ASCII")
    }

    /// Digits after the decimal point (ISO 4217 exponent): 0 for JPY, KRW and a few others,
    /// 3 for BHD, KWD, OMR, JOD, TND, 2 otherwise.
    pub fn minor_digits(&self) -> u32 {
        match self.code() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Currency::new(s)
    }
}
impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::new(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// An amount of money: integer minor units (cents, fen) and a currency. Never a float.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units (e.g. 1999 for 19.99 CNY).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in minor units.
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Parses a decimal string such as `"19.99"` exactly (no float rounding). Errors name the
    /// value and the reason.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self> {
        let digits = currency.minor_digits() as usize;
        let s = amount.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let bad = || Error::invalid_request(format!("amount {amount:?} is not a decimal number"));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > digits {
            return Err(Error::invalid_request(format!(
                "amount {amount:?} has more than {digits} decimal places for {currency}"
            )));
        }
        let mut minor: i64 = int.parse().map_err(|_| bad())?;
        for _ in 0..digits {
            minor = minor.checked_mul(10).ok_or_else(bad)?;
        }
        let mut f: i64 = 0;
        for i in 0..digits {
            let d = frac.as_bytes().get(i).map_or(0, |b| (b - b'0') as i64);
            f = f * 10 + d;
        }
        minor = minor.checked_add(f).ok_or_else(bad)?;
        Ok(Money::new(if neg { -minor } else { minor }, currency))
    }

    /// The amount as a float in major units, for display and statistics only.
    pub fn as_major_f64(&self) -> f64 {
        self.minor as f64 / 10f64.powi(self.currency.minor_digits() as i32)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let p = 10u64.pow(digits);
        write!(
            f,
            "{sign}{}.{:0w$} {}",
            abs / p,
            abs % p,
            self.currency,
            w = digits as usize
        )
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A legal jurisdiction for data residency, e.g. `CN`, `SG`, `US`, `EU`, `HK`.
/// Stored upper-case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Jurisdiction(String);

impl Jurisdiction {
    /// A jurisdiction code; upper-cased.
    pub fn new(code: impl AsRef<str>) -> Self {
        Jurisdiction(code.as_ref().trim().to_ascii_uppercase())
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl From<&str> for Jurisdiction {
    fn from(s: &str) -> Self {
        Jurisdiction::new(s)
    }
}

/// Whether the subject agreed to AI processing of their data.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Not asked or not known; the profile's policy decides.
    #[default]
    Unknown,
    /// The subject agreed.
    Granted,
    /// The subject refused: their data must not reach a provider whose data leaves the process.
    Denied,
}

/// How sensitive the data in a request is.
#[non_exhaustive]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Public data: catalog text, prices.
    Public,
    /// Business data that is not personal: sales figures, stock levels.
    Internal,
    /// Personal data: a shopper's messages, queries, history.
    #[default]
    Personal,
    /// Special categories: health, payment data, government ids.
    Sensitive,
}

impl DataClass {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Public => "public",
            DataClass::Internal => "internal",
            DataClass::Personal => "personal",
            DataClass::Sensitive => "sensitive",
        }
    }
}

/// Who is asking, for whom, and under which rules. Carried by every request.
///
/// ```
/// use merchant_ai::{RequestContext, Consent, DataClass};
/// use std::time::Duration;
/// let ctx = RequestContext::new()
///     .with_tenant("shop-42")
///     .with_subject("u_7f3a")
///     .with_consent(Consent::Granted)
///     .with_subject_region("SG")
///     .with_data_class(DataClass::Personal)
///     .with_timeout(Duration::from_secs(2));
/// assert!(ctx.remaining().unwrap() <= Duration::from_secs(2));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestContext {
    /// The merchant tenant, for multi-tenant platforms.
    pub tenant: Option<String>,
    /// The pseudonymous subject the request is about.
    pub subject: Option<SubjectId>,
    /// The subject's consent to AI processing.
    pub consent: Consent,
    /// The jurisdiction the subject's data belongs to (where they live).
    pub subject_region: Option<Jurisdiction>,
    /// How sensitive the request's data is.
    pub data_class: DataClass,
    /// When the whole call (all attempts and fallbacks) must be done. A `tokio::time::Instant`,
    /// so tests on a paused clock see deadlines pass.
    #[serde(skip)]
    pub deadline: Option<Instant>,
    /// A trace id to correlate logs, audit records and feedback.
    pub trace_id: Option<String>,
    /// Skip caches for this request.
    pub bypass_cache: bool,
}

setters!(RequestContext {
    /// Sets the tenant.
    tenant: String => with_tenant, ?;
    /// Sets the pseudonymous subject.
    subject: SubjectId => with_subject, ?;
    /// Sets the consent state.
    consent: Consent => with_consent;
    /// Sets the subject's jurisdiction.
    subject_region: Jurisdiction => with_subject_region, ?;
    /// Sets the data class.
    data_class: DataClass => with_data_class;
    /// Sets the trace id.
    trace_id: String => with_trace_id, ?;
    /// Skips caches for this request.
    bypass_cache: bool => with_bypass_cache, =;
});

impl RequestContext {
    /// An empty context: no subject, consent unknown, personal data, no deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// Sets an absolute deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Time left before the deadline (zero when passed), or `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// A [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error if the deadline has passed.
    pub fn check_deadline(&self) -> Result<()> {
        match self.remaining() {
            Some(d) if d.is_zero() => Err(Error::new(
                crate::ErrorKind::Timeout,
                "the request's deadline passed",
            )
            .with_retryable(false)),
            _ => Ok(()),
        }
    }
}

/// An estimated cost in millionths of a currency unit (micros), so a fraction of a cent per
/// call still adds up exactly.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Millionths of one major unit (1_000_000 = 1.00).
    pub micros: i64,
    /// The currency.
    pub currency: Currency,
}

impl Cost {
    /// A cost in micros.
    pub fn new(micros: i64, currency: Currency) -> Self {
        Cost { micros, currency }
    }
}

/// What a call consumed.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt / input tokens.
    pub input_tokens: Option<u64>,
    /// Completion / output tokens.
    pub output_tokens: Option<u64>,
    /// Reasoning tokens (included in output tokens where the vendor counts them so).
    pub reasoning_tokens: Option<u64>,
    /// Billable units that are not tokens (search requests, rerank documents, series).
    pub units: Option<u64>,
    /// Estimated cost, when a price table is known.
    pub cost: Option<Cost>,
}

setters!(Usage {
    /// Sets input tokens.
    input_tokens: u64 => with_input_tokens, some;
    /// Sets output tokens.
    output_tokens: u64 => with_output_tokens, some;
    /// Sets reasoning tokens.
    reasoning_tokens: u64 => with_reasoning_tokens, some;
    /// Sets billable units.
    units: u64 => with_units, some;
    /// Sets the estimated cost.
    cost: Cost => with_cost, ?;
});

impl Usage {
    /// No usage recorded.
    pub fn new() -> Self {
        Self::default()
    }
    /// Input plus output tokens, when either is known.
    pub fn total_tokens(&self) -> Option<u64> {
        match (self.input_tokens, self.output_tokens) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        }
    }
}

/// A provider that was tried and skipped before the one that served a call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackNote {
    /// The configured provider name.
    pub provider: String,
    /// Why it was skipped (the error kind, or `circuit_open`, `policy`).
    pub reason: String,
}

impl FallbackNote {
    /// A note that `provider` was skipped for `reason`.
    pub fn new(provider: impl Into<String>, reason: impl Into<String>) -> Self {
        FallbackNote {
            provider: provider.into(),
            reason: reason.into(),
        }
    }
}

/// Who served a response, with what, at what cost and how fast.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMeta {
    /// The configured name of the provider that served the call.
    pub provider: String,
    /// The model or engine used, if the provider has one.
    pub model: Option<String>,
    /// Position in the route (0 = primary).
    pub route_position: usize,
    /// Providers tried before this one, in order, and why they were skipped.
    pub fallbacks: Vec<FallbackNote>,
    /// What the call consumed.
    pub usage: Usage,
    /// Wall time of the call as the caller saw it.
    #[serde(with = "duration_ms")]
    pub latency: Duration,
    /// The vendor's request id.
    pub request_id: Option<String>,
    /// Whether the response came from a cache.
    pub cached: bool,
    /// What the governance layers did on this call (redactions, consent and residency outcomes).
    #[serde(default)]
    pub governance: Governance,
    /// Whether the output may be acted on automatically or needs a human's review first.
    #[serde(default)]
    pub decision: Decision,
}

/// What the governance layers did on one call. Counts and rule names only: never the values.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governance {
    /// Values replaced by placeholders before the request left the process, by type
    /// (`email`, `phone`, `card`, ...).
    pub redactions: std::collections::BTreeMap<String, u32>,
    /// Policy outcomes, in the order they were taken.
    pub policy: Vec<PolicyNote>,
}

/// One policy outcome: which rule did what to which provider.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyNote {
    /// The provider concerned.
    pub provider: String,
    /// The rule, e.g. `consent`, `residency`, `pii`.
    pub rule: String,
    /// What happened, e.g. `skipped`, `redacted`, `blocked`, `allowed`.
    pub action: String,
}

impl PolicyNote {
    /// A note that `rule` led to `action` for `provider`.
    pub fn new(
        provider: impl Into<String>,
        rule: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        PolicyNote {
            provider: provider.into(),
            rule: rule.into(),
            action: action.into(),
        }
    }
}

/// Whether an output that may move money can be acted on without a human.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// No threshold rule held the output.
    #[default]
    Automatic,
    /// A threshold rule held the output for review.
    NeedsReview {
        /// The configured rule that held it.
        rule: String,
        /// Why, in words safe to show an operator (numbers, never customer text).
        reason: String,
    },
}

impl Decision {
    /// Whether a human must review the output before it is acted on.
    pub fn needs_review(&self) -> bool {
        matches!(self, Decision::NeedsReview { .. })
    }
}

setters!(ResponseMeta {
    /// Sets the model.
    model: String => with_model, ?;
    /// Sets the usage.
    usage: Usage => with_usage;
    /// Sets the latency.
    latency: Duration => with_latency;
    /// Sets the vendor request id.
    request_id: String => with_request_id, ?;
});

impl ResponseMeta {
    /// Metadata for a response served by `provider`.
    pub fn new(provider: impl Into<String>) -> Self {
        ResponseMeta {
            provider: provider.into(),
            ..Default::default()
        }
    }
    /// Whether a provider other than the route's first served the call.
    pub fn from_fallback(&self) -> bool {
        self.route_position > 0
    }
}

pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_exactly_and_displays() {
        assert_eq!(Money::parse("19.99", Currency::CNY).unwrap().minor, 1999);
        assert_eq!(Money::parse("19.9", Currency::CNY).unwrap().minor, 1990);
        assert_eq!(Money::parse("-0.05", Currency::USD).unwrap().minor, -5);
        assert_eq!(Money::parse("500", Currency::JPY).unwrap().minor, 500);
        assert!(Money::parse("1.001", Currency::USD).is_err());
        assert!(Money::parse("1,00", Currency::USD).is_err());
        assert_eq!(Money::new(1999, Currency::CNY).to_string(), "19.99 CNY");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
        assert_eq!(
            Money::new(1500, Currency::new("KWD").unwrap()).to_string(),
            "1.500 KWD"
        );
    }

    #[test]
    fn currency_rejects_non_iso() {
        let e = Currency::new("usd").unwrap_err();
        assert!(e.message().contains("\"usd\""));
        let m: Money = serde_json::from_str(r#"{"minor":100,"currency":"EUR"}"#).unwrap();
        assert_eq!(m, Money::new(100, Currency::EUR));
        assert!(serde_json::from_str::<Money>(r#"{"minor":1,"currency":"EURO"}"#).is_err());
    }

    #[test]
    fn deadline() {
        let ctx = RequestContext::new().with_timeout(Duration::ZERO);
        assert_eq!(
            ctx.check_deadline().unwrap_err().kind(),
            crate::ErrorKind::Timeout
        );
        assert!(RequestContext::new().check_deadline().is_ok());
    }
}
