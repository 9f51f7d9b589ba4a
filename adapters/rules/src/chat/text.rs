//! Text helpers: language, keyword matching, templates, token counts, stream chunks.

use std::collections::BTreeMap;

use super::config::Lang;

/// Whether `c` is a CJK ideograph, kana, hangul or CJK punctuation.
pub(crate) fn is_cjk(c: char) -> bool {
    merchant_ai::text::is_cjk(c) || merchant_ai::text::is_cjk_punctuation(c)
}

/// Chinese when the text holds a Han character, else English.
pub(crate) fn detect_lang(text: &str) -> Lang {
    let han = text
        .chars()
        .any(|c| matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0x20000..=0x2FA1F));
    if han { Lang::Zh } else { Lang::En }
}

/// Lower-cased, with curly apostrophes straightened and full-width ASCII folded.
pub(crate) fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' => '\'',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Byte ranges where `kw` occurs in `text` (both normalized); Latin keywords must stand as
/// whole words, CJK keywords match anywhere.
pub(crate) fn find_keyword(text: &str, kw: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if kw.is_empty() {
        return out;
    }
    let first_word = kw.chars().next().is_some_and(is_word);
    let last_word = kw.chars().next_back().is_some_and(is_word);
    let mut from = 0;
    while let Some(pos) = text[from..].find(kw) {
        let start = from + pos;
        let end = start + kw.len();
        let before_ok = !first_word
            || text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !is_word(c));
        let after_ok = !last_word || text[end..].chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok {
            out.push((start, end));
        }
        from = start + kw.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// The weight of a matched keyword: longer phrases are more specific, a CJK character
/// carries about as much as a short word.
pub(crate) fn keyword_weight(kw: &str) -> u32 {
    kw.chars()
        .map(|c| {
            if is_cjk(c) {
                3
            } else {
                u32::from(!c.is_whitespace())
            }
        })
        .sum()
}

/// Keeps a value safe to put in a reply: no control characters, braces or brackets (so it
/// cannot form a placeholder or a section), collapsed whitespace, at most `max` characters.
pub(crate) fn sanitize(value: &str, max: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in value.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if matches!(c, '{' | '}' | '[' | ']' | '<' | '>' | '`') {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        if out.chars().count() >= max {
            out.push('…');
            break;
        }
    }
    out
}

/// Renders a template: `{name}` takes `vars[name]` (empty when unknown); `[[ ... ]]` is kept
/// only when every placeholder inside it has a non-empty value.
pub(crate) fn render(template: &str, vars: &BTreeMap<String, String>) -> String {
    render_counted(template, vars).0
}

/// [`render`], also counting the optional sections kept and present.
pub(crate) fn render_counted(
    template: &str,
    vars: &BTreeMap<String, String>,
) -> (String, usize, usize) {
    let (mut kept, mut total) = (0, 0);
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("[[") {
        out.push_str(&fill(&rest[..open], vars).0);
        let after = &rest[open + 2..];
        match after.find("]]") {
            Some(close) => {
                let (s, complete) = fill(&after[..close], vars);
                total += 1;
                if complete {
                    kept += 1;
                    out.push_str(&s);
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("[[");
                rest = after;
            }
        }
    }
    out.push_str(&fill(rest, vars).0);
    (collapse_spaces(&out), kept, total)
}

/// Fills placeholders; also says whether every one had a value.
fn fill(s: &str, vars: &BTreeMap<String, String>) -> (String, bool) {
    let mut out = String::new();
    let mut complete = true;
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_') =>
            {
                match vars.get(&after[..close]).filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    None => complete = false,
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, complete)
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' && (out.ends_with(' ') || out.is_empty()) {
            continue;
        }
        if matches!(c, '.' | ',' | ';' | ':' | '?' | '!') && out.ends_with(' ') {
            out.pop();
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// A rough token count: Latin words plus CJK characters.
pub(crate) fn count_tokens(text: &str) -> u64 {
    let mut n = 0u64;
    let mut in_word = false;
    for c in text.chars() {
        if is_cjk(c) {
            if !matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFF0F) {
                n += 1;
            }
            in_word = false;
        } else if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            n += 1;
            in_word = true;
        }
    }
    n
}

/// Splits text into stream chunks: a Latin word with its following spaces, or one CJK
/// character, never splitting a character; long runs are cut every 24 characters.
pub(crate) fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut count = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_cjk(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                count = 0;
            }
            out.push(c.to_string());
            continue;
        }
        cur.push(c);
        count += 1;
        let next_starts_word = chars.peek().is_some_and(|n| !n.is_whitespace());
        if (c.is_whitespace() && next_starts_word) || count >= 24 {
            out.push(std::mem::take(&mut cur));
            count = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_and_cjk_anywhere() {
        assert_eq!(find_keyword("hi there", "hi").len(), 1);
        assert!(find_keyword("this shipping", "hi").is_empty());
        assert_eq!(find_keyword("我的订单到哪了", "到哪").len(), 1);
    }

    #[test]
    fn templates_drop_incomplete_sections() {
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), "1".to_string());
        assert_eq!(render("x {a}.[[ y {b}.]][[ z {a}.]]", &v), "x 1. z 1.");
        assert_eq!(render("{ not a var } {a", &v), "{ not a var } {a");
    }

    #[test]
    fn chunks_rejoin() {
        for t in ["Hello there,  world!", "您好！欢迎 shop 光临", "", "a"] {
            assert_eq!(chunks(t).concat(), t);
        }
        assert_eq!(count_tokens("hello 你好 world"), 4);
    }
}
