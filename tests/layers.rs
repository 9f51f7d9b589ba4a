//! Retry, timeout and circuit breaker semantics, counted at the (scripted) upstream, on tokio's
//! paused clock: no test waits for real time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm, ScriptedProvider, Suite};
use merchant_ai::layers::*;
use merchant_ai::{
    Capability, ChatEvent, ChatModel, ChatRequest, ChatStream, Client, ErrorKind, Message,
    Provider, RequestContext, ResponseMeta, Result, SearchRequest, collect_stream,
};
use tokio::time::Instant;

fn settings(retry: RetryConfig, timeout: TimeoutConfig, breaker: BreakerConfig) -> LayerSettings {
    LayerSettings {
        retry: Some(retry),
        timeout: Some(timeout),
        breaker: Some(breaker),
        chaos: None,
        limits: None,
    }
}

fn no_breaker() -> BreakerConfig {
    BreakerConfig {
        enabled: false,
        ..Default::default()
    }
}

fn layered(p: &ScriptedProvider, s: &LayerSettings) -> (Arc<dyn Provider>, ProviderLayers) {
    let layers = ProviderLayers::new(p.info().name.clone(), s);
    let lp = LayeredProvider::new(Arc::new(p.clone()), layers.clone());
    (Arc::new(lp), layers)
}

#[tokio::test(start_paused = true)]
async fn always_503_costs_exactly_max_attempts_with_growing_delays() {
    let p = ScriptedProvider::new("up");
    p.inject(Capability::Search, Fault::ServerError(503)).await;
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d2 = delays.clone();
    let retry = Arc::new(
        Retry::new(
            "up",
            RetryConfig {
                max_attempts: 4,
                ..Default::default()
            },
        )
        .with_observer(move |ev| d2.lock().unwrap().push(ev.delay)),
    );
    let layers = ProviderLayers::new(
        "up",
        &settings(
            RetryConfig::default(),
            TimeoutConfig::default(),
            no_breaker(),
        ),
    )
    .with_retry(Some(retry));
    let s = layers.wrap(p.searcher().unwrap());
    let start = Instant::now();
    let err = s.search(SearchRequest::new("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_exhausted() && !err.is_retryable());
    assert_eq!(
        p.attempts().await,
        4,
        "attempts at the upstream == max_attempts, never more"
    );
    let d = delays.lock().unwrap().clone();
    assert_eq!(d.len(), 3);
    // Equal jitter: each delay lies in [base/2, base] for base 100, 200, 400 ms.
    for (i, base) in [100u64, 200, 400].iter().enumerate() {
        let ms = d[i].as_millis() as u64;
        assert!(ms >= base / 2 && ms <= *base, "delay {i} = {ms} ms");
    }
    // The paused clock advances sleeps in whole milliseconds.
    let slept = start.elapsed().abs_diff(d.iter().sum::<Duration>());
    assert!(slept <= Duration::from_millis(3), "{slept:?}");
}

#[tokio::test(start_paused = true)]
async fn quota_and_bad_requests_are_never_retried() {
    let p = ScriptedProvider::new("q");
    let (lp, _) = layered(&p, &LayerSettings::default());
    p.inject(Capability::Chat, Fault::QuotaExhausted).await;
    let err = lp
        .chat_model()
        .unwrap()
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(p.attempts().await, 1);
    p.clear().await;
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x").with_limit(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(p.attempts().await, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_floor_and_beyond_the_cap_is_surfaced() {
    let p = ScriptedProvider::new("r");
    let (lp, _) = layered(
        &p,
        &settings(
            RetryConfig {
                max_attempts: 2,
                ..Default::default()
            },
            TimeoutConfig::default(),
            no_breaker(),
        ),
    );
    p.inject(
        Capability::Search,
        Fault::RateLimited(RetryAfterForm::Seconds(7)),
    )
    .await;
    let start = Instant::now();
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(p.attempts().await, 2);
    assert!(
        start.elapsed() >= Duration::from_secs(7),
        "waited {:?}, less than Retry-After",
        start.elapsed()
    );

    let (lp, _) = layered(
        &p,
        &settings(
            RetryConfig {
                retry_after_cap_ms: 5_000,
                ..Default::default()
            },
            TimeoutConfig::default(),
            no_breaker(),
        ),
    );
    p.inject(
        Capability::Search,
        Fault::RateLimited(RetryAfterForm::Seconds(7)),
    )
    .await;
    let start = Instant::now();
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(
        p.attempts().await,
        1,
        "a hint above the cap is not waited for"
    );
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(7)),
        "the hint reaches the caller"
    );
    assert!(start.elapsed() < Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retries() {
    let p = ScriptedProvider::new("d");
    let (lp, _) = layered(
        &p,
        &settings(
            RetryConfig {
                max_attempts: 10,
                ..Default::default()
            },
            TimeoutConfig::default(),
            no_breaker(),
        ),
    );
    p.inject(
        Capability::Search,
        Fault::RateLimited(RetryAfterForm::Seconds(2)),
    )
    .await;
    let req = SearchRequest::new("x")
        .with_ctx(RequestContext::new().with_timeout(Duration::from_secs(5)));
    let err = lp.searcher().unwrap().search(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        p.attempts().await,
        3,
        "attempts at 0 s, 2 s and 4 s; the next would end past 5 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_load_on_a_dead_provider() {
    let p = ScriptedProvider::new("dead");
    let retry = RetryConfig {
        max_attempts: 3,
        budget: BudgetConfig {
            capacity: 20,
            retry_cost: 5,
            ..Default::default()
        },
        ..Default::default()
    };
    let (lp, layers) = layered(&p, &settings(retry, TimeoutConfig::default(), no_breaker()));
    p.inject(Capability::Search, Fault::ServerError(503)).await;
    let s = lp.searcher().unwrap();
    for _ in 0..50 {
        let _ = s.search(SearchRequest::new("x")).await;
    }
    // 50 first attempts + 4 retries paid from 20 tokens; without a budget it would be 150.
    assert_eq!(p.attempts().await, 54);
    assert_eq!(layers.retry().unwrap().budget().tokens(), 0);
}

#[tokio::test(start_paused = true)]
async fn streams_retry_before_the_first_event_and_never_after() {
    let p = ScriptedProvider::new("s");
    let (lp, _) = layered(&p, &LayerSettings::default());
    let chat = lp.chat_model().unwrap();
    p.fail_next(Capability::Chat, Fault::ServerError(502), 1);
    let r = collect_stream(
        chat.chat_stream(ChatRequest::new(vec![Message::user("hi")]))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(!r.text.is_empty());
    assert_eq!(p.calls(), 2);

    p.push_reply("alpha beta gamma delta");
    p.inject(Capability::Chat, Fault::StreamCut).await;
    let mut s = chat
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
    assert_eq!(err.unwrap().kind(), ErrorKind::Unavailable);
    assert_eq!(text, "alpha beta ", "no text duplicated by a retry");
    assert_eq!(p.attempts().await, 1);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_has_its_own_timeout() {
    let p = ScriptedProvider::new("slow").with_latency(Duration::from_secs(60));
    let timeout = TimeoutConfig {
        attempt_ms: 1_000,
        ..Default::default()
    };
    let (lp, _) = layered(
        &p,
        &settings(
            RetryConfig {
                max_attempts: 2,
                ..Default::default()
            },
            timeout,
            no_breaker(),
        ),
    );
    let start = Instant::now();
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(p.calls(), 2);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// A stream that sends one event and then goes silent forever.
#[derive(Debug)]
struct Stalls;

#[async_trait::async_trait]
impl ChatModel for Stalls {
    async fn chat(&self, _: ChatRequest) -> Result<merchant_ai::ChatResponse> {
        unreachable!("not used")
    }
    async fn chat_stream(&self, _: ChatRequest) -> Result<ChatStream> {
        let first =
            futures::stream::once(async { Ok(ChatEvent::TextDelta { text: "Hel".into() }) });
        Ok(Box::pin(first.chain(futures::stream::pending())))
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_ends_with_a_timeout() {
    let t = TimeoutConfig {
        stall_ms: 2_000,
        first_event_ms: 1_000,
        ..Default::default()
    };
    let layers = ProviderLayers::new("stalls", &settings(RetryConfig::default(), t, no_breaker()));
    let chat = layers.wrap(Arc::new(Stalls) as Arc<dyn ChatModel>);
    let mut s = chat
        .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    let start = Instant::now();
    assert!(matches!(
        s.next().await,
        Some(Ok(ChatEvent::TextDelta { .. }))
    ));
    let e = s.next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("silence between two events"));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(s.next().await.is_none(), "nothing after the error");
}

#[tokio::test(start_paused = true)]
async fn breaker_transitions_table() {
    // (calls that fail, expected state afterwards)
    let cfg = BreakerConfig {
        min_calls: 4,
        window: 10,
        failure_ratio: 0.5,
        cooldown_ms: 5_000,
        ..Default::default()
    };
    let p = ScriptedProvider::new("b");
    let layers = ProviderLayers::new(
        "b",
        &settings(
            RetryConfig {
                enabled: false,
                ..Default::default()
            },
            TimeoutConfig::default(),
            cfg,
        ),
    );
    let s = layers.wrap(p.searcher().unwrap());
    let b = layers.breaker().unwrap().clone();
    let call = || s.search(SearchRequest::new("x"));

    // Two successes, then failures: opens at 2 failures of 4 calls.
    call().await.unwrap();
    call().await.unwrap();
    p.inject(Capability::Search, Fault::ServerError(503)).await;
    assert!(call().await.is_err());
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(call().await.is_err());
    assert_eq!(b.state(), BreakerState::Open);

    // Open: refused without an attempt, with the time left.
    let before = p.attempts().await;
    let e = call().await.unwrap_err();
    assert_eq!(e.vendor_code(), Some("circuit_open"));
    assert!(e.retry_after().unwrap() <= Duration::from_secs(5));
    assert_eq!(p.attempts().await, before);

    // After the cooldown one probe goes through; it fails: open again.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(call().await.is_err());
    assert_eq!(p.attempts().await, before + 1);
    assert_eq!(b.state(), BreakerState::Open);

    // Healed: the next probe succeeds and closes it.
    p.clear().await;
    tokio::time::advance(Duration::from_secs(5)).await;
    call().await.unwrap();
    assert_eq!(b.state(), BreakerState::Closed);

    // A Retry-After longer than the cooldown stretches it.
    p.inject(
        Capability::Search,
        Fault::RateLimited(RetryAfterForm::Seconds(30)),
    )
    .await;
    for _ in 0..4 {
        let _ = call().await;
    }
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        b.state(),
        BreakerState::Open,
        "cooldown follows the 30 s Retry-After"
    );
    tokio::time::advance(Duration::from_secs(21)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_dead_primary_costs_one_attempt_per_cooldown_not_per_request() {
    let primary = ScriptedProvider::new("primary");
    let fallback = ScriptedProvider::new("rules");
    primary
        .inject(Capability::Search, Fault::ServerError(503))
        .await;
    let cfg = settings(
        RetryConfig {
            enabled: false,
            ..Default::default()
        },
        TimeoutConfig::default(),
        BreakerConfig {
            min_calls: 5,
            cooldown_ms: 5_000,
            ..Default::default()
        },
    );
    let client = Client::builder("prod")
        .layers(ProviderLayers::new("primary", &cfg))
        .route(
            Capability::Search,
            vec![
                (
                    "primary".into(),
                    Arc::new(primary.clone()) as Arc<dyn Provider>,
                ),
                (
                    "rules".into(),
                    Arc::new(fallback.clone()) as Arc<dyn Provider>,
                ),
            ],
        )
        .unwrap()
        .build();
    let s = client.searcher().unwrap();
    // 600 requests over 60 s: every one is served, by the fallback.
    let mut last_meta = ResponseMeta::default();
    for _ in 0..600 {
        let r = s.search(SearchRequest::new("x")).await.unwrap();
        last_meta = r.meta;
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    assert_eq!(last_meta.provider, "rules");
    assert_eq!(last_meta.fallbacks[0].reason, "circuit_open");
    // 5 failures to open, then one probe per 5 s cooldown over the remaining ~60 s.
    let attempts = primary.attempts().await;
    assert!(attempts <= 5 + 12, "{attempts} attempts on a dead primary");
    assert_eq!(fallback.calls(), 600);
}

#[tokio::test(start_paused = true)]
async fn the_fault_matrix_holds_on_a_layered_stack() {
    let p = ScriptedProvider::new("layered");
    let (lp, _) = layered(
        &p,
        &settings(
            RetryConfig {
                max_attempts: 3,
                // 65 failing scenarios in a row would drain the retry budget (which has its
                // own tests): this one checks the attempts each fault takes.
                budget: BudgetConfig {
                    enabled: false,
                    ..Default::default()
                },
                ..Default::default()
            },
            TimeoutConfig::default(),
            no_breaker(),
        ),
    );
    let report = Suite::new(lp)
        .with_fault_harness(p.harness())
        .with_expected_attempts(3)
        .run()
        .await;
    report.assert_passed();
    assert!(report.skipped().is_empty());
}

#[test]
fn layer_config_is_validated_with_key_paths() {
    let bad = [
        (
            "[profiles.p.layers.retry]\nmax_attempts = 0",
            "profiles.p.layers.retry.max_attempts: must be at least 1",
        ),
        (
            "[profiles.p.layers.breaker]\nfailure_ratio = 1.5",
            "profiles.p.layers.breaker.failure_ratio: must be in (0, 1]",
        ),
        (
            "[profiles.p.layers.timeout]\nattempt_ms = 0",
            "profiles.p.layers.timeout.attempt_ms: must be above 0",
        ),
        (
            "[profiles.p.layers.providers.ghost.retry]\nmax_attempts = 2",
            "profiles.p.layers.providers.ghost: provider \"ghost\" is not defined",
        ),
        (
            "[profiles.p.layers.retry]\nmax_atempts = 2",
            "unknown field `max_atempts`",
        ),
    ];
    for (extra, want) in bad {
        let toml = format!(
            "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nchat = [\"a\"]\n{extra}\n"
        );
        let err = merchant_ai::Config::parse(&toml).unwrap_err();
        assert!(err.message().contains(want), "{extra}: {err}");
    }
    let ok = merchant_ai::Config::parse(
        "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nchat = [\"a\"]\n[profiles.p.layers.retry]\nmax_attempts = 5\n[profiles.p.layers.providers.a.retry]\nmax_attempts = 2\nenabled = true\n",
    )
    .unwrap();
    let l = ok.profiles()["p"].layers();
    assert_eq!(l.for_provider("a").retry.unwrap().max_attempts, 2);
    assert_eq!(l.for_provider("b").retry.unwrap().max_attempts, 5);
}

fn with_chaos(c: ChaosConfig) -> LayerSettings {
    LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 3,
            ..Default::default()
        }),
        timeout: Some(TimeoutConfig {
            attempt_ms: 1_000,
            ..Default::default()
        }),
        breaker: Some(no_breaker()),
        chaos: Some(c),
        limits: None,
    }
}

#[tokio::test(start_paused = true)]
async fn chaos_faults_go_through_the_same_layers_as_real_ones() {
    let p = ScriptedProvider::new("c");
    let (lp, layers) = layered(
        &p,
        &with_chaos(ChaosConfig {
            error_rate: 1.0,
            error: "rate_limited".into(),
            retry_after_ms: Some(1_500),
            ..Default::default()
        }),
    );
    let start = Instant::now();
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.vendor_code(), Some("chaos"));
    assert_eq!(
        layers.chaos().upstream_calls(),
        3,
        "retried like a real 429"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "Retry-After honoured twice"
    );
    assert_eq!(p.calls(), 0, "injected faults never reach the adapter");

    // Added latency beyond the attempt timeout becomes timeouts.
    let (lp, _) = layered(
        &p,
        &with_chaos(ChaosConfig {
            latency_ms: 5_000,
            ..Default::default()
        }),
    );
    let err = lp
        .searcher()
        .unwrap()
        .search(SearchRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);

    // A seeded error rate fails about that share of calls, the same share every run.
    let (lp, layers) = layered(
        &p,
        &LayerSettings {
            retry: Some(RetryConfig {
                enabled: false,
                ..Default::default()
            }),
            breaker: Some(no_breaker()),
            chaos: Some(ChaosConfig {
                error_rate: 0.3,
                seed: 7,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let s = lp.searcher().unwrap();
    let mut failed = 0;
    for _ in 0..1000 {
        failed += s.search(SearchRequest::new("x")).await.is_err() as usize;
    }
    assert!(
        (250..=350).contains(&failed),
        "{failed} of 1000 failed at rate 0.3"
    );
    assert_eq!(layers.chaos().upstream_calls(), 1000);
}

#[tokio::test(start_paused = true)]
async fn chaos_cuts_streams_after_n_events_without_a_retry() {
    let p = ScriptedProvider::new("c");
    p.push_reply("one two three four five six");
    let (lp, layers) = layered(
        &p,
        &with_chaos(ChaosConfig {
            stream_cut_after: Some(2),
            ..Default::default()
        }),
    );
    let mut s = lp
        .chat_model()
        .unwrap()
        .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    let mut items = Vec::new();
    while let Some(i) = s.next().await {
        items.push(i);
    }
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    assert_eq!(
        items[2].as_ref().unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(layers.chaos().upstream_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn forcing_a_provider_down_moves_traffic_to_the_fallback() {
    let primary = ScriptedProvider::new("primary");
    let rules = ScriptedProvider::new("rules");
    let lp = ProviderLayers::new("primary", &LayerSettings::default());
    let client = Client::builder("drill")
        .layers(lp.clone())
        .route(
            Capability::Search,
            vec![
                (
                    "primary".into(),
                    Arc::new(primary.clone()) as Arc<dyn Provider>,
                ),
                ("rules".into(), Arc::new(rules.clone()) as Arc<dyn Provider>),
            ],
        )
        .unwrap()
        .build();
    let s = client.searcher().unwrap();
    assert_eq!(
        s.search(SearchRequest::new("x"))
            .await
            .unwrap()
            .meta
            .provider,
        "primary"
    );
    client
        .provider_layers("primary")
        .unwrap()
        .chaos()
        .force_down(true);
    let r = s.search(SearchRequest::new("x")).await.unwrap();
    assert_eq!(r.meta.provider, "rules");
    assert_eq!(primary.calls(), 1, "a forced-down provider is never called");
    client
        .provider_layers("primary")
        .unwrap()
        .chaos()
        .force_down(false);
    assert_eq!(
        s.search(SearchRequest::new("x"))
            .await
            .unwrap()
            .meta
            .provider,
        "primary"
    );
}

fn limited(l: LimitConfig) -> LayerSettings {
    LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 3,
            ..Default::default()
        }),
        breaker: Some(no_breaker()),
        limits: Some(l),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_waits_then_refuses_without_retrying() {
    let p = ScriptedProvider::new("busy").with_latency(Duration::from_secs(1));
    let (lp, _) = layered(
        &p,
        &limited(LimitConfig {
            max_concurrent: Some(2),
            max_wait_ms: 100,
            ..Default::default()
        }),
    );
    let s = lp.searcher().unwrap();
    let calls = (0..5).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.search(SearchRequest::new("x")).await })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 2);
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.vendor_code(), Some("local_limit"));
        assert!(
            e.is_exhausted(),
            "the retry layer must not spin on a local limit"
        );
    }
    assert_eq!(p.calls(), 2, "refused calls never reach the provider");
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_wait_within_the_limit() {
    let p = ScriptedProvider::new("rpm");
    let (lp, _) = layered(
        &p,
        &limited(LimitConfig {
            requests_per_minute: Some(60),
            burst: Some(2),
            max_wait_ms: 2_000,
            ..Default::default()
        }),
    );
    let s = lp.searcher().unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        s.search(SearchRequest::new("x")).await.unwrap();
    }
    // Two from the burst, then one token a second.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1_990) && waited <= Duration::from_millis(2_100),
        "{waited:?}"
    );

    let (lp, _) = layered(
        &p,
        &limited(LimitConfig {
            requests_per_minute: Some(60),
            burst: Some(1),
            max_wait_ms: 100,
            ..Default::default()
        }),
    );
    let s = lp.searcher().unwrap();
    s.search(SearchRequest::new("x")).await.unwrap();
    let e = s.search(SearchRequest::new("x")).await.unwrap_err();
    assert_eq!(e.vendor_code(), Some("local_limit"));
    assert!(e.retry_after().unwrap() > Duration::from_millis(900));
}

#[tokio::test(start_paused = true)]
async fn a_limited_provider_hands_over_to_the_next_in_the_route() {
    let p = ScriptedProvider::new("vendor").with_latency(Duration::from_secs(1));
    let rules = ScriptedProvider::new("rules");
    let vendor_layers = ProviderLayers::new(
        "vendor",
        &limited(LimitConfig {
            max_concurrent: Some(1),
            max_wait_ms: 10,
            ..Default::default()
        }),
    );
    let client = Client::builder("p")
        .layers(vendor_layers)
        .route(
            Capability::Search,
            vec![
                ("vendor".into(), Arc::new(p.clone()) as Arc<dyn Provider>),
                ("rules".into(), Arc::new(rules.clone()) as Arc<dyn Provider>),
            ],
        )
        .unwrap()
        .build();
    let s = client.searcher().unwrap();
    let (a, b) = tokio::join!(
        s.search(SearchRequest::new("x")),
        s.search(SearchRequest::new("x"))
    );
    let mut served: Vec<String> = vec![a.unwrap().meta.provider, b.unwrap().meta.provider];
    served.sort();
    assert_eq!(served, ["rules", "vendor"]);
}

#[tokio::test(start_paused = true)]
async fn chat_tokens_per_minute_reserve_then_settle_with_usage() {
    let p = ScriptedProvider::new("tpm").with_latency(Duration::from_secs(1));
    let cfg = LimitConfig {
        tokens_per_minute: Some(1_000),
        max_wait_ms: 1_000,
        ..Default::default()
    };
    let (lp, _) = layered(&p, &limited(cfg));
    let chat = lp.chat_model().unwrap();
    let req = || ChatRequest::new(vec![Message::user("hello there")]).with_max_tokens(600);
    // Sequential calls: each reserves ~603 and gives back what the reply did not use.
    for _ in 0..3 {
        chat.chat(req()).await.unwrap();
    }
    // Two at once: the second cannot reserve while the first holds its estimate.
    let (a, b) = tokio::join!(chat.chat(req()), chat.chat(req()));
    let refused = [a, b]
        .into_iter()
        .filter_map(|r| r.err())
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].message().contains("tokens per minute"),
        "{}",
        refused[0]
    );
    // A request larger than a minute's budget is refused at once, not retried.
    let big = ChatRequest::new(vec![Message::user("x")]).with_max_tokens(5_000);
    let e = chat.chat(big).await.unwrap_err();
    assert!(
        e.message().contains("more tokens than tokens_per_minute"),
        "{e}"
    );
    assert!(!e.is_retryable());
}
