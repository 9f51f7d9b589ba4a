//! The shared conformance suite, fault matrix included, for OpenSearch, AIRec, PAI-Rec and
//! PAI-EAS through loopback fakes on wiremock: once on the bare adapter (one upstream attempt
//! per call) and once behind the core's retry layer (3 attempts for retryable faults, 1 for
//! the others). Every request the fakes received had a valid signature or token.

mod svc;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use merchant_ai::contract::Suite;
use svc::{Harness, Svc};

const FILTER_SKIP: &str = "the vendor filters candidates by rules configured in the service; \
                           the adapter answers Unsupported for request filters";

async fn run(svc: Svc, layered: bool) {
    let h = Arc::new(Harness::start(svc).await);
    let p = h.provider("ali").await;
    let p = if layered { svc::layered(p, "ali") } else { p };
    let mut suite = Suite::new(p).with_fault_harness(h.clone());
    if layered {
        suite = suite.with_expected_attempts(3);
    }
    if matches!(svc, Svc::Airec | Svc::PaiRec) {
        suite = suite.skip("recommend.filters_respected", FILTER_SKIP);
    }
    let report = suite.run().await;
    report.print();
    report.assert_passed();
    let cap = svc.capability().as_str();
    for s in report.skipped() {
        assert!(
            !s.name.starts_with(&format!("fault.{cap}.")),
            "a fault scenario was skipped: {}",
            s.name
        );
    }
    let faults = report
        .passed()
        .iter()
        .filter(|s| s.name.starts_with(&format!("fault.{cap}.")))
        .count();
    assert_eq!(
        faults,
        merchant_ai::contract::Fault::MATRIX.len() - 1,
        "every fault of the matrix but stream_cut ran"
    );
    assert_eq!(
        h.seen().bad_signatures.load(Ordering::SeqCst),
        0,
        "a request reached the fake without a valid signature or token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_bare() {
    run(Svc::OpenSearch, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_layered() {
    run(Svc::OpenSearch, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_bare() {
    run(Svc::Airec, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_layered() {
    run(Svc::Airec, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_bare() {
    run(Svc::PaiRec, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_layered() {
    run(Svc::PaiRec, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eas_bare() {
    run(Svc::Eas, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eas_layered() {
    run(Svc::Eas, true).await;
}
