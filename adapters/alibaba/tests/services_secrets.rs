//! The AccessKey pair and the EAS token go into the request headers and nowhere else: not in
//! captured tracing output (every level), not in errors (Display, Debug, sources), not in the
//! Debug of the providers or their sections. Customer text (queries, subjects) stays out of
//! errors and logs too.

mod svc;

use std::io::Write;
use std::sync::{Arc, Mutex};

use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai::{
    Event, EventKind, ForecastRequest, Provider, RecommendRequest, Scene, SearchRequest,
};
use svc::{Harness, Svc};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const QUERY: &str = "zqxjv-private-query";
const SUBJECT: &str = "subject-zzkw-private";

async fn exercise(p: &Arc<dyn Provider>, seen: &mut Vec<String>) {
    let mut push = |r: String| seen.push(r);
    if let Some(s) = p.searcher() {
        push(format!("{:?}", s.search(SearchRequest::new(QUERY)).await));
        push(format!(
            "{:?}",
            s.upsert(vec![merchant_ai::contract::fixtures::product("ct-001")])
                .await
        ));
    }
    if let Some(r) = p.recommender() {
        let res = r
            .recommend(RecommendRequest::new(Scene::Home).with_subject(SUBJECT))
            .await;
        if let Err(e) = &res {
            push(format!("{e}"));
        }
        push(format!("{res:?}"));
        push(format!(
            "{:?}",
            r.record(vec![Event::new(
                SUBJECT,
                "ct-001",
                EventKind::Click,
                merchant_ai::contract::fixtures::base_time()
            )])
            .await
        ));
    }
    if let Some(f) = p.forecaster() {
        push(format!(
            "{:?}",
            f.forecast(ForecastRequest::new(
                merchant_ai::contract::fixtures::series(),
                3
            ))
            .await
        ));
    }
}

async fn errors_of(p: &Arc<dyn Provider>) -> Vec<String> {
    let mut out = Vec::new();
    let e = if let Some(s) = p.searcher() {
        s.search(SearchRequest::new(QUERY)).await.err()
    } else if let Some(r) = p.recommender() {
        r.recommend(RecommendRequest::new(Scene::Home).with_subject(SUBJECT))
            .await
            .err()
    } else if let Some(f) = p.forecaster() {
        f.forecast(ForecastRequest::new(
            merchant_ai::contract::fixtures::series(),
            3,
        ))
        .await
        .err()
    } else {
        None
    };
    if let Some(e) = e {
        out.push(format!("{e} {e:?}"));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            out.push(format!("{s} {s:?}"));
            src = s.source();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_tokens_never_leak() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut seen = Vec::new();
    for svc in [Svc::OpenSearch, Svc::Airec, Svc::PaiRec, Svc::Eas] {
        let h = Harness::start(svc).await;
        let p = h.provider("ali").await;
        exercise(&p, &mut seen).await;
        for fault in [
            Fault::RateLimited(RetryAfterForm::Seconds(1)),
            Fault::QuotaExhausted,
            Fault::ServerError(503),
            Fault::MalformedBody,
            Fault::ConnectionReset,
            Fault::Timeout,
        ] {
            h.inject(svc.capability(), fault).await;
            seen.extend(errors_of(&p).await);
        }
        h.clear().await;
        seen.push(format!("{p:?}"));
        seen.push(format!("{:?}", p.info()));
        seen.push(format!("{:?}", h.section("ali")));
    }
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("opensearch search"),
        "adapter logs were not captured"
    );
    for (i, s) in seen.iter().chain(std::iter::once(&logs)).enumerate() {
        for secret in [
            svc::AK_SECRET,
            svc::TOKEN,
            svc::AK_ID,
            "SECRET-5151",
            "TOKEN-9393",
        ] {
            assert!(!s.contains(secret), "a secret leaked in item {i}: {s}");
        }
        assert!(!s.contains(QUERY), "the query leaked in item {i}");
        assert!(!s.contains(SUBJECT), "the subject leaked in item {i}");
    }
}
