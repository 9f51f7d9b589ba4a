//! The detectors: one function per kind, each returning byte spans of `text`.
//!
//! Structured kinds are checked beyond their shape: cards by Luhn and issuer prefix, Chinese
//! resident ids by birth date and check digit, IBANs by country length and mod-97, IP addresses
//! by the standard library's parsers. Digits glued to letters (`SN4111...`, `v1.2.3.4`) and
//! numbers right after a product word (`SKU`, `Order #`, `型号`, `订单号`, `firmware`) are not
//! personal data.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

fn re(p: &str) -> Regex {
    Regex::new(p).expect("detector patterns are valid")
}

/// A span found by a detector: byte offsets into the text.
pub(crate) type Span = (usize, usize);

fn prev_char(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn next_char(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn next_boundary(text: &str, at: usize) -> usize {
    let mut i = at + 1;
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Product words right before a number: an order id, SKU, model or tracking number follows.
static PRODUCT_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:order|orders|sku|model|part|item|tracking|serial|s/n|\bsn|\bref|ean|upc|isbn|gtin|barcode|invoice|batch|lot|article|art\.|订单|单号|货号|型号|编号|条码|条形码|序列号|发票|商品|运单|快递|物流|批号|批次|#)\s*(?:no\.?|nr\.?|number|num|id|code|编号|号码|号|码)?\s*[:：#.]?\s*$",
    )
});

/// Version words right before a dotted number.
static VERSION_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\bv|\bver|version|versions|firmware|\bfw|build|\brev|release|android|\bios|ipados|macos|windows|miui|hyperos|harmonyos|emui|coloros|oxygenos|bios|driver|固件|版本|版本号|系统|驱动)\s*[:：.]?\s*$",
    )
});

fn preceded_by(ctx: &Regex, text: &str, start: usize) -> bool {
    let mut from = start;
    for _ in 0..32 {
        match prev_char(text, from) {
            Some(c) => from -= c.len_utf8(),
            None => break,
        }
    }
    ctx.is_match(&text[from..start])
}

// ---- email ----

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
    )
});

pub(crate) fn emails(text: &str) -> Vec<Span> {
    EMAIL
        .find_iter(text)
        .filter(|m| !is_word(next_char(text, m.end())))
        .map(|m| (m.start(), m.end()))
        .collect()
}

// ---- digit runs (cards) ----

static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| re(r"[0-9]+(?:[ \-][0-9]+)*"));

/// Groups of digits separated by one space or dash: `(start, end)` of each group.
fn runs(text: &str) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    for m in DIGIT_RUN.find_iter(text) {
        if is_word(prev_char(text, m.start()))
            && !prev_char(text, m.start()).is_some_and(|c| c.is_ascii_digit())
        {
            continue;
        }
        if is_word(next_char(text, m.end())) {
            continue;
        }
        let mut groups = Vec::new();
        let mut s = m.start();
        for (i, b) in text[m.start()..m.end()].bytes().enumerate() {
            let at = m.start() + i;
            if !b.is_ascii_digit() {
                groups.push((s, at));
                s = at + 1;
            }
        }
        groups.push((s, m.end()));
        out.push(groups);
    }
    out
}

fn digits_of(text: &str, span: Span) -> Vec<u8> {
    text[span.0..span.1]
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn check (ISO/IEC 7812).
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = d as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix_num(d: &[u8], n: usize) -> u32 {
    d.iter().take(n).fold(0, |a, &x| a * 10 + x as u32)
}

/// Whether the issuer prefix and length fit a payment card network.
fn card_network_ok(d: &[u8]) -> bool {
    let len = d.len();
    let p1 = prefix_num(d, 1);
    let p2 = prefix_num(d, 2);
    let p3 = prefix_num(d, 3);
    let p4 = prefix_num(d, 4);
    match p1 {
        // 13-digit Visa numbers are no longer issued; 13 digits starting with 4 are far more
        // often EAN-13 barcodes (GS1 prefixes 400-440).
        4 => matches!(len, 16 | 19),
        5 => (51..=55).contains(&p2) && len == 16,
        2 => (2221..=2720).contains(&p4) && len == 16,
        3 => {
            (matches!(p2, 34 | 37) && len == 15)
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&len))
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39))
                    && (14..=19).contains(&len))
        }
        6 => {
            (p2 == 62 || p2 == 65 || p4 == 6011 || (644..=649).contains(&p3))
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

pub(crate) fn cards(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for groups in runs(text) {
        let mut i = 0;
        while i < groups.len() {
            let mut best: Option<usize> = None;
            let mut digits = 0;
            for j in i..groups.len() {
                let g = groups[j].1 - groups[j].0;
                digits += g;
                if digits > 19 {
                    break;
                }
                // Grouped numbers use groups of 3 to 6 digits (4-4-4-4, 4-6-5, 6-13).
                let grouped_ok =
                    j == i || (i..=j).all(|k| (3..=13).contains(&(groups[k].1 - groups[k].0)));
                if digits >= 13 && grouped_ok {
                    let span = (groups[i].0, groups[j].1);
                    let d = digits_of(text, span);
                    if card_network_ok(&d) && luhn_valid(&d) {
                        best = Some(j);
                    }
                }
            }
            match best {
                Some(j) => {
                    let span = (groups[i].0, groups[j].1);
                    if !preceded_by(&PRODUCT_CONTEXT, text, span.0) {
                        out.push(span);
                    }
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
    out
}

// ---- Chinese resident id ----

static CN_ID: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]",
    )
});

/// The check character of a Chinese resident id (GB 11643), from its first 17 digits.
pub fn cn_id_check(first17: &[u8]) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let s: u32 = first17.iter().zip(W).map(|(&d, w)| d as u32 * w).sum();
    C[(s % 11) as usize]
}

pub(crate) fn cn_ids(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(m) = CN_ID.find_at(text, pos) {
        let s = m.as_str();
        let ok = !is_word(prev_char(text, m.start()))
            && !is_word(next_char(text, m.end()))
            && valid_cn_id(s);
        if ok {
            out.push((m.start(), m.end()));
            pos = m.end();
        } else {
            pos = next_boundary(text, m.start());
        }
    }
    out
}

fn valid_cn_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 {
        return false;
    }
    let d: Vec<u8> = b[..17].iter().map(|x| x - b'0').collect();
    let y = prefix_num(&d[6..], 4) as i32;
    let mo = prefix_num(&d[10..], 2);
    let da = prefix_num(&d[12..], 2);
    if chrono::NaiveDate::from_ymd_opt(y, mo, da).is_none() {
        return false;
    }
    cn_id_check(&d) == (b[17] as char).to_ascii_uppercase()
}

// ---- IBAN ----

static IBAN_START: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Z]{2}[0-9]{2}"));

/// The IBAN length of a country, where known.
fn iban_length(cc: &str) -> Option<usize> {
    Some(match cc {
        "AD" => 24,
        "AE" => 23,
        "AT" => 20,
        "BA" => 20,
        "BE" => 16,
        "BG" => 22,
        "BH" => 22,
        "CH" => 21,
        "CY" => 28,
        "CZ" => 24,
        "DE" => 22,
        "DK" => 18,
        "EE" => 20,
        "ES" => 24,
        "FI" => 18,
        "FO" => 18,
        "FR" => 27,
        "GB" => 22,
        "GI" => 23,
        "GL" => 18,
        "GR" => 27,
        "HR" => 21,
        "HU" => 28,
        "IE" => 22,
        "IL" => 23,
        "IS" => 26,
        "IT" => 27,
        "LI" => 21,
        "LT" => 20,
        "LU" => 20,
        "LV" => 21,
        "MC" => 27,
        "MT" => 31,
        "NL" => 18,
        "NO" => 15,
        "PL" => 28,
        "PT" => 25,
        "RO" => 24,
        "SA" => 24,
        "SE" => 24,
        "SI" => 19,
        "SK" => 24,
        "SM" => 27,
        "TR" => 26,
        _ => return None,
    })
}

/// The ISO 13616 check: the rearranged number, letters as 10..35, mod 97 is 1.
pub fn iban_valid(compact: &str) -> bool {
    let b = compact.as_bytes();
    if b.len() < 15 || b.len() > 34 {
        return false;
    }
    let mut r: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return false,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r == 1
}

pub(crate) fn ibans(text: &str) -> Vec<Span> {
    let up = text.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(m) = IBAN_START.find_at(&up, pos) {
        if is_word(prev_char(text, m.start())) {
            pos = m.start() + 1;
            continue;
        }
        // Collect up to 34 alphanumerics, allowing single spaces between them.
        let bytes = up.as_bytes();
        let mut ends = Vec::new(); // (compact length, byte end)
        let mut compact = String::new();
        let mut i = m.start();
        while i < bytes.len() && compact.len() < 34 {
            let c = bytes[i];
            if c.is_ascii_alphanumeric() {
                compact.push(c as char);
                i += 1;
                ends.push((compact.clone(), i));
            } else if c == b' ' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_alphanumeric() {
                i += 1;
            } else {
                break;
            }
        }
        let want = iban_length(&up[m.start()..m.start() + 2]);
        let found = ends.iter().rev().find(|(c, end)| {
            want.is_none_or(|w| c.len() == w)
                && c.len() >= 15
                && !is_word(next_char(text, *end))
                && iban_valid(c)
        });
        match found {
            Some((_, end)) => {
                out.push((m.start(), *end));
                pos = *end;
            }
            None => pos = m.start() + 1,
        }
    }
    out
}

// ---- IP addresses ----

static IPV4: LazyLock<Regex> = LazyLock::new(|| re(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| re(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}"));

pub(crate) fn ipv4s(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(m) = IPV4.find_at(text, pos) {
        let before = prev_char(text, m.start());
        let after = next_char(text, m.end());
        let after2 = text[m.end()..].chars().nth(1);
        let glued = is_word(before)
            || before == Some('.')
            || is_word(after)
            || (after == Some('.') && after2.is_some_and(|c| c.is_ascii_digit()));
        let ok = !glued
            && m.as_str().parse::<Ipv4Addr>().is_ok()
            && !preceded_by(&VERSION_CONTEXT, text, m.start());
        if ok {
            out.push((m.start(), m.end()));
            pos = m.end();
        } else {
            pos = next_boundary(text, m.start());
        }
    }
    out
}

pub(crate) fn ipv6s(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(m) = IPV6.find_at(text, pos) {
        let s = m.as_str();
        let before = prev_char(text, m.start());
        let after = next_char(text, m.end());
        let hex_digits = s.bytes().filter(u8::is_ascii_hexdigit).count();
        let ok = !is_word(before)
            && before != Some(':')
            && !is_word(after)
            && after != Some(':')
            && hex_digits >= 3
            && s.parse::<Ipv6Addr>().is_ok();
        if ok {
            out.push((m.start(), m.end()));
            pos = m.end();
        } else {
            pos = next_boundary(text, m.start());
        }
    }
    out
}

// ---- phone numbers ----

/// Each pattern is a phone number with its own separators; the boundaries are checked after.
static PHONES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    vec![
        // Chinese mobiles, with or without +86 / 0086.
        re(r"(?:(?:\+|00)86[ \-]?)?1[3-9][0-9](?:[ \-]?[0-9]{4}){2}"),
        // International (E.164 and spaced forms): +CC then groups.
        re(r"(?:\+|00)[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,6}"),
        // North American: (415) 555-0123, 415-555-0123, 415.555.0123, 1-800-555-0199.
        re(r"(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ ]?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}"),
        // European and Chinese national forms starting with a trunk 0: 030 12345678,
        // 06 12 34 56 78, 020 7946 0958, 010-12345678.
        re(r"0[1-9][0-9]{0,4}(?:[ .\-]?[0-9]{2,8}){1,5}"),
    ]
});

static DATE_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[0-9]{1,2}[./\-][0-9]{1,2}[./\-][0-9]{2,4}|[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2})")
});

fn phone_ok(kind: usize, s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    match kind {
        0 => (11..=15).contains(&digits),
        1 => (8..=15).contains(&digits),
        2 => (10..=11).contains(&digits),
        _ => {
            (9..=12).contains(&digits)
                && !DATE_LIKE.is_match(s)
                // A plain run of digits with no separator is an id, not a national number.
                && s.bytes().any(|b| !b.is_ascii_digit())
        }
    }
}

pub(crate) fn phones(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for (k, r) in PHONES.iter().enumerate() {
        let mut pos = 0;
        while let Some(m) = r.find_at(text, pos) {
            // Try the longest match first, then shorter ones ending at a digit.
            let mut accepted = None;
            let mut end = m.end();
            while end > m.start() {
                let s = &text[m.start()..end];
                let before = prev_char(text, m.start());
                let after = next_char(text, end);
                let after2 = text[end..].chars().nth(1);
                let glued = is_word(before)
                    || matches!(before, Some('.' | '-' | '/' | '+'))
                    || is_word(after)
                    || (matches!(after, Some('.' | '-' | '/' | ',' | ':'))
                        && after2.is_some_and(|c| c.is_ascii_digit()));
                let boundary = !glued;
                if s.ends_with(|c: char| c.is_ascii_digit()) && boundary && phone_ok(k, s) {
                    accepted = Some((m.start(), end));
                    break;
                }
                end = text[..end]
                    .char_indices()
                    .next_back()
                    .map_or(m.start(), |(i, _)| i);
            }
            match accepted {
                Some(span) => {
                    if !preceded_by(&PRODUCT_CONTEXT, text, span.0)
                        && !out.iter().any(|o| o.0 < span.1 && span.0 < o.1)
                    {
                        out.push(span);
                    }
                    pos = span.1;
                }
                None => pos = next_boundary(text, m.start()),
            }
        }
    }
    out
}

// ---- configured lists (names, addresses) ----

/// A case-insensitive matcher for a list of literal values, longest first.
#[derive(Debug, Clone)]
pub(crate) struct Literals(pub(crate) Option<Regex>);

impl Literals {
    pub(crate) fn new(values: &[String]) -> std::result::Result<Self, regex::Error> {
        let mut v: Vec<&str> = values
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if v.is_empty() {
            return Ok(Literals(None));
        }
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        let alt: Vec<String> = v
            .iter()
            .map(|s| {
                // Inner whitespace matches any run of whitespace.
                s.split_whitespace()
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(r"\s+")
            })
            .collect();
        Ok(Literals(Some(
            regex::RegexBuilder::new(&format!("(?i)(?:{})", alt.join("|")))
                .size_limit(64 << 20)
                .build()?,
        )))
    }

    pub(crate) fn find(&self, text: &str) -> Vec<Span> {
        let Some(r) = &self.0 else {
            return Vec::new();
        };
        r.find_iter(text)
            .filter(|m| {
                let s = m.as_str();
                let starts_word = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
                let ends_word = s
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
                let glued_before = starts_word && is_word(prev_char(text, m.start()));
                let glued_after = ends_word && is_word(next_char(text, m.end()));
                !(glued_before || glued_after)
            })
            .map(|m| (m.start(), m.end()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn_valid(&digits_of("4111 1111 1111 1111", (0, 19))));
        assert!(!luhn_valid(&digits_of("4111 1111 1111 1112", (0, 19))));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(valid_cn_id("11010519491231002X"));
        assert!(!valid_cn_id("110105194912310021"));
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(emails("mail a.b@x-y.com now").len(), 1);
        assert_eq!(cards("card 4111-1111-1111-1111 exp").len(), 1);
        assert_eq!(cards("SKU 4111111111111111").len(), 0);
        assert_eq!(cn_ids("身份证11010519491231002X。").len(), 1);
        assert_eq!(ibans("IBAN DE89 3704 0044 0532 0130 00 thanks").len(), 1);
        assert_eq!(ipv4s("from 192.168.1.20.").len(), 1);
        assert_eq!(ipv4s("firmware 2.1.0.15").len(), 0);
        assert_eq!(ipv6s("at 2001:db8::8a2e:370:7334 today").len(), 1);
        assert_eq!(ipv6s("at 12:30:45 today").len(), 0);
        for p in [
            "call 13812345678 now",
            "call +86 138 1234 5678 now",
            "call (415) 555-0123 now",
            "call +44 20 7946 0958 now",
            "call 06 12 34 56 78 now",
            "电话：138-1234-5678。",
        ] {
            assert_eq!(phones(p).len(), 1, "{p}");
        }
        for p in [
            "on 2024-03-15 10:30",
            "Order #13812345678",
            "price 1,299.00",
            "订单号：13912345678",
        ] {
            assert_eq!(phones(p).len(), 0, "{p}");
        }
    }
}
