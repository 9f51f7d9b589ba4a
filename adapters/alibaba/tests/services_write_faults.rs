//! The fault matrix on the write endpoints the contract suite does not fault: OpenSearch's
//! document push (upsert and remove), AIRec's behaviour push and PAI-Rec's behaviour log.
//! Each fault maps to the kind the suite expects for reads, in exactly one upstream attempt
//! (the bare adapter never retries).

mod svc;

use merchant_ai::contract::{Fault, FaultHarness, fixtures};
use merchant_ai::{ErrorKind, Event, EventKind, ProductId};
use svc::{Harness, Svc};

fn expected(f: Fault) -> ErrorKind {
    match f {
        Fault::RateLimited(_) => ErrorKind::RateLimited,
        Fault::QuotaExhausted => ErrorKind::QuotaExceeded,
        Fault::Timeout | Fault::SlowBody => ErrorKind::Timeout,
        Fault::MalformedBody => ErrorKind::Decode,
        _ => ErrorKind::Unavailable,
    }
}

fn events() -> Vec<Event> {
    vec![Event::new(
        "u1",
        "ct-001",
        EventKind::Purchase,
        fixtures::base_time(),
    )]
}

async fn matrix(svc: Svc, op: &str) {
    let h = Harness::start(svc).await;
    let p = h.provider("ali").await;
    for fault in Fault::MATRIX {
        if fault == Fault::StreamCut {
            continue;
        }
        // A web-tracking 200 carries no body to check: any 200 is an accepted write.
        // For the same reason a 200 whose body trickles in is already an accepted write.
        if svc == Svc::PaiRec && matches!(fault, Fault::MalformedBody | Fault::SlowBody) {
            continue;
        }
        assert!(h.inject(svc.capability(), fault).await);
        let r = match op {
            "upsert" => p
                .searcher()
                .unwrap()
                .upsert(vec![fixtures::product("ct-001")])
                .await
                .map(|_| ()),
            "remove" => p
                .searcher()
                .unwrap()
                .remove(vec![ProductId::new("ct-001")])
                .await
                .map(|_| ()),
            _ => p.recommender().unwrap().record(events()).await,
        };
        let attempts = h.attempts().await;
        h.clear().await;
        if fault == Fault::Rechunked {
            // Not a failure: the answer split at every byte is still an accepted write.
            r.unwrap_or_else(|e| panic!("{op} under rechunked: {e}"));
            assert_eq!(attempts, 1, "{op} rechunked: {attempts} attempts");
            continue;
        }
        let e = r.expect_err(&format!("{op} succeeded under {}", fault.name()));
        assert_eq!(e.kind(), expected(fault), "{op} {}: {e}", fault.name());
        assert_eq!(e.operation(), Some(op), "{e}");
        assert_eq!(attempts, 1, "{op} {}: {attempts} attempts", fault.name());
        if let Some(d) = fault.retry_after() {
            let got = e.retry_after().expect("the Retry-After hint is kept");
            assert!(got <= d + std::time::Duration::from_secs(2), "{got:?}");
        }
    }
    // And the write goes through once the upstream is healthy again.
    let ok = match op {
        "upsert" => p
            .searcher()
            .unwrap()
            .upsert(vec![fixtures::product("ct-001")])
            .await
            .map(|_| ()),
        "remove" => p
            .searcher()
            .unwrap()
            .remove(vec![ProductId::new("ct-001")])
            .await
            .map(|_| ()),
        _ => p.recommender().unwrap().record(events()).await,
    };
    ok.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_upsert_faults() {
    matrix(Svc::OpenSearch, "upsert").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_remove_faults() {
    matrix(Svc::OpenSearch, "remove").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airec_behaviour_push_faults() {
    matrix(Svc::Airec, "record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairec_behaviour_log_faults() {
    matrix(Svc::PaiRec, "record").await;
}
