//! Outage drills: take providers down on purpose and see what still serves.
//!
//! [`run`] takes a [`Client`] built from a profile and, in turn: runs every capability with all
//! providers up (the baseline); forces each provider of the profile down through its chaos
//! switch ([`crate::layers::Chaos::force_down`]); and forces every remote provider down at
//! once. In each scenario it sends a few calls per capability through the real stack (breaker,
//! retry, timeout, fallback) and reports whether the capability was still served, by whom, the
//! latency (p50, p99) and the upstream attempts per call. `merchant-ai drill` prints it as a
//! table or JSON.
//!
//! The probes are fixed, harmless requests (a product query, a home-page recommendation, a
//! greeting, a short daily series) that carry no customer data.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::Capability;
use crate::error::Result;
use crate::registry::Client;
use crate::types::*;

/// How a drill runs.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Calls per capability and scenario.
    pub calls: usize,
    /// Deadline of each call.
    pub timeout: Duration,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            calls: 10,
            timeout: Duration::from_secs(10),
        }
    }
}

impl DrillOptions {
    /// Sets the calls per capability and scenario.
    #[must_use]
    pub fn with_calls(mut self, calls: usize) -> Self {
        self.calls = calls.max(1);
        self
    }
    /// Sets the deadline of each call.
    #[must_use]
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

/// What one capability did in one scenario.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityOutcome {
    /// The capability.
    pub capability: Capability,
    /// Calls made.
    pub calls: usize,
    /// Calls that succeeded.
    pub served: usize,
    /// Which provider served how many calls.
    pub served_by: BTreeMap<String, usize>,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Calls that reached providers' adapters (or their forced-down stand-ins), per call.
    pub upstream_attempts_per_call: f64,
    /// Error kinds of failed calls, with counts.
    pub errors: BTreeMap<String, usize>,
}

impl CapabilityOutcome {
    /// Whether every call was served.
    pub fn fully_served(&self) -> bool {
        self.served == self.calls
    }
}

/// One scenario: which providers were down, and what each capability did.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize)]
pub struct DrillScenario {
    /// A short name (`baseline`, `down:qwen`, `down:all-remote`).
    pub name: String,
    /// The providers forced down.
    pub down: Vec<String>,
    /// Per capability of the profile.
    pub outcomes: Vec<CapabilityOutcome>,
}

/// The result of a drill.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// The profile drilled.
    pub profile: String,
    /// Scenarios in the order they ran.
    pub scenarios: Vec<DrillScenario>,
}

impl DrillReport {
    /// Whether every capability was fully served in every scenario.
    pub fn all_served(&self) -> bool {
        self.scenarios
            .iter()
            .all(|s| s.outcomes.iter().all(CapabilityOutcome::fully_served))
    }
}

impl fmt::Display for DrillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "drill of profile {}", self.profile)?;
        writeln!(
            f,
            "{:<22} {:<10} {:>8} {:<28} {:>9} {:>9} {:>9}",
            "scenario", "capability", "served", "served by", "p50 ms", "p99 ms", "attempts"
        )?;
        for s in &self.scenarios {
            for o in &s.outcomes {
                let by: Vec<String> = o
                    .served_by
                    .iter()
                    .map(|(p, n)| {
                        if *n == o.calls {
                            p.clone()
                        } else {
                            format!("{p}:{n}")
                        }
                    })
                    .collect();
                let by = if by.is_empty() {
                    "-".to_owned()
                } else {
                    by.join(",")
                };
                writeln!(
                    f,
                    "{:<22} {:<10} {:>8} {:<28} {:>9.2} {:>9.2} {:>9.2}",
                    s.name,
                    o.capability.as_str(),
                    format!("{}/{}", o.served, o.calls),
                    by,
                    o.p50_ms,
                    o.p99_ms,
                    o.upstream_attempts_per_call
                )?;
            }
        }
        write!(
            f,
            "{}",
            if self.all_served() {
                "every capability was served in every scenario"
            } else {
                "SOME CAPABILITIES WERE NOT SERVED in some scenarios (see above)"
            }
        )
    }
}

fn probe_series() -> Vec<Series> {
    let values: Vec<f64> = (0..56)
        .map(|i| 10.0 + [0.0, 1.0, 2.0, 1.0, 3.0, 6.0, 5.0][i % 7])
        .collect();
    vec![Series::new("drill-probe", values).with_frequency(Frequency::Daily)]
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn upstream_calls(client: &Client) -> u64 {
    client
        .routes()
        .routes
        .values()
        .flatten()
        .map(|e| e.provider.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .filter_map(|p| client.provider_layers(p))
        .map(|l| l.chaos().upstream_calls())
        .sum()
}

async fn exercise(client: &Client, cap: Capability, opts: &DrillOptions) -> CapabilityOutcome {
    let mut lat = Vec::with_capacity(opts.calls);
    let mut served_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let before = upstream_calls(client);
    for _ in 0..opts.calls {
        let ctx = RequestContext::new()
            .with_timeout(opts.timeout)
            .with_data_class(DataClass::Public)
            .with_trace_id("drill");
        let start = Instant::now();
        let served: Result<String> = match cap {
            Capability::Search => match client.searcher() {
                Ok(s) => s
                    .search(SearchRequest::new("tea").with_ctx(ctx))
                    .await
                    .map(|r| r.meta.provider),
                Err(e) => Err(e),
            },
            Capability::Recommend => match client.recommender() {
                Ok(r) => r
                    .recommend(RecommendRequest::new(Scene::Home).with_ctx(ctx))
                    .await
                    .map(|r| r.meta.provider),
                Err(e) => Err(e),
            },
            Capability::Chat => match client.chat_model() {
                Ok(c) => c
                    .chat(ChatRequest::new(vec![Message::user("Hello")]).with_ctx(ctx))
                    .await
                    .map(|r| r.meta.provider),
                Err(e) => Err(e),
            },
            Capability::Forecast => match client.forecaster() {
                Ok(f) => f
                    .forecast(ForecastRequest::new(probe_series(), 7).with_ctx(ctx))
                    .await
                    .map(|r| r.meta.provider),
                Err(e) => Err(e),
            },
        };
        lat.push(start.elapsed().as_secs_f64() * 1e3);
        match served {
            Ok(p) => *served_by.entry(p).or_default() += 1,
            Err(e) => *errors.entry(e.kind().as_str().to_owned()).or_default() += 1,
        }
    }
    let attempts = upstream_calls(client) - before;
    lat.sort_by(f64::total_cmp);
    CapabilityOutcome {
        capability: cap,
        calls: opts.calls,
        served: served_by.values().sum(),
        served_by,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        upstream_attempts_per_call: attempts as f64 / opts.calls as f64,
        errors,
    }
}

fn providers_of(client: &Client) -> Vec<(String, bool)> {
    let mut providers: Vec<(String, bool)> = Vec::new();
    for e in client.routes().routes.values().flatten() {
        if !providers.iter().any(|(p, _)| p == &e.provider) {
            providers.push((e.provider.clone(), e.data_leaves_process));
        }
    }
    providers
}

async fn scenario(
    client: &Client,
    name: String,
    down: Vec<String>,
    opts: &DrillOptions,
) -> DrillScenario {
    // Each scenario starts from closed breakers, so one outage does not leak into the next.
    for (p, _) in providers_of(client) {
        if let Some(b) = client.provider_layers(&p).and_then(|l| l.breaker()) {
            b.reset();
        }
    }
    for p in &down {
        if let Some(l) = client.provider_layers(p) {
            l.chaos().force_down(true);
        }
    }
    let mut outcomes = Vec::new();
    for cap in Capability::ALL {
        if client.routes().routes.contains_key(&cap) {
            outcomes.push(exercise(client, cap, opts).await);
        }
    }
    for p in &down {
        if let Some(l) = client.provider_layers(p) {
            l.chaos().force_down(false);
        }
    }
    DrillScenario {
        name,
        down,
        outcomes,
    }
}

/// Runs the drill: baseline, each provider down in turn, and all remote providers down.
///
/// The client must come from [`Registry::build`](crate::Registry::build) (or carry
/// [`ProviderLayers`](crate::layers::ProviderLayers) for every provider), so that each
/// provider has a chaos switch. Breakers are reset before each scenario and keep the state
/// the drill left when it ends (closed after the last reset, or as the last scenario left them).
pub async fn run(client: &Client, opts: &DrillOptions) -> DrillReport {
    let providers = providers_of(client);
    let mut scenarios = vec![scenario(client, "baseline".into(), vec![], opts).await];
    for (p, _) in &providers {
        scenarios.push(scenario(client, format!("down:{p}"), vec![p.clone()], opts).await);
    }
    let remote: Vec<String> = providers
        .iter()
        .filter(|(_, r)| *r)
        .map(|(p, _)| p.clone())
        .collect();
    if !remote.is_empty() {
        scenarios.push(scenario(client, "down:all-remote".into(), remote, opts).await);
    }
    DrillReport {
        profile: client.routes().profile.clone(),
        scenarios,
    }
}
