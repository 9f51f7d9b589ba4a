//! Text layout of responses.

use merchant_ai::{Product, RecommendResponse, ResponseMeta, SearchResponse};
use serde::Serialize;

use crate::fail::{CliError, CliResult};
use crate::setup::Session;

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(v: &T) -> CliResult<()> {
    let s = serde_json::to_string_pretty(v).map_err(CliError::runtime)?;
    outln!("{s}");
    Ok(())
}

/// "served by rules (model bm25) in 1.2 ms, primary" and the providers skipped.
pub fn served(meta: &ResponseMeta) -> String {
    let mut s = format!("   served by {}", meta.provider);
    if let Some(m) = &meta.model {
        s.push_str(&format!(" (model {m})"));
    }
    s.push_str(&format!(" in {}", ms(meta.latency)));
    if meta.from_fallback() {
        let skipped: Vec<String> = meta
            .fallbacks
            .iter()
            .map(|f| format!("{} ({})", f.provider, f.reason))
            .collect();
        s.push_str(&format!(
            ", fallback at route position {} after {}",
            meta.route_position,
            skipped.join(", ")
        ));
    } else {
        s.push_str(", primary (no fallback)");
    }
    if meta.cached {
        s.push_str(", from cache");
    }
    s
}

/// A duration as milliseconds with one decimal.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Columns a character takes in a terminal: 2 for CJK and full-width forms, else 1.
fn char_width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Cuts a string to at most `n` terminal columns, marking the cut with `…`.
pub fn cut(s: &str, n: usize) -> String {
    let total: usize = s.chars().map(char_width).sum();
    if total <= n {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if w + cw + 1 > n {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Cuts or pads a string to exactly `n` terminal columns (a table cell).
pub fn fit(s: &str, n: usize) -> String {
    let mut out = cut(s, n);
    let w: usize = out.chars().map(char_width).sum();
    out.extend(std::iter::repeat_n(' ', n.saturating_sub(w)));
    out
}

fn stock(p: &Product) -> String {
    match p.stock {
        Some(0) => "sold out".into(),
        Some(n) => format!("{n} in stock"),
        None => String::new(),
    }
}

/// One line per hit, with the title in `lang` when given.
pub fn search_hits(r: &SearchResponse, lang: Option<&str>) {
    outln!("   {} matches", r.total);
    if r.hits.is_empty() {
        outln!("   (no hits)");
    }
    for (i, h) in r.hits.iter().enumerate() {
        match &h.product {
            Some(p) => {
                let title = lang.map_or(p.title.as_str(), |l| p.title_in(l));
                outln!(
                    "   {:>2}. {:<10} {} {:>12}  {:<12} score {:.2}",
                    i + 1,
                    h.product_id,
                    fit(title, 58),
                    p.price.to_string(),
                    stock(p),
                    h.score
                );
            }
            None => outln!("   {:>2}. {:<10} score {:.2}", i + 1, h.product_id, h.score),
        }
    }
}

/// Facet counts, one line per facet.
pub fn facets(r: &SearchResponse) {
    for f in &r.facets {
        let counts: Vec<String> = f
            .counts
            .iter()
            .take(8)
            .map(|(label, n)| format!("{label} {n}"))
            .collect();
        outln!("   facet {:<12} {}", f.facet, counts.join(" | "));
    }
}

/// One line per recommended item with its reason.
pub fn recommendations(r: &RecommendResponse, s: &Session) {
    if r.items.is_empty() {
        outln!("   (no items)");
    }
    for (i, it) in r.items.iter().enumerate() {
        let title = match &it.product {
            Some(p) => p.title.clone(),
            None => s.title(&it.product_id, None),
        };
        let reason = if it.reason.detail.is_empty() {
            it.reason.kind.as_str().to_owned()
        } else {
            format!("{}: {}", it.reason.kind.as_str(), it.reason.detail)
        };
        outln!(
            "   {:>2}. {:<10} {} {}",
            i + 1,
            it.product_id,
            fit(&title, 58),
            cut(&reason, 60)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_measured_in_terminal_columns() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("降噪耳机", 6), "降噪… ");
        assert_eq!(fit("耳机", 6), "耳机  ");
        assert_eq!(fit("", 0), "");
    }
}
