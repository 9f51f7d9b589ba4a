//! Finding personal data in text and replacing it with typed placeholders, reversibly.
//!
//! A [`Redactor`] finds e-mail addresses, phone numbers (Chinese mobiles with or without
//! `+86`, E.164, North American and European forms), payment card numbers (Luhn and issuer
//! prefix checked), Chinese resident id numbers (birth date and check digit), IBANs (country
//! length and mod-97) and IPv4/IPv6 addresses, plus names and street addresses from lists
//! you configure. Product text is left alone: SKUs, model numbers, prices, dates, order ids
//! and version numbers are not personal data.
//!
//! A [`Vault`] holds one call's mapping: [`Vault::redact`] turns `Call 13812345678` into
//! `Call [PHONE_1]` (the same value always gets the same placeholder), [`Vault::restore`]
//! puts the values back into the answer, and a [`StreamRestorer`] does so for streamed text
//! whose placeholders may be split across deltas. The vault never leaves the process; its
//! `Debug` output shows counts only.
//!
//! ```
//! use merchant_ai::redact::{Redactor, Vault};
//! let r = Redactor::standard();
//! let mut vault = Vault::new();
//! let sent = vault.redact(&r, "Mail me at li.na@example.cn or call +86 138 1234 5678.");
//! assert_eq!(sent, "Mail me at [EMAIL_1] or call [PHONE_1].");
//! assert_eq!(vault.restore("I will write to [EMAIL_1]."), "I will write to li.na@example.cn.");
//! assert_eq!(vault.counts()["phone"], 1);
//! ```

mod detect;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use detect::{cn_id_check, iban_valid, luhn_valid};

/// A kind of personal data.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number (Luhn-valid, known issuer prefix).
    Card,
    /// A Chinese resident identity card number (valid birth date and check digit).
    CnId,
    /// An IBAN (valid mod-97).
    Iban,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A person's name from the configured list.
    Name,
    /// A street address from the configured list.
    Address,
}

impl PiiKind {
    /// Every kind.
    pub const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Card,
        PiiKind::CnId,
        PiiKind::Iban,
        PiiKind::Ip,
        PiiKind::Name,
        PiiKind::Address,
    ];
    /// The kinds found by pattern and checksum (not from a list).
    pub const STRUCTURED: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Card,
        PiiKind::CnId,
        PiiKind::Iban,
        PiiKind::Ip,
    ];
    /// The snake_case name used in config, counts and audit records (`email`, `cn_id`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Card => "card",
            PiiKind::CnId => "cn_id",
            PiiKind::Iban => "iban",
            PiiKind::Ip => "ip",
            PiiKind::Name => "name",
            PiiKind::Address => "address",
        }
    }
    /// The placeholder label (`EMAIL` in `[EMAIL_1]`).
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Card => "CARD",
            PiiKind::CnId => "CN_ID",
            PiiKind::Iban => "IBAN",
            PiiKind::Ip => "IP",
            PiiKind::Name => "NAME",
            PiiKind::Address => "ADDRESS",
        }
    }
    /// Parses a snake_case name.
    pub fn parse(s: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value found in a text: its kind and byte range. `Debug` shows no text.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The kind.
    pub kind: PiiKind,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset after the last byte.
    pub end: usize,
}

/// What to look for: `[profiles.NAME.privacy]` keys `detect`, `names`, `addresses`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Kinds to find (default: every structured kind; `name` and `address` are found when
    /// their lists are non-empty).
    pub detect: Vec<PiiKind>,
    /// Names of people to redact (matched case-insensitively, whole words).
    pub names: Vec<String>,
    /// Street addresses to redact (matched case-insensitively, any run of spaces).
    pub addresses: Vec<String>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            detect: PiiKind::STRUCTURED.to_vec(),
            names: Vec::new(),
            addresses: Vec::new(),
        }
    }
}

impl DetectConfig {
    /// Adds names of people to redact.
    #[must_use]
    pub fn with_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }
    /// Adds street addresses to redact.
    #[must_use]
    pub fn with_addresses(
        mut self,
        addresses: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.addresses.extend(addresses.into_iter().map(Into::into));
        self
    }
    /// Sets the kinds to find.
    #[must_use]
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = PiiKind>) -> Self {
        self.detect = kinds.into_iter().collect();
        self
    }
}

/// Finds personal data in text. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Redactor {
    kinds: BTreeSet<PiiKind>,
    names: Arc<detect::Literals>,
    addresses: Arc<detect::Literals>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::standard()
    }
}

impl Redactor {
    /// Every structured kind, no name or address list.
    pub fn standard() -> Self {
        Redactor {
            kinds: PiiKind::STRUCTURED.into_iter().collect(),
            names: Arc::new(detect::Literals(None)),
            addresses: Arc::new(detect::Literals(None)),
        }
    }

    /// A redactor for `cfg`. Errors (a list too large to compile) name `path`.
    pub fn new(cfg: &DetectConfig, path: &str) -> Result<Self> {
        let lit = |v: &[String], key: &str| {
            detect::Literals::new(v)
                .map_err(|e| Error::config(format!("{path}.{key}: cannot be matched: {e}")))
        };
        let mut kinds: BTreeSet<PiiKind> = cfg.detect.iter().copied().collect();
        if !cfg.names.is_empty() {
            kinds.insert(PiiKind::Name);
        }
        if !cfg.addresses.is_empty() {
            kinds.insert(PiiKind::Address);
        }
        Ok(Redactor {
            kinds,
            names: Arc::new(lit(&cfg.names, "names")?),
            addresses: Arc::new(lit(&cfg.addresses, "addresses")?),
        })
    }

    /// The kinds this redactor finds.
    pub fn kinds(&self) -> impl Iterator<Item = PiiKind> + '_ {
        self.kinds.iter().copied()
    }

    /// Every value found in `text`, in order, non-overlapping. Where two kinds overlap, the
    /// stronger evidence wins: e-mail, IBAN, resident id, card, IP, phone, then the lists.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let order: [(PiiKind, Detector); 9] = [
            (PiiKind::Email, |_, t| detect::emails(t)),
            (PiiKind::Iban, |_, t| detect::ibans(t)),
            (PiiKind::CnId, |_, t| detect::cn_ids(t)),
            (PiiKind::Card, |_, t| detect::cards(t)),
            (PiiKind::Ip, |_, t| detect::ipv6s(t)),
            (PiiKind::Ip, |_, t| detect::ipv4s(t)),
            (PiiKind::Phone, |_, t| detect::phones(t)),
            (PiiKind::Name, |r, t| r.names.find(t)),
            (PiiKind::Address, |r, t| r.addresses.find(t)),
        ];
        // Full-width forms (common in Chinese and Japanese input: `１３８００１３８０００`,
        // `ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ`) are read as their ASCII counterparts, and the
        // spans found map back onto the original text.
        let folded = fold_full_width(text);
        let mut out: Vec<Finding> = Vec::new();
        for (kind, f) in order {
            if !self.kinds.contains(&kind) {
                continue;
            }
            let literal = matches!(kind, PiiKind::Name | PiiKind::Address);
            let spans = match &folded {
                Some((ascii, map)) if !literal => f(self, ascii)
                    .into_iter()
                    .map(|(s, e)| (map[s], map[e]))
                    .collect(),
                _ => f(self, text),
            };
            for (start, end) in spans {
                if !out.iter().any(|o| o.start < end && start < o.end) {
                    out.push(Finding { kind, start, end });
                }
            }
        }
        out.sort_by_key(|f| f.start);
        out
    }

    /// Counts of values found in `text`, by kind name.
    pub fn count(&self, text: &str) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for f in self.find(text) {
            *m.entry(f.kind.as_str().to_owned()).or_insert(0) += 1;
        }
        m
    }
}

/// `text` with full-width digits, letters and `＠．＋－＿`, and the ideographic space, folded to
/// ASCII, and for every byte offset of the folded text (and its end) the offset in `text`;
/// `None` when there is nothing to fold.
fn fold_full_width(text: &str) -> Option<(String, Vec<usize>)> {
    // Digits, letters and the characters values are written with; not the full-width
    // punctuation around them (a `：` before an IPv6 address must not become part of it).
    let fold = |c: char| match c {
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '＠' | '．' | '＋' | '－' | '＿' => {
            char::from_u32(c as u32 - 0xFEE0)
        }
        '\u{3000}' => Some(' '),
        _ => None,
    };
    if !text.chars().any(|c| fold(c).is_some()) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len() + 1);
    for (at, c) in text.char_indices() {
        let f = fold(c).unwrap_or(c);
        map.extend(std::iter::repeat_n(at, f.len_utf8()));
        out.push(f);
    }
    map.push(text.len());
    Some((out, map))
}

/// One detector: the spans it finds in a text.
type Detector = fn(&Redactor, &str) -> Vec<(usize, usize)>;

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[(EMAIL|PHONE|CARD|CN_ID|IBAN|IP|NAME|ADDRESS)_([0-9]{1,6})\]")
        .expect("valid pattern")
});

/// One call's placeholders and the values behind them. Never logged: `Debug` shows counts.
#[derive(Default, Clone)]
pub struct Vault {
    by_value: HashMap<(PiiKind, String), String>,
    by_placeholder: HashMap<String, String>,
    next: BTreeMap<PiiKind, u32>,
    counts: BTreeMap<String, u32>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("values", &self.by_placeholder.len())
            .field("counts", &self.counts)
            .finish()
    }
}

impl Vault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every value `redactor` finds in `text` with its placeholder (`[EMAIL_1]`),
    /// the same value with the same placeholder, and counts each replacement.
    pub fn redact(&mut self, redactor: &Redactor, text: &str) -> String {
        let found = redactor.find(text);
        if found.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for f in found {
            out.push_str(&text[last..f.start]);
            let value = &text[f.start..f.end];
            out.push_str(&self.placeholder(f.kind, value));
            *self.counts.entry(f.kind.as_str().to_owned()).or_insert(0) += 1;
            last = f.end;
        }
        out.push_str(&text[last..]);
        out
    }

    fn placeholder(&mut self, kind: PiiKind, value: &str) -> String {
        let key = (kind, value.to_owned());
        if let Some(p) = self.by_value.get(&key) {
            return p.clone();
        }
        let n = self.next.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("[{}_{}]", kind.label(), n);
        self.by_value.insert(key, p.clone());
        self.by_placeholder.insert(p.clone(), value.to_owned());
        p
    }

    /// Puts the original values back in place of this vault's placeholders. Placeholders
    /// the vault does not know are left as they are.
    pub fn restore(&self, text: &str) -> String {
        self.restore_with(text, |v| v.to_owned())
    }

    /// Like [`restore`](Self::restore) inside JSON text (tool arguments): values are
    /// JSON-escaped, so the result stays valid JSON.
    pub fn restore_json(&self, text: &str) -> String {
        self.restore_with(text, |v| {
            let q = serde_json::to_string(v).unwrap_or_default();
            q.get(1..q.len().saturating_sub(1)).unwrap_or("").to_owned()
        })
    }

    fn restore_with(&self, text: &str, esc: impl Fn(&str) -> String) -> String {
        if self.by_placeholder.is_empty() || !text.contains('[') {
            return text.to_owned();
        }
        PLACEHOLDER
            .replace_all(text, |c: &regex::Captures<'_>| {
                match self.by_placeholder.get(&c[0]) {
                    Some(v) => esc(v),
                    None => c[0].to_owned(),
                }
            })
            .into_owned()
    }

    /// Replacements made, by kind name (`email`, `phone`, ...).
    pub fn counts(&self) -> &BTreeMap<String, u32> {
        &self.counts
    }

    /// Whether nothing was replaced.
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }
}

/// Restores streamed text: holds back a trailing piece that may be the start of a
/// placeholder until the next delta completes it (or rules it out).
#[derive(Debug, Default, Clone)]
pub struct StreamRestorer {
    pending: String,
    json: bool,
}

impl StreamRestorer {
    /// A restorer for plain text.
    pub fn new() -> Self {
        Self::default()
    }
    /// A restorer for JSON text (tool-call arguments).
    pub fn json() -> Self {
        StreamRestorer {
            pending: String::new(),
            json: true,
        }
    }

    /// Adds a delta; returns the text that is safe to show now, restored.
    pub fn push(&mut self, vault: &Vault, delta: &str) -> String {
        self.pending.push_str(delta);
        let hold = held_suffix(&self.pending);
        let ready: String = self.pending[..hold].to_owned();
        self.pending.drain(..hold);
        self.restore(vault, &ready)
    }

    /// The rest, at the end of the stream.
    pub fn finish(&mut self, vault: &Vault) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.restore(vault, &rest)
    }

    fn restore(&self, vault: &Vault, s: &str) -> String {
        if self.json {
            vault.restore_json(s)
        } else {
            vault.restore(s)
        }
    }
}

/// Where a trailing, possibly incomplete placeholder starts (`text.len()` when none).
fn held_suffix(text: &str) -> usize {
    let Some(i) = text.rfind('[') else {
        return text.len();
    };
    let tail = &text[i + 1..];
    if tail.contains(']') || tail.len() > 16 {
        return text.len();
    }
    let could_be = [
        "EMAIL", "PHONE", "CARD", "CN_ID", "IBAN", "IP", "NAME", "ADDRESS",
    ]
    .iter()
    .any(|label| {
        if tail.len() <= label.len() {
            label.starts_with(tail)
        } else if let Some(rest) = tail.strip_prefix(label) {
            let rest = rest.strip_prefix('_');
            rest.is_some_and(|r| r.len() <= 6 && r.bytes().all(|b| b.is_ascii_digit()))
        } else {
            false
        }
    });
    if could_be { i } else { text.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_stable_and_restored() {
        let r = Redactor::standard();
        let mut v = Vault::new();
        let a = v.redact(&r, "a@b.co and a@b.co, then c@d.co");
        assert_eq!(a, "[EMAIL_1] and [EMAIL_1], then [EMAIL_2]");
        assert_eq!(v.counts()["email"], 3);
        assert_eq!(v.restore("x [EMAIL_2] [EMAIL_9]"), "x c@d.co [EMAIL_9]");
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("a@b.co"));
    }

    #[test]
    fn full_width_forms_are_found_and_restored_as_written() {
        let r = Redactor::standard();
        let mut v = Vault::new();
        let text = "电话：１３８００１３８０００，邮箱ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ，卡号４１１１　１１１１　１１１１　１１１１。";
        let red = v.redact(&r, text);
        assert_eq!(red, "电话：[PHONE_1]，邮箱[EMAIL_1]，卡号[CARD_1]。");
        assert_eq!(v.restore(&red), text);
        // Plain full-width punctuation alone is not a finding.
        assert!(r.find("（价格：１２元）").is_empty());
    }

    #[test]
    fn stream_restorer_joins_split_placeholders() {
        let r = Redactor::standard();
        let mut v = Vault::new();
        v.redact(&r, "call 13812345678");
        let mut s = StreamRestorer::new();
        let mut out = String::new();
        for d in [
            "Calling [PH",
            "ONE",
            "_",
            "1",
            "] now [",
            "not a tag] [PHONE_1",
            "]",
        ] {
            out.push_str(&s.push(&v, d));
        }
        out.push_str(&s.finish(&v));
        assert_eq!(out, "Calling 13812345678 now [not a tag] 13812345678");
    }

    #[test]
    fn lists_find_names_and_addresses() {
        let cfg = DetectConfig {
            names: vec!["Alice Smith".into(), "张伟".into()],
            addresses: vec!["12 Baker Street".into()],
            ..Default::default()
        };
        let r = Redactor::new(&cfg, "p").unwrap();
        let mut v = Vault::new();
        let s = v.redact(&r, "alice  smith lives at 12 Baker Street; 张伟也是");
        assert_eq!(s, "[NAME_1] lives at [ADDRESS_1]; [NAME_2]也是");
    }
}
