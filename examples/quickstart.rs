//! Quickstart: a client from an inline config, three products, one search.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use merchant_ai::{Config, Currency, Money, Product, Registry, SearchRequest};

const CONFIG: &str = r#"
[providers.rules]
kind = "rules"                 # offline, deterministic, no keys

[profiles.dev.routes]
search = ["rules"]
"#;

#[tokio::main]
async fn main() -> merchant_ai::Result<()> {
    let config = Config::parse(CONFIG)?;
    let registry = Registry::new().with(merchant_ai_rules::factory());
    let client = registry.build(&config, Some("dev")).await?;
    let searcher = client.searcher()?;

    let cny = |yuan: i64| Money::new(yuan * 100, Currency::CNY);
    let report = searcher
        .upsert(vec![
            Product::new("sku-1", "Peakline Lightweight Trail Running Shoe", cny(599))
                .with_brand("Peakline")
                .with_category(["Sports", "Running", "Shoes"])
                .with_localized_title("zh", "Peakline 轻量越野跑鞋")
                .with_stock(12u32),
            Product::new("sku-2", "Merino Wool Running Socks", cny(79))
                .with_brand("Peakline")
                .with_category(["Sports", "Running", "Accessories"])
                .with_stock(40u32),
            Product::new("sku-3", "Jadeleaf Organic Longjing Green Tea", cny(128))
                .with_brand("Jadeleaf")
                .with_category(["Grocery", "Tea"])
                .with_localized_title("zh", "Jadeleaf 有机龙井绿茶")
                .with_stock(0u32),
        ])
        .await?;
    println!("indexed {} products", report.applied);

    let r = searcher.search(SearchRequest::new("running shoe")).await?;
    for hit in &r.hits {
        let title = hit.product.as_ref().map_or("", |p| p.title.as_str());
        println!("{:<6} {:>6.2}  {title}", hit.product_id, hit.score);
    }
    println!(
        "served by {} (model {}) in {:.1} ms{}",
        r.meta.provider,
        r.meta.model.as_deref().unwrap_or("-"),
        r.meta.latency.as_secs_f64() * 1000.0,
        if r.meta.from_fallback() {
            ", as a fallback"
        } else {
            ""
        }
    );
    Ok(())
}
