//! Observability, audit, cost, human thresholds, shadow and canary traffic, through whole
//! clients built from config or in code, over scripted providers (nothing leaves the machine).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use merchant_ai::audit::{AuditRecord, AuditSink, CallRole, MemoryAuditSink, Outcome};
use merchant_ai::contract::{Fault, ScriptedProvider};
use merchant_ai::layers::observe::Observer;
use merchant_ai::layers::shadow::{ShadowConfig, ShadowMode};
use merchant_ai::metrics::{self, InMemoryMetrics};
use merchant_ai::pricing::{Price, PricingTable};
use merchant_ai::thresholds::{
    ChatRule, HeldContent, MemoryReviewSink, StreamRelease, Thresholds, ThresholdsConfig,
};
use merchant_ai::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A factory handing out providers made in the test, by name.
struct Fixed(HashMap<String, ScriptedProvider>);

#[async_trait]
impl AdapterFactory for Fixed {
    fn kind(&self) -> &str {
        "fixed"
    }
    fn capabilities(&self, _: &ProviderConfig) -> Result<Capabilities> {
        Ok(Capabilities::all())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let p = self
            .0
            .get(ctx.provider.name())
            .ok_or_else(|| Error::config(format!("no test provider {}", ctx.provider.name())))?;
        Ok(Arc::new(p.clone()))
    }
}

fn remote(name: &str) -> ScriptedProvider {
    ScriptedProvider::from_info(ProviderInfo::remote(
        name,
        "scripted",
        Some("ap-southeast-1".into()),
        Some(Jurisdiction::new("SG")),
        Capabilities::all(),
    ))
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every span (on close, with all its fields) and event at every level.
/// Tests that capture logs run alone: a test running beside them on another thread can
/// register a callsite while their thread-local subscriber is being consulted, and its fields
/// then go missing from the capture (seen about one run in five). They take this lock to
/// write, every other test to read.
static LOGS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let buf = Captured::default();
    let b2 = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || b2.clone())
        .finish();
    let guard = tracing::subscriber::set_default(sub);
    // Tests of this binary run in parallel, some without a subscriber: recompute callsite
    // interest so no span or field cached as uninteresting elsewhere is missed here.
    tracing::callsite::rebuild_interest_cache();
    (buf, guard)
}

fn catalog() -> Vec<Product> {
    (0..12)
        .map(|i| {
            Product::new(
                format!("sku-{i}"),
                format!("running shoe model {i}"),
                Money::new(1000 + i, Currency::CNY),
            )
        })
        .collect()
}

async fn settle(cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

const EMAIL: &str = "alice.planted@example.com";
const PHONE: &str = "13812345678";
const KEY: &str = "sk-live-PLANTED-KEY-0042";

const CONFIG: &str = r#"
default_profile = "prod"

[providers.vendor]
kind = "fixed"
region = "ap-southeast-1"
api_key_env = "VENDOR_KEY"

[providers.local]
kind = "fixed"

[providers.next]
kind = "fixed"

[profiles.prod.routes]
search = ["vendor", "local"]
recommend = ["vendor", "local"]
chat = ["vendor", "local"]
forecast = ["vendor", "local"]

[profiles.prod.layers.retry]
max_attempts = 1

[profiles.prod.observe]
audit_queue = 1000

[profiles.prod.pricing.vendor]
currency = "CNY"
input_per_million = 2.0
output_per_million = 6.0
per_unit = 0.001

[profiles.prod.pricing.local]
currency = "CNY"
per_call = 0.0

[profiles.prod.thresholds.chat]
max_discount_pct = 15
max_refund = 100

[profiles.prod.thresholds.forecast]
max_increase_pct = 50
recent = 7

[profiles.prod.thresholds.reorder]
max_quantity = 500

[profiles.prod.shadow.chat]
candidate = "next"
mode = "shadow"
share = 1.0

[profiles.prod.shadow.search]
candidate = "next"
mode = "shadow"
share = 1.0
"#;

struct Rig {
    client: Client,
    vendor: ScriptedProvider,
    audit: Arc<MemoryAuditSink>,
    metrics: Arc<InMemoryMetrics>,
    review: Arc<MemoryReviewSink>,
}

async fn rig(config: &str) -> Rig {
    let vendor = remote("vendor");
    let local = ScriptedProvider::new("local");
    let next = remote("next");
    let providers: HashMap<String, ScriptedProvider> = [
        ("vendor".to_owned(), vendor.clone()),
        ("local".to_owned(), local.clone()),
        ("next".to_owned(), next.clone()),
    ]
    .into();
    let audit = Arc::new(MemoryAuditSink::new());
    let metrics = Arc::new(InMemoryMetrics::new());
    let review = Arc::new(MemoryReviewSink::new());
    let config =
        Config::parse_with_env(config, EnvSource::from_map([("VENDOR_KEY", KEY)])).unwrap();
    let client = Registry::new()
        .with(Fixed(providers))
        .with_metrics(metrics.clone())
        .with_audit_sink(audit.clone())
        .with_review_sink(review.clone())
        .build(&config, None)
        .await
        .unwrap();
    Rig {
        client,
        vendor,
        audit,
        metrics,
        review,
    }
}

fn ctx() -> RequestContext {
    RequestContext::new()
        .with_subject("u_7f3a")
        .with_trace_id("trace-1")
        .with_consent(Consent::Granted)
}

fn series(id: &str, level: f64) -> Series {
    Series::new(id, (0..28).map(|i| level + (i % 7) as f64).collect())
}

// ---------------------------------------------------------------------------------------------
// A whole run: audit records and logs hold no planted PII and no key

#[tokio::test]
async fn a_whole_run_leaves_no_pii_or_key_in_audit_records_or_logs() {
    let _logs = LOGS.write().await;
    let (logs, guard) = capture_logs();
    let r = rig(CONFIG).await;
    let c = &r.client;
    c.searcher().unwrap().upsert(catalog()).await.unwrap();

    // Search with planted PII in the query.
    let q = SearchRequest::new(format!("shoes for {EMAIL} call {PHONE}")).with_ctx(ctx());
    let hits = c.searcher().unwrap().search(q).await.unwrap();
    assert_eq!(hits.meta.provider, "vendor");
    assert!(hits.meta.usage.cost.is_some(), "priced: vendor per_unit");

    // Chat with PII in the message; a plain reply and a held one.
    r.vendor.push_reply("Your order ships tomorrow.");
    let chat = ChatRequest::new(vec![Message::user(format!(
        "I am {EMAIL}, phone {PHONE}. Where is order 12345?"
    ))])
    .with_ctx(ctx());
    let a = c.chat_model().unwrap().chat(chat.clone()).await.unwrap();
    assert_eq!(a.text, "Your order ships tomorrow.");
    assert_eq!(a.meta.decision, Decision::Automatic);
    let cost = a.meta.usage.cost.unwrap();
    assert!(cost.micros > 0);

    r.vendor
        .push_reply(format!("Sorry {EMAIL}! You get 40% off and a full refund."));
    let held = c.chat_model().unwrap().chat(chat.clone()).await.unwrap();
    assert!(held.meta.decision.needs_review());
    assert!(!held.text.contains("40%") && !held.text.contains(EMAIL));
    assert_eq!(held.text, c.thresholds().unwrap().config().safe_reply);

    // A stream.
    r.vendor.push_reply("Streaming a reply for you now.");
    let s = c
        .chat_model()
        .unwrap()
        .chat_stream(chat.clone())
        .await
        .unwrap();
    let streamed = collect_stream(s).await.unwrap();
    assert_eq!(streamed.text, "Streaming a reply for you now.");

    // A failure on the vendor: the route falls back, the fallback is recorded.
    r.vendor
        .fail_next(Capability::Chat, Fault::ServerError(503), 1);
    let fb = c.chat_model().unwrap().chat(chat.clone()).await.unwrap();
    assert_eq!(fb.meta.provider, "local");
    assert_eq!(fb.meta.fallbacks[0].provider, "vendor");

    // A failing call (both down): an error, audited with its kind.
    r.vendor
        .fail_next(Capability::Forecast, Fault::ServerError(503), 1);
    let f = ForecastRequest::new(vec![series("sku-1", 10.0)], 7).with_ctx(ctx());
    let ok = c.forecaster().unwrap().forecast(f.clone()).await.unwrap();
    assert_eq!(ok.meta.decision, Decision::Automatic);
    let bad = ForecastRequest::new(vec![], 7).with_ctx(ctx());
    assert!(c.forecaster().unwrap().forecast(bad).await.is_err());

    // Recommend.
    let rec = RecommendRequest::new(Scene::Home).with_ctx(ctx());
    c.recommender().unwrap().recommend(rec).await.unwrap();

    let obs = c.observer().unwrap();
    settle(|| c.shadow(Capability::Chat).unwrap().stats().compared >= 4).await;
    obs.audit().unwrap().flush().await;
    drop(guard);

    let records = r.audit.records();
    let primary: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.role == CallRole::Primary)
        .collect();
    assert_eq!(primary.len(), 8, "one record per read call: {primary:#?}");
    let errors: Vec<&&AuditRecord> = primary
        .iter()
        .filter(|r| r.outcome == Outcome::Error)
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].error_kind, Some(ErrorKind::InvalidRequest));
    let held_rec = primary
        .iter()
        .find(|r| r.decision.needs_review())
        .expect("the held chat is audited");
    assert!(
        matches!(&held_rec.decision, Decision::NeedsReview { rule, .. } if rule == "chat_refund")
    );
    assert!(
        primary
            .iter()
            .any(|r| r.fallbacks.iter().any(|f| f.provider == "vendor"))
    );
    let chat_rec = primary
        .iter()
        .find(|r| r.operation == "chat" && r.provider.as_deref() == Some("vendor"))
        .unwrap();
    assert!(chat_rec.usage.cost.unwrap().micros > 0);
    assert_eq!(chat_rec.provider_kind.as_deref(), Some("scripted"));
    assert!(chat_rec.subject_digest.is_some());
    assert!(
        records
            .iter()
            .any(|r| r.role == CallRole::Shadow && r.agreement.is_some())
    );

    let audit_json = serde_json::to_string(&records).unwrap();
    let log_text = logs.text();
    assert!(
        log_text.contains("gen_ai.operation.name"),
        "spans were captured"
    );
    assert!(log_text.contains("gen_ai.usage.input_tokens"));
    for planted in [EMAIL, PHONE, KEY, "u_7f3a", "Where is order"] {
        assert!(!audit_json.contains(planted), "audit holds {planted}");
        assert!(
            !log_text.contains(planted),
            "logs hold {planted}:\n{log_text}"
        );
    }

    // The review sink got the held reply (it is the one place the text goes).
    let items = r.review.items();
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0].content, HeldContent::ChatReply { text } if text.contains("40% off"))
    );
    assert!(!format!("{:?}", items[0]).contains(EMAIL));

    // Metrics: calls, errors by kind, fallbacks, cost, held items.
    let m = &r.metrics;
    assert_eq!(m.counter_total(metrics::CALLS, &[]), 8);
    assert_eq!(
        m.counter_total(metrics::ERRORS, &[("error.type", "invalid_request")]),
        1
    );
    assert_eq!(
        m.counter_total(metrics::FALLBACKS, &[("merchant_ai.provider", "vendor")]),
        2,
        "chat and forecast"
    );
    assert!(m.counter_total(metrics::COST_MICROS, &[("currency", "CNY")]) > 0);
    assert_eq!(
        m.counter_total(metrics::REVIEW_HELD, &[("rule", "chat_refund")]),
        1
    );
    assert!(
        m.histogram_summary(metrics::TOKEN_USAGE, &[("gen_ai.token.type", "input")])
            .count
            >= 3
    );
    assert!(m.histogram_summary(metrics::OPERATION_DURATION, &[]).count >= 8);
}

#[tokio::test]
async fn content_is_logged_only_when_the_profile_turns_it_on() {
    let _logs = LOGS.write().await;
    let on = CONFIG.replace(
        "audit_queue = 1000",
        "audit_queue = 1000\nlog_content = true",
    );
    for (config, logged) in [(CONFIG.to_owned(), false), (on, true)] {
        let (logs, guard) = capture_logs();
        let r = rig(&config).await;
        let chat = ChatRequest::new(vec![Message::user(format!("I am {EMAIL}"))]);
        r.client.chat_model().unwrap().chat(chat).await.unwrap();
        drop(guard);
        assert_eq!(logs.text().contains(EMAIL), logged, "{}", logs.text());
    }
}

// ---------------------------------------------------------------------------------------------
// Cost

/// Streams put usage only in a `Usage` event, never in `Finished` (as some vendors do).
#[derive(Debug)]
struct UsageInEventOnly;

fn fixed_usage() -> Usage {
    Usage::new().with_input_tokens(1234).with_output_tokens(567)
}

#[async_trait]
impl ChatModel for UsageInEventOnly {
    async fn chat(&self, _: ChatRequest) -> Result<ChatResponse> {
        Ok(ChatResponse::new(
            "hello there",
            FinishReason::Stop,
            ResponseMeta::new("m")
                .with_model("m-1")
                .with_usage(fixed_usage()),
        ))
    }
    async fn chat_stream(&self, _: ChatRequest) -> Result<ChatStream> {
        let evs = vec![
            Ok(ChatEvent::TextDelta {
                text: "hello ".into(),
            }),
            Ok(ChatEvent::Usage {
                usage: Usage::new().with_input_tokens(1234).with_output_tokens(100),
            }),
            Ok(ChatEvent::TextDelta {
                text: "there".into(),
            }),
            Ok(ChatEvent::Usage {
                usage: fixed_usage(),
            }),
            Ok(ChatEvent::Finished {
                finish_reason: FinishReason::Stop,
                meta: ResponseMeta::new("m").with_model("m-1"),
            }),
        ];
        Ok(Box::pin(futures::stream::iter(evs)))
    }
}

#[derive(Debug)]
struct OneModel(Arc<dyn ChatModel>);
impl Provider for OneModel {
    fn info(&self) -> &ProviderInfo {
        static INFO: std::sync::OnceLock<ProviderInfo> = std::sync::OnceLock::new();
        INFO.get_or_init(|| {
            ProviderInfo::remote(
                "m",
                "test",
                None,
                None,
                Capabilities::none().with_chat(true, false, false, false),
            )
        })
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        None
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        Some(self.0.clone())
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

#[tokio::test]
async fn streamed_and_unstreamed_calls_record_the_same_cost() {
    let _logs = LOGS.read().await;
    let pricing = PricingTable::new()
        .with_provider(
            "m",
            Price::new(Currency::USD)
                .with_tokens(3.0, 15.0)
                .with_per_call(0.0001),
        )
        .unwrap();
    // 1234 * 3 + 567 * 15 = 3702 + 8505 micros, + 100 per call.
    let expected = Cost::new(3702 + 8505 + 100, Currency::USD);
    let audit = Arc::new(MemoryAuditSink::new());
    let obs = Arc::new(
        Observer::new()
            .with_pricing(pricing)
            .with_audit_sink(audit.clone(), 64),
    );
    let p: Arc<dyn Provider> = Arc::new(OneModel(Arc::new(UsageInEventOnly)));
    let client = Client::builder("t")
        .observe(obs.clone())
        .route(Capability::Chat, vec![("m".into(), p)])
        .unwrap()
        .build();
    let req = ChatRequest::new(vec![Message::user("hi")]);
    let chat = client.chat_model().unwrap();
    let plain = chat.chat(req.clone()).await.unwrap();
    let streamed = collect_stream(chat.chat_stream(req.clone()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(plain.meta.usage.cost, Some(expected));
    assert_eq!(streamed.meta.usage.cost, Some(expected));
    assert_eq!(streamed.meta.usage.input_tokens, Some(1234));
    obs.audit().unwrap().flush().await;
    let recs = audit.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].operation, "chat");
    assert_eq!(recs[1].operation, "chat_stream");
    assert_eq!(
        recs[0].usage, recs[1].usage,
        "same usage and cost in the audit log"
    );

    // Scripted: usage in Finished, through a profile's pricing.
    let r = rig(CONFIG).await;
    let chat = r.client.chat_model().unwrap();
    r.vendor.push_reply("one two three four");
    r.vendor.push_reply("one two three four");
    let req = ChatRequest::new(vec![Message::user("five words in this message")]);
    let a = chat.chat(req.clone()).await.unwrap();
    let b = collect_stream(chat.chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(a.meta.usage.cost, b.meta.usage.cost);
    assert_eq!(
        a.meta.usage.cost,
        Some(Cost::new(5 * 2 + 4 * 6, Currency::CNY))
    );
}

// ---------------------------------------------------------------------------------------------
// Thresholds

fn chat_rules(release: StreamRelease) -> (Arc<Thresholds>, Arc<MemoryReviewSink>) {
    let sink = Arc::new(MemoryReviewSink::new());
    let t = Thresholds::new(
        ThresholdsConfig {
            stream_release: release,
            chat: Some(ChatRule {
                max_discount_pct: Some(10.0),
                max_refund: Some(50.0),
                max_amount_off: Some(20.0),
                min_price: None,
            }),
            ..Default::default()
        },
        Some(sink.clone()),
    )
    .unwrap();
    (Arc::new(t), sink)
}

/// A client whose chat runs through `rules` to a scripted provider.
fn held_chat(rules: Arc<Thresholds>) -> (Arc<dyn ChatModel>, ScriptedProvider) {
    let p = ScriptedProvider::new("p");
    let client = Client::builder("t")
        .thresholds(rules)
        .route(
            Capability::Chat,
            vec![("p".into(), Arc::new(p.clone()) as _)],
        )
        .unwrap()
        .build();
    (client.chat_model().unwrap(), p)
}

#[tokio::test]
async fn held_replies_are_replaced_before_the_caller_sees_them_streamed_or_not() {
    let _logs = LOGS.read().await;
    // (reply, held rule)
    let table: &[(&str, Option<&str>)] = &[
        (
            "Thanks for waiting. We can give you 40% off today. Anything else?",
            Some("chat_discount"),
        ),
        (
            "Thanks for waiting. A 5% discount applies. Anything else?",
            None,
        ),
        (
            "感谢您的耐心。我们给您打七折。还有其他问题吗？",
            Some("chat_discount"),
        ),
        ("感谢您的耐心。我们会退您80元。", Some("chat_refund")),
        ("We will send a $25 voucher.", Some("chat_amount_off")),
        ("Order 123456 ships in 2 days.", None),
    ];
    for release in [StreamRelease::Sentence, StreamRelease::End] {
        for (reply, rule) in table {
            let (rules, sink) = chat_rules(release);
            let (chat, p) = held_chat(rules.clone());
            let req = ChatRequest::new(vec![Message::user("hi")]);
            p.push_reply(*reply);
            p.push_reply(*reply);
            let plain = chat.chat(req.clone()).await.unwrap();
            let mut s = chat.chat_stream(req).await.unwrap();
            let mut seen = String::new();
            let mut decision = None;
            while let Some(ev) = s.next().await {
                match ev.unwrap() {
                    ChatEvent::TextDelta { text } => seen.push_str(&text),
                    ChatEvent::Finished { meta, .. } => decision = Some(meta.decision),
                    _ => {}
                }
            }
            let decision = decision.expect("finished");
            match rule {
                None => {
                    assert_eq!(plain.text, *reply);
                    assert_eq!(seen, *reply, "{release:?}");
                    assert_eq!(decision, Decision::Automatic);
                    assert!(sink.items().is_empty());
                }
                Some(rule) => {
                    let safe = rules.safe_reply(reply).to_owned();
                    assert_eq!(plain.text, safe);
                    assert!(
                        matches!(&plain.meta.decision, Decision::NeedsReview { rule: r, .. } if r == rule)
                    );
                    assert_eq!(decision, plain.meta.decision, "{release:?} {reply}");
                    assert!(seen.ends_with(&safe), "{release:?}: {seen}");
                    for promise in ["40%", "七折", "80元", "$25"] {
                        assert!(
                            !seen.contains(promise),
                            "{release:?}: the caller saw {promise}"
                        );
                    }
                    if release == StreamRelease::End {
                        assert_eq!(seen, safe, "buffered to the end: exactly the safe reply");
                    }
                    let items = sink.items();
                    assert_eq!(items.len(), 2, "both calls held");
                    for it in &items {
                        assert!(
                            matches!(&it.content, HeldContent::ChatReply { text } if text == reply)
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn tool_calls_over_their_limit_are_withheld_streamed_or_not() {
    let _logs = LOGS.read().await;
    let sink = Arc::new(MemoryReviewSink::new());
    let cfg: ThresholdsConfig = toml::from_str("[tools.issue_refund]\namount = 100\n").unwrap();
    cfg.validate("profiles.t.thresholds").unwrap();
    let rules = Arc::new(Thresholds::new(cfg, Some(sink.clone())).unwrap());
    let (chat, _) = held_chat(rules.clone());
    let refund = Tool::new(
        "issue_refund",
        "Refund an order",
        serde_json::json!({"type": "object", "properties": {"amount": {"type": "string"}},
                           "required": ["amount"]}),
    );
    let ask = |text: &str| {
        ChatRequest::new(vec![Message::user(text)])
            .with_tool(refund.clone())
            .with_tool_choice(ToolChoice::Tool("issue_refund".into()))
    };
    // Within the limit: the call goes through, streamed or not.
    let ok = chat.chat(ask("refund 40 please")).await.unwrap();
    assert_eq!(ok.tool_calls.len(), 1);
    assert_eq!(ok.meta.decision, Decision::Automatic);
    let s = collect_stream(chat.chat_stream(ask("refund 40 please")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(s.tool_calls.len(), 1);
    assert!(sink.items().is_empty());
    // Above it: no call reaches the app; the safe reply and a decision do.
    let held = chat.chat(ask("refund 250 please")).await.unwrap();
    assert!(held.tool_calls.is_empty());
    assert_eq!(held.finish_reason, FinishReason::Stop);
    assert_eq!(held.text, rules.safe_reply(""));
    assert!(matches!(&held.meta.decision,
        Decision::NeedsReview { rule, reason }
            if rule == "tools.issue_refund.amount" && reason.contains("250") && reason.contains("100")));
    let mut st = chat.chat_stream(ask("refund 250 please")).await.unwrap();
    let (mut text, mut calls, mut decision) = (String::new(), 0, None);
    while let Some(ev) = st.next().await {
        match ev.unwrap() {
            ChatEvent::TextDelta { text: t } => text.push_str(&t),
            ChatEvent::ToolCall { .. } => calls += 1,
            ChatEvent::Finished {
                finish_reason,
                meta,
            } => {
                assert_eq!(finish_reason, FinishReason::Stop);
                decision = Some(meta.decision);
            }
            _ => {}
        }
    }
    assert_eq!(calls, 0);
    assert_eq!(text, rules.safe_reply(""));
    assert_eq!(decision.as_ref(), Some(&held.meta.decision));
    let items = sink.items();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| matches!(&i.content,
        HeldContent::ToolCalls { calls } if calls.len() == 1 && calls[0].arguments.contains("250"))));
    // Not a number: held too. Bad config names the key.
    let d = rules.check_tool_calls(&[ToolCall::new("c", "issue_refund", r#"{"amount": "all"}"#)]);
    assert!(d.needs_review());
    let bad: ThresholdsConfig = toml::from_str("[tools.issue_refund]\n\"a..b\" = 1\n").unwrap();
    let e = bad.validate("profiles.t.thresholds").unwrap_err();
    assert!(
        e.message()
            .contains("profiles.t.thresholds.tools.issue_refund.a..b"),
        "{e}"
    );
}

#[tokio::test]
async fn forecast_jumps_and_large_reorders_are_held() {
    let _logs = LOGS.read().await;
    let r = rig(CONFIG).await;
    let f = r.client.forecaster().unwrap();
    let calm = ForecastRequest::new(vec![series("calm", 10.0)], 7);
    assert_eq!(
        f.forecast(calm).await.unwrap().meta.decision,
        Decision::Automatic
    );
    assert!(r.review.items().is_empty());
    // Seasonal naive over a 14-step season: the forecast repeats a week of 100s after a week
    // of 1s, a +9900% jump over the last 7 actuals.
    let mut v = Vec::new();
    for _ in 0..2 {
        v.extend([100.0; 7]);
        v.extend([1.0; 7]);
    }
    let jumpy = Series::new("jumpy", v).with_season_length(14);
    let req = ForecastRequest::new(vec![series("calm", 10.0), jumpy], 7).with_ctx(ctx());
    let out = f.forecast(req).await.unwrap();
    assert_eq!(
        out.get("jumpy").unwrap().point,
        vec![100.0; 7],
        "seasonal naive"
    );
    assert!(
        matches!(&out.meta.decision, Decision::NeedsReview { rule, reason }
            if rule == "forecast_jump" && reason.starts_with("1 of 2 series")),
        "{:?}",
        out.meta.decision
    );
    let items = r.review.items();
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0].content, HeldContent::Forecast { series } if series.len() == 1 && series[0].id == "jumpy")
    );
    assert_eq!(
        items[0].subject.as_ref().map(|s| s.as_str()),
        Some("u_7f3a")
    );

    let t = r.client.thresholds().unwrap();
    let big = SeriesForecast::new("sku", vec![100.0; 14], "ses").with_quantiles(vec![
        QuantileForecast::new(0.1, vec![60.0; 14]),
        QuantileForecast::new(0.9, vec![140.0; 14]),
    ]);
    let plan = replenish(&big, &StockPosition::new(0.0), &ReplenishmentPolicy::new(7)).unwrap();
    let d = t.review_reorder("sku", &plan, None, &ctx()).await;
    assert!(
        matches!(&d, Decision::NeedsReview { rule, .. } if rule == "reorder_quantity"),
        "{d:?}"
    );
    assert!(
        r.review
            .items()
            .iter()
            .any(|i| i.rule == "reorder_quantity")
    );
}

// ---------------------------------------------------------------------------------------------
// Sink failures never fail calls

#[derive(Debug)]
struct Broken;
#[async_trait]
impl AuditSink for Broken {
    async fn write(&self, _: &[AuditRecord]) -> Result<()> {
        Err(Error::new(ErrorKind::Unavailable, "disk full"))
    }
}

#[tokio::test]
async fn a_failing_audit_sink_is_counted_and_never_fails_a_call() {
    let _logs = LOGS.read().await;
    let metrics = Arc::new(InMemoryMetrics::new());
    let obs = Arc::new(
        Observer::new()
            .with_metrics(metrics.clone())
            .with_audit_sink(Arc::new(Broken), 8),
    );
    let p = ScriptedProvider::new("p");
    let client = Client::builder("t")
        .observe(obs.clone())
        .route(Capability::Search, vec![("p".into(), Arc::new(p) as _)])
        .unwrap()
        .build();
    let s = client.searcher().unwrap();
    for _ in 0..50 {
        s.search(SearchRequest::new("shoe")).await.unwrap();
    }
    obs.audit().unwrap().flush().await;
    let st = obs.audit().unwrap().stats();
    assert_eq!(st.submitted, 50);
    assert_eq!(st.failed + st.dropped, 50);
    assert_eq!(st.written, 0);
    assert_eq!(
        metrics.counter_total(metrics::AUDIT_FAILED, &[])
            + metrics.counter_total(metrics::AUDIT_DROPPED, &[]),
        50
    );
}

// ---------------------------------------------------------------------------------------------
// Shadow and canary

fn shadow_client(
    primary: &ScriptedProvider,
    candidate: &ScriptedProvider,
    mode: ShadowMode,
    compare: bool,
    obs: Option<Arc<Observer>>,
) -> Client {
    let mut b = Client::builder("t");
    if let Some(o) = obs {
        b = b.observe(o);
    }
    for cap in Capability::ALL {
        let mut cfg = ShadowConfig::new("cand", mode, 1.0);
        cfg.compare = compare;
        b = b.shadow(cap, cfg, Arc::new(candidate.clone()));
        b = b
            .route(cap, vec![("main".into(), Arc::new(primary.clone()) as _)])
            .unwrap();
    }
    b.build()
}

#[tokio::test]
async fn shadow_traffic_never_changes_answers_and_records_agreement() {
    let _logs = LOGS.read().await;
    let primary = ScriptedProvider::new("main");
    let plain = {
        let mut b = Client::builder("t");
        for cap in Capability::ALL {
            b = b
                .route(cap, vec![("main".into(), Arc::new(primary.clone()) as _)])
                .unwrap();
        }
        b.build()
    };
    let candidate = remote("cand");
    let audit = Arc::new(MemoryAuditSink::new());
    let metrics = Arc::new(InMemoryMetrics::new());
    let obs = Arc::new(
        Observer::new()
            .with_metrics(metrics.clone())
            .with_audit_sink(audit.clone(), 256),
    );
    let shadowed = shadow_client(
        &primary,
        &candidate,
        ShadowMode::Shadow,
        false,
        Some(obs.clone()),
    );
    shadowed
        .searcher()
        .unwrap()
        .upsert(catalog())
        .await
        .unwrap();
    // The candidate got the catalog through the shadow layer, minus two products.
    candidate
        .searcher()
        .unwrap()
        .remove(vec!["sku-0".into(), "sku-1".into()])
        .await
        .unwrap();

    let sreq = SearchRequest::new("running shoe");
    let a = plain
        .searcher()
        .unwrap()
        .search(sreq.clone())
        .await
        .unwrap();
    let b = shadowed.searcher().unwrap().search(sreq).await.unwrap();
    let ids = |r: &SearchResponse| {
        r.hits
            .iter()
            .map(|h| h.product_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(b.meta.provider, "main");

    primary.push_reply("The blue model is lighter.");
    primary.push_reply("The blue model is lighter.");
    candidate.push_reply("The blue one is lighter.");
    candidate.push_reply("The blue one is lighter.");
    let creq = ChatRequest::new(vec![Message::user("which is lighter?")]);
    let b = shadowed
        .chat_model()
        .unwrap()
        .chat(creq.clone())
        .await
        .unwrap();
    assert_eq!(b.text, "The blue model is lighter.");
    assert_eq!(b.meta.provider, "main");
    let s = collect_stream(
        shadowed
            .chat_model()
            .unwrap()
            .chat_stream(creq)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(s.text, "The blue model is lighter.");

    let freq = ForecastRequest::new(vec![series("s", 10.0)], 7);
    let fa = plain
        .forecaster()
        .unwrap()
        .forecast(freq.clone())
        .await
        .unwrap();
    let fb = shadowed.forecaster().unwrap().forecast(freq).await.unwrap();
    assert_eq!(fa.series[0].point, fb.series[0].point);

    let rreq = RecommendRequest::new(Scene::Home);
    let ra = plain
        .recommender()
        .unwrap()
        .recommend(rreq.clone())
        .await
        .unwrap();
    let rb = shadowed
        .recommender()
        .unwrap()
        .recommend(rreq)
        .await
        .unwrap();
    assert_eq!(
        ra.items.iter().map(|i| &i.product_id).collect::<Vec<_>>(),
        rb.items.iter().map(|i| &i.product_id).collect::<Vec<_>>()
    );

    let sh = |c| shadowed.shadow(c).unwrap().stats();
    settle(|| Capability::ALL.iter().map(|c| sh(*c).compared).sum::<u64>() >= 5).await;
    obs.audit().unwrap().flush().await;
    assert_eq!(sh(Capability::Search).compared, 1);
    assert_eq!(sh(Capability::Chat).compared, 2);
    let recs: Vec<AuditRecord> = audit
        .records()
        .into_iter()
        .filter(|r| r.role == CallRole::Shadow)
        .collect();
    let search = recs
        .iter()
        .find(|r| r.capability == Capability::Search)
        .unwrap();
    let ag = search.agreement.as_ref().unwrap();
    assert_eq!(
        (ag.measure.as_str(), ag.baseline.as_str()),
        ("top_k_overlap", "main")
    );
    assert!(
        ag.value < 1.0 && ag.value > 0.0,
        "two products missing at the candidate: {}",
        ag.value
    );
    let chat = recs.iter().find(|r| r.operation == "chat").unwrap();
    let v = chat.agreement.as_ref().unwrap().value;
    assert!(v > 0.5 && v < 1.0, "similar replies: {v}");
    let fc = recs
        .iter()
        .find(|r| r.capability == Capability::Forecast)
        .unwrap();
    let fa = fc.agreement.as_ref().unwrap();
    assert_eq!(fa.measure, "forecast_agreement");
    assert_eq!(
        (fa.value, fa.relative_difference),
        (1.0, Some(0.0)),
        "same model, same forecast"
    );
    assert_eq!(
        metrics
            .histogram_summary(metrics::SHADOW_AGREEMENT, &[("measure", "text_similarity")])
            .count,
        2
    );

    // A consent-denied subject is never mirrored to a remote candidate.
    let before = candidate.calls();
    let denied =
        SearchRequest::new("shoe").with_ctx(RequestContext::new().with_consent(Consent::Denied));
    shadowed.searcher().unwrap().search(denied).await.unwrap();
    settle(|| false).await;
    assert_eq!(candidate.calls(), before);
    assert_eq!(sh(Capability::Search).skipped_policy, 1);
}

#[tokio::test]
async fn canary_serves_from_the_candidate_and_falls_back_to_the_route() {
    let _logs = LOGS.read().await;
    let primary = ScriptedProvider::new("main");
    let candidate = ScriptedProvider::new("cand");
    let audit = Arc::new(MemoryAuditSink::new());
    let obs = Arc::new(Observer::new().with_audit_sink(audit.clone(), 64));
    let c = shadow_client(
        &primary,
        &candidate,
        ShadowMode::Canary,
        true,
        Some(obs.clone()),
    );
    candidate.push_reply("from the candidate");
    let req = ChatRequest::new(vec![Message::user("hi")]);
    let a = c.chat_model().unwrap().chat(req.clone()).await.unwrap();
    assert_eq!(
        (a.text.as_str(), a.meta.provider.as_str()),
        ("from the candidate", "cand")
    );
    // compare = true: the route answers the same request in the background.
    settle(|| c.shadow(Capability::Chat).unwrap().stats().compared >= 1).await;
    assert_eq!(c.shadow(Capability::Chat).unwrap().stats().compared, 1);

    candidate.fail_next(Capability::Chat, Fault::ServerError(500), 2);
    primary.push_reply("from the route");
    let b = c.chat_model().unwrap().chat(req.clone()).await.unwrap();
    assert_eq!(
        (b.text.as_str(), b.meta.provider.as_str()),
        ("from the route", "main")
    );
    assert_eq!(b.meta.fallbacks[0].provider, "cand");
    primary.push_reply("streamed from the route");
    let s = collect_stream(c.chat_model().unwrap().chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(s.text, "streamed from the route");
    assert_eq!(s.meta.fallbacks[0].provider, "cand");

    let st = c.shadow(Capability::Chat).unwrap().stats();
    assert_eq!((st.canary_served, st.candidate_errors), (1, 2));
    obs.audit().unwrap().flush().await;
    let canary: Vec<AuditRecord> = audit
        .records()
        .into_iter()
        .filter(|r| r.role == CallRole::Canary)
        .collect();
    assert!(
        canary.iter().any(|r| r.agreement.is_some()),
        "compare = true records agreement"
    );
    assert_eq!(
        canary
            .iter()
            .filter(|r| r.outcome == Outcome::Error)
            .count(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// Config errors name the key

#[tokio::test]
async fn config_errors_name_the_key_path() {
    let _logs = LOGS.read().await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "audit_queue = 1000",
            "audit_queue = 0",
            "profiles.prod.observe.audit_queue",
        ),
        (
            "candidate = \"next\"\nmode = \"shadow\"\nshare = 1.0\n\n[profiles.prod.shadow.search]",
            "candidate = \"nope\"\nmode = \"shadow\"\nshare = 1.0\n\n[profiles.prod.shadow.search]",
            "profiles.prod.shadow.chat.candidate: provider \"nope\" is not defined",
        ),
        (
            "[profiles.prod.pricing.local]",
            "[profiles.prod.pricing.ghost]",
            "profiles.prod.pricing.ghost",
        ),
        (
            "max_refund = 100",
            "max_refund = -5",
            "profiles.prod.thresholds.chat.max_refund",
        ),
        ("max_refund = 100", "max_refnd = 100", "max_refnd"),
        (
            "output_per_million = 6.0",
            "output_per_million = -6.0",
            "profiles.prod.pricing.vendor.output_per_million",
        ),
        (
            "mode = \"shadow\"\nshare = 1.0\n\n[profiles.prod.shadow.search]",
            "mode = \"mirror\"\nshare = 1.0\n\n[profiles.prod.shadow.search]",
            "profiles.prod.shadow",
        ),
    ];
    for (from, to, want) in cases {
        assert!(CONFIG.contains(from), "{from}");
        let text = CONFIG.replacen(from, to, 1);
        let e =
            Config::parse_with_env(&text, EnvSource::from_map([("VENDOR_KEY", KEY)])).unwrap_err();
        assert!(e.message().contains(want), "{want}: {e}");
        assert!(!e.to_string().contains(KEY));
    }
}
