//! The shared conformance suite, fault matrix included, for the native DashScope chat through
//! wiremock on loopback: once on the bare adapter (one upstream attempt per call: the adapter
//! never retries) and once behind the core's retry layer (3 attempts for retryable faults, 1
//! for the others, quota included). Every normal answer requires the Bearer key, the
//! workspace header and (for streams) `X-DashScope-SSE: enable`.

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
    for s in report.skipped() {
        assert!(
            !s.name.starts_with("chat.") && !s.name.starts_with("fault.chat"),
            "a chat scenario was skipped: {}",
            s.name
        );
    }
    assert!(report.passed().len() >= 20);
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
    for s in report.skipped() {
        assert!(
            !s.name.starts_with("fault.chat"),
            "a chat fault was skipped: {}",
            s.name
        );
    }
}
