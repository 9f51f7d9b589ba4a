//! Known-item recall of keyword, semantic and hybrid search on the sample storefront.
//!
//! ```text
//! cargo run --release --example known_item_recall
//! ```
//!
//! For products of the deterministic sample catalog (600 products, `merchant-ai-rules`), a
//! query is derived from the product itself in six ways (its English title; the title with
//! one typo per long word; with two; every word cut to four letters; its Chinese title; its
//! title without the brand), and each searcher
//! is asked for 10 hits. Printed per query kind and searcher: recall@10 (the product is among
//! the hits) and MRR@10 (mean of 1/rank).
//!
//! The semantic side here is the core's `HashEmbedder` (hashed character trigrams): an
//! offline spelling baseline, not a neural model. Point the same code at a real embedder
//! (`merchant-ai-openai` with `embedding_model`, the candle adapter) to measure one.

use std::sync::Arc;

use merchant_ai::hybrid::HybridSearcher;
use merchant_ai::semantic::{HashEmbedder, SemanticConfig};
use merchant_ai::*;
use merchant_ai_rules::{RulesConfig, RulesProvider, sample};

/// One typo per word of 5+ letters: two neighbouring letters swapped in the middle.
fn typo(title: &str) -> String {
    title
        .split(' ')
        .map(|w| {
            let mut c: Vec<char> = w.chars().collect();
            if c.len() >= 5 && c.iter().all(|x| x.is_alphabetic()) {
                let i = c.len() / 2;
                c.swap(i - 1, i);
            }
            c.into_iter().collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Two edits per word of 6+ letters: a swap in the middle and the last letter dropped.
fn typo2(title: &str) -> String {
    typo(title)
        .split(' ')
        .map(|w| {
            let n = w.chars().count();
            if n >= 6 && w.chars().all(char::is_alphabetic) {
                w.chars().take(n - 1).collect()
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every word cut to its first four letters (as typed in a hurry).
fn stems(title: &str) -> String {
    title
        .split(' ')
        .map(|w| w.chars().take(4).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let products = sample::products(sample::DEFAULT_PRODUCTS, sample::DEFAULT_SEED);
    let rules = RulesProvider::new("rules", RulesConfig::default())?;
    let keyword: Arc<dyn Searcher> = rules
        .searcher()
        .ok_or_else(|| Error::unsupported("search"))?;
    let stack =
        SemanticConfig::default().build("semantic", Arc::new(HashEmbedder::new(384)?), None)?;
    let semantic: Arc<dyn Searcher> = stack.searcher.clone();
    let hybrid: Arc<dyn Searcher> = Arc::new(HybridSearcher::new(
        "hybrid",
        semantic.clone(),
        keyword.clone(),
    ));
    hybrid.upsert(products.clone()).await?;

    type Derive = fn(&Product) -> Option<String>;
    let kinds: [(&str, Derive); 6] = [
        ("title", |p| Some(p.title.clone())),
        ("typo", |p| Some(typo(&p.title))),
        ("2 typos", |p| Some(typo2(&p.title))),
        ("stems", |p| Some(stems(&p.title))),
        ("zh title", |p| {
            p.localized.get("zh").map(|l| l.title.clone())
        }),
        ("no brand", |p| {
            p.brand
                .as_deref()
                .map(|b| p.title.replacen(b, "", 1).trim().to_owned())
        }),
    ];
    let searchers = [
        ("keyword", &keyword),
        ("semantic", &semantic),
        ("hybrid", &hybrid),
    ];
    let targets: Vec<&Product> = products.iter().step_by(3).collect();
    println!(
        "known-item search over {} products, {} targets per query kind, 10 hits\n",
        products.len(),
        targets.len()
    );
    println!(
        "{:<10} {:<9} {:>9} {:>7}",
        "query", "searcher", "recall@10", "MRR@10"
    );
    for (kind, derive) in kinds {
        for (name, s) in &searchers {
            let (mut found, mut rr, mut n) = (0usize, 0f64, 0usize);
            for p in &targets {
                let Some(q) = derive(p) else { continue };
                n += 1;
                let r = s.search(SearchRequest::new(q).with_limit(10)).await?;
                if let Some(rank) = r.hits.iter().position(|h| h.product_id == p.id) {
                    found += 1;
                    rr += 1.0 / (rank + 1) as f64;
                }
            }
            println!(
                "{:<10} {:<9} {:>9.3} {:>7.3}",
                kind,
                name,
                found as f64 / n.max(1) as f64,
                rr / n.max(1) as f64
            );
        }
    }
    Ok(())
}
