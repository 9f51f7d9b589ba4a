//! Semantic search and embedding recommendations over the deterministic hash embedder: the
//! contract suite, reranking, re-embedding only what changed, bad embedder answers, the
//! profile, business rules and config.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use merchant_ai::business_rules::{BusinessRules, PinRule};
use merchant_ai::chrono::Duration;
use merchant_ai::contract::{Suite, fixtures};
use merchant_ai::embedding::{
    EmbedPurpose, EmbedRequest, Embedder, Embeddings, RerankRequest, RerankScore, Reranked,
    Reranker,
};
use merchant_ai::semantic::{
    EmbeddingRecommendConfig, HashEmbedder, SemanticConfig, SemanticSearchConfig, SemanticStack,
};
use merchant_ai::{
    Capabilities, ChatModel, ErrorKind, Event, EventKind, Facet, Filters, Forecaster, Product,
    Provider, ProviderInfo, ReasonKind, RecommendRequest, Recommender, Result, Scene, SearchMode,
    SearchRequest, Searcher, SortBy, Usage, async_trait,
};

/// The hash embedder, counting calls and texts, with optional misbehaviour.
#[derive(Debug)]
struct Counting {
    inner: HashEmbedder,
    calls: AtomicUsize,
    texts: AtomicUsize,
    purposes: Mutex<Vec<EmbedPurpose>>,
    /// Answer with one vector too few.
    short: Mutex<bool>,
    /// Answer with vectors of another dimension.
    other_dim: Mutex<Option<usize>>,
}

impl Counting {
    fn new() -> Arc<Self> {
        Arc::new(Counting {
            inner: HashEmbedder::new(256).unwrap(),
            calls: AtomicUsize::new(0),
            texts: AtomicUsize::new(0),
            purposes: Mutex::new(Vec::new()),
            short: Mutex::new(false),
            other_dim: Mutex::new(None),
        })
    }
}

#[async_trait]
impl Embedder for Counting {
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn dimension(&self) -> Option<usize> {
        self.inner.dimension()
    }
    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(req.texts.len(), Ordering::SeqCst);
        self.purposes.lock().unwrap().push(req.purpose);
        let mut e = self.inner.embed(req).await?;
        if *self.short.lock().unwrap() {
            e.vectors.pop();
        }
        if let Some(d) = *self.other_dim.lock().unwrap() {
            for v in &mut e.vectors {
                v.resize(d, 0.5);
            }
        }
        Ok(e.with_usage(Usage::new().with_input_tokens(7u64)))
    }
}

/// A provider offering the semantic searcher and recommender.
#[derive(Debug)]
struct SemanticProvider {
    info: ProviderInfo,
    stack: SemanticStack,
}

impl SemanticProvider {
    fn new(config: SemanticConfig) -> Arc<Self> {
        let stack = config
            .build("semantic", Arc::new(HashEmbedder::new(256).unwrap()), None)
            .unwrap();
        Arc::new(SemanticProvider {
            info: ProviderInfo::local(
                "semantic",
                "hash",
                Capabilities::none().with_search().with_recommend(),
            ),
            stack,
        })
    }
}

impl Provider for SemanticProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        Some(self.stack.searcher.clone())
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        Some(self.stack.recommender.clone())
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

#[tokio::test]
async fn contract_suite_passes() {
    let report = Suite::new(SemanticProvider::new(SemanticConfig::default()))
        .run()
        .await;
    report.print();
    report.assert_passed();
    assert!(report.passed().len() >= 12, "{:?}", report.passed());
}

#[tokio::test]
async fn contract_suite_passes_with_business_rules() {
    let mut cfg = SemanticConfig::default();
    cfg.recommend = EmbeddingRecommendConfig::new().with_rules(
        BusinessRules::new()
            .with_max_per_category(2, 2)
            .with_min_margin(0.1),
    );
    let report = Suite::new(SemanticProvider::new(cfg)).run().await;
    report.assert_passed();
}

fn ids(hits: &[merchant_ai::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.product_id.as_str()).collect()
}

async fn loaded(embedder: Arc<dyn Embedder>) -> SemanticStack {
    let s = SemanticConfig::default()
        .build("sem", embedder, None)
        .unwrap();
    let r = s.searcher.upsert(fixtures::catalog()).await.unwrap();
    assert_eq!(r.applied, 12);
    s
}

#[tokio::test]
async fn search_finds_by_meaning_of_spelling_and_reports_meta() {
    let e = Counting::new();
    let s = loaded(e.clone()).await;
    let r = s
        .searcher
        .search(SearchRequest::new("teapots"))
        .await
        .unwrap();
    assert_eq!(ids(&r.hits)[0], "ct-005");
    assert_eq!(r.mode, SearchMode::Semantic);
    assert_eq!(r.meta.model.as_deref(), Some("hash-trigram-256"));
    assert_eq!(r.meta.usage.input_tokens, Some(7));
    assert!(r.total >= 1 && r.total <= 12);
    assert_eq!(
        *e.purposes.lock().unwrap(),
        vec![EmbedPurpose::Document, EmbedPurpose::Query]
    );
    // Every hit carries its record.
    assert!(r.hits.iter().all(|h| h.product.is_some()));
}

#[tokio::test]
async fn unchanged_products_are_not_embedded_again() {
    let e = Counting::new();
    let s = loaded(e.clone()).await;
    assert_eq!(
        (
            e.calls.load(Ordering::SeqCst),
            e.texts.load(Ordering::SeqCst)
        ),
        (1, 12)
    );
    // Same catalog again: no call.
    s.searcher.upsert(fixtures::catalog()).await.unwrap();
    assert_eq!(e.calls.load(Ordering::SeqCst), 1);
    // A stock change only: no call, but the record is updated (filters see it).
    let p = fixtures::product("ct-002").with_stock(5);
    s.searcher.upsert(vec![p]).await.unwrap();
    assert_eq!(e.calls.load(Ordering::SeqCst), 1);
    let r = s
        .searcher
        .search(
            SearchRequest::new("")
                .with_filters(Filters::new().with_in_stock(true))
                .with_limit(50),
        )
        .await
        .unwrap();
    assert!(ids(&r.hits).contains(&"ct-002"));
    // A title change: one text embedded.
    let p = fixtures::product("ct-002").with_description("Now with a carbon plate.");
    s.searcher.upsert(vec![p]).await.unwrap();
    assert_eq!(
        (
            e.calls.load(Ordering::SeqCst),
            e.texts.load(Ordering::SeqCst)
        ),
        (2, 13)
    );
}

#[tokio::test]
async fn invalid_products_are_rejected_by_name_and_the_rest_applied() {
    let s = SemanticConfig::default()
        .build("sem", Counting::new(), None)
        .unwrap();
    let mut bad = fixtures::product("ct-001");
    bad.title = "  ".into();
    let r = s
        .searcher
        .upsert(vec![bad, fixtures::product("ct-002")])
        .await
        .unwrap();
    assert_eq!(r.applied, 1);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].0.as_str(), "ct-001");
    assert!(r.rejected[0].1.contains("title"), "{}", r.rejected[0].1);
}

#[tokio::test]
async fn bad_embedder_answers_are_errors_not_panics() {
    let e = Counting::new();
    let s = SemanticConfig::default()
        .build("sem", e.clone(), None)
        .unwrap();
    *e.short.lock().unwrap() = true;
    let err = s.searcher.upsert(fixtures::catalog()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.message().contains("11 vectors for 12 texts"), "{err}");
    assert!(s.store.is_empty());
    *e.short.lock().unwrap() = false;
    s.searcher.upsert(fixtures::catalog()).await.unwrap();

    // The model now answers another dimension than the index holds: a config error naming both.
    *e.other_dim.lock().unwrap() = Some(128);
    let err = s
        .searcher
        .upsert(vec![
            fixtures::product("ct-002").with_description("changed"),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(
        err.message().contains("128") && err.message().contains("256"),
        "{err}"
    );
    let err = s
        .searcher
        .search(SearchRequest::new("teapot"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    *e.other_dim.lock().unwrap() = None;

    // A query of no words: no match, no error.
    let r = s
        .searcher
        .search(SearchRequest::new("!!! ???"))
        .await
        .unwrap();
    assert_eq!((r.total, r.hits.len()), (0, 0));
}

#[tokio::test]
async fn sorts_facets_and_paging_over_the_matches() {
    let s = loaded(Counting::new()).await;
    let q = || SearchRequest::new("running shoe socks").with_limit(3);
    let all = s.searcher.search(q().with_limit(50)).await.unwrap();
    let p1 = s.searcher.search(q()).await.unwrap();
    let p2 = s.searcher.search(q().with_offset(3)).await.unwrap();
    let joined: Vec<&str> = ids(&p1.hits).into_iter().chain(ids(&p2.hits)).collect();
    assert_eq!(joined, ids(&all.hits)[..joined.len()].to_vec());
    assert!(all.hits.windows(2).all(|w| w[0].score >= w[1].score));
    let r = s
        .searcher
        .search(
            q().with_sort(SortBy::PriceAsc)
                .with_facet(Facet::Brand)
                .with_limit(50),
        )
        .await
        .unwrap();
    let prices: Vec<i64> = r
        .hits
        .iter()
        .map(|h| h.product.as_ref().unwrap().price.minor)
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    let sum: u64 = r.facets[0].counts.iter().map(|c| c.1).sum();
    assert_eq!(sum, r.total);
    assert_eq!(r.total, all.total);
}

/// A reranker that prefers documents mentioning "Woolly", recording what it got.
#[derive(Debug, Default)]
struct Woolly {
    seen: Mutex<Vec<(usize, Option<usize>)>>,
    bad_index: bool,
}

#[async_trait]
impl Reranker for Woolly {
    fn model(&self) -> &str {
        "woolly-rerank"
    }
    async fn rerank(&self, req: RerankRequest) -> Result<Reranked> {
        self.seen
            .lock()
            .unwrap()
            .push((req.documents.len(), req.top_n));
        let mut results: Vec<RerankScore> = req
            .documents
            .iter()
            .enumerate()
            .map(|(i, d)| RerankScore::new(i, if d.contains("Woolly") { 0.9 } else { 0.1 }))
            .collect();
        if self.bad_index {
            results.push(RerankScore::new(req.documents.len(), 1.0));
        }
        results.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(Reranked::new(results, "woolly-rerank").with_usage(Usage::new().with_units(1u64)))
    }
}

#[tokio::test]
async fn rerank_reorders_the_window_and_keeps_scores_ordered() {
    let rr = Arc::new(Woolly::default());
    let cfg = SemanticConfig::new().with_search(SemanticSearchConfig::new().with_rerank_window(4));
    let s = cfg
        .build(
            "sem",
            Arc::new(HashEmbedder::new(256).unwrap()),
            Some(rr.clone()),
        )
        .unwrap();
    s.searcher.upsert(fixtures::catalog()).await.unwrap();
    let r = s
        .searcher
        .search(SearchRequest::new("running shoe socks").with_limit(10))
        .await
        .unwrap();
    assert_eq!(ids(&r.hits)[0], "ct-003", "{:?}", ids(&r.hits));
    assert!(r.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(
        r.meta.model.as_deref(),
        Some("hash-trigram-256 + woolly-rerank")
    );
    assert_eq!(r.meta.usage.units, Some(2));
    let (docs, top_n) = rr.seen.lock().unwrap()[0];
    assert!(docs <= 4 && top_n == Some(docs));
    // A page beyond the window is not reranked.
    s.searcher
        .search(SearchRequest::new("running shoe socks").with_offset(4))
        .await
        .unwrap();
    assert_eq!(rr.seen.lock().unwrap().len(), 1);

    let bad = Arc::new(Woolly {
        bad_index: true,
        ..Woolly::default()
    });
    let s = SemanticConfig::default()
        .build("sem", Arc::new(HashEmbedder::new(256).unwrap()), Some(bad))
        .unwrap();
    s.searcher.upsert(fixtures::catalog()).await.unwrap();
    let e = s
        .searcher
        .search(SearchRequest::new("running"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("beyond"), "{e}");
}

fn at(min: i64) -> merchant_ai::chrono::DateTime<merchant_ai::chrono::Utc> {
    fixtures::base_time() + Duration::minutes(min)
}

#[tokio::test]
async fn profile_follows_recent_weighty_items() {
    let s = loaded(Counting::new()).await;
    let rec = &s.recommender;
    // Long ago: bought tea things. Recently: viewed running shoes.
    rec.record(vec![
        Event::new("u1", "ct-005", EventKind::Purchase, at(0)),
        Event::new("u1", "ct-001", EventKind::View, at(60 * 24 * 60)),
        Event::new("u1", "ct-002", EventKind::View, at(60 * 24 * 60 + 1)),
    ])
    .await
    .unwrap();
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::Home)
                .with_subject("u1")
                .with_limit(3),
        )
        .await
        .unwrap();
    let first = r.items[0].product.as_ref().unwrap();
    assert_eq!(first.category[0], "Sports", "{:?}", r.items);
    assert_eq!(r.items[0].reason.kind, ReasonKind::Personalized);
    assert!(
        r.items[0].reason.detail.contains("running shoe"),
        "{:?}",
        r.items[0].reason
    );
    assert!(r.trace_id.as_deref().unwrap().starts_with("emb-"));
    // Bought items are never recommended back (drop_bought), viewed ones may be.
    assert!(r.items.iter().all(|i| i.product_id.as_str() != "ct-005"));
    // Same request, same answer.
    let again = rec
        .recommend(
            RecommendRequest::new(Scene::Home)
                .with_subject("u1")
                .with_limit(3),
        )
        .await
        .unwrap();
    assert_eq!(r.items, again.items);
}

#[tokio::test]
async fn erasure_drops_a_subjects_history() {
    let s = loaded(Counting::new()).await;
    let rec = &s.recommender;
    rec.record(vec![
        Event::new("u1", "ct-005", EventKind::Purchase, at(0)),
        Event::new("u1", "ct-001", EventKind::View, at(10)),
        Event::new("u2", "ct-002", EventKind::View, at(11)),
    ])
    .await
    .unwrap();
    let home = |who: &str| {
        RecommendRequest::new(Scene::Home)
            .with_subject(who)
            .with_limit(3)
    };
    let stranger = rec.recommend(home("nobody")).await.unwrap();
    assert_ne!(
        rec.recommend(home("u1")).await.unwrap().items,
        stranger.items
    );
    let eraser: Arc<dyn merchant_ai::erasure::SubjectEraser> = rec.clone();
    // Two events, one purchase, one last purchase.
    assert_eq!(eraser.forget(&"u1".into()).await.unwrap(), 4);
    assert_eq!(eraser.forget(&"u1".into()).await.unwrap(), 0);
    // u1 is a stranger now; u2 is untouched.
    assert_eq!(
        rec.recommend(home("u1")).await.unwrap().items,
        stranger.items
    );
    assert_ne!(
        rec.recommend(home("u2")).await.unwrap().items,
        stranger.items
    );
}

#[tokio::test]
async fn anchor_similar_items_with_reasons_and_rules() {
    let s = loaded(Counting::new()).await;
    let rec = &s.recommender;
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor("ct-001")
                .with_limit(3),
        )
        .await
        .unwrap();
    // ct-002 (Road running shoe) is out of stock: dropped by the default rules.
    assert!(!r.items.iter().any(|i| i.product_id.as_str() == "ct-002"));
    assert!(!r.items.iter().any(|i| i.product_id.as_str() == "ct-001"));
    assert_eq!(r.items[0].reason.kind, ReasonKind::Similar);
    assert_eq!(r.items[0].reason.detail, "similar to Trail running shoe");

    // A pin goes first, whatever the similarity.
    let cfg = SemanticConfig::new().with_recommend(
        EmbeddingRecommendConfig::new()
            .with_rules(BusinessRules::new().with_pin(PinRule::new("ct-009", 1))),
    );
    let s = cfg
        .build("sem", Arc::new(HashEmbedder::new(256).unwrap()), None)
        .unwrap();
    s.searcher.upsert(fixtures::catalog()).await.unwrap();
    let r = s
        .recommender
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor("ct-001")
                .with_limit(3),
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].product_id.as_str(), "ct-009");
    assert_eq!(r.items[0].reason.kind, ReasonKind::Pinned);
}

#[tokio::test]
async fn cold_start_answers_from_popularity_then_the_catalog() {
    let s = loaded(Counting::new()).await;
    let r = s
        .recommender
        .recommend(RecommendRequest::new(Scene::Home).with_limit(4))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 4);
    assert!(r.items.iter().all(|i| i.reason.kind == ReasonKind::Popular));
    s.recommender.record(fixtures::events()).await.unwrap();
    let r = s
        .recommender
        .recommend(
            RecommendRequest::new(Scene::Home)
                .with_subject("nobody")
                .with_limit(2),
        )
        .await
        .unwrap();
    assert_eq!(r.items[0].reason.detail, "popular now");
    // Empty store: still answers, with nothing.
    let empty = SemanticConfig::default()
        .build("sem", Counting::new(), None)
        .unwrap();
    let r = empty
        .recommender
        .recommend(RecommendRequest::new(Scene::Cart).with_session_items(["x"]))
        .await
        .unwrap();
    assert!(r.items.is_empty());
}

#[tokio::test]
async fn cart_recommends_like_the_cart_and_never_its_items() {
    let s = loaded(Counting::new()).await;
    let r = s
        .recommender
        .recommend(
            RecommendRequest::new(Scene::Cart)
                .with_session_items(["ct-005"])
                .with_limit(2),
        )
        .await
        .unwrap();
    assert!(r.items.iter().all(|i| i.product_id.as_str() != "ct-005"));
    assert_eq!(r.items[0].reason.detail, "similar to the items in the cart");
}

#[test]
fn config_names_bad_keys_and_values() {
    let e = toml::from_str::<SemanticConfig>("[search]\nmin_scor = 0.1").unwrap_err();
    assert!(e.to_string().contains("min_scor"), "{e}");
    let c: SemanticConfig = toml::from_str(
        "[search]\nmin_score = 0.2\n[recommend]\nhalf_life_days = 3.0\n[recommend.weights]\nview = 0.5\n[recommend.rules]\nmax_per_category = 2",
    )
    .unwrap();
    assert_eq!(c.search.min_score, 0.2);
    assert_eq!(c.recommend.weights.view, 0.5);
    c.validate().unwrap();
    let bad: SemanticConfig = toml::from_str("[recommend]\nhalf_life_days = 0.0").unwrap();
    let e = bad.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("half_life_days"), "{e}");
    let bad: SemanticConfig = toml::from_str("[search]\nmin_score = 2.0").unwrap();
    assert!(bad.validate().unwrap_err().message().contains("min_score"));
}

#[test]
fn debug_output_holds_no_text() {
    let s = SemanticConfig::default()
        .build("sem", Counting::new(), None)
        .unwrap();
    let d = format!("{:?}", s);
    assert!(d.contains("EmbeddingStore"));
    let p = Product::new(
        "x",
        "secret title",
        merchant_ai::Money::new(1, merchant_ai::Currency::CNY),
    );
    let _ = p;
    assert!(!d.contains("secret"));
}

/// Builds semantic providers over the hash embedder (`kind = "hash"`).
struct HashFactory;

#[async_trait]
impl merchant_ai::AdapterFactory for HashFactory {
    fn kind(&self) -> &str {
        "hash"
    }
    fn capabilities(&self, _: &merchant_ai::ProviderConfig) -> Result<Capabilities> {
        Ok(Capabilities::none().with_search().with_recommend())
    }
    async fn build(&self, ctx: merchant_ai::BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let cfg: SemanticConfig = ctx.provider.options_as()?;
        let stack = cfg.build(ctx.provider.name(), Arc::new(HashEmbedder::new(256)?), None)?;
        Ok(Arc::new(SemanticProvider {
            info: ProviderInfo::local(
                ctx.provider.name(),
                "hash",
                Capabilities::none().with_search().with_recommend(),
            ),
            stack,
        }))
    }
}

const HYBRID: &str = r#"
default_profile = "shop"
[providers.rules]
kind = "rules"
[providers.sem]
kind = "hash"
[providers.sem.search]
min_score = 0.05
[profiles.shop.routes]
recommend = ["sem", "rules"]
[profiles.shop.hybrid.search]
semantic = "sem"
keyword = ["rules"]
k = 30.0
"#;

fn registry() -> merchant_ai::Registry {
    merchant_ai::Registry::new()
        .with(merchant_ai_rules::factory())
        .with(HashFactory)
}

#[tokio::test]
async fn hybrid_search_route_from_config() {
    let config = merchant_ai::Config::parse(HYBRID).unwrap();
    let h = config.profile(None).unwrap().hybrid_search().unwrap();
    assert_eq!(
        (h.semantic.clone(), h.keyword.clone()),
        (vec!["sem".to_owned()], vec!["rules".to_owned()])
    );
    assert_eq!(h.config.k, 30.0);
    let client = registry().build(&config, None).await.unwrap();
    let table = client.routes().to_string();
    assert!(
        table.contains(
            "hybrid: semantic [sem (hash, in-process)] + keyword [rules (rules, in-process)]"
        ),
        "{table}"
    );
    let s = client.searcher().unwrap();
    let rep = s.upsert(fixtures::catalog()).await.unwrap();
    assert_eq!(rep.applied, 12, "{rep:?}");
    let r = s.search(SearchRequest::new("teapot")).await.unwrap();
    assert_eq!(r.mode, SearchMode::Hybrid);
    assert_eq!(r.meta.provider, "hybrid");
    assert_eq!(r.hits[0].product_id.as_str(), "ct-005");
    // Misspelt: the keyword side's typo tolerance and the semantic side's trigrams both help.
    let r = s.search(SearchRequest::new("teapots")).await.unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "ct-005");
}

#[test]
fn hybrid_config_errors_name_the_key() {
    let bad = |from: &str, to: &str| {
        let text = HYBRID.replace(from, to);
        match merchant_ai::Config::parse(&text) {
            Err(e) => e.message().to_owned(),
            Ok(c) => match registry().validate(&c, None) {
                Err(e) => e.message().to_owned(),
                Ok(_) => panic!("accepted: {text}"),
            },
        }
    };
    let e = bad("k = 30.0", "kk = 30.0");
    assert!(
        e.contains("profiles.shop.hybrid.search") && e.contains("kk"),
        "{e}"
    );
    let e = bad("k = 30.0", "k = -1.0");
    assert!(e.contains("profiles.shop.hybrid.search.k must be"), "{e}");
    let e = bad("semantic = \"sem\"", "semantic = \"nope\"");
    assert!(
        e.contains("profiles.shop.hybrid.search.semantic[0]: provider \"nope\" is not defined"),
        "{e}"
    );
    let e = bad("semantic = \"sem\"", "");
    assert!(
        e.contains("profiles.shop.hybrid.search.semantic: missing"),
        "{e}"
    );
    let e = bad(
        "[profiles.shop.hybrid.search]",
        "[profiles.shop.hybrid.chat]",
    );
    assert!(e.contains("profiles.shop.hybrid.chat: unknown key"), "{e}");
    let e = bad("recommend = [\"sem\", \"rules\"]", "search = [\"rules\"]");
    assert!(
        e.contains("profiles.shop.routes.search: the search route is profiles.shop.hybrid.search"),
        "{e}"
    );
}
