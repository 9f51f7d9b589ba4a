//! Hybrid search: RRF values, fusion, mode routing, one side failing, paging, writes, and the
//! contract suite over two scripted searchers.

use std::sync::{Arc, Mutex};

use merchant_ai::contract::{Fault, RetryAfterForm, ScriptedProvider, Suite, fixtures};
use merchant_ai::hybrid::{HybridConfig, HybridSearcher, rrf};
use merchant_ai::{
    Capabilities, Capability, ChatModel, Error, ErrorKind, Facet, Filters, Forecaster, IndexReport,
    Product, ProductId, Provider, ProviderInfo, Recommender, ResponseMeta, Result, SearchHit,
    SearchMode, SearchRequest, SearchResponse, Searcher, SortBy, Usage, async_trait,
};

fn id(s: &str) -> ProductId {
    ProductId::new(s)
}

fn ids(r: &SearchResponse) -> Vec<String> {
    r.hits.iter().map(|h| h.product_id.to_string()).collect()
}

/// A searcher answering a fixed ranking (or an error), recording the requests it got.
#[derive(Debug)]
struct Fixed {
    name: &'static str,
    ranking: Vec<&'static str>,
    mode: SearchMode,
    error: Mutex<Option<Error>>,
    seen: Mutex<Vec<SearchRequest>>,
}

impl Fixed {
    fn new(name: &'static str, ranking: Vec<&'static str>, mode: SearchMode) -> Arc<Self> {
        Arc::new(Fixed {
            name,
            ranking,
            mode,
            error: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        })
    }
    fn failing(self: &Arc<Self>, e: Error) -> Arc<Self> {
        *self.error.lock().unwrap() = Some(e);
        self.clone()
    }
    fn last_limit(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .last()
            .map(|r| r.limit)
            .unwrap_or(0)
    }
}

#[async_trait]
impl Searcher for Fixed {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        match self.error.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(IndexReport::new(products.len())),
        }
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        match self.error.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(IndexReport::new(ids.len())),
        }
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.seen.lock().unwrap().push(req.clone());
        if let Some(e) = self.error.lock().unwrap().clone() {
            return Err(e);
        }
        let n = self.ranking.len();
        let hits = self
            .ranking
            .iter()
            .enumerate()
            .skip(req.offset)
            .take(req.limit)
            .map(|(i, p)| SearchHit::new(*p, (n - i) as f32))
            .collect();
        Ok(SearchResponse::new(
            hits,
            n as u64,
            ResponseMeta::new(self.name).with_usage(Usage::new().with_units(1)),
        )
        .with_mode(self.mode))
    }
}

fn hybrid(sem: &Arc<Fixed>, kw: &Arc<Fixed>) -> HybridSearcher {
    HybridSearcher::new("hyb", sem.clone(), kw.clone())
}

#[test]
fn rrf_matches_hand_computed_values() {
    // semantic: a b c ; keyword: c a d ; k = 60
    let fused = rrf(
        &[
            (1.0, vec![id("a"), id("b"), id("c")]),
            (1.0, vec![id("c"), id("a"), id("d")]),
        ],
        60.0,
    );
    let want = [
        ("a", 1.0 / 61.0 + 1.0 / 62.0),
        ("c", 1.0 / 63.0 + 1.0 / 61.0),
        ("b", 1.0 / 62.0),
        ("d", 1.0 / 63.0),
    ];
    assert_eq!(fused.len(), 4);
    for ((got_id, got), (want_id, w)) in fused.iter().zip(want) {
        assert_eq!(got_id.as_str(), want_id);
        assert!((f64::from(*got) - w).abs() < 1e-7, "{got_id}: {got} vs {w}");
    }
    // weights and k
    let fused = rrf(&[(2.0, vec![id("x")]), (0.5, vec![id("y"), id("x")])], 1.0);
    assert_eq!(fused[0].0, id("x"));
    assert!((fused[0].1 - (2.0 / 2.0 + 0.5 / 3.0)).abs() < 1e-6);
    assert!((fused[1].1 - 0.25).abs() < 1e-7);
    // ties by id; duplicates inside one list count once; empty input
    let fused = rrf(&[(1.0, vec![id("b"), id("b")]), (1.0, vec![id("a")])], 60.0);
    assert_eq!(fused, vec![(id("a"), 1.0 / 61.0), (id("b"), 1.0 / 61.0)]);
    assert!(rrf(&[], 60.0).is_empty());
    // a bad k or weight never yields a non-finite score
    for (w, k) in [(1.0, -61.0), (1.0, f32::NAN), (f32::INFINITY, 60.0)] {
        assert!(
            rrf(&[(w, vec![id("a")])], k)
                .iter()
                .all(|(_, s)| s.is_finite())
        );
    }
}

#[tokio::test]
async fn fusion_promotes_items_both_sides_found() {
    let sem = Fixed::new("vec", vec!["s1", "both", "s2", "s3"], SearchMode::Semantic);
    let kw = Fixed::new("bm25", vec!["k1", "k2", "both", "k3"], SearchMode::Keyword);
    let h = hybrid(&sem, &kw);
    let r = h
        .search(SearchRequest::new("q").with_limit(3))
        .await
        .unwrap();
    assert_eq!(ids(&r)[0], "both", "{:?}", ids(&r));
    // then s1 and k1 tie at 1/61: by id
    assert_eq!(ids(&r), vec!["both", "k1", "s1"]);
    assert!((r.hits[0].score - (1.0 / 62.0 + 1.0 / 63.0)).abs() < 1e-7);
    assert!(r.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(r.mode, SearchMode::Hybrid);
    assert_eq!(r.meta.provider, "hyb");
    assert_eq!(r.total, 7, "union of the candidates");
    assert_eq!(r.meta.usage.units, Some(2));
    // each side was asked for the candidate window, not the page
    assert_eq!(sem.last_limit(), 100);
    assert_eq!(kw.last_limit(), 100);
    // weights shift the balance
    let h = hybrid(&sem, &kw)
        .with_config(HybridConfig::new().with_weights(0.0, 1.0))
        .unwrap();
    let r = h
        .search(SearchRequest::new("q").with_limit(4))
        .await
        .unwrap();
    assert_eq!(ids(&r), vec!["k1", "k2", "both", "k3"]);
}

#[tokio::test]
async fn modes_route_to_one_side_or_both() {
    let sem = Fixed::new("vec", vec!["s1", "s2"], SearchMode::Semantic);
    let kw = Fixed::new("bm25", vec!["k1", "k2"], SearchMode::Keyword);
    let h = hybrid(&sem, &kw);
    let r = h
        .search(SearchRequest::new("q").with_mode(SearchMode::Keyword))
        .await
        .unwrap();
    assert_eq!(
        (ids(&r), r.mode),
        (vec!["k1".into(), "k2".into()], SearchMode::Keyword)
    );
    assert_eq!(r.meta.provider, "hyb");
    assert_eq!(sem.seen.lock().unwrap().len(), 0);
    let r = h
        .search(SearchRequest::new("q").with_mode(SearchMode::Semantic))
        .await
        .unwrap();
    assert_eq!(
        (ids(&r), r.mode),
        (vec!["s1".into(), "s2".into()], SearchMode::Semantic)
    );
    assert_eq!(kw.seen.lock().unwrap().len(), 1);
    for mode in [SearchMode::Auto, SearchMode::Hybrid] {
        let r = h
            .search(SearchRequest::new("q").with_mode(mode))
            .await
            .unwrap();
        assert_eq!(r.mode, SearchMode::Hybrid);
        assert_eq!(r.hits.len(), 4);
    }
    // a non-relevance sort is answered in the keyword side's order
    let r = h
        .search(SearchRequest::new("q").with_sort(SortBy::PriceAsc))
        .await
        .unwrap();
    assert_eq!(ids(&r), vec!["k1", "k2"]);
    // an invalid request is refused before either side is asked
    let before = kw.seen.lock().unwrap().len();
    let e = h
        .search(SearchRequest::new("q").with_limit(0))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(kw.seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn paging_is_applied_after_fusion() {
    let sem = Fixed::new("vec", vec!["a", "b", "c", "d", "e"], SearchMode::Semantic);
    let kw = Fixed::new("bm25", vec!["e", "d", "x", "a"], SearchMode::Keyword);
    let h = hybrid(&sem, &kw);
    let all = ids(&h
        .search(SearchRequest::new("q").with_limit(20))
        .await
        .unwrap());
    assert_eq!(all.len(), 6);
    let mut paged = Vec::new();
    for offset in (0..8).step_by(2) {
        let r = h
            .search(SearchRequest::new("q").with_limit(2).with_offset(offset))
            .await
            .unwrap();
        assert!(r.hits.len() <= 2);
        assert_eq!(r.total, 6);
        paged.extend(ids(&r));
    }
    assert_eq!(paged, all);
    // a small window: the page end times the factor, at least min_window
    let h = hybrid(&sem, &kw)
        .with_config(HybridConfig::new().with_window(2, 3, 1000))
        .unwrap();
    h.search(SearchRequest::new("q").with_limit(1))
        .await
        .unwrap();
    assert_eq!(sem.last_limit(), 3);
    h.search(SearchRequest::new("q").with_limit(4).with_offset(6))
        .await
        .unwrap();
    assert_eq!(sem.last_limit(), 20);
    assert_eq!(sem.seen.lock().unwrap().last().unwrap().offset, 0);
    h.search(SearchRequest::new("q").with_limit(1000).with_offset(5000))
        .await
        .unwrap();
    assert_eq!(sem.last_limit(), 1000, "capped at the maximum limit");
}

#[test]
fn config_is_validated_and_deserializes_with_defaults() {
    let sem = Fixed::new("vec", vec![], SearchMode::Semantic);
    let kw = Fixed::new("bm25", vec![], SearchMode::Keyword);
    for bad in [
        HybridConfig::new().with_k(-1.0),
        HybridConfig::new().with_k(f32::NAN),
        HybridConfig::new().with_weights(0.0, 0.0),
        HybridConfig::new().with_weights(-1.0, 1.0),
        HybridConfig::new().with_window(0, 1, 10),
        HybridConfig::new().with_window(3, 1, 1001),
        HybridConfig::new().with_window(3, 20, 10),
    ] {
        let e = hybrid(&sem, &kw).with_config(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.message().contains("hybrid."), "{}", e.message());
    }
    let c: HybridConfig = toml::from_str("k = 20.0\nkeyword_weight = 2.0\n").unwrap();
    assert_eq!(c, HybridConfig::new().with_k(20.0).with_weights(1.0, 2.0));
    assert!(toml::from_str::<HybridConfig>("kk = 1.0").is_err());
    assert_eq!(HybridConfig::new().window(10), 100);
    assert_eq!(HybridConfig::new().window(400), 1000);
}

fn scripted_pair() -> (ScriptedProvider, ScriptedProvider, HybridSearcher) {
    let sem = ScriptedProvider::new("sem");
    let kw = ScriptedProvider::new("kw");
    let h = HybridSearcher::new("hyb", sem.searcher().unwrap(), kw.searcher().unwrap());
    (sem, kw, h)
}

#[tokio::test]
async fn one_side_failing_transiently_is_answered_by_the_other() {
    let faults = [
        Fault::RateLimited(RetryAfterForm::Seconds(2)),
        Fault::ServerError(503),
        Fault::Timeout,
        Fault::ConnectionReset,
    ];
    for fault in faults {
        for semantic_fails in [true, false] {
            let (sem, kw, h) = scripted_pair();
            h.upsert(fixtures::catalog()).await.unwrap();
            let (bad, good) = if semantic_fails {
                (&sem, "kw")
            } else {
                (&kw, "sem")
            };
            bad.fail_next(Capability::Search, fault, 1);
            let r = h
                .search(SearchRequest::new("running").with_limit(2).with_offset(1))
                .await
                .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
            assert_eq!(r.meta.provider, "hyb");
            assert_eq!(r.meta.fallbacks.len(), 1, "{fault:?}");
            let failed = if semantic_fails {
                "semantic"
            } else {
                "keyword"
            };
            assert_eq!(r.meta.fallbacks[0].provider, failed);
            assert!(!r.meta.fallbacks[0].reason.is_empty());
            assert_eq!(r.mode, SearchMode::Keyword, "the answering side's mode");
            // paged like the caller asked, from the side that answered
            let direct = if good == "kw" { &kw } else { &sem };
            let want = direct
                .searcher()
                .unwrap()
                .search(SearchRequest::new("running").with_limit(2).with_offset(1))
                .await
                .unwrap();
            assert_eq!(ids(&r), ids(&want));
            assert_eq!(r.total, want.total);
        }
    }
}

#[tokio::test]
async fn unsupported_falls_back_but_other_errors_are_returned() {
    let sem = Fixed::new("vec", vec!["s1"], SearchMode::Semantic)
        .failing(Error::unsupported("no embeddings for this language"));
    let kw = Fixed::new("bm25", vec!["k1"], SearchMode::Keyword);
    let r = hybrid(&sem, &kw)
        .search(SearchRequest::new("q"))
        .await
        .unwrap();
    assert_eq!(ids(&r), vec!["k1"]);
    assert_eq!(r.meta.fallbacks[0].reason, "unsupported");

    // a quota error is not papered over
    let (sem, _kw, h) = scripted_pair();
    h.upsert(fixtures::catalog()).await.unwrap();
    sem.fail_next(Capability::Search, Fault::QuotaExhausted, 1);
    let e = h.search(SearchRequest::new("running")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);

    // both failing: the keyword side's error
    let (sem, kw, h) = scripted_pair();
    sem.fail_next(Capability::Search, Fault::ServerError(503), 1);
    kw.fail_next(Capability::Search, Fault::Timeout, 1);
    let e = h.search(SearchRequest::new("running")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);

    // in a single-side mode the error passes through
    let (sem, _kw, h) = scripted_pair();
    sem.fail_next(Capability::Search, Fault::ServerError(503), 1);
    let e = h
        .search(SearchRequest::new("running").with_mode(SearchMode::Semantic))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn facets_come_from_the_keyword_side() {
    let (_sem, _kw, h) = scripted_pair();
    h.upsert(fixtures::catalog()).await.unwrap();
    let r = h
        .search(
            SearchRequest::new("")
                .with_filters(Filters::new().with_category_prefix(["Sports"]))
                .with_facet(Facet::Brand)
                .with_limit(1),
        )
        .await
        .unwrap();
    assert_eq!(r.facets.len(), 1);
    assert_eq!(r.total, 4);
    assert_eq!(r.hits.len(), 1);
    assert!(r.hits[0].product.is_some(), "product records are kept");
}

#[tokio::test]
async fn writes_go_to_both_sides() {
    let sem = Fixed::new("vec", vec![], SearchMode::Semantic);
    let kw = Fixed::new("bm25", vec![], SearchMode::Keyword);
    let rep = hybrid(&sem, &kw)
        .upsert(fixtures::catalog()[..3].to_vec())
        .await
        .unwrap();
    assert_eq!(rep.applied, 3);
    let rep = hybrid(&sem, &kw).remove(vec![id("a")]).await.unwrap();
    assert_eq!(rep.applied, 1);

    // one side failing: its error, after the other side applied the change
    let (sem, kw, _) = scripted_pair();
    let bad = Fixed::new("vec", vec![], SearchMode::Semantic)
        .failing(Error::new(ErrorKind::Unavailable, "embedding service down"));
    let h = HybridSearcher::new("hyb", bad, kw.searcher().unwrap());
    let e = h.upsert(fixtures::catalog()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let found = kw
        .searcher()
        .unwrap()
        .search(SearchRequest::new("teapot"))
        .await
        .unwrap();
    assert!(!found.hits.is_empty(), "the keyword side still indexed");
    let e = h.remove(vec![id("ct-005")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let found = kw
        .searcher()
        .unwrap()
        .search(SearchRequest::new("teapot"))
        .await
        .unwrap();
    assert!(found.hits.is_empty(), "the keyword side still removed");
    drop(sem);

    // rejected items are listed once, with the side that refused them
    let (_sem, _kw, h) = scripted_pair();
    let mut bad_product = fixtures::product("ct-001");
    bad_product.title = String::new();
    let rep = h
        .upsert(vec![bad_product, fixtures::product("ct-002")])
        .await
        .unwrap();
    assert_eq!(rep.applied, 1);
    assert_eq!(rep.rejected.len(), 1, "{:?}", rep.rejected);
    assert!(rep.rejected[0].1.starts_with("keyword: "));
}

/// A provider whose only capability is a hybrid searcher, for the contract suite.
#[derive(Debug)]
struct HybridProvider {
    info: ProviderInfo,
    searcher: Arc<HybridSearcher>,
}

impl Provider for HybridProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        Some(self.searcher.clone())
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

#[tokio::test]
async fn contract_suite_passes_over_two_scripted_searchers() {
    let (_sem, _kw, h) = scripted_pair();
    let provider = Arc::new(HybridProvider {
        info: ProviderInfo::local("hyb", "hybrid", Capabilities::none().with_search()),
        searcher: Arc::new(h),
    });
    let report = Suite::new(provider).run().await;
    report.print();
    report.assert_passed();
    assert!(
        report
            .passed()
            .iter()
            .any(|r| r.name == "search.filters_respected")
    );
    assert!(
        report
            .passed()
            .iter()
            .any(|r| r.name == "search.sort_by_price")
    );
}
