//! `merchant-ai demo`: a tour of the four capabilities on the sample storefront.

use merchant_ai::*;
use merchant_ai_rules::sample;
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::fail::{CliError, CliResult};
use crate::forecast;
use crate::print;
use crate::setup::{CatalogSource, Session};

/// The system prompt of the demo shop assistant.
pub const SYSTEM_PROMPT: &str = "You are the shop assistant of a demo storefront. Answer briefly. \
Use the order_status tool for questions about an order.";

/// The tool the demo app offers to the chat model.
pub fn order_status_tool() -> Tool {
    Tool::new(
        "order_status",
        "Look up the shipping status of an order by its order number.",
        json!({
            "type": "object",
            "properties": {
                "order_id": { "type": "string", "description": "The order number, e.g. 12345" }
            },
            "required": ["order_id"]
        }),
    )
}

/// Plays the shop's backend: a canned result for the demo tool.
pub fn run_tool(call: &ToolCall) -> String {
    match call.name.as_str() {
        "order_status" => {
            let id = call
                .arguments_json()
                .ok()
                .and_then(|v| {
                    v.get("order_id").map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .unwrap_or_else(|| "unknown".into());
            json!({
                "order_id": id,
                "status": "shipped",
                "carrier": "SF Express",
                "tracking_number": "SF1234567890",
                "estimated_delivery": "2026-01-03"
            })
            .to_string()
        }
        other => json!({ "error": format!("unknown tool {other}") }).to_string(),
    }
}

fn heading(json: bool, title: &str) {
    if !json {
        outln!("\n== {title} ==");
    }
}

fn sub(json: bool, title: &str) {
    if !json {
        outln!("\n-- {title}");
    }
}

/// Runs the demo; every section runs even when an earlier one failed, and the exit code is
/// 1 when any failed.
pub async fn run(g: &GlobalArgs) -> CliResult<()> {
    let s = Session::start(g, true).await?;
    let json = g.json;
    if !json {
        outln!("merchant-ai demo: profile {}", s.client.routes().profile);
        out!("{}", s.client.routes());
        let what = match s.source {
            CatalogSource::Sample => "sample storefront",
            CatalogSource::Config => "catalog from the config",
            CatalogSource::None => "no catalog",
        };
        outln!(
            "{what}: {} products, {} shopper events, ready in {}",
            s.products.len(),
            s.events,
            print::ms(s.startup)
        );
    }
    let mut out = serde_json::Map::new();
    let mut failed = Vec::new();

    heading(json, "search");
    record(
        &mut out,
        &mut failed,
        "search",
        search(&s, json).await,
        json,
    );
    heading(json, "recommend");
    record(
        &mut out,
        &mut failed,
        "recommend",
        recommend(&s, json).await,
        json,
    );
    heading(json, "chat");
    record(&mut out, &mut failed, "chat", chat(&s, json).await, json);
    heading(json, "forecast");
    record(
        &mut out,
        &mut failed,
        "forecast",
        forecast_part(&s, json).await,
        json,
    );

    if json {
        out.insert("failed".into(), json!(failed));
        print::json(&Value::Object(out))?;
    } else if failed.is_empty() {
        outln!(
            "\nall four capabilities answered. Next: `merchant-ai search \"...\"`, `merchant-ai check --config FILE`."
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::runtime(format!(
            "demo sections failed: {}",
            failed.join(", ")
        )))
    }
}

fn record(
    out: &mut serde_json::Map<String, Value>,
    failed: &mut Vec<String>,
    name: &str,
    r: CliResult<Value>,
    json: bool,
) {
    match r {
        Ok(v) => {
            out.insert(name.into(), v);
        }
        Err(e) => {
            if !json {
                outln!("   error: {}", e.message);
            }
            out.insert(name.into(), json!({ "error": e.message }));
            failed.push(name.to_owned());
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> CliResult<Value> {
    serde_json::to_value(v).map_err(CliError::runtime)
}

async fn search(s: &Session, json: bool) -> CliResult<Value> {
    let searcher = s.client.searcher()?;
    let cny = |yuan: i64| Money::new(yuan * 100, Currency::CNY);
    let queries: Vec<(&str, SearchRequest, Option<&str>)> = vec![
        (
            "a normal query: \"running shoes\"",
            SearchRequest::new("running shoes").with_limit(5usize),
            None,
        ),
        (
            "a typo: \"wireles hedphones\"",
            SearchRequest::new("wireles hedphones").with_limit(5usize),
            None,
        ),
        (
            "Chinese: \"降噪耳机\" (noise cancelling headphones)",
            SearchRequest::new("降噪耳机")
                .with_limit(5usize)
                .with_language("zh"),
            Some("zh"),
        ),
        (
            "filtered and faceted: \"tea\" in Grocery > Tea, in stock, at most 200 CNY",
            SearchRequest::new("tea")
                .with_limit(5usize)
                .with_filters(
                    Filters::new()
                        .with_category_prefix(["Grocery", "Tea"])
                        .with_in_stock(true)
                        .with_price(PriceRange::new(None, Some(cny(200)))),
                )
                .with_facet(Facet::Brand)
                .with_facet(Facet::Attribute {
                    name: "size".into(),
                })
                .with_facet(Facet::Price {
                    bounds: vec![cny(50), cny(100), cny(150)],
                }),
            None,
        ),
    ];
    let mut results = Vec::new();
    for (title, req, lang) in queries {
        sub(json, title);
        let query = req.query.clone();
        let r = searcher.search(req).await?;
        if !json {
            print::search_hits(&r, lang);
            print::facets(&r);
            outln!("{}", print::served(&r.meta));
        }
        results.push(json!({ "query": query, "response": to_value(&r)? }));
    }
    Ok(Value::Array(results))
}

async fn recommend(s: &Session, json: bool) -> CliResult<Value> {
    let rec = s.client.recommender()?;
    let anchor = s
        .products
        .values()
        .find(|p| p.category_path() == "Sports > Running > Shoes")
        .map(|p| p.id.clone());
    let tea = s
        .products
        .values()
        .find(|p| p.category_path() == "Grocery > Tea")
        .map(|p| p.id.clone());
    let mut reqs: Vec<(String, RecommendRequest)> = vec![(
        "home page for shopper u_0001 (has history)".into(),
        RecommendRequest::new(Scene::Home)
            .with_subject("u_0001")
            .with_limit(5usize),
    )];
    if let Some(a) = &anchor {
        reqs.push((
            format!("product page of {a} ({})", s.title(a, None)),
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor(a.clone())
                .with_limit(5usize),
        ));
    }
    let cart: Vec<ProductId> = anchor.iter().chain(tea.iter()).cloned().collect();
    if !cart.is_empty() {
        let names: Vec<String> = cart.iter().map(|c| c.to_string()).collect();
        reqs.push((
            format!("cart holding {}", names.join(" + ")),
            RecommendRequest::new(Scene::Cart)
                .with_subject("u_0002")
                .with_session_items(cart.clone())
                .with_limit(5usize),
        ));
    }
    let mut results = Vec::new();
    for (title, req) in reqs {
        sub(json, &title);
        let scene = req.scene.to_string();
        let r = rec.recommend(req).await?;
        if !json {
            print::recommendations(&r, s);
            outln!("{}", print::served(&r.meta));
        }
        results.push(json!({ "scene": scene, "response": to_value(&r)? }));
    }
    Ok(Value::Array(results))
}

async fn chat(s: &Session, json: bool) -> CliResult<Value> {
    let model = s.client.chat_model()?;
    let mut transcript = Vec::new();

    sub(json, "a tool round trip: the shopper asks about an order");
    let user = "Where is my order 12345?";
    let mut messages = vec![Message::system(SYSTEM_PROMPT), Message::user(user)];
    if !json {
        outln!("   shopper:   {user}");
    }
    let req = |m: Vec<Message>| {
        ChatRequest::new(m)
            .with_tool(order_status_tool())
            .with_seed(7u64)
    };
    let first = model.chat(req(messages.clone())).await?;
    transcript.push(to_value(&first)?);
    if first.tool_calls.is_empty() {
        if !json {
            outln!("   assistant: {}", first.text);
            outln!("   (the model answered without calling the tool)");
            outln!("{}", print::served(&first.meta));
        }
    } else {
        messages.push(first.to_message());
        for call in &first.tool_calls {
            let result = run_tool(call);
            if !json {
                outln!("   assistant: calls {}({})", call.name, call.arguments);
                outln!("   app:       returns {result}");
            }
            messages.push(Message::tool_result(call.id.clone(), result));
        }
        if !json {
            outln!("{}", print::served(&first.meta));
        }
        let second = model.chat(req(messages)).await?;
        if !json {
            outln!("   assistant: {}", second.text);
            outln!("{}", print::served(&second.meta));
        }
        transcript.push(to_value(&second)?);
    }

    sub(json, "a product question");
    let q = "Do you have waterproof trail running shoes?";
    if !json {
        outln!("   shopper:   {q}");
    }
    let r = model
        .chat(
            ChatRequest::new(vec![Message::system(SYSTEM_PROMPT), Message::user(q)])
                .with_seed(7u64),
        )
        .await?;
    if !json {
        for line in r.text.lines() {
            outln!("   assistant: {line}");
        }
        outln!("{}", print::served(&r.meta));
    }
    transcript.push(to_value(&r)?);
    Ok(Value::Array(transcript))
}

async fn forecast_part(s: &Session, json: bool) -> CliResult<Value> {
    let fc = s.client.forecaster()?;
    let wanted = [
        "Grocery > Tea",
        "Sports > Running > Accessories",
        "Electronics > Audio > Headphones",
        "Electronics > Phones > Smartphones",
    ];
    let all = sample::products(sample::DEFAULT_PRODUCTS, sample::DEFAULT_SEED);
    let picks: Vec<Product> = wanted
        .iter()
        .filter_map(|c| all.iter().find(|p| p.category_path() == *c).cloned())
        .collect();
    let history = sample::daily_sales(&picks, 180, sample::DEFAULT_SEED);
    if !json {
        outln!(
            "   180 days of daily sales for {} SKUs (the last one sells rarely):",
            picks.len()
        );
        for (p, h) in picks.iter().zip(&history) {
            let mean = h.values.iter().sum::<f64>() / h.values.len().max(1) as f64;
            let zeros = h.values.iter().filter(|v| **v == 0.0).count();
            outln!(
                "   {} {} {:>5.1}/day, {:>3} days without a sale",
                p.id,
                print::fit(&p.title, 52),
                mean,
                zeros
            );
        }
        outln!();
    }
    let horizon = 28;
    let req =
        ForecastRequest::new(history.clone(), horizon).with_quantiles(forecast::QUANTILES.to_vec());
    let r = fc.forecast(req).await?;
    let dates: Vec<_> = history
        .iter()
        .map(|h| h.future_timestamps(horizon).unwrap_or_default())
        .collect();
    if !json {
        forecast::summary(&r, &history, &dates, 3);
        outln!("{}", print::served(&r.meta));
    }
    // Reorder advice from the products' stock, 7 days lead time, 95% service level.
    let stock = picks
        .iter()
        .map(|p| {
            (
                p.id.to_string(),
                StockPosition::new(p.stock.unwrap_or(0) as f64),
            )
        })
        .collect();
    let advice = forecast::reorder(&r, &stock, 7, 0.95);
    if !json {
        outln!("\n   reorder advice (lead time 7 days, service level 0.95):");
        for a in &advice {
            outln!("{}", a.line());
        }
    }
    Ok(json!({
        "forecast": to_value(&r)?,
        "replenishment": advice.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
    }))
}
