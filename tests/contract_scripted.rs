//! The contract suite against the scripted provider: it passes when the provider keeps the
//! contract, fails when it breaks it, and its scenario list cannot shrink unnoticed.

use std::sync::Arc;

use merchant_ai::contract::{
    Fault, FaultHarness, Misbehaviour, Outcome, ScriptedProvider, Suite, scenario_names,
};
use merchant_ai::{Capabilities, Capability, Provider};

/// The pinned scenario list. Removing or renaming a scenario fails this test; adding one means
/// adding it here too.
const EXPECTED_SCENARIOS: &[&str] = &[
    "provider.handles_match_capabilities",
    "search.upsert_then_find",
    "search.upsert_is_idempotent",
    "search.remove_hides",
    "search.limit_and_paging",
    "search.relevance_order",
    "search.filters_respected",
    "search.facets_counted",
    "search.sort_by_price",
    "search.invalid_request",
    "recommend.cold_start",
    "recommend.after_events",
    "recommend.excludes_anchor_and_exclusions",
    "recommend.filters_respected",
    "recommend.invalid_request",
    "chat.basic_reply",
    "chat.stream_matches_chat",
    "chat.stream_finishes_once",
    "chat.tool_call",
    "chat.json_object",
    "chat.invalid_request",
    "forecast.shapes_and_quantiles",
    "forecast.bad_series_isolated",
    "forecast.invalid_request",
];

const FAULTS: &[&str] = &[
    "rate_limited_retry_after_seconds",
    "rate_limited_retry_after_date",
    "quota_exhausted",
    "server_error_500",
    "server_error_502",
    "server_error_503",
    "server_error_504",
    "timeout",
    "connection_reset",
    "malformed_body",
    "slow_body",
    "rechunked",
];

#[test]
fn scenario_list_is_complete() {
    let mut expected: Vec<String> = EXPECTED_SCENARIOS.iter().map(|s| s.to_string()).collect();
    for call in ["search", "recommend", "chat", "chat_stream", "forecast"] {
        for f in FAULTS {
            expected.push(format!("fault.{call}.{f}"));
        }
        if call == "chat_stream" {
            expected.push("fault.chat_stream.stream_cut".into());
        }
    }
    let mut got = scenario_names();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the contract scenario list changed");
}

#[tokio::test]
async fn scripted_provider_passes_everything_including_faults() {
    let p = ScriptedProvider::new("scripted");
    let report = Suite::new(Arc::new(p.clone()))
        .with_fault_harness(p.harness())
        .run()
        .await;
    report.print();
    report.assert_passed();
    assert!(
        report.skipped().is_empty(),
        "nothing should be skipped for a provider with every capability and a harness"
    );
    assert_eq!(report.passed().len(), scenario_names().len());
}

#[tokio::test]
async fn skips_come_from_capabilities_and_are_named() {
    let p =
        ScriptedProvider::new("search-only").with_capabilities(Capabilities::none().with_search());
    let report = Suite::new(Arc::new(p)).run().await;
    report.assert_passed();
    let chat = report.get("chat.basic_reply").unwrap();
    assert_eq!(
        chat.outcome,
        Outcome::Skipped("the provider does not declare chat".into())
    );
    let fault = report.get("fault.search.timeout").unwrap();
    assert!(matches!(&fault.outcome, Outcome::Skipped(m) if m.contains("no fault harness")));
    assert!(report.to_string().contains("skipped  chat.basic_reply"));
}

#[tokio::test]
async fn declared_skips_need_a_real_scenario_and_a_reason() {
    let p = ScriptedProvider::new("s");
    let report = Suite::new(Arc::new(p))
        .skip("search.facets_counted", "vendor has no facets")
        .skip("search.no_such_scenario", "typo")
        .run()
        .await;
    assert!(matches!(
        &report.get("search.facets_counted").unwrap().outcome,
        Outcome::Skipped(m) if m.contains("vendor has no facets")
    ));
    assert_eq!(report.failures().len(), 1);
    assert_eq!(report.failures()[0].name, "search.no_such_scenario");
}

async fn failures_with(m: Misbehaviour) -> Vec<String> {
    let p = ScriptedProvider::new("bad").misbehave(m);
    let report = Suite::new(Arc::new(p.clone()))
        .with_fault_harness(p.harness())
        .run()
        .await;
    report.failures().iter().map(|r| r.name.clone()).collect()
}

#[tokio::test]
async fn the_suite_fails_providers_that_break_the_contract() {
    let cases: &[(Misbehaviour, &str)] = &[
        (Misbehaviour::IgnoreFilters, "search.filters_respected"),
        (Misbehaviour::IgnoreFilters, "recommend.filters_respected"),
        (Misbehaviour::ExceedLimit, "search.limit_and_paging"),
        (Misbehaviour::IgnoreRemove, "search.remove_hides"),
        (
            Misbehaviour::DuplicateStreamText,
            "chat.stream_matches_chat",
        ),
        (Misbehaviour::NoFinishedEvent, "chat.stream_finishes_once"),
        (Misbehaviour::QuotaAsRateLimit, "fault.chat.quota_exhausted"),
        (
            Misbehaviour::QuotaAsRateLimit,
            "fault.search.quota_exhausted",
        ),
        (
            Misbehaviour::CrossingQuantiles,
            "forecast.shapes_and_quantiles",
        ),
    ];
    for (m, scenario) in cases {
        let failed = failures_with(*m).await;
        assert!(
            failed.iter().any(|f| f == scenario),
            "{m:?} should fail {scenario}, failures were {failed:?}"
        );
    }
}

/// A harness that retries behind the adapter's back: the attempt count gives it away.
#[derive(Clone)]
struct DoubleCounting(ScriptedProvider);

#[async_trait::async_trait]
impl FaultHarness for DoubleCounting {
    async fn inject(&self, c: Capability, f: Fault) -> bool {
        self.0.inject(c, f).await
    }
    async fn clear(&self) {
        self.0.clear().await
    }
    async fn attempts(&self) -> usize {
        self.0.attempts().await * 2
    }
}

#[tokio::test]
async fn the_suite_counts_upstream_attempts() {
    let p = ScriptedProvider::new("retrying");
    let report = Suite::new(Arc::new(p.clone()))
        .with_fault_harness(Arc::new(DoubleCounting(p)))
        .run()
        .await;
    let f = report.get("fault.search.server_error_503").unwrap();
    assert!(
        matches!(&f.outcome, Outcome::Failed(m) if m.contains("2 upstream attempts, expected 1"))
    );
}

#[tokio::test]
async fn provider_handles_must_match_declared_capabilities() {
    #[derive(Debug)]
    struct Liar(ScriptedProvider, merchant_ai::ProviderInfo);
    impl Provider for Liar {
        fn info(&self) -> &merchant_ai::ProviderInfo {
            &self.1
        }
        fn searcher(&self) -> Option<Arc<dyn merchant_ai::Searcher>> {
            None
        }
        fn recommender(&self) -> Option<Arc<dyn merchant_ai::Recommender>> {
            self.0.recommender()
        }
        fn chat_model(&self) -> Option<Arc<dyn merchant_ai::ChatModel>> {
            self.0.chat_model()
        }
        fn forecaster(&self) -> Option<Arc<dyn merchant_ai::Forecaster>> {
            self.0.forecaster()
        }
    }
    let inner = ScriptedProvider::new("liar");
    let info = inner.info().clone();
    let report = Suite::new(Arc::new(Liar(inner, info))).run().await;
    let names: Vec<_> = report.failures().iter().map(|r| r.name.clone()).collect();
    assert!(names.contains(&"provider.handles_match_capabilities".to_string()));
    assert!(names.contains(&"search.upsert_then_find".to_string()));
}
