//! The data every contract scenario uses: a small catalog, events, a chat tool and series.
//!
//! HTTP adapters can program their mock servers from these (see
//! [`FaultHarness::before_scenario`](super::FaultHarness::before_scenario)).

use chrono::{DateTime, TimeZone, Utc};

use crate::types::*;

/// The fixed time the fixture events happen around.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0)
        .single()
        .expect("valid date")
}

fn cny(yuan: i64) -> Money {
    Money::new(yuan * 100, Currency::CNY)
}

/// Twelve products with distinct words, brands, categories, prices and stock, one of them with
/// a Chinese title only.
pub fn catalog() -> Vec<Product> {
    let t = base_time();
    let mk = |id: &str, title: &str, brand: &str, cat: [&str; 3], price: i64, stock: u32| {
        Product::new(id, title, cny(price))
            .with_brand(brand)
            .with_category(cat)
            .with_stock(stock)
            .with_cost(cny(price * 6 / 10))
            .with_description(format!("{title} from {brand}."))
            .with_created_at(t - chrono::Duration::days(price % 30))
            .with_language("en")
    };
    vec![
        mk(
            "ct-001",
            "Trail running shoe",
            "Peakline",
            ["Sports", "Running", "Shoes"],
            599,
            12,
        )
        .with_attribute("color", "red")
        .with_localized_title("zh", "越野跑鞋"),
        mk(
            "ct-002",
            "Road running shoe",
            "Peakline",
            ["Sports", "Running", "Shoes"],
            499,
            0,
        )
        .with_attribute("color", "blue"),
        mk(
            "ct-003",
            "Merino running socks",
            "Woolly",
            ["Sports", "Running", "Socks"],
            89,
            40,
        )
        .with_attribute("color", "grey"),
        mk(
            "ct-004",
            "Hydration running vest",
            "Peakline",
            ["Sports", "Running", "Gear"],
            329,
            5,
        ),
        mk(
            "ct-005",
            "Cast iron teapot",
            "Ironleaf",
            ["Home", "Kitchen", "Teaware"],
            259,
            8,
        )
        .with_localized_title("zh", "铸铁茶壶"),
        mk(
            "ct-006",
            "Longjing green tea",
            "Westlake",
            ["Grocery", "Tea", "Green"],
            168,
            30,
        )
        .with_localized_title("zh", "西湖龙井绿茶"),
        mk(
            "ct-007",
            "Oolong tea sampler",
            "Westlake",
            ["Grocery", "Tea", "Oolong"],
            98,
            25,
        ),
        mk(
            "ct-008",
            "Electric kettle",
            "Ironleaf",
            ["Home", "Kitchen", "Appliances"],
            199,
            15,
        ),
        mk(
            "ct-009",
            "Wireless noise cancelling headphones",
            "Sonora",
            ["Electronics", "Audio", "Headphones"],
            1299,
            7,
        )
        .with_attribute("color", "black"),
        mk(
            "ct-010",
            "Wired earbuds",
            "Sonora",
            ["Electronics", "Audio", "Earbuds"],
            129,
            0,
        )
        .with_attribute("color", "white"),
        mk(
            "ct-011",
            "Bamboo cutting board",
            "Ironleaf",
            ["Home", "Kitchen", "Tools"],
            79,
            50,
        ),
        Product::new("ct-012", "羊毛围巾", cny(239))
            .with_brand("Woolly")
            .with_category(["Fashion", "Accessories", "Scarves"])
            .with_stock(9)
            .with_language("zh")
            .with_description("柔软的羊毛围巾")
            .with_created_at(t),
    ]
}

/// A product by fixture id.
pub fn product(id: &str) -> Product {
    catalog()
        .into_iter()
        .find(|p| p.id.as_str() == id)
        .expect("fixture product")
}

/// Events of six subjects: runners who buy shoes with socks, tea drinkers who buy tea with a
/// teapot, one audio buyer.
pub fn events() -> Vec<Event> {
    let t = base_time();
    let mut out = Vec::new();
    let mut push = |subject: &str, session: &str, product: &str, kind: EventKind, minutes: i64| {
        out.push(
            Event::new(
                subject,
                product,
                kind,
                t + chrono::Duration::minutes(minutes),
            )
            .with_session(session),
        );
    };
    for (i, s) in ["cs-1", "cs-2", "cs-3"].iter().enumerate() {
        let sess = format!("run-{i}");
        let m = i as i64 * 60;
        push(s, &sess, "ct-001", EventKind::View, m);
        push(s, &sess, "ct-003", EventKind::View, m + 1);
        push(s, &sess, "ct-001", EventKind::AddToCart, m + 2);
        push(s, &sess, "ct-003", EventKind::AddToCart, m + 3);
        push(s, &sess, "ct-001", EventKind::Purchase, m + 4);
        push(s, &sess, "ct-003", EventKind::Purchase, m + 4);
    }
    for (i, s) in ["cs-4", "cs-5"].iter().enumerate() {
        let sess = format!("tea-{i}");
        let m = 300 + i as i64 * 60;
        push(s, &sess, "ct-006", EventKind::View, m);
        push(s, &sess, "ct-005", EventKind::View, m + 1);
        push(s, &sess, "ct-006", EventKind::Purchase, m + 2);
        push(s, &sess, "ct-005", EventKind::Purchase, m + 2);
    }
    push("cs-6", "audio-0", "ct-009", EventKind::View, 500);
    push("cs-6", "audio-0", "ct-010", EventKind::View, 501);
    push("cs-6", "audio-0", "ct-009", EventKind::Purchase, 502);
    out
}

/// The app tool the chat scenarios offer.
pub fn order_status_tool() -> Tool {
    Tool::new(
        "order_status",
        "Look up the status of an order by its id",
        serde_json::json!({
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "the order number"}},
            "required": ["order_id"]
        }),
    )
}

/// Two daily series: a weekly pattern with a trend, and an intermittent one.
pub fn series() -> Vec<Series> {
    let start = base_time();
    let weekly: Vec<f64> = (0..84)
        .map(|i| {
            let season = [1.0, 0.8, 0.9, 1.0, 1.3, 1.8, 1.6][i % 7];
            (20.0 + 0.1 * i as f64) * season
        })
        .collect();
    let intermittent: Vec<f64> = (0..84)
        .map(|i| {
            if i % 5 == 0 {
                3.0
            } else if i % 11 == 0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    vec![
        Series::new("sku-weekly", weekly).with_start(start, Frequency::Daily),
        Series::new("sku-intermittent", intermittent).with_start(start, Frequency::Daily),
    ]
}
