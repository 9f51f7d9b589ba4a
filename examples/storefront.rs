//! A storefront using all four capabilities, the way an application would wire them:
//! search, recommendations, a chat with a tool round trip, and a forecast with reorder advice.
//!
//! ```text
//! cargo run --example storefront
//! ```
//!
//! The data is the deterministic sample storefront of `merchant-ai-rules`; swap the config to
//! route any capability to another provider without changing this code.

use merchant_ai::serde_json::json;
use merchant_ai::*;
use merchant_ai_rules::sample;

const CONFIG: &str = r#"
[providers.rules]
kind = "rules"

[profiles.dev.routes]
search = ["rules"]
recommend = ["rules"]
chat = ["rules"]
forecast = ["rules"]
"#;

fn served(meta: &ResponseMeta) -> String {
    format!(
        "[{} {} in {:.1} ms{}]",
        meta.provider,
        meta.model.as_deref().unwrap_or(""),
        meta.latency.as_secs_f64() * 1000.0,
        if meta.from_fallback() {
            ", fallback"
        } else {
            ""
        }
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let client = Registry::new()
        .with(merchant_ai_rules::factory())
        .build(&Config::parse(CONFIG)?, Some("dev"))
        .await?;

    // Load the catalog and the shoppers' history.
    let products = sample::products(sample::DEFAULT_PRODUCTS, sample::DEFAULT_SEED);
    let events = sample::events(&products, sample::DEFAULT_SEED);
    client.searcher()?.upsert(products.clone()).await?;
    client.recommender()?.record(events).await?;

    // Search, with a filter and a facet.
    let req = SearchRequest::new("headphones")
        .with_limit(3usize)
        .with_filters(Filters::new().with_in_stock(true))
        .with_facet(Facet::Brand);
    let r = client.searcher()?.search(req).await?;
    println!(
        "search \"headphones\": {} matches {}",
        r.total,
        served(&r.meta)
    );
    for h in &r.hits {
        let p = h.product.as_ref();
        println!(
            "  {} {} {}",
            h.product_id,
            p.map_or("", |p| p.title.as_str()),
            p.map_or(String::new(), |p| p.price.to_string())
        );
    }

    // Recommendations for a product page.
    let anchor = products[0].id.clone();
    let r = client
        .recommender()?
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor(anchor.clone())
                .with_limit(3usize),
        )
        .await?;
    println!("\non the page of {anchor}, recommended {}", served(&r.meta));
    for it in &r.items {
        println!("  {} ({})", it.product_id, it.reason.kind.as_str());
    }

    // Chat with a tool: the model asks, the application answers, the model replies.
    let tool = Tool::new(
        "order_status",
        "Look up the shipping status of an order by its order number.",
        json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
    );
    let chat = client.chat_model()?;
    let mut messages = vec![Message::user("Where is my order 12345?")];
    let first = chat
        .chat(ChatRequest::new(messages.clone()).with_tool(tool.clone()))
        .await?;
    messages.push(first.to_message());
    for call in &first.tool_calls {
        println!(
            "\nchat -> tool {}({}) {}",
            call.name,
            call.arguments,
            served(&first.meta)
        );
        // Your order system answers here.
        let result = json!({"order_id": "12345", "status": "shipped", "eta": "2026-01-03"});
        messages.push(Message::tool_result(call.id.clone(), result.to_string()));
    }
    let reply = if first.tool_calls.is_empty() {
        first
    } else {
        chat.chat(ChatRequest::new(messages).with_tool(tool))
            .await?
    };
    println!("chat: {} {}", reply.text, served(&reply.meta));

    // Forecast 28 days of two SKUs and decide whether to reorder.
    let history = sample::daily_sales(&products[..2], 180, sample::DEFAULT_SEED);
    let r = client
        .forecaster()?
        .forecast(ForecastRequest::new(history, 28).with_quantiles(vec![0.1, 0.9]))
        .await?;
    println!("\nforecast {}", served(&r.meta));
    for f in &r.series {
        if let Some(e) = &f.error {
            println!("  {}: {}", f.id, e.message);
            continue;
        }
        let total: f64 = f.point.iter().sum();
        let advice = replenish(f, &StockPosition::new(20.0), &ReplenishmentPolicy::new(7))?;
        println!(
            "  {} ({}): {total:.0} units in 28 days; reorder point {:.0}, order {:.0} now",
            f.id, f.model, advice.reorder_point, advice.order_quantity
        );
    }
    Ok(())
}
