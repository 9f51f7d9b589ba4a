//! The shared conformance suite, fault matrix included, for DashScope (native chat, and
//! search and recommend over text-embedding-v4 through the core's semantic searcher) through
//! wiremock on loopback: on the bare adapter (one upstream attempt per call: the adapter never
//! retries), with gte-rerank-v2 reranking search, and behind the core's retry layer (3
//! attempts for retryable faults, 1 for the others, quota included). Every normal answer
//! requires the Bearer key, the workspace header and (for streams) `X-DashScope-SSE: enable`.
//! Search faults are the embeddings endpoint's (the query is embedded); recommend makes no
//! upstream call (it reads stored vectors), so its fault scenarios are skipped, by name.

mod common;

use std::sync::Arc;

use merchant_ai::Provider;
use merchant_ai::contract::Suite;
use merchant_ai::layers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_on_the_bare_adapter() {
    let h = Arc::new(common::Harness::start().await);
    let p: Arc<dyn Provider> = Arc::new(h.provider("qwen"));
    let report = Suite::new(p).with_fault_harness(h.clone()).run().await;
    report.print();
    report.assert_passed();
    assert_nothing_but_recommend_faults_skipped(&report);
    assert!(report.passed().len() >= 40);
}

fn assert_nothing_but_recommend_faults_skipped(report: &merchant_ai::contract::SuiteReport) {
    for s in report.skipped() {
        assert!(
            s.name.starts_with("fault.recommend.")
                || s.name.starts_with("fault.forecast.")
                || s.name.starts_with("forecast."),
            "skipped: {}",
            s.name
        );
    }
    for prefix in [
        "chat.",
        "search.",
        "recommend.",
        "fault.chat.",
        "fault.chat_stream.",
        "fault.search.",
    ] {
        assert!(
            report.passed().iter().any(|s| s.name.starts_with(prefix)),
            "no {prefix} scenario passed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_with_search_reranked_by_gte_rerank() {
    let h = Arc::new(common::Harness::start().await);
    let p: Arc<dyn Provider> = Arc::new(h.provider_with_rerank("qwen"));
    let report = Suite::new(p).with_fault_harness(h.clone()).run().await;
    report.print();
    report.assert_passed();
    assert_nothing_but_recommend_faults_skipped(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_behind_the_retry_layer_with_three_attempts() {
    let h = Arc::new(common::Harness::start().await);
    let inner: Arc<dyn Provider> = Arc::new(h.provider("qwen"));
    let settings = LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            ..Default::default()
        }),
        timeout: Some(TimeoutConfig {
            enabled: false,
            ..Default::default()
        }),
        breaker: Some(BreakerConfig {
            enabled: false,
            ..Default::default()
        }),
        chaos: None,
        limits: None,
    };
    let layered = LayeredProvider::new(inner, ProviderLayers::new("qwen", &settings));
    let report = Suite::new(Arc::new(layered))
        .with_fault_harness(h.clone())
        .with_expected_attempts(3)
        .run()
        .await;
    report.print();
    report.assert_passed();
    assert_nothing_but_recommend_faults_skipped(&report);
}
