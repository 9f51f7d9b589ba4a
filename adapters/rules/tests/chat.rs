//! The rules chat: intents, tools, product answers, hand-off, formats and streams.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use merchant_ai::*;
use merchant_ai_rules::chat::{HANDOFF_TOOL, MODEL, handoff_reason};
use merchant_ai_rules::{ChatConfig, RulesChat};
use serde_json::{Value, json};

/// A tiny in-memory searcher: every query word (or CJK character) must appear in the title.
#[derive(Debug, Default)]
struct TinySearcher {
    products: Vec<Product>,
    seen: Mutex<Vec<SearchRequest>>,
}

#[async_trait]
impl Searcher for TinySearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        Ok(IndexReport::new(products.len()))
    }
    async fn remove(&self, _ids: Vec<ProductId>) -> Result<IndexReport> {
        Ok(IndexReport::new(0))
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        req.validate()?;
        self.seen.lock().unwrap().push(req.clone());
        let terms: Vec<String> = req
            .query
            .split_whitespace()
            .flat_map(|w| {
                if w.chars().any(|c| c as u32 >= 0x3000) {
                    w.chars().map(|c| c.to_string()).collect::<Vec<_>>()
                } else {
                    vec![w.trim_end_matches('s').to_lowercase()]
                }
            })
            .collect();
        let hits: Vec<SearchHit> = self
            .products
            .iter()
            .filter(|p| {
                let hay = format!("{} {}", p.title, p.title_in("zh")).to_lowercase();
                terms.iter().all(|t| hay.contains(t.as_str())) && req.filters.matches(p)
            })
            .map(|p| SearchHit::new(p.id.clone(), 1.0).with_product(p.clone()))
            .collect();
        let total = hits.len() as u64;
        let hits = hits.into_iter().take(req.limit).collect();
        Ok(SearchResponse::new(hits, total, ResponseMeta::new("tiny")))
    }
}

fn catalog() -> Arc<TinySearcher> {
    let cny = |y: i64| Money::new(y * 100, Currency::CNY);
    Arc::new(TinySearcher {
        products: vec![
            Product::new("p1", "Red running shoes", cny(399))
                .with_localized_title("zh", "红色跑鞋"),
            Product::new("p2", "Red running shoes Pro", cny(899))
                .with_localized_title("zh", "红色专业跑鞋"),
            Product::new("p3", "Blue running shoes", cny(459))
                .with_localized_title("zh", "蓝色跑鞋"),
            Product::new("p4", "Yoga mat", cny(129)).with_localized_title("zh", "瑜伽垫"),
        ],
        seen: Mutex::new(Vec::new()),
    })
}

fn chat() -> RulesChat {
    RulesChat::new("rules", ChatConfig::default(), None).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("You are the shop's assistant."),
        Message::user(text),
    ])
}

fn order_tool() -> Tool {
    Tool::new(
        "order_status",
        "Look up an order",
        json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
    )
}

fn handoff_tool() -> Tool {
    Tool::new(
        HANDOFF_TOOL,
        "Route the conversation to a person",
        json!({"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}),
    )
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

async fn intent_of(m: &RulesChat, text: &str) -> (String, String) {
    let r = m
        .chat(ask(text).with_response_format(ResponseFormat::JsonObject))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text).unwrap();
    (
        v["intent"].as_str().unwrap().to_owned(),
        v["answer"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_default_intent_in_english_and_chinese() {
    let m = chat();
    let cases = [
        ("greeting", "Hello!", "你好"),
        (
            "shipping",
            "How long does shipping take?",
            "运费多少？多久能到？",
        ),
        ("returns", "Can I get a refund?", "我想退货"),
        (
            "payment",
            "Which payment methods do you accept?",
            "可以用支付宝付款吗",
        ),
        (
            "contact",
            "How can I contact you? Is there an email?",
            "你们的联系方式是什么",
        ),
        ("human_agent", "I want to talk to a human", "转人工"),
        (
            "order_status",
            "Where is my order 12345?",
            "我的订单 12345 到哪了",
        ),
    ];
    for (intent, en, zh) in cases {
        let (i, a) = intent_of(&m, en).await;
        assert_eq!(i, intent, "english {intent}");
        assert!(
            !a.is_empty() && !has_cjk(&a),
            "english answer for {intent}: {a}"
        );
        let (i, a) = intent_of(&m, zh).await;
        assert_eq!(i, intent, "chinese {intent}");
        assert!(has_cjk(&a), "chinese answer for {intent}: {a}");
    }
    // Shop facts reach the answers; the refund answer states the policy, not an amount.
    let (_, a) = intent_of(&m, "What is your return policy?").await;
    assert!(a.contains("7 days"), "{a}");
    let (_, a) = intent_of(&m, "我想退款").await;
    assert!(a.contains("7天"), "{a}");
    let (_, a) = intent_of(&m, "How do I pay?").await;
    assert!(a.contains("Alipay"), "{a}");
    // A product question without a searcher is handed off (the default chat has none).
    let (i, _) = intent_of(&m, "do you have running shoes?").await;
    assert_eq!(i, "products");
    let (i, _) = intent_of(&m, "有没有跑鞋").await;
    assert_eq!(i, "products");
}

#[tokio::test]
async fn meta_usage_and_determinism() {
    let m = chat();
    let a = m.chat(ask("How long does shipping take?")).await.unwrap();
    let b = m.chat(ask("How long does shipping take?")).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.meta.provider, "rules");
    assert_eq!(a.meta.model.as_deref(), Some(MODEL));
    assert!(a.meta.usage.input_tokens.unwrap() >= 10);
    assert!(a.meta.usage.output_tokens.unwrap() >= 5);
    assert_eq!(a.finish_reason, FinishReason::Stop);
    assert!(a.tool_calls.is_empty());
}

#[tokio::test]
async fn order_status_tool_round_trip() {
    let m = chat();
    for (question, lang_zh) in [
        ("where is my order 12345", false),
        ("我的订单 12345 到哪了", true),
    ] {
        let req = ask(question).with_tool(order_tool());
        let r = m.chat(req.clone()).await.unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.tool_calls.len(), 1);
        let call = r.tool_calls[0].clone();
        assert_eq!(call.name, "order_status");
        assert_eq!(call.arguments_json().unwrap(), json!({"order_id": "12345"}));
        // Deterministic id.
        assert_eq!(m.chat(req.clone()).await.unwrap().tool_calls[0].id, call.id);

        let mut messages = req.messages.clone();
        messages.push(r.to_message());
        messages.push(Message::tool_result(
            call.id.clone(),
            json!({"order_id": "12345", "status": "shipped", "carrier": "SF Express",
                   "eta": "2026-12-01", "customer_email": "someone@example.com"})
            .to_string(),
        ));
        let done = m
            .chat(ChatRequest::new(messages).with_tool(order_tool()))
            .await
            .unwrap();
        assert_eq!(done.finish_reason, FinishReason::Stop);
        assert!(done.tool_calls.is_empty());
        for part in ["12345", "shipped", "SF Express", "2026-12-01"] {
            assert!(done.text.contains(part), "{part} missing in {}", done.text);
        }
        assert!(!done.text.contains("someone@example.com"));
        assert_eq!(has_cjk(&done.text), lang_zh);
    }
}

#[tokio::test]
async fn tool_results_about_another_order_or_unknown_fields() {
    let m = chat();
    let req = ask("where is my order 12345")
        .with_tool(order_tool())
        .with_tool(handoff_tool());
    let r = m.chat(req.clone()).await.unwrap();
    let call = r.tool_calls[0].clone();
    let follow = |result: Value| {
        let mut messages = req.messages.clone();
        messages.push(r.to_message());
        messages.push(Message::tool_result(call.id.clone(), result.to_string()));
        ChatRequest::new(messages)
            .with_tool(order_tool())
            .with_tool(handoff_tool())
    };
    // Another customer's order is never shown.
    let other = m
        .chat(follow(
            json!({"order_id": "99999", "status": "delivered", "address": "1 Secret Road"}),
        ))
        .await
        .unwrap();
    assert!(!other.text.contains("99999") && !other.text.contains("Secret"));
    assert_eq!(
        handoff_reason(&other, HANDOFF_TOOL).as_deref(),
        Some("tool_result_mismatch")
    );
    // No known field: a summary of the top-level fields, without personal ones.
    let generic = m
        .chat(follow(
            json!({"order_id": "12345", "warehouse": "Shenzhen", "recipient_name": "Li Lei"}),
        ))
        .await
        .unwrap();
    assert!(generic.text.contains("Shenzhen"), "{}", generic.text);
    assert!(!generic.text.contains("Li Lei"));
    // Not found.
    let missing = m.chat(follow(json!({"error": "not found"}))).await.unwrap();
    assert!(missing.text.contains("couldn't find"), "{}", missing.text);
    assert!(missing.tool_calls.is_empty());
}

#[tokio::test]
async fn no_tool_offered_means_no_tool_call() {
    let m = chat();
    let r = m.chat(ask("where is my order 12345")).await.unwrap();
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.text.contains("My orders"), "{}", r.text);
    // Offered but forbidden by tool_choice.
    let r = m
        .chat(
            ask("where is my order 12345")
                .with_tool(order_tool())
                .with_tool_choice(ToolChoice::None),
        )
        .await
        .unwrap();
    assert!(r.tool_calls.is_empty());
    // Offered, but the message has no order number: ask for it.
    let r = m
        .chat(ask("where is my order?").with_tool(order_tool()))
        .await
        .unwrap();
    assert!(r.tool_calls.is_empty());
    assert!(r.text.contains("order number"), "{}", r.text);
}

#[tokio::test]
async fn product_questions_go_through_the_searcher() {
    let s = catalog();
    let m = RulesChat::new(
        "rules",
        ChatConfig::default(),
        Some(s.clone() as Arc<dyn Searcher>),
    )
    .unwrap();
    let ctx = RequestContext::new().with_tenant("shop-42");
    let r = m
        .chat(ask("Do you have red running shoes under 500?").with_ctx(ctx))
        .await
        .unwrap();
    assert!(
        r.text.contains("Red running shoes: 399.00 CNY"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("899"), "{}", r.text);
    assert!(!r.text.contains("Blue"), "{}", r.text);
    let last = s.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.query, "red running shoes");
    assert_eq!(last.ctx.tenant.as_deref(), Some("shop-42"));
    assert_eq!(
        last.filters.price,
        Some(PriceRange::new(
            None,
            Some(Money::new(50000, Currency::CNY))
        ))
    );

    let r = m.chat(ask("有没有跑鞋，500元以下")).await.unwrap();
    assert!(r.text.contains("红色跑鞋"), "{}", r.text);
    assert!(r.text.contains("蓝色跑鞋"), "{}", r.text);
    assert!(!r.text.contains("专业"), "{}", r.text);

    // JSON lists the products.
    let r = m
        .chat(ask("do you have running shoes?").with_response_format(ResponseFormat::JsonObject))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(v["products"].as_array().unwrap().len(), 3);
    assert_eq!(v["handoff"], json!(false));

    // Nothing found: say so and offer a human.
    let r = m.chat(ask("do you have a kayak?")).await.unwrap();
    assert!(r.text.contains("couldn't find"), "{}", r.text);
    assert!(r.text.contains("colleague"), "{}", r.text);
}

#[tokio::test]
async fn handoff_when_not_understood() {
    let m = chat();
    let r = m
        .chat(ask("My cat walked across the keyboard, qwpoeiru"))
        .await
        .unwrap();
    assert!(
        r.text.contains("member of our team will take over"),
        "{}",
        r.text
    );
    assert!(r.tool_calls.is_empty());
    // With the hand-off tool offered, it is also a tool call.
    let r = m
        .chat(ask("My cat walked across the keyboard").with_tool(handoff_tool()))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        handoff_reason(&r, HANDOFF_TOOL).as_deref(),
        Some("no_intent")
    );
    assert!(!r.text.is_empty());
    // JSON says so too.
    let r = m
        .chat(ask("转人工").with_response_format(ResponseFormat::JsonObject))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(v["handoff"], json!(true));
    assert_eq!(v["handoff_reason"], json!("customer_request"));
    // The hand-off tool's result gets a closing answer, not a second call.
    let req = ask("I want a real person").with_tool(handoff_tool());
    let r = m.chat(req.clone()).await.unwrap();
    let mut messages = req.messages.clone();
    messages.push(r.to_message());
    messages.push(Message::tool_result(
        r.tool_calls[0].id.clone(),
        "{\"queued\":true}",
    ));
    let done = m
        .chat(ChatRequest::new(messages).with_tool(handoff_tool()))
        .await
        .unwrap();
    assert!(done.tool_calls.is_empty());
    assert!(done.text.contains("reply here shortly"), "{}", done.text);
}

#[tokio::test]
async fn json_formats_parse() {
    let m = chat();
    for q in ["Hello", "where is my order 12345", "blah blah", "运费多少"] {
        let r = m
            .chat(ask(q).with_response_format(ResponseFormat::JsonObject))
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert!(v.is_object());
        let schema = json!({
            "type": "object",
            "properties": {
                "reply": {"type": "string"},
                "needs_human": {"type": "boolean"},
                "intent": {"type": "string"},
                "mood": {"type": "string", "enum": ["happy", "neutral"]},
                "confidence": {"type": "number"},
                "unused": {"type": "string"}
            },
            "required": ["reply", "needs_human", "intent", "mood", "confidence"],
            "additionalProperties": false
        });
        let r = m
            .chat(ask(q).with_response_format(ResponseFormat::JsonSchema {
                name: "answer".into(),
                schema,
                strict: true,
            }))
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&r.text).unwrap();
        assert!(v["reply"].is_string());
        assert!(v["needs_human"].is_boolean());
        assert!(v["intent"].is_string());
        assert_eq!(v["mood"], json!("happy"));
        assert!(v["confidence"].is_number());
        assert!(v.get("unused").is_none());
    }
    let r = m
        .chat(ask("blah").with_response_format(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: json!({"type": "object", "properties": {"handoff": {"type": "boolean"}}, "required": ["handoff"]}),
            strict: false,
        }))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&r.text).unwrap(),
        json!({"handoff": true})
    );
}

#[tokio::test]
async fn stream_equals_chat() {
    let s = catalog();
    let m = RulesChat::new("rules", ChatConfig::default(), Some(s as Arc<dyn Searcher>)).unwrap();
    let reqs = [
        ask("Hello there, how long does shipping take?"),
        ask("您好，运费多少？"),
        ask("有没有跑鞋"),
        ask("where is my order 12345").with_tool(order_tool()),
        ask("random words").with_tool(handoff_tool()),
        ask("运费").with_response_format(ResponseFormat::JsonObject),
    ];
    for req in reqs {
        let direct = m.chat(req.clone()).await.unwrap();
        let mut stream = m.chat_stream(req.clone()).await.unwrap();
        let mut events = Vec::new();
        while let Some(e) = futures::StreamExt::next(&mut stream).await {
            events.push(e.unwrap());
        }
        let finished = events
            .iter()
            .filter(|e| matches!(e, ChatEvent::Finished { .. }))
            .count();
        assert_eq!(finished, 1);
        assert!(matches!(events.last(), Some(ChatEvent::Finished { .. })));
        assert!(events.iter().any(|e| matches!(e, ChatEvent::Usage { .. })));
        let deltas: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deltas.concat(), direct.text);
        if direct.text.chars().count() > 8 {
            assert!(deltas.len() > 2, "streams in small chunks");
        }
        let collected = collect_stream(m.chat_stream(req).await.unwrap())
            .await
            .unwrap();
        assert_eq!(collected.text, direct.text);
        assert_eq!(collected.tool_calls, direct.tool_calls);
        assert_eq!(collected.finish_reason, direct.finish_reason);
        assert_eq!(collected.meta.usage, direct.meta.usage);
    }
}

#[tokio::test]
async fn config_overrides_intents_and_facts() {
    let cfg: ChatConfig = toml::from_str(
        r#"
        disabled = ["payment"]

        [shop]
        shop_name = "Peakline"
        return_window_days = 30
        shipping_fee = "8 CNY"
        free_shipping_over = "99 CNY"
        support_hours = "09:00-21:00"
        extra = { warranty_years = "2" }

        [[intents]]
        name = "warranty"
        keywords = ["warranty", "保修"]
        patterns = ['(?i)guarantee for (?P<item>\w+)']
        answer = { en = "Every product has a {warranty_years}-year warranty.[[ That includes {item}.]]", zh = "所有商品保修{warranty_years}年。" }

        [[intents]]
        name = "greeting"
        keywords = ["hello", "你好"]
        answer = { en = "Hi from {shop_name}!" }
        "#,
    )
    .unwrap();
    let m = RulesChat::new("rules", cfg, None).unwrap();
    assert_eq!(intent_of(&m, "hello").await.1, "Hi from Peakline!");
    // A missing Chinese text falls back to the English one.
    assert_eq!(intent_of(&m, "你好").await.1, "Hi from Peakline!");
    let (i, a) = intent_of(&m, "Is there a warranty?").await;
    assert_eq!(i, "warranty");
    assert_eq!(a, "Every product has a 2-year warranty.");
    let (_, a) = intent_of(&m, "any guarantee for bikes?").await;
    assert_eq!(
        a,
        "Every product has a 2-year warranty. That includes bikes."
    );
    assert_eq!(intent_of(&m, "保修多久").await.1, "所有商品保修2年。");
    let (_, a) = intent_of(&m, "What is your return policy?").await;
    assert!(a.contains("30 days"), "{a}");
    let (_, a) = intent_of(&m, "How much is shipping?").await;
    assert!(a.contains("8 CNY") && a.contains("99 CNY"), "{a}");
    // The disabled intent is gone: a payment question is handed off.
    let (i, _) = intent_of(&m, "Can I pay with PayPal?").await;
    assert_eq!(i, "fallback");

    // Only the configured intents.
    let cfg: ChatConfig = toml::from_str(
        r#"
        replace_defaults = true
        [[intents]]
        name = "hours"
        keywords = ["open"]
        answer = { en = "We are open 24/7." }
        "#,
    )
    .unwrap();
    let m = RulesChat::new("rules", cfg, None).unwrap();
    assert_eq!(intent_of(&m, "when are you open").await.0, "hours");
    assert_eq!(intent_of(&m, "hello").await.0, "fallback");

    // Bad config is refused with a message naming the problem.
    let bad: ChatConfig =
        toml::from_str("[[intents]]\nname = \"x\"\npatterns = ['(']\nanswer = { en = \"a\" }\n")
            .unwrap();
    let e = RulesChat::new("rules", bad, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("not a valid regex"), "{}", e.message());
    assert!(toml::from_str::<ChatConfig>("nope = 1").is_err());
}

#[tokio::test]
async fn invalid_requests_are_refused() {
    let m = chat();
    let e = m.chat(ChatRequest::new(vec![])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let e = m.chat_stream(ChatRequest::new(vec![])).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let e = m.chat(ask("hi").with_temperature(5.0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn user_text_never_becomes_template_syntax() {
    let m = chat();
    let r = m
        .chat(ask("where is my order #123{shop_name}[[x]]\u{0007}"))
        .await
        .unwrap();
    assert!(
        !r.text.contains('{') && !r.text.contains("[["),
        "{}",
        r.text
    );
    // Odd input does not panic.
    for q in [
        "",
        "   ",
        "？？？",
        "under 99999999999999999999999 shoes",
        "订单",
        "#",
    ] {
        m.chat(ask(q)).await.unwrap();
    }
}

#[tokio::test]
async fn forced_tool_choice_calls_the_tool_when_the_message_fills_it() {
    let m = chat();
    let r = m
        .chat(
            ask("Hi, any news about order 12345?")
                .with_tool(order_tool())
                .with_tool_choice(ToolChoice::Tool("order_status".into())),
        )
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.tool_calls[0].arguments_json().unwrap(),
        json!({"order_id": "12345"})
    );
    // Nothing to fill the arguments with: the text answer stands.
    let r = m
        .chat(
            ask("Hello")
                .with_tool(order_tool())
                .with_tool_choice(ToolChoice::Required),
        )
        .await
        .unwrap();
    assert!(r.tool_calls.is_empty());
    assert!(!r.text.is_empty());
}

/// A provider offering only this chat model, for the shared conformance suite.
#[derive(Debug)]
struct ChatOnly {
    info: ProviderInfo,
    chat: Arc<RulesChat>,
}

impl Provider for ChatOnly {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        None
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        Some(self.chat.clone())
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

#[tokio::test]
async fn passes_the_contract_suite() {
    let chat = Arc::new(
        RulesChat::new(
            "rules",
            ChatConfig::default(),
            Some(catalog() as Arc<dyn Searcher>),
        )
        .unwrap(),
    );
    let provider = ChatOnly {
        info: ProviderInfo::local(
            "rules",
            "rules",
            Capabilities::none().with_chat(true, true, true, false),
        ),
        chat,
    };
    let report = merchant_ai::contract::Suite::new(Arc::new(provider))
        .run()
        .await;
    report.print();
    report.assert_passed();
    assert!(report.get("chat.tool_call").is_some());
    assert!(!report.passed().is_empty());
}

/// A searcher that is down.
#[derive(Debug)]
struct DownSearcher;

#[async_trait]
impl Searcher for DownSearcher {
    async fn upsert(&self, _p: Vec<Product>) -> Result<IndexReport> {
        Err(Error::new(ErrorKind::Unavailable, "down"))
    }
    async fn remove(&self, _ids: Vec<ProductId>) -> Result<IndexReport> {
        Err(Error::new(ErrorKind::Unavailable, "down"))
    }
    async fn search(&self, _r: SearchRequest) -> Result<SearchResponse> {
        Err(Error::new(ErrorKind::Unavailable, "down"))
    }
}

#[tokio::test]
async fn product_questions_without_a_working_searcher_are_handed_off() {
    let down =
        RulesChat::new("rules", ChatConfig::default(), Some(Arc::new(DownSearcher))).unwrap();
    let r = down
        .chat(ask("do you have running shoes under 500?").with_tool(handoff_tool()))
        .await
        .unwrap();
    assert_eq!(
        handoff_reason(&r, HANDOFF_TOOL).as_deref(),
        Some("search_unavailable")
    );
    assert!(r.text.contains("member of our team"), "{}", r.text);
    let r = chat()
        .chat(ask("有没有跑鞋").with_response_format(ResponseFormat::JsonObject))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(v["handoff_reason"], json!("no_catalog"));
    assert_eq!(v["language"], json!("zh"));
}
