//! Behaviour of the rules searcher: matching, ranking, filters, facets, sorts, paging,
//! index maintenance and persistence.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use merchant_ai::*;
use merchant_ai_rules::{Catalog, RulesSearcher, SearchConfig};

fn cny(minor: i64) -> Money {
    Money::new(minor, Currency::CNY)
}

fn products() -> Vec<Product> {
    let day = |d: u32| Utc.with_ymd_and_hms(2025, 1, d, 0, 0, 0).unwrap();
    vec![
        Product::new("p1", "Trail running shoes", cny(59900))
            .with_brand("Peakline")
            .with_category(["Sports", "Running", "Shoes"])
            .with_stock(12u32)
            .with_attribute("color", "Blue")
            .with_tag("outdoor")
            .with_localized_title("zh", "越野跑鞋")
            .with_created_at(day(3)),
        Product::new("p2", "Road running shoes", cny(45900))
            .with_brand("Swiftfoot")
            .with_category(["Sports", "Running", "Shoes"])
            .with_stock(0u32)
            .with_attribute("color", "Red")
            .with_created_at(day(5)),
        Product::new("p3", "Cotton tee", cny(9900))
            .with_brand("Basics")
            .with_category(["Clothing", "Tops"])
            .with_attribute("color", "Blue")
            .with_description("A soft crew neck shirt")
            .with_created_at(day(1)),
        Product::new("p4", "Hiking backpack 30L", cny(29900))
            .with_brand("Peakline")
            .with_category(["Sports", "Outdoor", "Bags"])
            .with_stock(3u32)
            .with_localized_title("zh", "登山背包")
            .with_created_at(day(7)),
        Product::new("p5", "Leather trainers", cny(79900))
            .with_brand("Urbanstep")
            .with_category(["Clothing", "Shoes"])
            .with_attribute("color", "white")
            .with_created_at(day(2)),
        Product::new("p6", "Cast iron pan", Money::new(3500, Currency::USD))
            .with_brand("Ironhearth")
            .with_category(["Home", "Kitchen", "Cookware"]),
        Product::new("p7", "运动鞋 男款 透气", cny(39900))
            .with_brand("Peakline")
            .with_category(["Sports", "Shoes"])
            .with_language("zh")
            .with_created_at(day(4)),
        Product::new("p8", "Graphic t-shirt", cny(12900))
            .with_brand("Basics")
            .with_category(["Clothing", "Tops"])
            .with_attribute("color", "Black")
            .with_created_at(day(6)),
        Product::new("p9", "Tea kettle", cny(15900))
            .with_brand("Ironhearth")
            .with_category(["Home", "Kitchen"]),
        Product::new("p10", "Train set for kids", cny(25900))
            .with_brand("Toyland")
            .with_category(["Toys"]),
    ]
}

fn cfg() -> SearchConfig {
    SearchConfig::default()
        .with_synonyms(["tee", "t-shirt"])
        .with_synonyms(["sneakers", "trainers", "运动鞋"])
}

async fn searcher() -> RulesSearcher {
    let s = RulesSearcher::new("rules", cfg(), Arc::new(Catalog::new())).unwrap();
    let r = s.upsert(products()).await.unwrap();
    assert_eq!(r.applied, 10);
    s
}

async fn ids(s: &RulesSearcher, req: SearchRequest) -> Vec<String> {
    s.search(req)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.product_id.as_str().to_string())
        .collect()
}

async fn q(s: &RulesSearcher, text: &str) -> Vec<String> {
    ids(s, SearchRequest::new(text)).await
}

#[tokio::test]
async fn exact_words_rank_the_right_product_first() {
    let s = searcher().await;
    let r = s.search(SearchRequest::new("trail running")).await.unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "p1");
    assert_eq!(r.mode, SearchMode::Keyword);
    assert_eq!(r.meta.provider, "rules");
    assert_eq!(r.meta.model.as_deref(), Some("tantivy-bm25"));
    assert_eq!(r.meta.usage.units, Some(1));
    assert!(r.hits[0].product.is_some());
    for w in r.hits.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
}

#[tokio::test]
async fn typos_are_tolerated_by_word_length() {
    let s = searcher().await;
    let hits = q(&s, "runnign shoes").await;
    assert!(hits.contains(&"p1".to_string()) && hits.contains(&"p2".to_string()));
    assert_eq!(
        q(&s, "hikign backpak").await.first().map(String::as_str),
        Some("p4")
    );
    // Two edits are allowed from 8 characters on.
    assert_eq!(
        q(&s, "bakcpakc").await.first().map(String::as_str),
        Some("p4")
    );
    // Words of three characters or fewer are never fuzzed: "pen" does not find "pan".
    assert!(q(&s, "pen").await.is_empty());
    assert_eq!(q(&s, "pan").await, ["p6"]);
}

#[tokio::test]
async fn exact_matches_outrank_typo_matches() {
    let s = searcher().await;
    // "train" is exact for p10; p5 "trainers" and "trail" are only variants.
    assert_eq!(
        q(&s, "train").await.first().map(String::as_str),
        Some("p10")
    );
    // "tea" is exact in p9 and never fuzzed to "tee".
    assert_eq!(q(&s, "tea").await, ["p9"]);
}

#[tokio::test]
async fn last_word_matches_as_prefix() {
    let s = searcher().await;
    let trai = q(&s, "trai").await;
    for id in ["p1", "p5", "p10"] {
        assert!(trai.contains(&id.to_string()), "{id}");
    }
    assert!(q(&s, "trai").await.len() == 3);
    // A complete word is still matched exactly.
    assert_eq!(q(&s, "trail").await.first().map(String::as_str), Some("p1"));
    assert_eq!(
        q(&s, "hiking backp").await.first().map(String::as_str),
        Some("p4")
    );
}

#[tokio::test]
async fn chinese_substrings_and_mixed_queries_match() {
    let s = searcher().await;
    assert_eq!(q(&s, "跑鞋").await.first().map(String::as_str), Some("p1"));
    assert_eq!(
        q(&s, "越野跑鞋").await.first().map(String::as_str),
        Some("p1")
    );
    assert_eq!(q(&s, "背包").await, ["p4"]);
    assert_eq!(q(&s, "透气").await, ["p7"]);
    assert_eq!(q(&s, "鞋").await.len(), 2);
    assert_eq!(
        q(&s, "peakline 跑鞋").await.first().map(String::as_str),
        Some("p1")
    );
    assert_eq!(
        q(&s, "Peakline 背包").await.first().map(String::as_str),
        Some("p4")
    );
}

#[tokio::test]
async fn synonyms_apply_at_query_time() {
    let s = searcher().await;
    let tee = q(&s, "tee").await;
    assert!(tee.contains(&"p3".to_string()) && tee.contains(&"p8".to_string()));
    let tshirt = q(&s, "t-shirt").await;
    assert!(tshirt.contains(&"p3".to_string()) && tshirt.contains(&"p8".to_string()));
    let sneakers = q(&s, "sneakers").await;
    assert!(sneakers.contains(&"p5".to_string()) && sneakers.contains(&"p7".to_string()));
    let zh = q(&s, "运动鞋").await;
    assert!(zh.contains(&"p5".to_string()) && zh.contains(&"p7".to_string()));
    // Without synonyms configured, "sneakers" finds nothing.
    let plain =
        RulesSearcher::new("rules", SearchConfig::default(), Arc::new(Catalog::new())).unwrap();
    plain.upsert(products()).await.unwrap();
    assert!(q(&plain, "sneakers").await.is_empty());
}

#[tokio::test]
async fn empty_query_matches_all_in_id_order() {
    let s = searcher().await;
    let r = s
        .search(SearchRequest::new("").with_limit(100usize))
        .await
        .unwrap();
    assert_eq!(r.total, 10);
    let got: Vec<&str> = r.hits.iter().map(|h| h.product_id.as_str()).collect();
    let mut want = got.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(q(&s, "?!").await.is_empty());
}

#[tokio::test]
async fn every_filter_applies_with_filters_matches_semantics() {
    let s = searcher().await;
    let all = products();
    let filters = [
        Filters::new().with_category_prefix(["sports", "running"]),
        Filters::new().with_brand("PEAKLINE"),
        Filters::new().with_brand("basics").with_brand("toyland"),
        Filters::new().with_price(PriceRange::new(Some(cny(10000)), Some(cny(50000)))),
        Filters::new().with_price(PriceRange::new(None, Some(Money::new(5000, Currency::USD)))),
        Filters::new().with_in_stock(true),
        Filters::new().with_attribute("color", "BLUE"),
        Filters::new()
            .with_in_stock(true)
            .with_brand("Peakline")
            .with_category_prefix(["Sports"]),
    ];
    for f in filters {
        let got = ids(
            &s,
            SearchRequest::new("")
                .with_filters(f.clone())
                .with_limit(100usize),
        )
        .await;
        let mut want: Vec<String> = all
            .iter()
            .filter(|p| f.matches(p))
            .map(|p| p.id.as_str().to_string())
            .collect();
        want.sort();
        assert!(!want.is_empty(), "{f:?}");
        assert_eq!(got, want, "{f:?}");
    }
    // Filters combine with a query.
    let got = ids(
        &s,
        SearchRequest::new("running shoes").with_filters(Filters::new().with_in_stock(true)),
    )
    .await;
    assert_eq!(got, ["p1"]);
}

#[tokio::test]
async fn facets_count_all_matches_most_frequent_first() {
    let s = searcher().await;
    let req = SearchRequest::new("")
        .with_limit(1usize)
        .with_facet(Facet::Brand)
        .with_facet(Facet::Category { depth: 0 })
        .with_facet(Facet::Attribute {
            name: "color".into(),
        })
        .with_facet(Facet::Price {
            bounds: vec![cny(10000), cny(50000)],
        })
        .with_facet(Facet::InStock);
    let r = s.search(req.clone()).await.unwrap();
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.total, 10);
    assert_eq!(r.facets.len(), 5);
    for (fc, facet) in r.facets.iter().zip(&req.facets) {
        assert_eq!(fc.facet, facet.name());
        let mut want: std::collections::BTreeMap<String, u64> = Default::default();
        for p in products() {
            if let Some(l) = facet.labels(&p) {
                *want.entry(l).or_default() += 1;
            }
        }
        let mut want: Vec<(String, u64)> = want.into_iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(fc.counts, want, "{}", fc.facet);
    }
    assert_eq!(r.facets[0].counts[0], ("Peakline".to_string(), 3));
    // Facets follow the query and filters.
    let r = s
        .search(
            SearchRequest::new("shoes")
                .with_facet(Facet::InStock)
                .with_filters(Filters::new().with_category_prefix(["Sports"])),
        )
        .await
        .unwrap();
    // p1 and p2 by title, p7 by its category "Shoes".
    assert_eq!(r.total, 3);
    assert_eq!(
        r.facets[0].counts,
        [("in_stock".to_string(), 2), ("out_of_stock".to_string(), 1)]
    );
}

#[tokio::test]
async fn sorts_by_price_and_newest_with_id_ties() {
    let s = searcher().await;
    let only_cny = Filters::new().with_price(PriceRange::new(Some(cny(0)), None));
    let asc = ids(
        &s,
        SearchRequest::new("")
            .with_filters(only_cny.clone())
            .with_sort(SortBy::PriceAsc)
            .with_limit(100usize),
    )
    .await;
    assert_eq!(asc, ["p3", "p8", "p9", "p10", "p4", "p7", "p2", "p1", "p5"]);
    let desc = ids(
        &s,
        SearchRequest::new("")
            .with_filters(only_cny)
            .with_sort(SortBy::PriceDesc)
            .with_limit(100usize),
    )
    .await;
    let mut rev = asc.clone();
    rev.reverse();
    assert_eq!(desc, rev);
    let newest = ids(
        &s,
        SearchRequest::new("")
            .with_sort(SortBy::Newest)
            .with_limit(100usize),
    )
    .await;
    // Dated products newest first, then undated ones by id.
    assert_eq!(
        newest,
        ["p4", "p8", "p2", "p7", "p1", "p5", "p3", "p10", "p6", "p9"]
    );
    // A query with a price sort keeps only matches.
    let shoes = ids(
        &s,
        SearchRequest::new("running shoes").with_sort(SortBy::PriceAsc),
    )
    .await;
    assert_eq!(shoes, ["p2", "p1"]);
}

#[tokio::test]
async fn pages_are_disjoint_and_total_counts_all() {
    let s = searcher().await;
    let mut seen = Vec::new();
    for page in 0..4usize {
        let r = s
            .search(
                SearchRequest::new("")
                    .with_offset(page * 3)
                    .with_limit(3usize),
            )
            .await
            .unwrap();
        assert_eq!(r.total, 10);
        seen.extend(r.hits.into_iter().map(|h| h.product_id));
    }
    assert_eq!(seen.len(), 10);
    let uniq: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(uniq.len(), 10);
    let r = s
        .search(SearchRequest::new("").with_offset(50usize))
        .await
        .unwrap();
    assert!(r.hits.is_empty());
    assert_eq!(r.total, 10);
}

#[tokio::test]
async fn upsert_replaces_and_updates_the_catalog() {
    let catalog = Arc::new(Catalog::new());
    let s = RulesSearcher::new("rules", cfg(), catalog.clone()).unwrap();
    s.upsert(products()).await.unwrap();
    assert_eq!(catalog.len(), 10);
    let renamed = Product::new("p4", "Climbing rope", cny(19900)).with_brand("Peakline");
    let r = s.upsert(vec![renamed]).await.unwrap();
    assert_eq!(r.applied, 1);
    assert!(!q(&s, "backpack").await.contains(&"p4".to_string()));
    assert_eq!(q(&s, "rope").await, ["p4"]);
    assert_eq!(catalog.get(&"p4".into()).unwrap().title, "Climbing rope");
    let r = s.search(SearchRequest::new("")).await.unwrap();
    assert_eq!(r.total, 10);
}

#[tokio::test]
async fn invalid_products_are_rejected_without_failing_others() {
    let s = RulesSearcher::new("rules", cfg(), Arc::new(Catalog::new())).unwrap();
    let r = s
        .upsert(vec![
            Product::new("ok", "Wool socks", cny(1900)),
            Product::new("bad", "  ", cny(1900)),
            Product::new("neg", "Gloves", cny(-1)),
        ])
        .await
        .unwrap();
    assert_eq!(r.applied, 1);
    let rejected: Vec<&str> = r.rejected.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(rejected, ["bad", "neg"]);
    assert!(r.rejected[0].1.contains("title"));
    assert_eq!(q(&s, "socks").await, ["ok"]);
    assert!(q(&s, "gloves").await.is_empty());
}

#[tokio::test]
async fn remove_makes_products_disappear() {
    let catalog = Arc::new(Catalog::new());
    let s = RulesSearcher::new("rules", cfg(), catalog.clone()).unwrap();
    s.upsert(products()).await.unwrap();
    let r = s
        .remove(vec!["p1".into(), "nope".into(), "p1".into()])
        .await
        .unwrap();
    assert_eq!(r.applied, 1);
    assert!(catalog.get(&"p1".into()).is_none());
    for text in ["trail", "越野跑鞋", "running shoes", ""] {
        assert!(!q(&s, text).await.contains(&"p1".to_string()), "{text}");
    }
    assert_eq!(s.search(SearchRequest::new("")).await.unwrap().total, 9);
}

#[tokio::test]
async fn catalog_contents_are_indexed_at_construction() {
    let catalog = Arc::new(Catalog::new());
    catalog.upsert(products());
    let s = RulesSearcher::new("rules", cfg(), catalog).unwrap();
    assert_eq!(q(&s, "kettle").await, ["p9"]);
}

#[tokio::test]
async fn index_dir_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg().with_index_dir(dir.path().join("idx"));
    {
        let s = RulesSearcher::new("rules", c.clone(), Arc::new(Catalog::new())).unwrap();
        s.upsert(products()).await.unwrap();
        s.remove(vec!["p9".into()]).await.unwrap();
    }
    let catalog = Arc::new(Catalog::new());
    let s = RulesSearcher::new("rules", c.clone(), catalog.clone()).unwrap();
    assert_eq!(
        q(&s, "trail running").await.first().map(String::as_str),
        Some("p1")
    );
    assert!(q(&s, "kettle").await.is_empty());
    assert_eq!(s.search(SearchRequest::new("")).await.unwrap().total, 9);
    // The reopened products are back in the shared catalog.
    assert_eq!(catalog.len(), 9);
    // And the reopened index keeps accepting changes.
    s.upsert(vec![Product::new("p11", "Camping stove", cny(8900))])
        .await
        .unwrap();
    assert_eq!(q(&s, "stove").await, ["p11"]);
}

#[tokio::test]
async fn invalid_requests_name_the_field() {
    let s = searcher().await;
    let e = s
        .search(SearchRequest::new("x").with_limit(0usize))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("limit"));
    let e = s
        .search(SearchRequest::new("x").with_filters(
            Filters::new().with_price(PriceRange::new(Some(cny(500)), Some(cny(100)))),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("filters.price"));
    let e = s
        .search(SearchRequest::new("y".repeat(3000)))
        .await
        .unwrap_err();
    assert!(e.message().contains("query"));
    assert!(!e.message().contains("yyyy"));
}

#[tokio::test]
async fn semantic_requests_are_answered_by_keyword_search() {
    let s = searcher().await;
    let r = s
        .search(SearchRequest::new("backpack").with_mode(SearchMode::Semantic))
        .await
        .unwrap();
    assert_eq!(r.mode, SearchMode::Keyword);
    assert_eq!(r.hits[0].product_id.as_str(), "p4");
}

#[tokio::test]
async fn config_is_strict_and_checked() {
    let e: std::result::Result<SearchConfig, _> = toml::from_str("synonym = []");
    assert!(e.is_err());
    let c: SearchConfig =
        toml::from_str("synonyms = [[\"tee\", \"t-shirt\"]]\nindex_dir = \"/tmp/x\"").unwrap();
    assert_eq!(c.synonyms.len(), 1);
    let bad = SearchConfig::default().with_synonyms(["alone"]);
    let e = RulesSearcher::new("rules", bad, Arc::new(Catalog::new())).unwrap_err();
    assert!(e.message().contains("search.synonyms[0]"));
    let bad = SearchConfig {
        writer_memory_mb: 1,
        ..SearchConfig::default()
    };
    let e = RulesSearcher::new("rules", bad, Arc::new(Catalog::new())).unwrap_err();
    assert!(e.message().contains("writer_memory_mb"));
}

#[tokio::test]
async fn odd_input_never_panics() {
    let s = searcher().await;
    for text in [
        "\u{0}",
        "🦀🦀",
        "a",
        "ß",
        "ＡＢＣ",
        "   ",
        "a-b-c-d-e-f-g",
        "漢",
        "--",
        "x y z w v u",
    ] {
        s.search(SearchRequest::new(text)).await.unwrap();
    }
    s.search(SearchRequest::new("shoes").with_offset(usize::MAX))
        .await
        .unwrap();
}

#[tokio::test]
async fn bulk_upsert_is_merged_and_stays_maintainable() {
    let catalog = Arc::new(Catalog::new());
    let s = RulesSearcher::new("rules", cfg(), catalog.clone()).unwrap();
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    let bulk: Vec<Product> = (0..12_000)
        .map(|i| {
            Product::new(
                format!("b{i:05}"),
                format!("{} {} item{i}", words[i % 7], words[(i / 7) % 7]),
                cny(100 + i as i64),
            )
        })
        .collect();
    let r = s.upsert(bulk).await.unwrap();
    assert_eq!(r.applied, 12_000);
    assert!(format!("{s:?}").contains("segments: 1"), "{s:?}");
    assert_eq!(catalog.len(), 12_000);
    assert_eq!(q(&s, "item4242").await, ["b04242"]);
    // Small changes after a bulk load still apply.
    s.upsert(vec![Product::new("b04242", "zulu", cny(1))])
        .await
        .unwrap();
    assert!(q(&s, "item4242").await.is_empty());
    s.remove(vec!["b00001".into()]).await.unwrap();
    let r = s.search(SearchRequest::new("")).await.unwrap();
    assert_eq!(r.total, 11_999);
}

#[tokio::test]
async fn index_dir_with_another_schema_is_a_config_error() {
    use tantivy::schema::{STORED, STRING, Schema};
    let dir = tempfile::tempdir().unwrap();
    let mut b = Schema::builder();
    b.add_text_field("other", STRING | STORED);
    tantivy::Index::create_in_dir(dir.path(), b.build()).unwrap();
    let e = RulesSearcher::new(
        "rules",
        cfg().with_index_dir(dir.path()),
        Arc::new(Catalog::new()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("search.index_dir"), "{e}");
}
