//! Human thresholds: outputs that move money wait for a person when they cross a limit.
//!
//! Rules, configured per profile:
//!
//! - **forecast jump** (`forecast`): a series whose forecast mean is more than
//!   `max_increase_pct` above (or, if set, `max_decrease_pct` below) the mean of its last
//!   `recent` actuals;
//! - **reorder** (`reorder`): a [`Replenishment`] ordering more than `max_quantity` units, or
//!   worth more than `max_value` at the given unit cost ([`Thresholds::review_reorder`]);
//! - **chat promises** (`chat`): a reply that promises a discount above `max_discount_pct`, a
//!   refund above `max_refund` (a full refund counts as above any limit), money off above
//!   `max_amount_off`, or a price below `min_price`. Replies are read in English and Chinese:
//!   `20% off`, `a discount of 30 percent`, `half price`, `打八折` (20% off), `七五折`,
//!   `85折`, `半价`, `百分之三十`, `refund of $80`, `全额退款`, `退您50元`, `$20 coupon`,
//!   `立减100元`, `only ¥9.9`, `仅需9.9元`. A figure counts when a money word sits next to it in
//!   the same sentence; bare numbers (SKUs, quantities, order ids) never do. Amounts are
//!   compared as numbers in the shop's currency (no exchange rates). Negations are not parsed:
//!   "we can't give a 50% discount" is held too, which only costs a review.
//!
//! - **tool calls** (`tools`): per tool, a limit per numeric argument (`amount = 100`, or a
//!   dotted path into nested arguments: `"refund.amount" = 100`). A call whose argument is above
//!   its limit, or present but not a number (`"amount": "all"`), is held; a numeric string
//!   (`"120.50"`) counts as its number. A held reply loses all its tool calls (the app never
//!   executes them), carries the safe reply, and ends with `FinishReason::Stop`. In a stream,
//!   argument fragments (`ToolCallDelta`) pass; the complete `ToolCall` event is what an app
//!   executes, and a held one (and any after it) is withheld.
//!
//! A held output carries [`Decision::NeedsReview`] in its [`ResponseMeta::decision`] with the
//! rule and a reason made of numbers, and goes to the [`ReviewSink`] (in memory, or JSON lines
//! with `review_path`). A held chat reply is replaced by the safe reply (the Chinese one when
//! the reply was mostly Chinese); the original goes to the review sink only.
//!
//! Streams: with `stream_release = "sentence"` (the default) text is released one finished
//! sentence at a time, each checked before the caller sees it: a held sentence and everything
//! after it are replaced by the safe reply (sentences already released stay, so the stream's
//! text is the released sentences plus the safe reply). With `stream_release = "end"` the
//! whole reply is buffered until the model finishes, and a held stream carries exactly the
//! safe reply, as a non-streamed call does.
//!
//! ```toml
//! [profiles.prod.thresholds]
//! review_path = "/var/lib/merchant-ai/review.jsonl"
//! safe_reply = "Let me check that with a colleague; we will get back to you shortly."
//!
//! [profiles.prod.thresholds.chat]
//! max_discount_pct = 15
//! max_refund = 200
//! max_amount_off = 50
//!
//! [profiles.prod.thresholds.forecast]
//! max_increase_pct = 80
//! recent = 14
//!
//! [profiles.prod.thresholds.reorder]
//! max_quantity = 1000
//!
//! [profiles.prod.thresholds.tools.issue_refund]
//! amount = 100
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};

use crate::api::{Capability, ChatModel, Forecaster};
use crate::audit::{append_lines, guarded, to_json_lines};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{self, Metrics};
use crate::replenish::Replenishment;
use crate::text::is_cjk;
use crate::types::*;

const SAFE_REPLY: &str = "I can't confirm that myself. A colleague will review your request and get back to you shortly.";
const SAFE_REPLY_ZH: &str = "这个问题需要同事确认后才能答复您，我们会尽快与您联系。";

/// How a held stream releases text.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRelease {
    /// One checked sentence at a time.
    #[default]
    Sentence,
    /// Everything at the end.
    End,
}

/// `[profiles.NAME.thresholds.chat]`: limits on what a reply may promise.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatRule {
    /// Largest discount a reply may promise, in percent.
    pub max_discount_pct: Option<f64>,
    /// Largest refund a reply may promise (a full refund is always above it).
    pub max_refund: Option<f64>,
    /// Largest amount off (coupon, rebate, reduction) a reply may promise.
    pub max_amount_off: Option<f64>,
    /// Lowest price a reply may quote.
    pub min_price: Option<f64>,
}

/// `[profiles.NAME.thresholds.forecast]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastRule {
    /// Hold when the forecast mean is more than this many percent above the recent mean.
    pub max_increase_pct: f64,
    /// Hold when the forecast mean is more than this many percent below it.
    pub max_decrease_pct: Option<f64>,
    /// Actuals (the last values of the series) the recent mean is taken over.
    pub recent: usize,
    /// Forecast steps the forecast mean is taken over (default: the whole horizon).
    pub steps: Option<usize>,
    /// A recent mean below this is compared as this (a jump from almost nothing).
    pub min_base: f64,
}

impl Default for ForecastRule {
    fn default() -> Self {
        ForecastRule {
            max_increase_pct: 100.0,
            max_decrease_pct: None,
            recent: 7,
            steps: None,
            min_base: 1.0,
        }
    }
}

/// `[profiles.NAME.thresholds.reorder]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReorderRule {
    /// Most units one reorder may ask for.
    pub max_quantity: Option<f64>,
    /// Most value (quantity x unit cost) one reorder may have.
    pub max_value: Option<f64>,
}

/// `[profiles.NAME.thresholds]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// Turn every rule off without removing them.
    pub enabled: bool,
    /// What the caller sees instead of a held reply.
    pub safe_reply: String,
    /// The safe reply for replies that were mostly Chinese.
    pub safe_reply_zh: String,
    /// How streams release text.
    pub stream_release: StreamRelease,
    /// Append held items as JSON lines to this file (else they are kept in memory).
    pub review_path: Option<PathBuf>,
    /// Chat promise limits.
    pub chat: Option<ChatRule>,
    /// Forecast jump limits.
    pub forecast: Option<ForecastRule>,
    /// Reorder limits.
    pub reorder: Option<ReorderRule>,
    /// Tool-call limits: tool name, then argument (a key, or a dotted path) and its largest
    /// value.
    pub tools: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        ThresholdsConfig {
            enabled: true,
            safe_reply: SAFE_REPLY.into(),
            safe_reply_zh: SAFE_REPLY_ZH.into(),
            stream_release: StreamRelease::Sentence,
            review_path: None,
            chat: None,
            forecast: None,
            reorder: None,
            tools: Default::default(),
        }
    }
}

fn check_limit(path: &str, key: &str, v: Option<f64>) -> Result<()> {
    match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(Error::config(format!(
            "{path}.{key}: must be a number of at least 0 (got {x})"
        ))),
        _ => Ok(()),
    }
}

impl ThresholdsConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.safe_reply.trim().is_empty() {
            return Err(Error::config(format!("{path}.safe_reply: is empty")));
        }
        if self.safe_reply_zh.trim().is_empty() {
            return Err(Error::config(format!("{path}.safe_reply_zh: is empty")));
        }
        if let Some(c) = &self.chat {
            let p = format!("{path}.chat");
            check_limit(&p, "max_discount_pct", c.max_discount_pct)?;
            check_limit(&p, "max_refund", c.max_refund)?;
            check_limit(&p, "max_amount_off", c.max_amount_off)?;
            check_limit(&p, "min_price", c.min_price)?;
        }
        if let Some(f) = &self.forecast {
            let p = format!("{path}.forecast");
            check_limit(&p, "max_increase_pct", Some(f.max_increase_pct))?;
            check_limit(&p, "max_decrease_pct", f.max_decrease_pct)?;
            check_limit(&p, "min_base", Some(f.min_base))?;
            if f.recent == 0 {
                return Err(Error::config(format!("{p}.recent: must be at least 1")));
            }
            if f.steps == Some(0) {
                return Err(Error::config(format!("{p}.steps: must be at least 1")));
            }
        }
        if let Some(r) = &self.reorder {
            let p = format!("{path}.reorder");
            check_limit(&p, "max_quantity", r.max_quantity)?;
            check_limit(&p, "max_value", r.max_value)?;
        }
        for (tool, limits) in &self.tools {
            let p = format!("{path}.tools.{tool}");
            if limits.is_empty() {
                return Err(Error::config(format!(
                    "{p}: names no argument (e.g. amount = 100)"
                )));
            }
            for (arg, v) in limits {
                if arg.split('.').any(str::is_empty) {
                    return Err(Error::config(format!(
                        "{p}.{arg}: is not an argument name or a dotted path"
                    )));
                }
                check_limit(&p, arg, Some(*v))?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Held items and review sinks

/// What was held.
#[non_exhaustive]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum HeldContent {
    /// A chat reply, as the model wrote it (the caller got the safe reply).
    ChatReply {
        /// The reply's text.
        text: String,
    },
    /// Forecast series that jumped.
    Forecast {
        /// The series over the limit.
        series: Vec<HeldSeries>,
    },
    /// Tool calls a reply made (none was passed on: the caller got the safe reply).
    ToolCalls {
        /// The calls, arguments as the model wrote them.
        calls: Vec<ToolCall>,
    },
    /// A reorder suggestion.
    Reorder {
        /// The item (SKU).
        item: String,
        /// The suggestion.
        replenishment: Replenishment,
        /// Its value at the given unit cost.
        value: Option<f64>,
    },
}

impl fmt::Debug for HeldContent {
    /// Shows the shape of a chat reply, not its text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeldContent::ChatReply { text } => {
                write!(f, "ChatReply({} chars)", text.chars().count())
            }
            HeldContent::Forecast { series } => {
                f.debug_struct("Forecast").field("series", series).finish()
            }
            HeldContent::ToolCalls { calls } => f.debug_tuple("ToolCalls").field(calls).finish(),
            HeldContent::Reorder {
                item,
                replenishment,
                value,
            } => f
                .debug_struct("Reorder")
                .field("item", item)
                .field("replenishment", replenishment)
                .field("value", value)
                .finish(),
        }
    }
}

/// One forecast series over the jump limit.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldSeries {
    /// The series id.
    pub id: String,
    /// Mean of its recent actuals.
    pub recent_mean: f64,
    /// Mean of its forecast.
    pub forecast_mean: f64,
    /// The change in percent (against `max(recent_mean, min_base)`).
    pub change_pct: f64,
}

/// An output held for a person's review.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldItem {
    /// When it was held.
    pub time: DateTime<Utc>,
    /// The rule that held it.
    pub rule: String,
    /// Why (numbers only).
    pub reason: String,
    /// The capability, when the output came from one.
    pub capability: Option<Capability>,
    /// The provider that produced it.
    pub provider: Option<String>,
    /// The request's trace id.
    pub trace_id: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// The pseudonymous subject, so the reviewer can answer the right shopper.
    pub subject: Option<SubjectId>,
    /// What was held. For a chat reply this is the model's text: the review sink is the one
    /// place it is kept, so give it the retention of your chat transcripts.
    pub content: HeldContent,
}

/// Receives held items. Called on the call path for non-streamed calls and at the end of a
/// stream; an error or panic is counted ([`Thresholds::sink_failures`]), never propagated.
#[async_trait]
pub trait ReviewSink: Send + Sync + fmt::Debug + 'static {
    /// Takes one held item.
    async fn hold(&self, item: &HeldItem) -> Result<()>;
}

/// Keeps the last `capacity` held items in memory.
#[derive(Debug)]
pub struct MemoryReviewSink {
    items: Mutex<VecDeque<HeldItem>>,
    capacity: usize,
}

impl Default for MemoryReviewSink {
    fn default() -> Self {
        MemoryReviewSink::with_capacity(10_000)
    }
}

impl MemoryReviewSink {
    /// Keeps up to 10,000 items.
    pub fn new() -> Self {
        Self::default()
    }
    /// Keeps up to `capacity` items (older ones are dropped).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryReviewSink {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
    /// The items kept, oldest first.
    pub fn items(&self) -> Vec<HeldItem> {
        self.items
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
    /// Takes every item out (for a review queue that hands items to people).
    pub fn take(&self) -> Vec<HeldItem> {
        self.items
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl ReviewSink for MemoryReviewSink {
    async fn hold(&self, item: &HeldItem) -> Result<()> {
        let mut q = self
            .items
            .lock()
            .map_err(|_| Error::new(ErrorKind::Unexpected, "review memory lock poisoned"))?;
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(item.clone());
        Ok(())
    }
}

/// Appends held items as JSON lines to a file (created if missing).
#[derive(Debug)]
pub struct JsonLinesReviewSink {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl JsonLinesReviewSink {
    /// Opens (or creates) `path` for appending. The error names the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                Error::config(format!(
                    "cannot open review file {} for appending: {e}",
                    path.display()
                ))
            })?;
        Ok(JsonLinesReviewSink {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl ReviewSink for JsonLinesReviewSink {
    async fn hold(&self, item: &HeldItem) -> Result<()> {
        let buf = to_json_lines(std::slice::from_ref(item))?;
        append_lines(self.file.clone(), buf, "review file").await
    }
}

// ---------------------------------------------------------------------------------------------
// Promise detection

/// A money promise found in a reply.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Promise {
    /// A discount, in percent off.
    Discount(f64),
    /// A refund of an amount, or in full (`None`).
    Refund(Option<f64>),
    /// An amount off (coupon, rebate, reduction).
    AmountOff(f64),
    /// A quoted price.
    Price(f64),
}

const REFUND_WORDS: &[&str] = &[
    "refund",
    "reimburse",
    "compensat",
    "money back",
    "退款",
    "退还",
    "退回",
    "退你",
    "退您",
    "赔偿",
    "补偿",
    "返还",
    "赔付",
];
const OFF_WORDS: &[&str] = &[
    " off",
    "discount",
    "coupon",
    "voucher",
    "cashback",
    "cash back",
    "save",
    "rebate",
    "credit",
    "markdown",
    "reduction",
    "cheaper",
    "减",
    "优惠",
    "券",
    "便宜",
    "返现",
    "折扣",
    "省",
    "让利",
];
const PRICE_WORDS: &[&str] = &[
    "price", "only", "just", "now", "cost", "pay", "for ", "价", "只要", "仅", "只需", "售", "卖",
    "付",
];
const FULL_REFUND: &[&str] = &[
    "full refund",
    "refund in full",
    "refund the full",
    "fully refund",
    "refund you in full",
    "全额退款",
    "全部退款",
    "全额退",
    "全款退",
];
const HALF: &[&str] = &["half price", "half off", "半价", "五折"];

const CURRENCY_PREFIX: &[&str] = &[
    "us$", "s$", "hk$", "$", "¥", "￥", "€", "£", "rmb", "cny", "usd", "eur", "gbp", "sgd", "hkd",
];
const CURRENCY_SUFFIX: &[&str] = &[
    "元", "块", "美元", "欧元", "英镑", "港币", "rmb", "cny", "usd", "eur", "gbp", "sgd", "hkd",
    "yuan", "dollars", "dollar", "bucks", "euros", "euro", "pounds", "kuai",
];

fn normalize(text: &str) -> Vec<char> {
    text.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '％' => '%',
            '．' => '.',
            '＄' => '$',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

/// Splits into sentences: at `。！？!?；;` and newlines, and at `.` followed by a space or the
/// end. Returns char ranges.
fn sentences(t: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..t.len() {
        let c = t[i];
        let end = matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '\n')
            || (c == '.' && t.get(i + 1).is_none_or(|n| n.is_whitespace()));
        if end {
            if i + 1 > start {
                out.push((start, i + 1));
            }
            start = i + 1;
        }
    }
    if start < t.len() {
        out.push((start, t.len()));
    }
    out
}

fn starts_with_at(t: &[char], i: usize, w: &str) -> bool {
    w.chars()
        .enumerate()
        .all(|(k, wc)| t.get(i + k) == Some(&wc))
}

fn contains(t: &[char], words: &[&str]) -> bool {
    (0..t.len()).any(|i| words.iter().any(|w| starts_with_at(t, i, w)))
}

fn zh_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn is_zh_num(c: char) -> bool {
    zh_digit(c).is_some() || matches!(c, '十' | '百' | '千' | '万' | '点')
}

/// Parses a run of Chinese numerals: `五十` = 50, `一百二十` = 120, `三千` = 3000, `七五` = 75
/// (digits without units are read digit by digit), `九点五` = 9.5.
fn parse_zh(s: &[char]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    if let Some(p) = s.iter().position(|c| *c == '点') {
        let int = parse_zh(&s[..p])?;
        let mut frac = 0.0;
        let mut scale = 0.1;
        for c in &s[p + 1..] {
            frac += zh_digit(*c)? as f64 * scale;
            scale /= 10.0;
        }
        return Some(int + frac);
    }
    if s.iter().all(|c| zh_digit(*c).is_some()) {
        let mut v = 0.0;
        for c in s {
            v = v * 10.0 + zh_digit(*c)? as f64;
        }
        return Some(v);
    }
    let mut total = 0.0;
    let mut section = 0.0;
    let mut digit: Option<f64> = None;
    for c in s {
        if let Some(d) = zh_digit(*c) {
            digit = Some(d as f64);
            continue;
        }
        let unit = match c {
            '十' => 10.0,
            '百' => 100.0,
            '千' => 1000.0,
            '万' => {
                section += digit.take().unwrap_or(0.0);
                total += section.max(1.0) * 10_000.0;
                section = 0.0;
                continue;
            }
            _ => return None,
        };
        section += digit.take().unwrap_or(1.0) * unit;
    }
    Some(total + section + digit.unwrap_or(0.0))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fig {
    Percent(f64),
    Zhe(f64),
    Money(f64),
}

/// Figures in a sentence: (figure, start, end) in char offsets of the sentence.
fn figures(s: &[char]) -> Vec<(Fig, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let (value, end, zh) = if c.is_ascii_digit() {
            let mut j = i;
            let mut txt = String::new();
            while j < s.len() {
                let d = s[j];
                if d.is_ascii_digit() {
                    txt.push(d);
                } else if (d == '.' || d == ',') && s.get(j + 1).is_some_and(|n| n.is_ascii_digit())
                {
                    if d == '.' {
                        txt.push('.');
                    }
                } else {
                    break;
                }
                j += 1;
            }
            match txt.parse::<f64>() {
                Ok(v) => (v, j, false),
                Err(_) => {
                    i = j.max(i + 1);
                    continue;
                }
            }
        } else if is_zh_num(c) {
            let mut j = i;
            while j < s.len() && is_zh_num(s[j]) {
                j += 1;
            }
            match parse_zh(&s[i..j]) {
                Some(v) => (v, j, true),
                None => {
                    i = j;
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        let start = i;
        i = end;
        // What follows (skipping spaces).
        let mut k = end;
        while k < s.len() && s[k] == ' ' {
            k += 1;
        }
        let before_pct = start >= 3 && starts_with_at(s, start - 3, "百分之");
        if s.get(k) == Some(&'%')
            || starts_with_at(s, k, "percent")
            || starts_with_at(s, k, "per cent")
            || before_pct
        {
            out.push((Fig::Percent(value), start, k + 1));
            continue;
        }
        if s.get(k) == Some(&'折') {
            let v = if zh {
                // 七五折 = 7.5; 八折 = 8.
                if (10.0..100.0).contains(&value) && !s[start..end].contains(&'十') {
                    value / 10.0
                } else {
                    value
                }
            } else if (10.0..100.0).contains(&value) && !s[start..end].contains(&'.') {
                value / 10.0
            } else {
                value
            };
            if v > 0.0 && v < 10.0 {
                out.push((Fig::Zhe(v), start, k + 1));
            }
            continue;
        }
        let prefix = CURRENCY_PREFIX.iter().any(|w| {
            let n = w.chars().count();
            let at = |gap: usize| {
                start >= n + gap
                    && starts_with_at(s, start - n - gap, w)
                    && (gap == 0 || s[start - 1] == ' ')
            };
            at(0) || at(1)
        });
        let suffix = CURRENCY_SUFFIX.iter().any(|w| starts_with_at(s, k, w));
        if (prefix && !zh) || suffix {
            out.push((Fig::Money(value), start, k));
        }
    }
    out
}

/// The text around a figure where its money word may sit: up to 30 chars before and 20 after,
/// never reaching into the neighbouring figures (a word belongs to the figure next to it).
fn window(
    s: &[char],
    start: usize,
    end: usize,
    prev_end: usize,
    next_start: usize,
) -> (&[char], &[char]) {
    let b = start.saturating_sub(30).max(prev_end).min(start);
    let a = (end + 20).min(next_start).min(s.len()).max(end);
    (&s[b..start], &s[end..a])
}

/// Every money promise in a reply (English and Chinese).
pub fn find_promises(text: &str) -> Vec<Promise> {
    let t = normalize(text);
    let mut out = Vec::new();
    for (a, b) in sentences(&t) {
        let s = &t[a..b];
        if contains(s, FULL_REFUND) {
            out.push(Promise::Refund(None));
        }
        if contains(s, HALF) {
            out.push(Promise::Discount(50.0));
        }
        let figs = figures(s);
        for (j, &(fig, start, end)) in figs.iter().enumerate() {
            let prev_end = if j == 0 { 0 } else { figs[j - 1].2 };
            let next_start = figs.get(j + 1).map_or(s.len(), |f| f.1);
            let (before, after) = window(s, start, end, prev_end, next_start);
            let near = |w: &[&str]| contains(before, w) || contains(after, w);
            match fig {
                Fig::Zhe(v) => out.push(Promise::Discount(
                    ((10.0 - v) * 10.0 * 100.0).round() / 100.0,
                )),
                Fig::Percent(p) => {
                    if near(REFUND_WORDS) || near(OFF_WORDS) {
                        out.push(Promise::Discount(p));
                    }
                }
                Fig::Money(v) => {
                    if near(REFUND_WORDS) {
                        out.push(Promise::Refund(Some(v)));
                    } else if near(OFF_WORDS) {
                        out.push(Promise::AmountOff(v));
                    } else if near(PRICE_WORDS) {
                        out.push(Promise::Price(v));
                    }
                }
            }
        }
    }
    out
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

impl ChatRule {
    /// The first promise over a limit, as a decision.
    pub fn check(&self, text: &str) -> Decision {
        for p in find_promises(text) {
            let held = match p {
                Promise::Discount(pct) => self.max_discount_pct.filter(|m| pct > *m).map(|m| {
                    (
                        "chat_discount",
                        format!(
                            "the reply promises a {}% discount (limit {}%)",
                            fmt_num(pct),
                            fmt_num(m)
                        ),
                    )
                }),
                Promise::Refund(Some(v)) => self.max_refund.filter(|m| v > *m).map(|m| {
                    (
                        "chat_refund",
                        format!(
                            "the reply promises a refund of {} (limit {})",
                            fmt_num(v),
                            fmt_num(m)
                        ),
                    )
                }),
                Promise::Refund(None) => self.max_refund.map(|m| {
                    (
                        "chat_refund",
                        format!("the reply promises a full refund (limit {})", fmt_num(m)),
                    )
                }),
                Promise::AmountOff(v) => self.max_amount_off.filter(|m| v > *m).map(|m| {
                    (
                        "chat_amount_off",
                        format!(
                            "the reply promises {} off (limit {})",
                            fmt_num(v),
                            fmt_num(m)
                        ),
                    )
                }),
                Promise::Price(v) => self.min_price.filter(|m| v < *m).map(|m| {
                    (
                        "chat_price",
                        format!(
                            "the reply quotes a price of {} (lowest allowed {})",
                            fmt_num(v),
                            fmt_num(m)
                        ),
                    )
                }),
            };
            if let Some((rule, reason)) = held {
                return Decision::NeedsReview {
                    rule: rule.into(),
                    reason,
                };
            }
        }
        Decision::Automatic
    }
}

fn mostly_cjk(text: &str) -> bool {
    let (mut cjk, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_alphabetic() {
            latin += 1;
        }
    }
    cjk * 2 >= latin && cjk > 0
}

// ---------------------------------------------------------------------------------------------
// The rules engine

/// The configured rules, their review sink and counts. Shared by the client's layers.
pub struct Thresholds {
    cfg: ThresholdsConfig,
    sink: Arc<dyn ReviewSink>,
    metrics: Option<Arc<dyn Metrics>>,
    held: AtomicU64,
    failures: AtomicU64,
}

impl fmt::Debug for Thresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thresholds")
            .field("chat", &self.cfg.chat)
            .field("forecast", &self.cfg.forecast)
            .field("reorder", &self.cfg.reorder)
            .field("held", &self.held())
            .field("sink_failures", &self.sink_failures())
            .finish()
    }
}

impl Thresholds {
    /// Rules from `cfg` sending held items to `sink` (else to `review_path`, else to a
    /// [`MemoryReviewSink`]). Errors name the bad key under `thresholds`.
    pub fn new(cfg: ThresholdsConfig, sink: Option<Arc<dyn ReviewSink>>) -> Result<Self> {
        cfg.validate("thresholds")?;
        let sink: Arc<dyn ReviewSink> = match (sink, &cfg.review_path) {
            (Some(s), _) => s,
            (None, Some(p)) => Arc::new(JsonLinesReviewSink::open(p)?),
            (None, None) => Arc::new(MemoryReviewSink::new()),
        };
        Ok(Thresholds {
            cfg,
            sink,
            metrics: None,
            held: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Also counts held items and sink failures in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Option<Arc<dyn Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The settings.
    pub fn config(&self) -> &ThresholdsConfig {
        &self.cfg
    }

    /// The review sink.
    pub fn sink(&self) -> &Arc<dyn ReviewSink> {
        &self.sink
    }

    /// Items held so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Held items the sink failed to take.
    pub fn sink_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn chat_rule(&self) -> Option<&ChatRule> {
        self.cfg.chat.as_ref().filter(|_| self.cfg.enabled)
    }

    fn forecast_rule(&self) -> Option<&ForecastRule> {
        self.cfg.forecast.as_ref().filter(|_| self.cfg.enabled)
    }

    /// The decision on a chat reply's text.
    pub fn check_chat(&self, text: &str) -> Decision {
        self.chat_rule()
            .map_or(Decision::Automatic, |r| r.check(text))
    }

    /// The safe reply for a held reply (Chinese when the reply was mostly Chinese).
    pub fn safe_reply(&self, held_text: &str) -> &str {
        if mostly_cjk(held_text) {
            &self.cfg.safe_reply_zh
        } else {
            &self.cfg.safe_reply
        }
    }

    /// The decision on a forecast, given each series' recent actuals, and the series over the
    /// limit.
    pub fn check_forecast(
        &self,
        recent: &[(String, Vec<f64>)],
        resp: &ForecastResponse,
    ) -> (Decision, Vec<HeldSeries>) {
        let Some(rule) = self.forecast_rule() else {
            return (Decision::Automatic, Vec::new());
        };
        let mut held = Vec::new();
        for (i, s) in resp.series.iter().enumerate() {
            if s.error.is_some() || s.point.is_empty() {
                continue;
            }
            let actual = recent
                .get(i)
                .filter(|(id, _)| *id == s.id)
                .or_else(|| recent.iter().find(|(id, _)| *id == s.id));
            let Some((_, vals)) = actual else { continue };
            let tail: Vec<f64> = vals
                .iter()
                .rev()
                .filter(|v| v.is_finite())
                .take(rule.recent)
                .copied()
                .collect();
            if tail.is_empty() {
                continue;
            }
            let recent_mean = tail.iter().sum::<f64>() / tail.len() as f64;
            let steps = rule.steps.unwrap_or(s.point.len()).min(s.point.len());
            let pts: Vec<f64> = s.point[..steps]
                .iter()
                .filter(|v| v.is_finite())
                .copied()
                .collect();
            if pts.is_empty() {
                continue;
            }
            let forecast_mean = pts.iter().sum::<f64>() / pts.len() as f64;
            let base = recent_mean.max(rule.min_base).max(f64::MIN_POSITIVE);
            let change_pct = (forecast_mean - base) / base * 100.0;
            let over = change_pct > rule.max_increase_pct
                || rule.max_decrease_pct.is_some_and(|d| -change_pct > d);
            if over {
                held.push(HeldSeries {
                    id: s.id.clone(),
                    recent_mean,
                    forecast_mean,
                    change_pct,
                });
            }
        }
        if held.is_empty() {
            return (Decision::Automatic, held);
        }
        let worst = held
            .iter()
            .map(|h| h.change_pct)
            .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        let limit = match rule.max_decrease_pct {
            Some(d) => format!("+{}% / -{}%", fmt_num(rule.max_increase_pct), fmt_num(d)),
            None => format!("+{}%", fmt_num(rule.max_increase_pct)),
        };
        let reason = format!(
            "{} of {} series moved more than {limit} against the mean of their last {} actuals (largest {:+.0}%)",
            held.len(),
            resp.series.len(),
            rule.recent,
            worst
        );
        (
            Decision::NeedsReview {
                rule: "forecast_jump".into(),
                reason,
            },
            held,
        )
    }

    fn tool_rules(&self) -> bool {
        self.cfg.enabled && !self.cfg.tools.is_empty()
    }

    /// The decision on a reply's tool calls: held when an argument with a limit is above it or
    /// not a number.
    pub fn check_tool_calls(&self, calls: &[ToolCall]) -> Decision {
        if !self.cfg.enabled {
            return Decision::Automatic;
        }
        for call in calls {
            let Some(limits) = self.cfg.tools.get(&call.name) else {
                continue;
            };
            let args = call.arguments_json().ok();
            for (path, &max) in limits {
                let rule = format!("tools.{}.{path}", call.name);
                let Some(args) = &args else {
                    return Decision::NeedsReview {
                        rule,
                        reason: format!("the {} arguments are not JSON", call.name),
                    };
                };
                let value = path.split('.').try_fold(args, |v, k| v.get(k));
                let number = match value {
                    None | Some(serde_json::Value::Null) => continue,
                    Some(serde_json::Value::Number(n)) => n.as_f64(),
                    Some(serde_json::Value::String(t)) => t.trim().parse::<f64>().ok(),
                    Some(_) => None,
                };
                match number {
                    Some(x) if x.is_finite() && x <= max => {}
                    Some(x) if x.is_finite() => {
                        return Decision::NeedsReview {
                            rule,
                            reason: format!(
                                "{} {path} {} is above {}",
                                call.name,
                                fmt_num(x),
                                fmt_num(max)
                            ),
                        };
                    }
                    _ => {
                        return Decision::NeedsReview {
                            rule,
                            reason: format!(
                                "{} {path} is not a number (limit {})",
                                call.name,
                                fmt_num(max)
                            ),
                        };
                    }
                }
            }
        }
        Decision::Automatic
    }

    /// The decision on a reorder suggestion for `item`, with the unit cost if known.
    pub fn check_reorder(&self, r: &Replenishment, unit_cost: Option<f64>) -> Decision {
        let Some(rule) = self.cfg.reorder.as_ref().filter(|_| self.cfg.enabled) else {
            return Decision::Automatic;
        };
        if !r.reorder_now || r.order_quantity <= 0.0 {
            return Decision::Automatic;
        }
        if let Some(m) = rule.max_quantity
            && r.order_quantity > m
        {
            return Decision::NeedsReview {
                rule: "reorder_quantity".into(),
                reason: format!(
                    "the reorder asks for {} units (limit {})",
                    fmt_num(r.order_quantity),
                    fmt_num(m)
                ),
            };
        }
        if let (Some(m), Some(c)) = (rule.max_value, unit_cost) {
            let v = r.order_quantity * c;
            if v > m {
                return Decision::NeedsReview {
                    rule: "reorder_value".into(),
                    reason: format!(
                        "the reorder is worth {} (limit {})",
                        fmt_num((v * 100.0).round() / 100.0),
                        fmt_num(m)
                    ),
                };
            }
        }
        Decision::Automatic
    }

    /// Checks a reorder suggestion and sends it to the review sink when held.
    pub async fn review_reorder(
        &self,
        item: &str,
        r: &Replenishment,
        unit_cost: Option<f64>,
        ctx: &RequestContext,
    ) -> Decision {
        let d = self.check_reorder(r, unit_cost);
        if let Decision::NeedsReview { rule, reason } = &d {
            let content = HeldContent::Reorder {
                item: item.to_owned(),
                replenishment: *r,
                value: unit_cost.map(|c| c * r.order_quantity),
            };
            self.hold(rule, reason, None, None, ctx, content).await;
        }
        d
    }

    /// Sends a chat output to review when `decision` holds it.
    async fn hold_chat(
        &self,
        decision: &Decision,
        provider: &str,
        ctx: &RequestContext,
        content: HeldContent,
    ) {
        if let Decision::NeedsReview { rule, reason } = decision {
            self.hold(
                rule,
                reason,
                Some(Capability::Chat),
                Some(provider),
                ctx,
                content,
            )
            .await;
        }
    }

    async fn hold(
        &self,
        rule: &str,
        reason: &str,
        capability: Option<Capability>,
        provider: Option<&str>,
        ctx: &RequestContext,
        content: HeldContent,
    ) {
        self.held.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            guarded(|| m.counter(metrics::REVIEW_HELD, &[("rule", rule)], 1));
        }
        let item = HeldItem {
            time: Utc::now(),
            rule: rule.to_owned(),
            reason: reason.to_owned(),
            capability,
            provider: provider.map(str::to_owned),
            trace_id: ctx.trace_id.clone(),
            tenant: ctx.tenant.clone(),
            subject: ctx.subject.clone(),
            content,
        };
        tracing::info!(rule, reason, "output held for review");
        let ok = matches!(
            std::panic::AssertUnwindSafe(self.sink.hold(&item))
                .catch_unwind()
                .await,
            Ok(Ok(()))
        );
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(rule, "the review sink failed to take a held item");
            if let Some(m) = &self.metrics {
                guarded(|| m.counter(metrics::REVIEW_SINK_FAILURES, &[("rule", rule)], 1));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layers

/// Applies the chat and forecast rules to a capability's answers.
#[derive(Debug)]
pub struct ThresholdLayer<T: ?Sized> {
    inner: Arc<T>,
    rules: Arc<Thresholds>,
}

impl<T: ?Sized> ThresholdLayer<T> {
    /// Checks the answers of `inner`.
    pub fn new(inner: Arc<T>, rules: Arc<Thresholds>) -> Self {
        ThresholdLayer { inner, rules }
    }
}

#[async_trait]
impl Forecaster for ThresholdLayer<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let Some(rule) = self.rules.forecast_rule() else {
            return self.inner.forecast(req).await;
        };
        let keep = rule.recent;
        let recent: Vec<(String, Vec<f64>)> = req
            .series
            .iter()
            .map(|s| {
                let from = s.values.len().saturating_sub(keep * 2 + 8);
                (s.id.clone(), s.values[from..].to_vec())
            })
            .collect();
        let ctx = req.ctx.clone();
        let mut resp = self.inner.forecast(req).await?;
        let (d, series) = self.rules.check_forecast(&recent, &resp);
        if let Decision::NeedsReview { rule, reason } = &d {
            self.rules
                .hold(
                    rule,
                    reason,
                    Some(Capability::Forecast),
                    Some(&resp.meta.provider),
                    &ctx,
                    HeldContent::Forecast { series },
                )
                .await;
        }
        resp.meta.decision = d;
        Ok(resp)
    }
}

#[async_trait]
impl ChatModel for ThresholdLayer<dyn ChatModel> {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        if self.rules.chat_rule().is_none() && !self.rules.tool_rules() {
            return self.inner.chat(req).await;
        }
        let ctx = req.ctx.clone();
        let mut resp = self.inner.chat(req).await?;
        let tools = self.rules.check_tool_calls(&resp.tool_calls);
        let (d, content) = if tools.needs_review() {
            // No call reaches the app; the safe reply does.
            let calls = std::mem::take(&mut resp.tool_calls);
            resp.text = self.rules.safe_reply(&resp.text).to_owned();
            resp.finish_reason = FinishReason::Stop;
            (tools, HeldContent::ToolCalls { calls })
        } else {
            let d = self.rules.check_chat(&resp.text);
            let original = if d.needs_review() {
                let safe = self.rules.safe_reply(&resp.text).to_owned();
                std::mem::replace(&mut resp.text, safe)
            } else {
                String::new()
            };
            (d, HeldContent::ChatReply { text: original })
        };
        self.rules
            .hold_chat(&d, &resp.meta.provider, &ctx, content)
            .await;
        resp.meta.decision = d;
        Ok(resp)
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        if self.rules.chat_rule().is_none() && !self.rules.tool_rules() {
            return self.inner.chat_stream(req).await;
        }
        let ctx = req.ctx.clone();
        let inner = self.inner.chat_stream(req).await?;
        let st = HoldState {
            inner,
            rules: self.rules.clone(),
            ctx,
            buffer: String::new(),
            released: String::new(),
            held: None,
            held_calls: None,
            done: false,
        };
        let s = futures::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            let out = st.step().await;
            Some((futures::stream::iter(out), st))
        })
        .flatten();
        Ok(Box::pin(s))
    }
}

struct HoldState {
    inner: ChatStream,
    rules: Arc<Thresholds>,
    ctx: RequestContext,
    /// Text received and not yet released.
    buffer: String,
    /// Text released so far.
    released: String,
    /// The decision and the model's text, once held.
    held: Option<(Decision, String)>,
    /// The decision and the withheld calls, once a tool call is held.
    held_calls: Option<(Decision, Vec<ToolCall>)>,
    done: bool,
}

/// The end (in bytes) of the last complete sentence in `s`.
fn last_sentence_end(s: &str) -> Option<usize> {
    let mut end = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next = it.peek().map(|(_, n)| *n);
        let boundary = matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';' | '\n')
            || (c == '.' && next.is_some_and(char::is_whitespace));
        if boundary {
            end = Some(i + c.len_utf8());
        }
    }
    end
}

impl HoldState {
    /// Checks `text`; when held, records the decision and returns the safe reply to send.
    fn check(&mut self, text: String) -> Option<String> {
        if self.rules.chat_rule().is_none() {
            self.released.push_str(&text);
            return Some(text).filter(|t| !t.is_empty());
        }
        let d = self.rules.check_chat(&text);
        if d.needs_review() {
            // The model's whole reply goes to review: what was released, this text, and what
            // is still buffered (and, later, what follows).
            let rest = std::mem::take(&mut self.buffer);
            let whole = format!("{}{}{}", self.released, text, rest);
            let safe = self.rules.safe_reply(&whole).to_owned();
            self.held = Some((d, whole));
            Some(safe)
        } else {
            self.released.push_str(&text);
            Some(text).filter(|t| !t.is_empty())
        }
    }

    async fn step(&mut self) -> Vec<Result<ChatEvent>> {
        let Some(item) = self.inner.next().await else {
            // Ended without Finished: unchecked text is not released.
            self.done = true;
            return Vec::new();
        };
        match item {
            Ok(ChatEvent::TextDelta { text }) => {
                if self.held.is_some() {
                    if let Some((_, whole)) = &mut self.held {
                        whole.push_str(&text);
                    }
                    return Vec::new();
                }
                self.buffer.push_str(&text);
                if self.rules.cfg.stream_release == StreamRelease::End {
                    return Vec::new();
                }
                let Some(end) = last_sentence_end(&self.buffer) else {
                    return Vec::new();
                };
                let rest = self.buffer.split_off(end);
                let ready = std::mem::replace(&mut self.buffer, rest);
                match self.check(ready) {
                    Some(t) => vec![Ok(ChatEvent::TextDelta { text: t })],
                    None => Vec::new(),
                }
            }
            Ok(ChatEvent::ToolCall { call }) => {
                if let Some((_, calls)) = &mut self.held_calls {
                    calls.push(call);
                    return Vec::new();
                }
                let d = self.rules.check_tool_calls(std::slice::from_ref(&call));
                if d.needs_review() {
                    self.held_calls = Some((d, vec![call]));
                    return Vec::new();
                }
                vec![Ok(ChatEvent::ToolCall { call })]
            }
            Ok(ChatEvent::Finished {
                mut finish_reason,
                mut meta,
            }) => {
                self.done = true;
                let mut out = Vec::new();
                if let Some((Decision::NeedsReview { rule, reason }, calls)) =
                    self.held_calls.take()
                {
                    // The text (checked or not) gives way to the safe reply.
                    let text = format!("{}{}", self.released, std::mem::take(&mut self.buffer));
                    out.push(Ok(ChatEvent::TextDelta {
                        text: self.rules.safe_reply(&text).to_owned(),
                    }));
                    self.held = None;
                    let d = Decision::NeedsReview { rule, reason };
                    self.rules
                        .hold_chat(
                            &d,
                            &meta.provider,
                            &self.ctx,
                            HeldContent::ToolCalls { calls },
                        )
                        .await;
                    meta.decision = d;
                    finish_reason = FinishReason::Stop;
                    out.push(Ok(ChatEvent::Finished {
                        finish_reason,
                        meta,
                    }));
                    return out;
                }
                if self.held.is_none() {
                    let rest = std::mem::take(&mut self.buffer);
                    if let Some(t) = self.check(rest) {
                        out.push(Ok(ChatEvent::TextDelta { text: t }));
                    }
                }
                meta.decision = match self.held.take() {
                    Some((d, whole)) => {
                        self.rules
                            .hold_chat(
                                &d,
                                &meta.provider,
                                &self.ctx,
                                HeldContent::ChatReply { text: whole },
                            )
                            .await;
                        d
                    }
                    None => Decision::Automatic,
                };
                out.push(Ok(ChatEvent::Finished {
                    finish_reason,
                    meta,
                }));
                out
            }
            Err(e) => {
                self.done = true;
                vec![Err(e)]
            }
            Ok(other) => vec![Ok(other)],
        }
    }
}

/// Wraps a capability handle with the threshold rules (chat and forecast; search and
/// recommend pass through).
pub trait Thresholded: 'static {
    /// Wraps `inner`.
    fn thresholded(inner: Arc<Self>, rules: Arc<Thresholds>) -> Arc<Self>;
}

impl Thresholded for dyn ChatModel {
    fn thresholded(inner: Arc<Self>, rules: Arc<Thresholds>) -> Arc<Self> {
        Arc::new(ThresholdLayer::new(inner, rules))
    }
}
impl Thresholded for dyn Forecaster {
    fn thresholded(inner: Arc<Self>, rules: Arc<Thresholds>) -> Arc<Self> {
        Arc::new(ThresholdLayer::new(inner, rules))
    }
}
impl Thresholded for dyn crate::api::Searcher {
    fn thresholded(inner: Arc<Self>, _: Arc<Thresholds>) -> Arc<Self> {
        inner
    }
}
impl Thresholded for dyn crate::api::Recommender {
    fn thresholded(inner: Arc<Self>, _: Arc<Thresholds>) -> Arc<Self> {
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> ChatRule {
        ChatRule {
            max_discount_pct: Some(15.0),
            max_refund: Some(50.0),
            max_amount_off: Some(20.0),
            min_price: Some(5.0),
        }
    }

    #[test]
    fn promises_table() {
        // (reply, expected rule or "" for automatic)
        let cases: &[(&str, &str)] = &[
            (
                "Good news: you get 20% off your next order!",
                "chat_discount",
            ),
            ("I can give you a 10% discount on this.", ""),
            ("We'll take 30 percent off the jacket.", "chat_discount"),
            ("Enjoy a discount of 25%.", "chat_discount"),
            ("It's half price today.", "chat_discount"),
            ("This shirt is 100% cotton and 15% off.", ""),
            ("这件商品可以给您打八折。", "chat_discount"),
            ("可以打9折。", ""),
            ("现在七五折优惠。", "chat_discount"),
            ("给您85折，很划算。", ""),
            ("今天半价！", "chat_discount"),
            ("优惠百分之三十。", "chat_discount"),
            ("We will refund $80 to your card.", "chat_refund"),
            ("We will refund $30 to your card.", ""),
            ("You'll get a full refund.", "chat_refund"),
            ("我们会为您全额退款。", "chat_refund"),
            ("我们会退您100元。", "chat_refund"),
            ("我们会退您五十元。", ""),
            ("Here's a $25 coupon for your trouble.", "chat_amount_off"),
            ("立减30元。", "chat_amount_off"),
            ("You can have it for only $3.", "chat_price"),
            ("仅需2.5元！", "chat_price"),
            ("It's only ¥99 now.", ""),
            ("Order 12345 with SKU AB-2000 ships in 3 days.", ""),
            ("Model X-100 has 64 GB and costs 1,299.00 yuan.", ""),
            ("The ３０％ discount applies.", "chat_discount"),
            ("Sales grew 40% last year.", ""),
        ];
        for (text, want) in cases {
            let got = match rule().check(text) {
                Decision::NeedsReview { rule, .. } => rule,
                _ => String::new(),
            };
            assert_eq!(&got, want, "{text}: {:?}", find_promises(text));
        }
    }

    #[test]
    fn chinese_numerals() {
        let p = |s: &str| parse_zh(&s.chars().collect::<Vec<_>>());
        assert_eq!(p("五十"), Some(50.0));
        assert_eq!(p("一百二十"), Some(120.0));
        assert_eq!(p("三千"), Some(3000.0));
        assert_eq!(p("两万"), Some(20000.0));
        assert_eq!(p("七五"), Some(75.0));
        assert_eq!(p("九点五"), Some(9.5));
        assert_eq!(p("十"), Some(10.0));
    }

    #[test]
    fn reasons_hold_numbers_not_text() {
        let d = rule().check("Dear alice@example.com, you get 40% off.");
        let Decision::NeedsReview { reason, .. } = d else {
            panic!("held")
        };
        assert_eq!(reason, "the reply promises a 40% discount (limit 15%)");
    }

    #[test]
    fn forecast_and_reorder_rules() {
        let t = Thresholds::new(
            ThresholdsConfig {
                forecast: Some(ForecastRule {
                    max_increase_pct: 50.0,
                    max_decrease_pct: Some(60.0),
                    recent: 3,
                    ..Default::default()
                }),
                reorder: Some(ReorderRule {
                    max_quantity: Some(100.0),
                    max_value: Some(1000.0),
                }),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        // (recent actuals, forecast points, held)
        let cases: &[(&[f64], &[f64], bool)] = &[
            (&[10.0, 10.0, 10.0], &[14.0, 15.0], false),
            (&[10.0, 10.0, 10.0], &[16.0, 16.0], true),
            (&[100.0, 10.0, 10.0, 10.0], &[12.0], false),
            (&[10.0, 10.0, 10.0], &[3.0, 3.0], true),
            (&[0.0, 0.0, 0.0], &[1.2], false),
            (&[0.0, 0.0, 0.0], &[2.0], true),
        ];
        for (actual, point, want) in cases {
            let resp = ForecastResponse::new(
                vec![SeriesForecast::new("s", point.to_vec(), "m")],
                ResponseMeta::new("p"),
            );
            let (d, held) = t.check_forecast(&[("s".into(), actual.to_vec())], &resp);
            assert_eq!(d.needs_review(), *want, "{actual:?} -> {point:?}: {d:?}");
            assert_eq!(held.len(), usize::from(*want));
        }
        let f = SeriesForecast::new("sku", vec![10.0; 14], "ses").with_quantiles(vec![
            QuantileForecast::new(0.1, vec![6.0; 14]),
            QuantileForecast::new(0.9, vec![14.0; 14]),
        ]);
        let pol = crate::replenish::ReplenishmentPolicy::new(7);
        let small =
            crate::replenish::replenish(&f, &crate::StockPosition::new(40.0), &pol).unwrap();
        assert!(!t.check_reorder(&small, None).needs_review());
        assert_eq!(
            t.check_reorder(&small, Some(100.0)),
            Decision::NeedsReview {
                rule: "reorder_value".into(),
                reason: format!(
                    "the reorder is worth {} (limit 1000)",
                    fmt_num(small.order_quantity * 100.0)
                )
            }
        );
        let big = crate::replenish::replenish(
            &SeriesForecast::new("sku", vec![100.0; 14], "ses").with_quantiles(vec![
                QuantileForecast::new(0.1, vec![60.0; 14]),
                QuantileForecast::new(0.9, vec![140.0; 14]),
            ]),
            &crate::StockPosition::new(0.0),
            &pol,
        )
        .unwrap();
        let d = t.check_reorder(&big, None);
        assert!(matches!(&d, Decision::NeedsReview { rule, .. } if rule == "reorder_quantity"));
    }

    #[test]
    fn validation_names_keys() {
        let e = ThresholdsConfig {
            chat: Some(ChatRule {
                max_refund: Some(-1.0),
                ..Default::default()
            }),
            ..Default::default()
        }
        .validate("profiles.p.thresholds")
        .unwrap_err();
        assert!(
            e.message()
                .contains("profiles.p.thresholds.chat.max_refund")
        );
    }
}
