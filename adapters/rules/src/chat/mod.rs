//! The rules chat capability: a deterministic assistant that answers the common questions of a
//! shop and hands everything else to a human.
//!
//! # How it answers
//! 1. The last user message picks an **intent** by keywords and regex patterns (English and
//!    Chinese; [`ChatConfig`] replaces or extends the built-in set, see [`config::defaults`]).
//!    The answer is in the language of that message: Chinese when it holds a Han character.
//! 2. The intent's **template** is filled with shop facts (`{shop_name}`,
//!    `{return_window_days}`, ...), values taken from the message (`{order_id}`) and regex
//!    groups. Values from the message are sanitized (no braces, brackets or control
//!    characters, length-capped), so user text never becomes template syntax.
//! 3. An intent with a **tool** (built-in: `order_status`, argument `order_id`) calls it when
//!    the request offers a tool of that name: the answer is a [`ToolCall`] whose id is derived
//!    from its content (deterministic) and whose arguments fill the tool schema's required
//!    properties; the finish reason is [`FinishReason::ToolCalls`]. When the conversation then
//!    ends with the tool's result, the result's fields (status, carrier, tracking number, ETA
//!    or, for other tools, a summary of the top-level fields that do not look personal) are
//!    formatted into the reply. A result whose `order_id` is not the one asked for is never
//!    shown: the conversation is handed to a human instead. When the tool is not offered, no
//!    call is invented: the intent's plain answer is given.
//! 4. **Product questions** go through the [`Searcher`]: intent words and stop words are
//!    stripped, a price limit ("under 500", "500元以下", "between 100 and 300") becomes a
//!    [`PriceRange`] in the catalog currency (`shop.currency`, else the currency of the
//!    products the search returns; without either the filter is skipped), and the top three
//!    hits are listed by title and price. Nothing found: the reply says so and offers a human.
//! 5. Otherwise the conversation is **handed to a human**.
//!
//! Refunds are answered with the policy, never an amount; no discount is ever offered (the
//! built-in `discounts` intent points to the prices and offers shown in the shop).
//!
//! # Hand-off: how an app detects it
//! A hand-off always has a reply text saying that a member of the team takes over. It is made
//! machine-readable without inventing anything the app did not ask for:
//! - **Tool call** (recommended): offer a tool named `handoff_to_human` (or the name set in
//!   `handoff_tool`). A hand-off then also calls it, with arguments
//!   `{"reason": "<code>", "intent": "<intent>", "language": "en|zh"}` restricted to and
//!   completed for the tool's schema, and the finish reason is
//!   [`FinishReason::ToolCalls`]. Your tool routes the conversation to your support desk; its
//!   result, sent back, gets a short "someone will reply shortly" answer and no second call.
//! - **JSON formats**: with [`ResponseFormat::JsonObject`] the answer is
//!   `{"answer", "intent", "language", "handoff", "handoff_reason", "products"}`; a
//!   [`ResponseFormat::JsonSchema`] gets the same values mapped onto its properties.
//! - [`handoff_reason`] reads the reason from a response (from the tool call).
//!
//! A tool the app did not offer is never called, and the finish reason stays a standard one,
//! so generic clients keep working. Reason codes: `customer_request` (the shopper asked for a
//! person), `no_intent` (not understood), `no_catalog` (no searcher), `search_unavailable`
//! (the searcher failed), `tool_result_mismatch` (a tool result about another order).
//!
//! # Streams, usage, limits
//! `chat_stream` sends the same text in word-sized [`ChatEvent::TextDelta`]s (one CJK
//! character each), then one [`ChatEvent::ToolCall`] per call, a [`ChatEvent::Usage`] and one
//! [`ChatEvent::Finished`]. Usage counts Latin words plus CJK characters. Sampling options,
//! `max_tokens` and stop sequences do not change the (short, fixed) answers.

pub mod config;
mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use merchant_ai::*;
use regex::Regex;
use serde_json::{Map, Value, json};

pub use config::{ChatConfig, IntentAction, IntentConfig, Lang, Localized, ShopFacts};
use config::{Intent, compile};
use text::{
    detect_lang, find_keyword, keyword_weight, normalize, render, render_counted, sanitize,
};

/// The engine name reported in [`ResponseMeta::model`].
pub const MODEL: &str = "rules-intents";

/// The default name of the app's hand-off tool.
pub const HANDOFF_TOOL: &str = "handoff_to_human";

/// Longest value taken from a message into a reply.
const MAX_CAPTURE: usize = 64;
/// Longest value taken from a tool result or a product into a reply.
const MAX_FIELD: usize = 80;

/// The rules chat capability.
#[derive(Debug)]
pub struct RulesChat {
    name: String,
    intents: Vec<Intent>,
    facts_en: BTreeMap<String, String>,
    facts_zh: BTreeMap<String, String>,
    handoff_tool: String,
    fallback: Localized,
    currency: Option<Currency>,
    searcher: Option<Arc<dyn Searcher>>,
    price: PricePatterns,
}

#[derive(Debug)]
struct PricePatterns {
    max: Vec<Regex>,
    min: Vec<Regex>,
    range: Vec<Regex>,
}

impl PricePatterns {
    fn new() -> Result<Self> {
        let n = r"(\d+(?:\.\d+)?)";
        let cur = r"\s*[$¥€£]?\s*";
        let unit = r"\s*(?:元|块钱|块|rmb|yuan)?\s*";
        let c = |p: String| {
            Regex::new(&p).map_err(|e| Error::config(format!("built-in price pattern: {e}")))
        };
        Ok(PricePatterns {
            max: vec![
                c(format!(
                    r"(?i)\b(?:under|below|less than|cheaper than|up to|at most|no more than|max)\b{cur}{n}"
                ))?,
                c(format!(r"(?i){n}{unit}(?:以下|以内|之内)"))?,
                c(format!(r"(?:低于|不超过|少于|不到|便宜于){cur}{n}"))?,
            ],
            min: vec![
                c(format!(
                    r"(?i)\b(?:over|above|more than|at least)\b{cur}{n}"
                ))?,
                c(format!(r"(?i){n}{unit}以上"))?,
                c(format!(r"(?:高于|超过|多于){cur}{n}"))?,
            ],
            range: vec![
                c(format!(r"(?i)\bbetween\b{cur}{n}\s*(?:and|-|to){cur}{n}"))?,
                c(format!(
                    r"(?i){n}\s*(?:-|~|到|至)\s*{n}\s*(?:元|块钱|块|rmb|yuan)"
                ))?,
            ],
        })
    }

    fn all(&self) -> impl Iterator<Item = &Regex> {
        self.range.iter().chain(&self.max).chain(&self.min)
    }

    /// Price limits as decimal strings (min, max).
    fn parse(&self, text: &str) -> (Option<String>, Option<String>) {
        for r in &self.range {
            if let Some(c) = r.captures(text) {
                return (
                    c.get(1).map(|m| m.as_str().to_owned()),
                    c.get(2).map(|m| m.as_str().to_owned()),
                );
            }
        }
        let first = |rs: &[Regex]| {
            rs.iter()
                .find_map(|r| r.captures(text))
                .and_then(|c| c.get(1).map(|m| m.as_str().to_owned()))
        };
        (first(&self.min), first(&self.max))
    }
}

/// Placeholder values from regex groups.
type Groups = BTreeMap<String, String>;

/// One product line of an answer.
#[derive(Debug, Clone)]
struct ProductLine {
    id: String,
    title: String,
    price: Option<String>,
}

/// What to answer, before the response format applies.
#[derive(Debug)]
struct Plan {
    intent: String,
    text: String,
    tool_calls: Vec<ToolCall>,
    handoff: Option<String>,
    products: Vec<ProductLine>,
    lang: Lang,
}

impl Plan {
    fn new(intent: &str, lang: Lang, text: String) -> Self {
        Plan {
            intent: intent.into(),
            text,
            tool_calls: Vec::new(),
            handoff: None,
            products: Vec::new(),
            lang,
        }
    }
}

impl RulesChat {
    /// A chat model answering product questions through `searcher`.
    pub fn new(name: &str, cfg: ChatConfig, searcher: Option<Arc<dyn Searcher>>) -> Result<Self> {
        let intents = compile(&cfg)?;
        let currency = match &cfg.shop.currency {
            Some(c) => Some(Currency::new(c)?),
            None => None,
        };
        let handoff_tool = cfg
            .handoff_tool
            .clone()
            .unwrap_or_else(|| HANDOFF_TOOL.to_owned());
        if handoff_tool.is_empty()
            || !handoff_tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::config(format!(
                "chat.handoff_tool {handoff_tool:?} must be ASCII letters, digits, _ or -"
            )));
        }
        let fallback = cfg.fallback.clone().unwrap_or_else(|| {
            Localized::new(
                "I'm not sure I can answer that correctly, so a member of our team will take over this conversation and reply here.[[ Support hours: {support_hours}.]]",
                "这个问题我暂时无法准确回答，稍后将由人工客服接手本次对话，并在这里回复您。[[客服时间：{support_hours}。]]",
            )
        });
        Ok(RulesChat {
            name: name.into(),
            facts_en: facts(&cfg.shop, Lang::En),
            facts_zh: facts(&cfg.shop, Lang::Zh),
            intents,
            handoff_tool,
            fallback,
            currency,
            searcher,
            price: PricePatterns::new()?,
        })
    }

    fn facts(&self, lang: Lang) -> &BTreeMap<String, String> {
        match lang {
            Lang::En => &self.facts_en,
            Lang::Zh => &self.facts_zh,
        }
    }

    /// The best intent for a message: (index, regex groups).
    fn classify(&self, folded: &str, lower: &str) -> Option<(usize, Groups)> {
        type Rank = (u32, i32, bool);
        let mut best: Option<(Rank, usize, Groups)> = None;
        for (i, intent) in self.intents.iter().enumerate() {
            let mut score: u32 = intent
                .keywords
                .iter()
                .filter(|k| !find_keyword(lower, k).is_empty())
                .map(|k| keyword_weight(k))
                .sum();
            let mut groups = BTreeMap::new();
            for p in &intent.patterns {
                if let Some(c) = p.captures(folded) {
                    score += 10;
                    if groups.is_empty() {
                        groups = captures(p, &c);
                    }
                }
            }
            if score == 0 {
                continue;
            }
            let key = (score, intent.cfg.priority, intent.configured);
            if best.as_ref().is_none_or(|(b, _, _)| key > *b) {
                best = Some((key, i, groups));
            }
        }
        best.map(|(_, i, g)| (i, g))
    }

    async fn plan(&self, req: &ChatRequest) -> Plan {
        let mut plan = self.plan_free(req).await;
        if plan.tool_calls.is_empty()
            && matches!(req.tool_choice, ToolChoice::Required | ToolChoice::Tool(_))
            && req.messages.last().is_some_and(|m| m.role != Role::Tool)
        {
            // A forced tool call: call the first offered intent tool whose arguments the
            // message fills; when none fits, the text answer stands.
            let folded = fold(&req.last_user_text().unwrap_or_default());
            for intent in &self.intents {
                let Some(tool) = intent.cfg.tool.as_deref().and_then(|t| offered(req, t)) else {
                    continue;
                };
                let values = extract(intent, &folded);
                if let Some(args) = tool_arguments(tool, &values, None) {
                    plan.text.clear();
                    plan.intent = intent.cfg.name.clone();
                    plan.handoff = None;
                    plan.products.clear();
                    plan.tool_calls.push(tool_call(req, &tool.name, args));
                    break;
                }
            }
        }
        plan
    }

    async fn plan_free(&self, req: &ChatRequest) -> Plan {
        let user = req.last_user_text().unwrap_or_default();
        let lang = detect_lang(&user);
        if let Some(last) = req.messages.last()
            && last.role == Role::Tool
        {
            return self.plan_tool_result(req, last, lang);
        }
        let folded = fold(&user);
        let lower = normalize(&user);
        let found = if lower.trim().is_empty() {
            self.intents
                .iter()
                .position(|i| i.cfg.name == "greeting")
                .map(|i| (i, BTreeMap::new()))
        } else {
            self.classify(&folded, &lower)
        };
        let Some((idx, groups)) = found else {
            let text = render(self.fallback.get(lang), self.facts(lang));
            let mut plan = Plan::new("fallback", lang, text);
            self.hand_off(req, &mut plan, "no_intent");
            return plan;
        };
        let intent = &self.intents[idx];
        let mut vars = self.facts(lang).clone();
        vars.extend(groups);
        let extracted = extract(intent, &folded);
        vars.extend(extracted.clone());
        let cfg = &intent.cfg;
        match cfg.action {
            IntentAction::Search => {
                return self.plan_search(req, intent, &lower, &folded, lang).await;
            }
            IntentAction::Handoff => {
                let mut plan = Plan::new(&cfg.name, lang, render(cfg.answer.get(lang), &vars));
                self.hand_off(req, &mut plan, "customer_request");
                return plan;
            }
            IntentAction::Answer => {}
        }
        if let Some(tool) = cfg.tool.as_deref().and_then(|t| offered(req, t)) {
            return match tool_arguments(tool, &extracted, None) {
                Some(args) => {
                    let mut plan = Plan::new(&cfg.name, lang, String::new());
                    plan.tool_calls.push(tool_call(req, &tool.name, args));
                    plan
                }
                None => {
                    let t = cfg.missing.as_ref().unwrap_or(&cfg.answer);
                    Plan::new(&cfg.name, lang, render(t.get(lang), &vars))
                }
            };
        }
        Plan::new(&cfg.name, lang, render(cfg.answer.get(lang), &vars))
    }

    /// Marks a hand-off and, when the app offers the hand-off tool, calls it.
    fn hand_off(&self, req: &ChatRequest, plan: &mut Plan, reason: &str) {
        plan.handoff = Some(reason.to_owned());
        if let Some(tool) = offered(req, &self.handoff_tool) {
            let mut values = BTreeMap::new();
            values.insert("reason".to_owned(), reason.to_owned());
            values.insert("intent".to_owned(), plan.intent.clone());
            values.insert("language".to_owned(), plan.lang.code().to_owned());
            let args = tool_arguments(tool, &values, Some(reason))
                .unwrap_or_else(|| json!({"reason": reason}));
            plan.tool_calls.push(tool_call(req, &tool.name, args));
        }
    }

    fn plan_tool_result(&self, req: &ChatRequest, last: &Message, lang: Lang) -> Plan {
        let call_id = last.tool_call_id.as_deref().unwrap_or_default();
        let call = req
            .messages
            .iter()
            .rev()
            .filter(|m| m.role == Role::Assistant)
            .flat_map(|m| m.tool_calls.iter())
            .find(|c| c.id == call_id);
        let tool_name = call.map(|c| c.name.as_str()).unwrap_or_default();
        let args: Map<String, Value> = call
            .and_then(|c| c.arguments_json().ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        if tool_name == self.handoff_tool {
            let text = match lang {
                Lang::En => "Thank you for waiting: a member of our team will reply here shortly.",
                Lang::Zh => "感谢您的耐心等待，人工客服将很快在这里回复您。",
            };
            let mut plan = Plan::new("handoff", lang, text.into());
            let reason = args
                .get("reason")
                .and_then(Value::as_str)
                .map_or("customer_request".to_owned(), |r| sanitize(r, MAX_CAPTURE));
            plan.handoff = Some(reason);
            return plan;
        }
        let intent = self
            .intents
            .iter()
            .find(|i| !tool_name.is_empty() && i.cfg.tool.as_deref() == Some(tool_name));
        let intent_name = intent.map_or("tool_result", |i| i.cfg.name.as_str());
        let mut vars = self.facts(lang).clone();
        for (k, v) in &args {
            if let Some(s) = scalar(v) {
                vars.insert(sanitize(k, MAX_CAPTURE), sanitize(&s, MAX_CAPTURE));
            }
        }
        let raw = last.text();
        let result: Option<Map<String, Value>> = serde_json::from_str::<Value>(&raw)
            .ok()
            .and_then(|v| v.as_object().cloned());
        let Some(result) = result else {
            let s = sanitize(&raw, 200);
            let text = if s.is_empty() {
                not_found(lang, &vars)
            } else {
                match lang {
                    Lang::En => format!("Here is what I found: {s}"),
                    Lang::Zh => format!("查询结果：{s}"),
                }
            };
            return Plan::new(intent_name, lang, text);
        };
        // Never show a result about another order than the one asked for.
        if let (Some(asked), Some(got)) = (
            args.get("order_id").and_then(scalar),
            result.get("order_id").and_then(scalar),
        ) && asked.trim() != got.trim()
        {
            let text = match lang {
                Lang::En => {
                    "I need a colleague to check this order for you. A member of our team will take over this conversation."
                }
                Lang::Zh => "这个订单需要人工客服为您核实，稍后将由工作人员接手本次对话。",
            };
            let mut plan = Plan::new(intent_name, lang, text.into());
            self.hand_off(req, &mut plan, "tool_result_mismatch");
            return plan;
        }
        let failed = result
            .get("error")
            .is_some_and(|e| !e.is_null() && e != &json!(false))
            || result.get("found") == Some(&json!(false));
        if failed {
            return Plan::new(intent_name, lang, not_found(lang, &vars));
        }
        for (k, v) in &result {
            if let Some(s) = scalar(v) {
                vars.insert(sanitize(k, MAX_CAPTURE), sanitize(&s, MAX_FIELD));
            }
        }
        for (canon, aliases) in ALIASES {
            if !vars.contains_key(*canon)
                && let Some(v) = aliases.iter().find_map(|a| result.get(*a).and_then(scalar))
            {
                vars.insert((*canon).to_owned(), sanitize(&v, MAX_FIELD));
            }
        }
        if let Some(t) = intent.and_then(|i| i.cfg.tool_answer.as_ref()) {
            let (text, kept, total) = render_counted(t.get(lang), &vars);
            if total == 0 || kept > 0 {
                return Plan::new(intent_name, lang, text);
            }
        }
        Plan::new(intent_name, lang, summary(&result, lang))
    }

    async fn plan_search(
        &self,
        req: &ChatRequest,
        intent: &Intent,
        lower: &str,
        folded: &str,
        lang: Lang,
    ) -> Plan {
        let cfg = &intent.cfg;
        let vars = self.facts(lang);
        let Some(searcher) = &self.searcher else {
            let text = match lang {
                Lang::En => {
                    "I can't search the catalog from here, so a member of our team will take over and help you find it."
                }
                Lang::Zh => "我这里暂时无法查询商品，稍后将由人工客服接手，帮您查找。",
            };
            let mut plan = Plan::new(&cfg.name, lang, text.into());
            self.hand_off(req, &mut plan, "no_catalog");
            return plan;
        };
        let query = self.search_query(intent, lower);
        let (min, max) = self.price.parse(folded);
        if query.is_empty() && min.is_none() && max.is_none() {
            let text = match lang {
                Lang::En => {
                    "Which product are you looking for? Tell me its name, colour or budget and I'll look it up."
                }
                Lang::Zh => "请问您想找什么商品？告诉我名称、颜色或预算，我来帮您查找。",
            };
            return Plan::new(&cfg.name, lang, text.into());
        }
        let base = SearchRequest::new(query)
            .with_ctx(req.ctx.clone())
            .with_language(lang.code())
            .with_limit(3usize);
        let mut filter = None;
        if min.is_some() || max.is_some() {
            let currency = match self.currency {
                Some(c) => Some(c),
                None => {
                    let probe = base.clone().with_limit(10usize);
                    match searcher.search(probe).await {
                        Ok(r) => catalog_currency(&r),
                        Err(_) => return self.search_failed(req, cfg, lang),
                    }
                }
            };
            if let Some(c) = currency {
                let m = |s: &Option<String>| s.as_deref().and_then(|s| money(s, c));
                let (lo, hi) = (m(&min), m(&max));
                let ok = match (lo, hi) {
                    (Some(a), Some(b)) => a.minor <= b.minor,
                    (None, None) => false,
                    _ => true,
                };
                if ok {
                    filter = Some(PriceRange::new(lo, hi));
                }
            }
        }
        let sreq = match filter {
            Some(r) => base.with_filters(Filters::new().with_price(r)),
            None => base,
        };
        let resp = match searcher.search(sreq).await {
            Ok(r) => r,
            Err(_) => return self.search_failed(req, cfg, lang),
        };
        let products: Vec<ProductLine> = resp
            .hits
            .iter()
            .take(3)
            .map(|h| match &h.product {
                Some(p) => ProductLine {
                    id: p.id.to_string(),
                    title: sanitize(p.title_in(lang.code()), MAX_FIELD),
                    price: Some(p.price.to_string()),
                },
                None => ProductLine {
                    id: h.product_id.to_string(),
                    title: sanitize(h.product_id.as_str(), MAX_FIELD),
                    price: None,
                },
            })
            .collect();
        if products.is_empty() {
            let t = cfg.empty.as_ref().unwrap_or(&cfg.answer);
            return Plan::new(&cfg.name, lang, render(t.get(lang), vars));
        }
        let mut text = render(cfg.answer.get(lang), vars);
        for (n, p) in products.iter().enumerate() {
            text.push('\n');
            text.push_str(&format!("{}. {}", n + 1, p.title));
            if let Some(price) = &p.price {
                text.push_str(match lang {
                    Lang::En => ": ",
                    Lang::Zh => "：",
                });
                text.push_str(price);
            }
        }
        let mut plan = Plan::new(&cfg.name, lang, text);
        plan.products = products;
        plan
    }

    fn search_failed(&self, req: &ChatRequest, cfg: &IntentConfig, lang: Lang) -> Plan {
        let text = match lang {
            Lang::En => {
                "I can't search the catalog right now, so a member of our team will take over and help you find it."
            }
            Lang::Zh => "商品查询暂时不可用，稍后将由人工客服接手，帮您查找。",
        };
        let mut plan = Plan::new(&cfg.name, lang, text.into());
        self.hand_off(req, &mut plan, "search_unavailable");
        plan
    }

    /// The search words of a product question: without price phrases, intent words and
    /// stop words.
    fn search_query(&self, intent: &Intent, lower: &str) -> String {
        let mut s = lower.to_owned();
        for r in self.price.all() {
            s = r.replace_all(&s, " ").into_owned();
        }
        let mut kws: Vec<&String> = intent.keywords.iter().collect();
        kws.sort_by_key(|k| std::cmp::Reverse(k.len()));
        for k in kws {
            // Non-overlapping matches, replaced from the end so earlier ranges stay valid.
            let mut ranges: Vec<(usize, usize)> = Vec::new();
            for (a, b) in find_keyword(&s, k) {
                if ranges.last().is_none_or(|&(_, end)| a >= end) {
                    ranges.push((a, b));
                }
            }
            for (a, b) in ranges.into_iter().rev() {
                s.replace_range(a..b, " ");
            }
        }
        for w in ZH_STOP {
            s = s.replace(w, " ");
        }
        let words: Vec<&str> = s
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
            .map(|w| w.trim_matches(|c| c == '-' || c == '\''))
            .filter(|w| !w.is_empty() && !EN_STOP.contains(w))
            .collect();
        let q = words.join(" ");
        q.chars().take(200).collect()
    }

    async fn respond(&self, req: &ChatRequest) -> Result<ChatResponse> {
        req.validate()?;
        let plan = self.plan(req).await;
        tracing::debug!(
            provider = %self.name,
            intent = %plan.intent,
            handoff = plan.handoff.is_some(),
            tool_calls = plan.tool_calls.len(),
            "rules chat answered"
        );
        let text = format_answer(&plan, &req.response_format);
        let input: u64 = req
            .messages
            .iter()
            .map(|m| text::count_tokens(&m.text()))
            .sum();
        let output = text::count_tokens(&text)
            + plan
                .tool_calls
                .iter()
                .map(|c| text::count_tokens(&c.arguments) + 1)
                .sum::<u64>();
        let meta = ResponseMeta::new(self.name.clone())
            .with_model(MODEL)
            .with_usage(
                Usage::new()
                    .with_input_tokens(input)
                    .with_output_tokens(output),
            );
        let finish = if plan.tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        Ok(ChatResponse::new(text, finish, meta).with_tool_calls(plan.tool_calls))
    }
}

#[async_trait]
impl ChatModel for RulesChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.respond(&req).await
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let resp = self.respond(&req).await?;
        let mut events: Vec<ChatEvent> = text::chunks(&resp.text)
            .into_iter()
            .map(|t| ChatEvent::TextDelta { text: t })
            .collect();
        events.extend(
            resp.tool_calls
                .iter()
                .cloned()
                .map(|call| ChatEvent::ToolCall { call }),
        );
        events.push(ChatEvent::Usage {
            usage: resp.meta.usage.clone(),
        });
        events.push(ChatEvent::Finished {
            finish_reason: resp.finish_reason.clone(),
            meta: resp.meta.clone(),
        });
        Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed())
    }
}

/// The hand-off reason of a response of [`RulesChat`], read from its call to the hand-off tool
/// (`tool_name`, usually [`HANDOFF_TOOL`]); `None` when it did not hand off through the tool.
pub fn handoff_reason(resp: &ChatResponse, tool_name: &str) -> Option<String> {
    resp.tool_calls
        .iter()
        .find(|c| c.name == tool_name)
        .map(|c| {
            c.arguments_json()
                .ok()
                .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "handoff".to_owned())
        })
}

/// Top-level fields of a tool result known under other names.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "status",
        &[
            "state",
            "order_status",
            "shipping_status",
            "delivery_status",
        ],
    ),
    (
        "carrier",
        &[
            "courier",
            "shipping_carrier",
            "logistics_company",
            "express",
        ],
    ),
    (
        "tracking_number",
        &[
            "tracking_no",
            "tracking",
            "tracking_id",
            "waybill",
            "waybill_no",
        ],
    ),
    (
        "eta",
        &[
            "estimated_delivery",
            "estimated_delivery_date",
            "expected_delivery",
            "delivery_date",
            "estimated_arrival",
        ],
    ),
];

/// Parts of a field name that mark personal data, never summarised.
const PERSONAL: &[&str] = &[
    "email",
    "mail",
    "phone",
    "mobile",
    "tel",
    "address",
    "addr",
    "name",
    "customer",
    "user",
    "buyer",
    "recipient",
    "receiver",
    "card",
    "password",
    "token",
    "secret",
    "ip",
    "birthday",
    "dob",
    "ssn",
    "passport",
];

const EN_STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "do",
    "does",
    "you",
    "your",
    "have",
    "has",
    "any",
    "some",
    "i",
    "i'm",
    "im",
    "me",
    "my",
    "we",
    "us",
    "our",
    "is",
    "are",
    "there",
    "for",
    "of",
    "in",
    "on",
    "to",
    "with",
    "please",
    "want",
    "need",
    "looking",
    "look",
    "buy",
    "sell",
    "show",
    "can",
    "could",
    "would",
    "like",
    "get",
    "something",
    "anything",
    "what",
    "which",
    "stock",
    "available",
    "thanks",
    "thank",
    "hi",
    "hello",
    "hey",
    "price",
    "priced",
    "cost",
    "costs",
    "shop",
    "store",
    "and",
    "or",
    "that",
    "this",
    "it",
    "be",
    "than",
    "less",
    "more",
    "under",
    "below",
    "over",
    "above",
    "between",
    "up",
    "at",
    "most",
    "least",
    "cheap",
    "cheaper",
    "yuan",
    "rmb",
    "dollars",
    "dollar",
    "usd",
    "cny",
    "sgd",
    "eur",
    "one",
    "ones",
    "pair",
    "pairs",
    "got",
    "sale",
    "carry",
    "recommend",
    "find",
    "about",
    "around",
];

const ZH_STOP: &[&str] = &[
    "请问",
    "你们",
    "您们",
    "我想",
    "我要",
    "想要",
    "一下",
    "有没有",
    "有吗",
    "一款",
    "一双",
    "一件",
    "一个",
    "什么",
    "哪些",
    "便宜",
    "价格",
    "左右",
    "块钱",
    "元",
    "块",
    "吗",
    "呢",
    "嘛",
    "的",
    "啊",
    "呀",
    "吧",
    "了",
    "和",
    "卖",
    "有",
];

fn facts(shop: &ShopFacts, lang: Lang) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let name = shop.shop_name.clone().unwrap_or_else(|| {
        match lang {
            Lang::En => "our shop",
            Lang::Zh => "本店",
        }
        .into()
    });
    m.insert("shop_name".into(), name);
    m.insert(
        "return_window_days".into(),
        shop.return_window_days.unwrap_or(7).to_string(),
    );
    m.insert(
        "shipping_days".into(),
        shop.shipping_days.clone().unwrap_or_else(|| "3-5".into()),
    );
    for (k, v) in [
        ("shipping_fee", &shop.shipping_fee),
        ("free_shipping_over", &shop.free_shipping_over),
        ("support_hours", &shop.support_hours),
        ("support_email", &shop.support_email),
        ("support_phone", &shop.support_phone),
        ("currency", &shop.currency),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone());
        }
    }
    let methods: Vec<String> = if shop.payment_methods.is_empty() {
        match lang {
            Lang::En => vec![
                "credit or debit card".into(),
                "Alipay".into(),
                "WeChat Pay".into(),
            ],
            Lang::Zh => vec!["银行卡".into(), "支付宝".into(), "微信支付".into()],
        }
    } else {
        shop.payment_methods.clone()
    };
    let joined = match lang {
        Lang::En => match methods.len() {
            0 | 1 => methods.concat(),
            n => format!("{} and {}", methods[..n - 1].join(", "), methods[n - 1]),
        },
        Lang::Zh => methods.join("、"),
    };
    m.insert("payment_methods".into(), joined);
    for (k, v) in &shop.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Full-width ASCII folded to ASCII, case kept (for regex patterns and captures).
fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// The intent's `extract` values found in the message, sanitized.
fn extract(intent: &Intent, folded: &str) -> Groups {
    let mut out = Groups::new();
    for (k, re) in &intent.extract {
        if let Some(c) = re.captures(folded) {
            let v = (1..c.len())
                .find_map(|g| c.get(g))
                .or_else(|| c.get(0))
                .map(|m| sanitize(m.as_str(), MAX_CAPTURE))
                .unwrap_or_default();
            if !v.is_empty() {
                out.insert(k.clone(), v);
            }
        }
    }
    out
}

fn captures(re: &Regex, c: &regex::Captures<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, name) in re.capture_names().enumerate().skip(1) {
        if let Some(m) = c.get(i) {
            let v = sanitize(m.as_str(), MAX_CAPTURE);
            out.insert(i.to_string(), v.clone());
            if let Some(n) = name {
                out.insert(n.to_owned(), v);
            }
        }
    }
    out
}

/// The offered tool of that name, unless the request forbids tool calls or forces another.
fn offered<'a>(req: &'a ChatRequest, name: &str) -> Option<&'a Tool> {
    match &req.tool_choice {
        ToolChoice::None => return None,
        ToolChoice::Tool(t) if t != name => return None,
        _ => {}
    }
    req.tools.iter().find(|t| t.name == name)
}

/// Arguments for `tool` from `values`: its required properties must be filled (from the value
/// of the same name, or the only value when one is required); optional properties are added
/// when a value of that name exists. With `default`, required properties without a value get
/// a value of their type instead. `None` when a required property cannot be filled.
fn tool_arguments(
    tool: &Tool,
    values: &BTreeMap<String, String>,
    default: Option<&str>,
) -> Option<Value> {
    let props = tool
        .parameters
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = tool
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if props.is_empty() && required.is_empty() {
        for (k, v) in values {
            out.insert(k.clone(), Value::String(v.clone()));
        }
        return Some(Value::Object(out));
    }
    for name in &required {
        let schema = props.get(*name).cloned().unwrap_or(Value::Null);
        let raw = values.get(*name).cloned().or_else(|| {
            (required.len() == 1 && values.len() == 1 && default.is_none())
                .then(|| values.values().next().cloned())
                .flatten()
        });
        let v = match raw {
            Some(r) => typed(&schema, &r)?,
            None => match default {
                Some(d) => default_of(&schema, d),
                None => return None,
            },
        };
        out.insert((*name).to_owned(), v);
    }
    for (name, schema) in &props {
        if out.contains_key(name) {
            continue;
        }
        if let Some(v) = values.get(name).and_then(|r| typed(schema, r)) {
            out.insert(name.clone(), v);
        }
    }
    Some(Value::Object(out))
}

fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A string value converted to the schema's type, if it fits.
fn typed(schema: &Value, raw: &str) -> Option<Value> {
    let types = types_of(schema);
    let v = if types.is_empty() || types.contains(&"string") {
        Value::String(raw.to_owned())
    } else if types.contains(&"integer") {
        Value::from(raw.parse::<i64>().ok()?)
    } else if types.contains(&"number") {
        serde_json::Number::from_f64(raw.parse::<f64>().ok()?).map(Value::Number)?
    } else {
        return None;
    };
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(&v)
    {
        return None;
    }
    Some(v)
}

fn default_of(schema: &Value, text: &str) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match types_of(schema).first().copied() {
        Some("boolean") => Value::Bool(true),
        Some("integer") | Some("number") => Value::from(0),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Map::new()),
        Some("null") => Value::Null,
        _ => Value::String(text.to_owned()),
    }
}

/// A call whose id is derived from the conversation length, the tool and the arguments.
fn tool_call(req: &ChatRequest, name: &str, args: Value) -> ToolCall {
    let args = args.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}\0{name}\0{args}", req.messages.len()).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ToolCall::new(format!("call_{h:016x}"), name, args)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn personal(key: &str) -> bool {
    key.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|p| PERSONAL.contains(&p))
}

fn not_found(lang: Lang, vars: &BTreeMap<String, String>) -> String {
    let t = match lang {
        Lang::En => {
            "I couldn't find anything for that[[ (order {order_id})]]. Please check the details, or ask for a colleague and they will help."
        }
        Lang::Zh => "没有查到相关信息[[（订单{order_id}）]]。请核对信息，或转人工客服为您处理。",
    };
    render(t, vars)
}

/// A summary of a tool result's top-level scalar fields that do not look personal.
fn summary(result: &Map<String, Value>, lang: Lang) -> String {
    let parts: Vec<String> = result
        .iter()
        .filter(|(k, _)| !personal(k))
        .filter_map(|(k, v)| {
            let v = sanitize(&scalar(v)?, MAX_FIELD);
            let k = sanitize(&k.replace('_', " "), 40);
            (!v.is_empty() && !k.is_empty()).then(|| match lang {
                Lang::En => format!("{k}: {v}"),
                Lang::Zh => format!("{k}：{v}"),
            })
        })
        .take(8)
        .collect();
    match (lang, parts.is_empty()) {
        (Lang::En, true) => "The lookup finished, but it returned nothing I can show here. Ask for a colleague if you need the details.".into(),
        (Lang::Zh, true) => "查询已完成，但没有可以在这里显示的信息。如需详情，可以转人工客服。".into(),
        (Lang::En, false) => format!("Here is what I found: {}.", parts.join("; ")),
        (Lang::Zh, false) => format!("查询结果：{}。", parts.join("；")),
    }
}

/// The currency of the products a search returned, when they all share one.
fn catalog_currency(r: &SearchResponse) -> Option<Currency> {
    let mut cur = None;
    for p in r.hits.iter().filter_map(|h| h.product.as_ref()) {
        match cur {
            None => cur = Some(p.price.currency),
            Some(c) if c != p.price.currency => return None,
            _ => {}
        }
    }
    cur
}

/// A decimal amount in `c`, extra decimals cut.
fn money(s: &str, c: Currency) -> Option<Money> {
    let digits = c.minor_digits() as usize;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: String = frac.chars().take(digits).collect();
    let s = if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    };
    Money::parse(&s, c).ok()
}

/// The answer text in the requested format.
fn format_answer(plan: &Plan, format: &ResponseFormat) -> String {
    let obj = || {
        let products: Vec<Value> = plan
            .products
            .iter()
            .map(|p| json!({"id": p.id, "title": p.title, "price": p.price}))
            .collect();
        let mut m = Map::new();
        m.insert("answer".into(), Value::String(plan.text.clone()));
        m.insert("intent".into(), Value::String(plan.intent.clone()));
        m.insert("language".into(), Value::String(plan.lang.code().into()));
        m.insert("handoff".into(), Value::Bool(plan.handoff.is_some()));
        m.insert(
            "handoff_reason".into(),
            plan.handoff.clone().map_or(Value::Null, Value::String),
        );
        m.insert("products".into(), Value::Array(products));
        m
    };
    match format {
        ResponseFormat::JsonObject => Value::Object(obj()).to_string(),
        ResponseFormat::JsonSchema { schema, .. } => {
            let o = obj();
            let v = if schema.get("properties").is_some_and(Value::is_object) {
                fill_schema(schema, &o, &plan.text, 0)
            } else {
                match types_of(schema).first().copied() {
                    None | Some("object") => Value::Object(o),
                    _ => fill_schema(schema, &o, &plan.text, 0),
                }
            };
            v.to_string()
        }
        _ => plan.text.clone(),
    }
}

/// A value for `schema` from the answer's fields: properties of a known name take that field
/// when its type fits; other required properties get a value of their type (strings the
/// answer, booleans the hand-off flag, numbers the product count).
fn fill_schema(schema: &Value, fields: &Map<String, Value>, answer: &str, depth: usize) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let types = types_of(schema);
    let props = schema.get("properties").and_then(Value::as_object);
    let is_object = types.contains(&"object") || (types.is_empty() && props.is_some());
    if is_object {
        let mut out = Map::new();
        if depth > 4 {
            return Value::Object(out);
        }
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, ps) in props.into_iter().flatten() {
            let known = fields.get(name).filter(|v| fits(ps, v));
            if let Some(v) = known {
                out.insert(name.clone(), v.clone());
            } else if required.contains(&name.as_str()) {
                out.insert(name.clone(), fill_schema(ps, fields, answer, depth + 1));
            }
        }
        return Value::Object(out);
    }
    let handoff = fields.get("handoff").cloned().unwrap_or(Value::Bool(false));
    let count = fields
        .get("products")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    match types.first().copied() {
        Some("boolean") => handoff,
        Some("integer") | Some("number") => Value::from(count),
        Some("array") => Value::Array(Vec::new()),
        Some("null") => Value::Null,
        _ => Value::String(answer.to_owned()),
    }
}

/// Whether `v` has one of the schema's types (any value when it names none).
fn fits(schema: &Value, v: &Value) -> bool {
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return false;
    }
    let types = types_of(schema);
    if types.is_empty() {
        return true;
    }
    types.iter().any(|t| match *t {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => false,
    })
}
