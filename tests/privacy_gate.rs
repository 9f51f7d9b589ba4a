//! The privacy gate on search and forecast: a remote searcher only ever sees placeholders,
//! and consent and residency refuse remote providers for every capability.

use std::sync::{Arc, Mutex};

use merchant_ai::layers::{PrivacyConfig, PrivacyPolicy};
use merchant_ai::*;

/// A remote provider that records the queries it receives.
#[derive(Debug)]
struct Recording {
    info: ProviderInfo,
    queries: Mutex<Vec<String>>,
    events: Mutex<Vec<Event>>,
}

#[async_trait]
impl Recommender for Recording {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        self.events.lock().unwrap().extend(events);
        Ok(())
    }
    async fn recommend(&self, _: RecommendRequest) -> Result<RecommendResponse> {
        Ok(RecommendResponse::new(
            Vec::new(),
            ResponseMeta::new("remote"),
        ))
    }
}

#[async_trait]
impl Searcher for Recording {
    async fn upsert(&self, _: Vec<Product>) -> Result<IndexReport> {
        Ok(IndexReport::default())
    }
    async fn remove(&self, _: Vec<ProductId>) -> Result<IndexReport> {
        Ok(IndexReport::default())
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.queries.lock().unwrap().push(req.query.clone());
        Ok(SearchResponse::new(
            Vec::new(),
            0,
            ResponseMeta::new("remote"),
        ))
    }
}

#[derive(Debug)]
struct Remote(Arc<Recording>);

impl Provider for Remote {
    fn info(&self) -> &ProviderInfo {
        &self.0.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        Some(self.0.clone())
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        Some(self.0.clone())
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

fn client(policy: PrivacyPolicy) -> (Client, Arc<Recording>) {
    let rec = Arc::new(Recording {
        info: ProviderInfo::remote(
            "remote",
            "recording",
            Some("us-east-1".into()),
            Some(Jurisdiction::new("US")),
            Capabilities::none().with_search().with_recommend(),
        ),
        queries: Mutex::new(Vec::new()),
        events: Mutex::new(Vec::new()),
    });
    let p: Arc<dyn Provider> = Arc::new(Remote(rec.clone()));
    let c = Client::builder("t")
        .privacy(policy)
        .route(Capability::Search, vec![("remote".into(), p.clone())])
        .unwrap()
        .route(Capability::Recommend, vec![("remote".into(), p)])
        .unwrap()
        .build();
    (c, rec)
}

#[tokio::test]
async fn search_queries_are_redacted_before_they_leave() {
    let (c, rec) = client(PrivacyPolicy::default());
    let r = c
        .searcher()
        .unwrap()
        .search(SearchRequest::new(
            "orders of zhang.wei@example.cn for RTX 4090 SKU-8841-2093",
        ))
        .await
        .unwrap();
    assert_eq!(
        rec.queries.lock().unwrap().as_slice(),
        ["orders of [EMAIL_1] for RTX 4090 SKU-8841-2093"]
    );
    assert_eq!(r.meta.governance.redactions["email"], 1);
}

#[tokio::test]
async fn consent_and_residency_refuse_a_remote_searcher() {
    let (c, rec) = client(PrivacyPolicy::default());
    let req =
        SearchRequest::new("shoes").with_ctx(RequestContext::new().with_consent(Consent::Denied));
    let e = c.searcher().unwrap().search(req).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(e.message().contains("rule consent"), "{e}");

    let cfg: PrivacyConfig = toml::from_str("[residency.\"*\"]\npersonal = [\"EU\"]\n").unwrap();
    let (c, _) = client(PrivacyPolicy::new(cfg, "profiles.t.privacy").unwrap());
    let e = c
        .searcher()
        .unwrap()
        .search(SearchRequest::new("shoes"))
        .await
        .unwrap_err();
    assert!(e.message().contains("residency.*.personal"), "{e}");
    assert!(rec.queries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn events_without_consent_never_reach_a_remote_recommender() {
    let at = chrono::Utc::now();
    let events = || {
        vec![
            Event::new("granted", "p1", EventKind::View, at).with_consent(Consent::Granted),
            Event::new("denied", "p1", EventKind::View, at).with_consent(Consent::Denied),
            Event::new("unknown", "p1", EventKind::View, at),
        ]
    };
    let subjects = |rec: &Recording| -> Vec<String> {
        rec.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.subject.as_str().to_owned())
            .collect()
    };
    let (c, rec) = client(PrivacyPolicy::default());
    c.recommender().unwrap().record(events()).await.unwrap();
    assert_eq!(subjects(&rec), ["granted", "unknown"]);

    let cfg: PrivacyConfig = toml::from_str("consent_unknown = \"deny\"\n").unwrap();
    let (c, rec) = client(PrivacyPolicy::new(cfg, "profiles.t.privacy").unwrap());
    c.recommender().unwrap().record(events()).await.unwrap();
    assert_eq!(subjects(&rec), ["granted"]);
    // Nothing left to send: the call succeeds without reaching the provider.
    c.recommender()
        .unwrap()
        .record(vec![events().remove(1)])
        .await
        .unwrap();
    assert_eq!(subjects(&rec), ["granted"]);
}

#[test]
fn bad_privacy_config_names_the_key() {
    let cfg: PrivacyConfig = toml::from_str("[residency.CN]\npersonel = [\"CN\"]\n").unwrap();
    let e = PrivacyPolicy::new(cfg, "profiles.t.privacy").unwrap_err();
    assert!(
        e.message()
            .contains("profiles.t.privacy.residency.CN.personel: unknown data class"),
        "{e}"
    );
}
