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

/// Cuts a string to `n` characters, marking the cut.
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
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
                    "   {:>2}. {:<10} {:<58} {:>12}  {:<12} score {:.2}",
                    i + 1,
                    h.product_id,
                    cut(title, 58),
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
            "   {:>2}. {:<10} {:<58} {}",
            i + 1,
            it.product_id,
            cut(&title, 58),
            cut(&reason, 60)
        );
    }
}
