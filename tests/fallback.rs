//! The fallback chain: who serves, when it moves on, and when it must not.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm, ScriptedProvider};
use merchant_ai::{
    Capabilities, Capability, ChatEvent, ChatRequest, Client, Currency, ErrorKind, Message, Money,
    Product, Provider, ProviderInfo, RequestContext, SearchRequest, collect_stream,
};

fn client(cap: Capability, ps: &[&ScriptedProvider]) -> Client {
    let chain = ps
        .iter()
        .map(|p| {
            (
                p.info().name.clone(),
                Arc::new((*p).clone()) as Arc<dyn Provider>,
            )
        })
        .collect();
    Client::builder("test").route(cap, chain).unwrap().build()
}

#[tokio::test]
async fn a_transient_failure_moves_to_the_next_provider_and_is_recorded() {
    let a = ScriptedProvider::new("primary");
    let b = ScriptedProvider::new("secondary");
    a.inject(Capability::Search, Fault::ServerError(503)).await;
    let c = client(Capability::Search, &[&a, &b]);
    let r = c
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap();
    assert_eq!(r.meta.provider, "secondary");
    assert_eq!(r.meta.route_position, 1);
    assert!(r.meta.from_fallback());
    assert_eq!(r.meta.fallbacks.len(), 1);
    assert_eq!(r.meta.fallbacks[0].provider, "primary");
    assert_eq!(r.meta.fallbacks[0].reason, "unavailable");
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test]
async fn rate_limits_timeouts_and_unsupported_fall_back() {
    for fault in [
        Fault::RateLimited(RetryAfterForm::Seconds(1)),
        Fault::Timeout,
        Fault::ConnectionReset,
    ] {
        let a = ScriptedProvider::new("a");
        let b = ScriptedProvider::new("b");
        a.inject(Capability::Chat, fault).await;
        let c = client(Capability::Chat, &[&a, &b]);
        let r = c
            .chat_model()
            .unwrap()
            .chat(ChatRequest::new(vec![Message::user("hi")]))
            .await;
        assert_eq!(r.unwrap().meta.provider, "b", "{fault:?}");
    }
}

#[tokio::test]
async fn quota_bad_requests_and_content_errors_do_not_fall_back() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    a.inject(Capability::Chat, Fault::QuotaExhausted).await;
    let c = client(Capability::Chat, &[&a, &b]);
    let err = c
        .chat_model()
        .unwrap()
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(err.provider(), Some("a"));
    assert_eq!(b.calls(), 0, "quota errors must not move traffic");
    // An invalid request is the caller's fault: the next provider would refuse it too.
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    let c = client(Capability::Search, &[&a, &b]);
    let err = c
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x").with_limit(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(b.calls(), 0);
}

#[tokio::test]
async fn the_last_error_is_returned_when_every_provider_fails() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    a.inject(Capability::Forecast, Fault::ServerError(502))
        .await;
    b.inject(Capability::Forecast, Fault::Timeout).await;
    let c = client(Capability::Forecast, &[&a, &b]);
    let err = c
        .forecaster()
        .unwrap()
        .forecast(merchant_ai::ForecastRequest::new(
            merchant_ai::contract::fixtures::series(),
            3,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.provider(), Some("b"));
    assert_eq!(err.operation(), Some("forecast"));
}

#[tokio::test]
async fn the_deadline_bounds_the_whole_chain() {
    let a = ScriptedProvider::new("slow").with_latency(Duration::from_secs(5));
    let b = ScriptedProvider::new("next");
    a.inject(Capability::Search, Fault::ServerError(503)).await;
    let c = client(Capability::Search, &[&a, &b]);
    let req = SearchRequest::new("x")
        .with_ctx(RequestContext::new().with_timeout(Duration::from_millis(10)));
    let started = std::time::Instant::now();
    let err = c.searcher().unwrap().search(req).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the in-flight attempt is cut at the deadline"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!err.is_retryable());
    assert_eq!(b.calls(), 0, "no provider is tried after the deadline");
}

#[tokio::test]
async fn a_missing_capability_is_unsupported_and_the_route_refuses_it() {
    let search_only =
        ScriptedProvider::new("s").with_capabilities(Capabilities::none().with_search());
    let chain = vec![("s".to_string(), Arc::new(search_only) as Arc<dyn Provider>)];
    let err = Client::builder("t")
        .route(Capability::Chat, chain)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let c = Client::builder("t").build();
    assert_eq!(c.chat_model().unwrap_err().kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn a_stream_falls_back_only_before_its_first_event() {
    // Fails at open: falls back.
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    a.inject(Capability::Chat, Fault::ServerError(503)).await;
    let c = client(Capability::Chat, &[&a, &b]);
    let s = c
        .chat_model()
        .unwrap()
        .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    let r = collect_stream(s).await.unwrap();
    assert_eq!(r.meta.provider, "b");
    assert_eq!(r.meta.route_position, 1);
    assert_eq!(r.meta.fallbacks[0].provider, "a");

    // Cut after events reached the caller: the error reaches the caller, nobody else is asked.
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    a.push_reply("one two three four five");
    a.inject(Capability::Chat, Fault::StreamCut).await;
    let c = client(Capability::Chat, &[&a, &b]);
    let mut s = c
        .chat_model()
        .unwrap()
        .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    let mut text = String::new();
    let mut err = None;
    while let Some(ev) = s.next().await {
        match ev {
            Ok(ChatEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => err = Some(e),
        }
    }
    assert_eq!(text, "one two ");
    let err = err.expect("the cut reaches the caller");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.provider(), Some("a"));
    assert_eq!(
        b.calls(),
        0,
        "no fallback after the first event: text would be duplicated"
    );
}

#[tokio::test]
async fn writes_reach_every_provider_of_the_route() {
    let a = ScriptedProvider::new("a");
    let b = ScriptedProvider::new("b");
    let c = client(Capability::Search, &[&a, &b]);
    let p = Product::new("p1", "Blue teapot", Money::new(100, Currency::CNY));
    let rep = c.searcher().unwrap().upsert(vec![p]).await.unwrap();
    assert_eq!(rep.applied, 1);
    // Both can now serve the product.
    for x in [&a, &b] {
        let hits = x
            .searcher()
            .unwrap()
            .search(SearchRequest::new("teapot"))
            .await
            .unwrap();
        assert_eq!(hits.hits.len(), 1, "{}", x.info().name);
    }
}

#[tokio::test]
async fn remote_and_local_providers_show_in_the_route_table() {
    let remote = ScriptedProvider::from_info(ProviderInfo::remote(
        "vendor",
        "scripted",
        Some("cn-beijing".into()),
        Some("CN".into()),
        Capabilities::all(),
    ));
    let local = ScriptedProvider::new("local");
    let c = client(Capability::Chat, &[&remote, &local]);
    let t = c.routes().to_string();
    assert!(
        t.contains(
            "chat       vendor (scripted, remote cn-beijing) -> local (scripted, in-process)"
        ),
        "{t}"
    );
    assert!(t.contains("search     (no route)"));
}
