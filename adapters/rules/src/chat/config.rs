//! `[providers.NAME.chat]` options and the built-in intents.

use std::collections::BTreeMap;

use merchant_ai::{Currency, Error, Result};
use regex::Regex;
use serde::Deserialize;

/// `[providers.NAME.chat]` options.
///
/// ```toml
/// [providers.rules.chat]
/// replace_defaults = false          # true: only the intents below
/// disabled = ["payment"]            # built-in intents to drop
/// handoff_tool = "handoff_to_human" # the app's hand-off tool, when it offers one
///
/// [providers.rules.chat.shop]
/// shop_name = "Peakline Store"
/// return_window_days = 30
/// shipping_days = "2-4"
/// shipping_fee = "8 CNY"
/// free_shipping_over = "99 CNY"
/// support_hours = "09:00-21:00 (UTC+8)"
/// support_email = "help@example.com"
/// payment_methods = ["Alipay", "WeChat Pay", "UnionPay"]
/// currency = "CNY"
/// extra = { warranty_years = "2" }
///
/// [[providers.rules.chat.intents]]
/// name = "warranty"
/// keywords = ["warranty", "guarantee", "保修", "质保"]
/// answer = { en = "Every product has a {warranty_years}-year warranty.", zh = "所有商品质保{warranty_years}年。" }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Facts about the shop that templates quote.
    pub shop: ShopFacts,
    /// Intents added to the built-in set; one with a built-in name replaces it.
    pub intents: Vec<IntentConfig>,
    /// Drop every built-in intent: only `intents` apply.
    pub replace_defaults: bool,
    /// Names of built-in intents to drop.
    pub disabled: Vec<String>,
    /// The name of the app's hand-off tool (default `handoff_to_human`). When the request
    /// offers a tool of that name, a hand-off is also a call to it.
    pub handoff_tool: Option<String>,
    /// Reply when no intent matches (and the conversation is handed to a human).
    pub fallback: Option<Localized>,
}

/// Facts about the shop, quoted by templates as `{shop_name}`, `{return_window_days}`, ...
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopFacts {
    /// `{shop_name}`; default "our shop" / "本店".
    pub shop_name: Option<String>,
    /// `{return_window_days}`; default 7.
    pub return_window_days: Option<u32>,
    /// `{shipping_days}`: business days to deliver, e.g. `"3-5"` (the default).
    pub shipping_days: Option<String>,
    /// `{shipping_fee}`, e.g. `"10 CNY"`; not stated when unset.
    pub shipping_fee: Option<String>,
    /// `{free_shipping_over}`, e.g. `"99 CNY"`; not stated when unset.
    pub free_shipping_over: Option<String>,
    /// `{support_hours}`, e.g. `"09:00-18:00"`; not stated when unset.
    pub support_hours: Option<String>,
    /// `{support_email}`; not stated when unset.
    pub support_email: Option<String>,
    /// `{support_phone}`; not stated when unset.
    pub support_phone: Option<String>,
    /// `{payment_methods}`, joined; default card, Alipay, WeChat Pay.
    pub payment_methods: Vec<String>,
    /// The catalog currency for price limits ("under 500"); when unset it is read from the
    /// products the search returns.
    pub currency: Option<String>,
    /// More placeholders for your own templates.
    pub extra: BTreeMap<String, String>,
}

/// A text in English and Chinese; a missing one falls back to the other.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Localized {
    /// English.
    pub en: String,
    /// Chinese.
    pub zh: String,
}

impl Localized {
    pub(crate) fn new(en: &str, zh: &str) -> Self {
        Localized {
            en: en.into(),
            zh: zh.into(),
        }
    }
    /// The text in `lang`, or the other one when empty.
    pub fn get(&self, lang: Lang) -> &str {
        let (a, b) = match lang {
            Lang::En => (&self.en, &self.zh),
            Lang::Zh => (&self.zh, &self.en),
        };
        if a.is_empty() { b } else { a }
    }
}

/// What an intent does besides answering its template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    /// Answer the template (or call the intent's tool when the app offers it).
    #[default]
    Answer,
    /// Search the catalog and list the top hits after the template.
    Search,
    /// Answer the template and hand the conversation to a human.
    Handoff,
}

/// One intent: how to recognise it and how to answer.
///
/// Templates use `{placeholder}` for shop facts, `extract` values, named or numbered regex
/// groups (`{1}`) and, in `tool_answer`, the tool result's top-level fields. `[[ ... ]]` is an
/// optional section, dropped when a placeholder inside it has no value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntentConfig {
    /// A unique name (`shipping`); also reported as the intent in JSON answers.
    pub name: String,
    /// Phrases that signal the intent (case-insensitive; whole words for Latin text).
    pub keywords: Vec<String>,
    /// Regular expressions that signal the intent; their groups become placeholders.
    pub patterns: Vec<String>,
    /// Values taken from the message without signalling the intent: name -> regex whose first
    /// group (or the whole match) is the value, e.g. `order_id`.
    pub extract: BTreeMap<String, String>,
    /// The reply.
    pub answer: Localized,
    /// What the intent does.
    pub action: IntentAction,
    /// The app tool to call for this intent, when the request offers it (e.g. `order_status`).
    pub tool: Option<String>,
    /// The reply to the tool's result.
    pub tool_answer: Option<Localized>,
    /// The reply when the tool is offered but a required argument is not in the message.
    pub missing: Option<Localized>,
    /// The reply of a `search` intent that found nothing.
    pub empty: Option<Localized>,
    /// Breaks ties between intents with the same score (higher wins; then configured intents
    /// win over built-in ones).
    pub priority: i32,
}

/// The language of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Chinese.
    Zh,
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// An intent ready to match.
#[derive(Debug)]
pub(crate) struct Intent {
    pub cfg: IntentConfig,
    pub keywords: Vec<String>,
    pub patterns: Vec<Regex>,
    pub extract: Vec<(String, Regex)>,
    /// From the config (wins ties against a built-in intent).
    pub configured: bool,
}

/// Compiles the configured intents on top of the built-in ones.
pub(crate) fn compile(cfg: &ChatConfig) -> Result<Vec<Intent>> {
    let mut list: Vec<IntentConfig> = if cfg.replace_defaults {
        Vec::new()
    } else {
        defaults()
            .into_iter()
            .filter(|i| !cfg.disabled.contains(&i.name))
            .collect()
    };
    for (n, d) in cfg.disabled.iter().enumerate() {
        if !cfg.replace_defaults && !defaults().iter().any(|i| &i.name == d) {
            return Err(Error::config(format!(
                "chat.disabled[{n}]: {d:?} is not a built-in intent"
            )));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (n, i) in cfg.intents.iter().enumerate() {
        if i.name.trim().is_empty() {
            return Err(Error::config(format!("chat.intents[{n}].name is empty")));
        }
        if !seen.insert(i.name.clone()) {
            return Err(Error::config(format!(
                "chat.intents[{n}].name {:?} is defined twice",
                i.name
            )));
        }
        if i.keywords.is_empty() && i.patterns.is_empty() {
            return Err(Error::config(format!(
                "chat.intents[{n}] ({}) needs keywords or patterns",
                i.name
            )));
        }
        if i.answer.en.is_empty() && i.answer.zh.is_empty() {
            return Err(Error::config(format!(
                "chat.intents[{n}] ({}) needs answer.en or answer.zh",
                i.name
            )));
        }
        match list.iter_mut().find(|d| d.name == i.name) {
            Some(slot) => *slot = i.clone(),
            None => list.push(i.clone()),
        }
    }
    if let Some(c) = &cfg.shop.currency {
        Currency::new(c)
            .map_err(|e| Error::config(format!("chat.shop.currency: {}", e.message())))?;
    }
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let re = |what: &str, p: &str| {
            Regex::new(p).map_err(|e| {
                Error::config(format!(
                    "chat intent {:?}: {what} {p:?} is not a valid regex: {e}",
                    i.name
                ))
            })
        };
        let patterns = i
            .patterns
            .iter()
            .map(|p| re("pattern", p))
            .collect::<Result<Vec<_>>>()?;
        let extract = i
            .extract
            .iter()
            .map(|(k, p)| Ok((k.clone(), re("extract", p)?)))
            .collect::<Result<Vec<_>>>()?;
        let keywords = i
            .keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let configured = cfg.intents.iter().any(|c| c.name == i.name);
        out.push(Intent {
            configured,
            cfg: i,
            keywords,
            patterns,
            extract,
        });
    }
    Ok(out)
}

fn intent(name: &str, keywords: &[&str], en: &str, zh: &str) -> IntentConfig {
    IntentConfig {
        name: name.into(),
        keywords: keywords.iter().map(|s| (*s).to_owned()).collect(),
        answer: Localized::new(en, zh),
        ..Default::default()
    }
}

/// The regex that finds an order number: after "order"/"订单" (with optional "no."/"#"/"号"),
/// or a `#` followed by digits; the id must contain a digit.
pub(crate) const ORDER_ID_PATTERN: &str = r"(?i)(?:order|订单|單號|单号)\s*(?:number|num|no\.?|id|编号|号码|号)?\s*(?:is|是|为)?\s*[:：#]?\s*([A-Za-z]{0,4}\d[A-Za-z0-9-]{2,31})|#\s*(\d[A-Za-z0-9-]{2,31})";

/// The built-in intents, in English and Chinese.
pub fn defaults() -> Vec<IntentConfig> {
    let mut v = vec![intent(
        "greeting",
        &[
            "hello",
            "hi",
            "hey",
            "good morning",
            "good afternoon",
            "good evening",
            "你好",
            "您好",
            "嗨",
            "在吗",
            "在么",
            "早上好",
            "下午好",
            "晚上好",
            "哈喽",
        ],
        "Hello! Welcome to {shop_name}. I can help with orders, shipping, returns, payment and products. What can I do for you?",
        "您好！欢迎光临{shop_name}。我可以帮您查询订单、配送、退换货、支付方式和商品。请问有什么可以帮您？",
    )];
    v.push(intent(
        "shipping",
        &[
            "shipping", "ship", "delivery", "deliver", "postage", "how long", "arrive",
            "shipping cost", "shipping fee", "free shipping", "运费", "邮费", "包邮", "配送",
            "发货", "送货", "多久", "几天", "快递费",
        ],
        "Orders usually arrive within {shipping_days} business days.[[ Shipping costs {shipping_fee}.]][[ Orders over {free_shipping_over} ship free.]]",
        "订单通常在{shipping_days}个工作日内送达。[[运费为{shipping_fee}。]][[满{free_shipping_over}包邮。]]",
    ));
    v.push(intent(
        "returns",
        &[
            "return", "returns", "refund", "refunds", "exchange", "money back", "send back",
            "send it back", "退货", "退款", "换货", "退换", "退钱", "七天无理由",
        ],
        "You can return items within {return_window_days} days of delivery, unused and in their original packaging. Once the return arrives and is checked, the refund goes back to your original payment method. A colleague can confirm the details for your order.",
        "商品签收后{return_window_days}天内，在未使用且包装完好的情况下可以申请退换货。退货寄回并检查无误后，款项将原路退回。具体订单的退款细节可由人工客服为您确认。",
    ));
    v.push(intent(
        "payment",
        &[
            "pay",
            "payment",
            "payments",
            "credit card",
            "debit card",
            "paypal",
            "alipay",
            "wechat pay",
            "apple pay",
            "installment",
            "installments",
            "支付",
            "付款",
            "支付宝",
            "微信支付",
            "信用卡",
            "花呗",
            "分期",
            "付钱",
        ],
        "We accept {payment_methods}.",
        "我们支持以下支付方式：{payment_methods}。",
    ));
    v.push(intent(
        "discounts",
        &[
            "discount", "discounts", "coupon", "coupons", "promo code", "promo", "voucher",
            "promotion", "deal", "deals", "cheaper price", "best price", "优惠", "优惠券", "打折",
            "折扣", "便宜点", "便宜一点", "降价", "满减", "红包", "优惠码",
        ],
        "Our current prices and offers are the ones shown in the shop and at checkout; I can't offer other discounts here.",
        "商品价格和优惠以店铺页面及结算页显示为准，我这里无法提供额外的折扣。",
    ));
    v.push(intent(
        "contact",
        &[
            "contact", "phone number", "email", "e-mail", "opening hours", "support hours",
            "call you", "reach you", "联系方式", "电话", "邮箱", "联系你们", "客服时间",
            "工作时间",
        ],
        "You can reach us here in the chat.[[ Our support team is available {support_hours}.]][[ Email: {support_email}.]][[ Phone: {support_phone}.]]",
        "您可以直接在这里留言联系我们。[[客服时间：{support_hours}。]][[邮箱：{support_email}。]][[电话：{support_phone}。]]",
    ));
    let mut human = intent(
        "human_agent",
        &[
            "human",
            "agent",
            "real person",
            "a person",
            "representative",
            "customer service",
            "talk to someone",
            "speak to someone",
            "operator",
            "complaint",
            "人工",
            "转人工",
            "人工客服",
            "真人",
            "投诉",
            "找客服",
        ],
        "Of course. I'm passing you to a member of our team, who will take over this conversation.[[ Support hours: {support_hours}.]]",
        "好的，正在为您转接人工客服，稍后将由工作人员接手本次对话。[[客服时间：{support_hours}。]]",
    );
    human.action = IntentAction::Handoff;
    human.priority = 1;
    v.push(human);
    let mut order = intent(
        "order_status",
        &[
            "where is my order",
            "order status",
            "status of my order",
            "track",
            "tracking",
            "track my order",
            "my package",
            "my parcel",
            "not arrived",
            "hasn't arrived",
            "has not arrived",
            "where is my package",
            "到哪",
            "到哪了",
            "物流",
            "订单状态",
            "查订单",
            "查询订单",
            "还没到",
            "没收到",
            "发货了吗",
            "快递到",
        ],
        "I can't look up orders from here. You can follow your order[[ {order_id}]] under \"My orders\" in your account, or ask for a colleague and they will check it for you.",
        "我这里暂时无法查询订单。您可以在账户的“我的订单”中查看订单[[{order_id}]]的物流，或者转人工客服为您查询。",
    );
    order.tool = Some("order_status".into());
    order
        .extract
        .insert("order_id".into(), ORDER_ID_PATTERN.into());
    order.missing = Some(Localized::new(
        "Sure, I can check that. What is your order number?",
        "好的，我来帮您查询。请问您的订单号是多少？",
    ));
    order.tool_answer = Some(Localized::new(
        "Here is the latest on order {order_id}:[[ status: {status}.]][[ Carrier: {carrier}.]][[ Tracking number: {tracking_number}.]][[ Estimated delivery: {eta}.]]",
        "订单{order_id}的最新情况：[[状态：{status}。]][[承运商：{carrier}。]][[运单号：{tracking_number}。]][[预计送达：{eta}。]]",
    ));
    order.priority = 2;
    v.push(order);
    let mut products = intent(
        "products",
        &[
            "do you have",
            "do you sell",
            "do you carry",
            "looking for",
            "i'm looking for",
            "recommend",
            "in stock",
            "have any",
            "show me",
            "want to buy",
            "any",
            "sell",
            "有没有",
            "有卖",
            "有货",
            "想买",
            "推荐",
            "有什么",
            "找一",
            "卖不卖",
            "还有",
        ],
        "Here is what I found:",
        "为您找到以下商品：",
    );
    products.patterns = vec![
        r"(?i)\b(?:under|below|less than|cheaper than|up to|over|above|more than|between)\s*[$¥€£]?\s*\d".into(),
        r"\d+\s*(?:元|块|rmb|RMB)?\s*(?:以下|以内|之内|以上)".into(),
        r"(?:低于|不超过|少于|高于|超过)\s*\d".into(),
    ];
    products.action = IntentAction::Search;
    products.empty = Some(Localized::new(
        "Sorry, I couldn't find a matching product. Would you like a colleague to help you look?",
        "抱歉，没有找到符合条件的商品。需要为您转接人工客服帮忙查找吗？",
    ));
    v.push(products);
    v
}
