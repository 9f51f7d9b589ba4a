//! Metrics: a small [`Metrics`] trait the observe layer reports to.
//!
//! Why a trait of our own and not the `metrics` facade: the facade is a process-wide global,
//! so two clients (two tenants, a test and the application) could not report to different
//! backends, and tests could not read what one client recorded. The trait is two methods, is
//! handed to the client it belongs to, and has a fixed contract: recording never fails a call
//! and never blocks (a panic in an implementation is caught and counted). Bridging to the
//! facade, Prometheus or OpenTelemetry is a few lines:
//!
//! ```
//! use merchant_ai::metrics::{Label, Metrics};
//! #[derive(Debug)]
//! struct ToStderr;
//! impl Metrics for ToStderr {
//!     fn counter(&self, name: &'static str, labels: &[Label<'_>], value: u64) {
//!         eprintln!("{name} {labels:?} +{value}");
//!     }
//!     fn histogram(&self, name: &'static str, labels: &[Label<'_>], value: f64) {
//!         eprintln!("{name} {labels:?} {value}");
//!     }
//! }
//! ```
//!
//! The names follow the OpenTelemetry GenAI semantic conventions where one exists
//! ([`OPERATION_DURATION`], [`TOKEN_USAGE`]) and use the `merchant_ai.` prefix otherwise.
//! Label keys are the convention's attribute names (`gen_ai.operation.name`,
//! `gen_ai.provider.name`, `gen_ai.response.model`, `error.type`, ...). Label values are
//! provider, model, rule and error-kind names: never customer text.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// One label: an attribute name and its value.
pub type Label<'a> = (&'static str, &'a str);

/// `gen_ai.client.operation.duration`: seconds per call (histogram).
pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// `gen_ai.client.token.usage`: tokens per call, labelled `gen_ai.token.type` = `input` or
/// `output` (histogram).
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// Calls, labelled with the outcome (`ok`, `error`, `cancelled`) (counter).
pub const CALLS: &str = "merchant_ai.calls";
/// Failed calls, labelled `error.type` (counter).
pub const ERRORS: &str = "merchant_ai.errors";
/// Providers skipped by the fallback chain, labelled with the skipped provider and the reason
/// (counter).
pub const FALLBACKS: &str = "merchant_ai.fallbacks";
/// Estimated cost in micros of the currency, labelled `currency` (counter).
pub const COST_MICROS: &str = "merchant_ai.cost.micros";
/// Time to the first event of a chat stream, in seconds (histogram).
pub const TIME_TO_FIRST_EVENT: &str = "merchant_ai.stream.time_to_first_event";
/// Outputs held for review by a threshold rule, labelled with the rule (counter).
pub const REVIEW_HELD: &str = "merchant_ai.review.held";
/// Held items the review sink failed to take (counter).
pub const REVIEW_SINK_FAILURES: &str = "merchant_ai.review.sink_failures";
/// Audit records dropped because the audit queue was full (counter).
pub const AUDIT_DROPPED: &str = "merchant_ai.audit.dropped";
/// Audit records the sink failed to write (counter).
pub const AUDIT_FAILED: &str = "merchant_ai.audit.failed";
/// Agreement between the served answer and the candidate's, in [0, 1], labelled with the
/// measure (`top_k_overlap`, `text_similarity`, `forecast_agreement`) (histogram).
pub const SHADOW_AGREEMENT: &str = "merchant_ai.shadow.agreement";
/// Shadow and canary calls, labelled with the mode and the outcome (counter).
pub const SHADOW_CALLS: &str = "merchant_ai.shadow.calls";

/// Where the observe layer reports numbers. See the module docs for the contract.
pub trait Metrics: Send + Sync + fmt::Debug + 'static {
    /// Adds `value` to a counter.
    fn counter(&self, name: &'static str, labels: &[Label<'_>], value: u64);
    /// Records one observation of a histogram.
    fn histogram(&self, name: &'static str, labels: &[Label<'_>], value: f64);
}

/// One histogram's summary in [`InMemoryMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

type Key = (&'static str, Vec<(&'static str, String)>);

/// Metrics kept in memory: counters and histogram summaries per name and label set. For tests,
/// a status page, or a periodic export. Memory grows with the number of distinct label sets
/// (providers x models x kinds), not with the number of calls.
#[derive(Debug, Default)]
pub struct InMemoryMetrics {
    counters: Mutex<BTreeMap<Key, u64>>,
    histograms: Mutex<BTreeMap<Key, Summary>>,
}

fn key(name: &'static str, labels: &[Label<'_>]) -> Key {
    let mut l: Vec<(&'static str, String)> =
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    l.sort();
    (name, l)
}

fn matches(k: &Key, name: &str, filter: &[Label<'_>]) -> bool {
    k.0 == name
        && filter
            .iter()
            .all(|(fk, fv)| k.1.iter().any(|(lk, lv)| lk == fk && lv == fv))
}

impl InMemoryMetrics {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sum of counter `name` over every label set that has all of `filter`.
    pub fn counter_total(&self, name: &str, filter: &[Label<'_>]) -> u64 {
        self.counters
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(k, _)| matches(k, name, filter))
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Histogram `name` merged over every label set that has all of `filter`.
    pub fn histogram_summary(&self, name: &str, filter: &[Label<'_>]) -> Summary {
        let h = match self.histograms.lock() {
            Ok(h) => h,
            Err(_) => return Summary::default(),
        };
        let mut out = Summary::default();
        for (_, s) in h.iter().filter(|(k, _)| matches(k, name, filter)) {
            if out.count == 0 {
                out = *s;
            } else {
                out.count += s.count;
                out.sum += s.sum;
                out.min = out.min.min(s.min);
                out.max = out.max.max(s.max);
            }
        }
        out
    }

    /// Every counter as `name{k=v,...} value` lines, sorted (for printing).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let fmt_key = |k: &Key| {
            let l: Vec<String> = k.1.iter().map(|(a, b)| format!("{a}={b}")).collect();
            format!("{}{{{}}}", k.0, l.join(","))
        };
        if let Ok(c) = self.counters.lock() {
            for (k, v) in c.iter() {
                out.push_str(&format!("{} {v}\n", fmt_key(k)));
            }
        }
        if let Ok(h) = self.histograms.lock() {
            for (k, s) in h.iter() {
                out.push_str(&format!(
                    "{} count={} sum={:.6} min={:.6} max={:.6}\n",
                    fmt_key(k),
                    s.count,
                    s.sum,
                    s.min,
                    s.max
                ));
            }
        }
        out
    }
}

impl Metrics for InMemoryMetrics {
    fn counter(&self, name: &'static str, labels: &[Label<'_>], value: u64) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(key(name, labels)).or_insert(0) += value;
        }
    }
    fn histogram(&self, name: &'static str, labels: &[Label<'_>], value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Ok(mut h) = self.histograms.lock() {
            let s = h.entry(key(name, labels)).or_default();
            if s.count == 0 {
                *s = Summary {
                    count: 1,
                    sum: value,
                    min: value,
                    max: value,
                };
            } else {
                s.count += 1;
                s.sum += value;
                s.min = s.min.min(value);
                s.max = s.max.max(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_by_label() {
        let m = InMemoryMetrics::new();
        m.counter(CALLS, &[("p", "a"), ("o", "ok")], 2);
        m.counter(CALLS, &[("o", "ok"), ("p", "b")], 1);
        m.counter(CALLS, &[("p", "a"), ("o", "error")], 1);
        assert_eq!(m.counter_total(CALLS, &[]), 4);
        assert_eq!(m.counter_total(CALLS, &[("o", "ok")]), 3);
        assert_eq!(m.counter_total(CALLS, &[("p", "a"), ("o", "ok")]), 2);
        m.histogram(OPERATION_DURATION, &[("p", "a")], 0.5);
        m.histogram(OPERATION_DURATION, &[("p", "b")], 1.5);
        m.histogram(OPERATION_DURATION, &[("p", "b")], f64::NAN);
        let s = m.histogram_summary(OPERATION_DURATION, &[]);
        assert_eq!((s.count, s.sum, s.min, s.max), (2, 2.0, 0.5, 1.5));
        assert!(m.render().contains("merchant_ai.calls{o=ok,p=a} 2"));
    }
}
