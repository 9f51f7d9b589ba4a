//! The response cache: hits, bypass, invalidation, single-flight, errors never cached.

use std::sync::Arc;
use std::time::Duration;

use merchant_ai::contract::{Fault, ScriptedProvider};
use merchant_ai::layers::CacheConfig;
use merchant_ai::{
    Capability, ChatRequest, Client, Currency, Message, Money, Product, Provider, RequestContext,
    SearchRequest,
};

fn client(p: &ScriptedProvider, cfg: CacheConfig) -> Client {
    let mut b = Client::builder("cached").cache(cfg);
    for cap in [Capability::Search, Capability::Chat] {
        b = b
            .route(
                cap,
                vec![(
                    p.info().name.clone(),
                    Arc::new(p.clone()) as Arc<dyn Provider>,
                )],
            )
            .unwrap();
    }
    b.build()
}

#[tokio::test]
async fn identical_requests_are_served_once_within_the_ttl() {
    let p = ScriptedProvider::new("s");
    let c = client(&p, CacheConfig::default());
    let s = c.searcher().unwrap();
    let first = s.search(SearchRequest::new("tea")).await.unwrap();
    assert!(!first.meta.cached);
    // A different trace id does not change the key.
    let again = SearchRequest::new("tea").with_ctx(RequestContext::new().with_trace_id("t-2"));
    let second = s.search(again).await.unwrap();
    assert!(second.meta.cached);
    assert_eq!(p.calls(), 1);
    // A different query, or a bypass, goes upstream.
    s.search(SearchRequest::new("teapot")).await.unwrap();
    let bypass = SearchRequest::new("tea").with_ctx(RequestContext::new().with_bypass_cache(true));
    assert!(!s.search(bypass).await.unwrap().meta.cached);
    assert_eq!(p.calls(), 3);
}

#[tokio::test]
async fn writes_invalidate_and_errors_are_never_cached() {
    let p = ScriptedProvider::new("s");
    let c = client(&p, CacheConfig::default());
    let s = c.searcher().unwrap();
    assert_eq!(
        s.search(SearchRequest::new("kettle")).await.unwrap().total,
        0
    );
    s.upsert(vec![Product::new(
        "k1",
        "Electric kettle",
        Money::new(19900, Currency::CNY),
    )])
    .await
    .unwrap();
    let after = s.search(SearchRequest::new("kettle")).await.unwrap();
    assert!(!after.meta.cached, "the upsert cleared cached searches");
    assert_eq!(after.total, 1);

    p.fail_next(Capability::Search, Fault::ServerError(503), 1);
    assert!(s.search(SearchRequest::new("cups")).await.is_err());
    let ok = s.search(SearchRequest::new("cups")).await.unwrap();
    assert!(!ok.meta.cached, "the error was not cached");
}

#[tokio::test]
async fn concurrent_identical_requests_are_single_flighted() {
    let p = ScriptedProvider::new("slow").with_latency(Duration::from_millis(50));
    let c = client(&p, CacheConfig::default());
    let s = c.searcher().unwrap();
    let calls = (0..16).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.search(SearchRequest::new("tea")).await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        p.calls(),
        1,
        "one upstream call for 16 identical concurrent requests"
    );
}

#[tokio::test]
async fn chat_is_cached_only_when_deterministic_and_enabled() {
    let p = ScriptedProvider::new("c");
    let off = client(&p, CacheConfig::default());
    let req = || ChatRequest::new(vec![Message::user("hi")]).with_temperature(0.0);
    off.chat_model().unwrap().chat(req()).await.unwrap();
    off.chat_model().unwrap().chat(req()).await.unwrap();
    assert_eq!(p.calls(), 2, "chat_ttl_ms = 0 by default");

    let p = ScriptedProvider::new("c");
    let on = client(
        &p,
        CacheConfig {
            chat_ttl_ms: 60_000,
            ..Default::default()
        },
    );
    let m = on.chat_model().unwrap();
    m.chat(req()).await.unwrap();
    assert!(m.chat(req()).await.unwrap().meta.cached);
    m.chat(ChatRequest::new(vec![Message::user("hi")]).with_temperature(0.7))
        .await
        .unwrap();
    m.chat(ChatRequest::new(vec![Message::user("hi")]).with_temperature(0.7))
        .await
        .unwrap();
    assert_eq!(p.calls(), 3, "sampled replies are not cached");
}

#[test]
fn cache_config_in_a_profile() {
    let c = merchant_ai::Config::parse(
        "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nsearch = [\"a\"]\n[profiles.p.cache]\nsearch_ttl_ms = 1000\n",
    )
    .unwrap();
    assert_eq!(c.profiles()["p"].cache().unwrap().search_ttl_ms, 1000);
    let err = merchant_ai::Config::parse(
        "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nsearch = [\"a\"]\n[profiles.p.cache]\nmax_entries = 0\n",
    )
    .unwrap_err();
    assert!(
        err.message()
            .contains("profiles.p.cache.max_entries: must be at least 1"),
        "{err}"
    );
}
