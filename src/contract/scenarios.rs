use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::fixtures;
use super::harness::{Fault, FaultHarness, RetryAfterForm};
use crate::api::{Capabilities, Capability, Provider};
use crate::error::{Error, ErrorKind};
use crate::types::*;

/// How one scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider met the contract.
    Passed,
    /// It did not; the message says how.
    Failed(String),
    /// Not run; the message says why.
    Skipped(String),
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario name.
    pub name: String,
    /// The capability it exercises (`None` for provider-level scenarios).
    pub capability: Option<Capability>,
    /// How it ended.
    pub outcome: Outcome,
}

type Check = std::result::Result<(), String>;
type ScenarioFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, Check>;

struct Scenario {
    name: &'static str,
    capability: Option<Capability>,
    needs: fn(&Capabilities) -> Option<&'static str>,
    run: ScenarioFn,
}

struct Ctx {
    provider: Arc<dyn Provider>,
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(msg()) }
}

fn ok<T>(r: crate::Result<T>, what: &str) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

fn expect_kind<T: fmt::Debug>(r: crate::Result<T>, kind: ErrorKind, what: &str) -> Check {
    match r {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(format!("{what}: expected {kind}, got {e}")),
        Ok(v) => Err(format!("{what}: expected {kind}, got Ok({v:?})")),
    }
}

fn no_need(_: &Capabilities) -> Option<&'static str> {
    None
}
fn need_tools(c: &Capabilities) -> Option<&'static str> {
    (!c.chat_tools).then_some("the provider does not declare chat_tools")
}
fn need_json(c: &Capabilities) -> Option<&'static str> {
    (!c.chat_json).then_some("the provider does not declare chat_json")
}

impl Ctx {
    fn searcher(&self) -> std::result::Result<Arc<dyn crate::Searcher>, String> {
        self.provider
            .searcher()
            .ok_or_else(|| "capabilities declare search but searcher() is None".to_owned())
    }
    fn recommender(&self) -> std::result::Result<Arc<dyn crate::Recommender>, String> {
        self.provider
            .recommender()
            .ok_or_else(|| "capabilities declare recommend but recommender() is None".to_owned())
    }
    fn chat(&self) -> std::result::Result<Arc<dyn crate::ChatModel>, String> {
        self.provider
            .chat_model()
            .ok_or_else(|| "capabilities declare chat but chat_model() is None".to_owned())
    }
    fn forecaster(&self) -> std::result::Result<Arc<dyn crate::Forecaster>, String> {
        self.provider
            .forecaster()
            .ok_or_else(|| "capabilities declare forecast but forecaster() is None".to_owned())
    }
    async fn load_catalog(&self) -> Check {
        let s = self.searcher()?;
        let rep = ok(
            s.upsert(fixtures::catalog()).await,
            "upsert of the fixture catalog",
        )?;
        ensure(rep.rejected.is_empty(), || {
            format!("valid fixture products were rejected: {:?}", rep.rejected)
        })
    }
}

fn meta_ok(meta: &ResponseMeta, what: &str) -> Check {
    ensure(!meta.provider.is_empty(), || {
        format!("{what}: meta.provider is empty")
    })
}

fn ids(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.product_id.as_str()).collect()
}

macro_rules! scenario {
    ($name:literal, $cap:expr, $needs:expr, |$c:ident| $body:block) => {
        Scenario {
            name: $name,
            capability: $cap,
            needs: $needs,
            run: |$c: &Ctx| Box::pin(async move { $body }),
        }
    };
}

fn functional() -> Vec<Scenario> {
    use Capability::*;
    vec![
        scenario!("provider.handles_match_capabilities", None, no_need, |c| {
            let info = c.provider.info();
            let caps = info.capabilities;
            ensure(!info.name.is_empty() && !info.kind.is_empty(), || {
                "info.name and info.kind must be set".into()
            })?;
            ensure(caps.search == c.provider.searcher().is_some(), || {
                "searcher() disagrees with capabilities.search".into()
            })?;
            ensure(caps.recommend == c.provider.recommender().is_some(), || {
                "recommender() disagrees with capabilities.recommend".into()
            })?;
            ensure(caps.chat == c.provider.chat_model().is_some(), || {
                "chat_model() disagrees with capabilities.chat".into()
            })?;
            ensure(caps.forecast == c.provider.forecaster().is_some(), || {
                "forecaster() disagrees with capabilities.forecast".into()
            })?;
            ensure(
                !info.data_leaves_process || info.jurisdiction.is_some() || info.region.is_some(),
                || {
                    "a provider whose data leaves the process must declare its region or jurisdiction".into()
                },
            )
        }),
        scenario!("search.upsert_then_find", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let r = ok(
                c.searcher()?.search(SearchRequest::new("teapot")).await,
                "search",
            )?;
            meta_ok(&r.meta, "search")?;
            ensure(ids(&r.hits).contains(&"ct-005"), || {
                format!("'teapot' did not find ct-005: {:?}", ids(&r.hits))
            })?;
            ensure(r.total >= r.hits.len() as u64, || {
                format!("total {} < hits {}", r.total, r.hits.len())
            })
        }),
        scenario!("search.upsert_is_idempotent", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let q = || SearchRequest::new("running").with_limit(50);
            let a = ok(c.searcher()?.search(q()).await, "search")?;
            c.load_catalog().await?;
            let b = ok(c.searcher()?.search(q()).await, "search")?;
            ensure(a.total == b.total && ids(&a.hits) == ids(&b.hits), || {
                format!(
                    "upserting the same products twice changed results: {:?} vs {:?}",
                    ids(&a.hits),
                    ids(&b.hits)
                )
            })?;
            let set: HashSet<_> = ids(&b.hits).into_iter().collect();
            ensure(set.len() == b.hits.len(), || {
                "a product appears twice in one result page".into()
            })
        }),
        scenario!("search.remove_hides", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let s = c.searcher()?;
            ok(
                s.remove(vec![ProductId::new("ct-011"), ProductId::new("no-such-id")])
                    .await,
                "remove (with an unknown id)",
            )?;
            let r = ok(
                s.search(SearchRequest::new("bamboo cutting board").with_limit(20))
                    .await,
                "search",
            )?;
            let gone = !ids(&r.hits).contains(&"ct-011");
            ok(
                s.upsert(vec![fixtures::product("ct-011")]).await,
                "re-upsert",
            )?;
            ensure(gone, || "a removed product was still returned".into())
        }),
        scenario!("search.limit_and_paging", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let s = c.searcher()?;
            let p1 = ok(
                s.search(SearchRequest::new("running").with_limit(2)).await,
                "page 1",
            )?;
            let p2 = ok(
                s.search(SearchRequest::new("running").with_limit(2).with_offset(2))
                    .await,
                "page 2",
            )?;
            ensure(p1.hits.len() <= 2 && p2.hits.len() <= 2, || {
                "more hits than the limit".into()
            })?;
            ensure(
                ids(&p1.hits).iter().all(|id| !ids(&p2.hits).contains(id)),
                || format!("pages overlap: {:?} and {:?}", ids(&p1.hits), ids(&p2.hits)),
            )
        }),
        scenario!("search.relevance_order", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let r = ok(
                c.searcher()?
                    .search(SearchRequest::new("running shoe").with_limit(10))
                    .await,
                "search",
            )?;
            ensure(r.hits.windows(2).all(|w| w[0].score >= w[1].score), || {
                "scores are not in non-increasing order under SortBy::Relevance".into()
            })?;
            ensure(r.hits.iter().all(|h| h.score.is_finite()), || {
                "a score is not finite".into()
            })
        }),
        scenario!("search.filters_respected", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let s = c.searcher()?;
            let cases = vec![
                Filters::new().with_in_stock(true),
                Filters::new().with_brand("peakline"),
                Filters::new().with_category_prefix(["Home", "Kitchen"]),
                Filters::new().with_price(PriceRange::new(
                    Some(Money::new(10000, Currency::CNY)),
                    Some(Money::new(30000, Currency::CNY)),
                )),
                Filters::new().with_attribute("color", "RED"),
            ];
            for f in cases {
                let r = ok(
                    s.search(
                        SearchRequest::new("")
                            .with_filters(f.clone())
                            .with_limit(50),
                    )
                    .await,
                    "filtered search",
                )?;
                let expected: Vec<String> = fixtures::catalog()
                    .into_iter()
                    .filter(|p| f.matches(p))
                    .map(|p| p.id.to_string())
                    .collect();
                for h in &r.hits {
                    let p = fixtures::product(h.product_id.as_str());
                    ensure(f.matches(&p), || {
                        format!("{} violates filter {f:?}", h.product_id)
                    })?;
                }
                ensure(r.total as usize == expected.len(), || {
                    format!(
                        "filter {f:?}: total {} but {} fixture products match",
                        r.total,
                        expected.len()
                    )
                })?;
            }
            Ok(())
        }),
        scenario!("search.facets_counted", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let req = SearchRequest::new("")
                .with_filters(Filters::new().with_category_prefix(["Sports"]))
                .with_facet(Facet::Brand)
                .with_limit(1);
            let r = ok(c.searcher()?.search(req).await, "faceted search")?;
            ensure(r.facets.len() == 1 && r.facets[0].facet == "brand", || {
                format!("expected one 'brand' facet, got {:?}", r.facets)
            })?;
            let counts = &r.facets[0].counts;
            let sum: u64 = counts.iter().map(|(_, n)| n).sum();
            ensure(sum == r.total && r.total == 4, || {
                format!(
                    "brand counts {counts:?} do not add up to the 4 Sports products (total {})",
                    r.total
                )
            })?;
            ensure(counts.windows(2).all(|w| w[0].1 >= w[1].1), || {
                "facet counts are not most-frequent first".into()
            })
        }),
        scenario!("search.sort_by_price", Some(Search), no_need, |c| {
            c.load_catalog().await?;
            let s = c.searcher()?;
            for sort in [SortBy::PriceAsc, SortBy::PriceDesc] {
                let r = ok(
                    s.search(SearchRequest::new("").with_sort(sort).with_limit(12))
                        .await,
                    "sorted search",
                )?;
                let prices: Vec<i64> = r
                    .hits
                    .iter()
                    .map(|h| fixtures::product(h.product_id.as_str()).price.minor)
                    .collect();
                let sorted = match sort {
                    SortBy::PriceAsc => prices.windows(2).all(|w| w[0] <= w[1]),
                    _ => prices.windows(2).all(|w| w[0] >= w[1]),
                };
                ensure(sorted && prices.len() == 12, || {
                    format!("{sort:?} gave prices {prices:?}")
                })?;
            }
            Ok(())
        }),
        scenario!("search.invalid_request", Some(Search), no_need, |c| {
            let s = c.searcher()?;
            expect_kind(
                s.search(SearchRequest::new("x").with_limit(0)).await,
                ErrorKind::InvalidRequest,
                "limit 0",
            )?;
            let bad = Filters::new().with_price(PriceRange::new(
                Some(Money::new(500, Currency::CNY)),
                Some(Money::new(100, Currency::CNY)),
            ));
            expect_kind(
                s.search(SearchRequest::new("x").with_filters(bad)).await,
                ErrorKind::InvalidRequest,
                "min price above max",
            )
        }),
        scenario!("recommend.cold_start", Some(Recommend), no_need, |c| {
            let r = ok(
                c.recommender()?
                    .recommend(RecommendRequest::new(Scene::Home).with_subject("never-seen"))
                    .await,
                "recommend for an unknown subject",
            )?;
            meta_ok(&r.meta, "recommend")?;
            ensure(r.items.len() <= 10, || "more items than the limit".into())
        }),
        scenario!("recommend.after_events", Some(Recommend), no_need, |c| {
            if c.provider.searcher().is_some() {
                c.load_catalog().await?;
            }
            let rec = c.recommender()?;
            ok(rec.record(fixtures::events()).await, "record")?;
            let r = ok(
                rec.recommend(
                    RecommendRequest::new(Scene::ProductPage)
                        .with_anchor("ct-001")
                        .with_limit(5),
                )
                .await,
                "recommend",
            )?;
            ensure(!r.items.is_empty(), || {
                "no item recommended for an anchor with co-purchases".into()
            })?;
            ensure(r.items.len() <= 5, || {
                format!("{} items for limit 5", r.items.len())
            })?;
            let set: HashSet<_> = r.items.iter().map(|i| i.product_id.as_str()).collect();
            ensure(set.len() == r.items.len(), || {
                "an item appears twice".into()
            })?;
            ensure(r.items.iter().all(|i| i.score.is_finite()), || {
                "a score is not finite".into()
            })?;
            ensure(r.items.windows(2).all(|w| w[0].score >= w[1].score), || {
                "items are not best first".into()
            })
        }),
        scenario!(
            "recommend.excludes_anchor_and_exclusions",
            Some(Recommend),
            no_need,
            |c| {
                if c.provider.searcher().is_some() {
                    c.load_catalog().await?;
                }
                let rec = c.recommender()?;
                ok(rec.record(fixtures::events()).await, "record")?;
                let req = RecommendRequest::new(Scene::ProductPage)
                    .with_anchor("ct-001")
                    .with_exclude("ct-003")
                    .with_limit(10);
                let r = ok(rec.recommend(req).await, "recommend")?;
                ensure(
                    r.items.iter().all(|i| {
                        i.product_id.as_str() != "ct-001" && i.product_id.as_str() != "ct-003"
                    }),
                    || "the anchor or an excluded item was recommended".into(),
                )
            }
        ),
        scenario!(
            "recommend.filters_respected",
            Some(Recommend),
            no_need,
            |c| {
                if c.provider.searcher().is_some() {
                    c.load_catalog().await?;
                }
                let rec = c.recommender()?;
                ok(rec.record(fixtures::events()).await, "record")?;
                let f = Filters::new()
                    .with_in_stock(true)
                    .with_category_prefix(["Sports"]);
                let r = ok(
                    rec.recommend(
                        RecommendRequest::new(Scene::Home)
                            .with_subject("cs-1")
                            .with_filters(f.clone())
                            .with_limit(10),
                    )
                    .await,
                    "recommend",
                )?;
                for i in &r.items {
                    if let Some(p) = fixtures::catalog()
                        .into_iter()
                        .find(|p| p.id == i.product_id)
                    {
                        ensure(f.matches(&p), || {
                            format!("{} violates the filters", i.product_id)
                        })?;
                    }
                }
                Ok(())
            }
        ),
        scenario!("recommend.invalid_request", Some(Recommend), no_need, |c| {
            expect_kind(
                c.recommender()?
                    .recommend(RecommendRequest::new(Scene::Home).with_limit(0))
                    .await,
                ErrorKind::InvalidRequest,
                "limit 0",
            )
        }),
        scenario!("chat.basic_reply", Some(Chat), no_need, |c| {
            let req = ChatRequest::new(vec![
                Message::system("You are a shop assistant."),
                Message::user("Hello! How long does shipping take?"),
            ]);
            let r = ok(c.chat()?.chat(req).await, "chat")?;
            meta_ok(&r.meta, "chat")?;
            ensure(
                !r.text.trim().is_empty() || !r.tool_calls.is_empty(),
                || "empty answer".into(),
            )
        }),
        scenario!("chat.stream_matches_chat", Some(Chat), no_need, |c| {
            let req = ChatRequest::new(vec![Message::user("Hello! What is your return policy?")])
                .with_temperature(0.0)
                .with_seed(7);
            let m = c.chat()?;
            let whole = ok(m.chat(req.clone()).await, "chat")?;
            let stream = ok(m.chat_stream(req).await, "chat_stream")?;
            let streamed = ok(collect_stream(stream).await, "collecting the stream")?;
            ensure(streamed.text == whole.text, || {
                format!(
                    "streamed text ({} chars) differs from chat text ({} chars)",
                    streamed.text.chars().count(),
                    whole.text.chars().count()
                )
            })?;
            ensure(streamed.finish_reason == whole.finish_reason, || {
                format!(
                    "finish reasons differ: {:?} vs {:?}",
                    streamed.finish_reason, whole.finish_reason
                )
            })
        }),
        scenario!("chat.stream_finishes_once", Some(Chat), no_need, |c| {
            let req = ChatRequest::new(vec![Message::user("Hi there")]);
            let mut s = ok(c.chat()?.chat_stream(req).await, "chat_stream")?;
            let mut events = Vec::new();
            while let Some(ev) = s.next().await {
                events.push(ok(ev, "stream event")?);
            }
            let finished = events
                .iter()
                .filter(|e| matches!(e, ChatEvent::Finished { .. }))
                .count();
            ensure(finished == 1, || {
                format!("{finished} Finished events, expected exactly 1")
            })?;
            ensure(
                matches!(events.last(), Some(ChatEvent::Finished { .. })),
                || "Finished is not the last event".into(),
            )?;
            if let Some(ChatEvent::Finished { meta, .. }) = events.last() {
                meta_ok(meta, "chat_stream")?;
            }
            Ok(())
        }),
        scenario!("chat.tool_call", Some(Chat), need_tools, |c| {
            let req = ChatRequest::new(vec![Message::user("Where is my order 12345?")])
                .with_tool(fixtures::order_status_tool())
                .with_tool_choice(ToolChoice::Tool("order_status".into()));
            let r = ok(c.chat()?.chat(req).await, "chat with a tool")?;
            let call = r
                .tool_calls
                .first()
                .ok_or("no tool call although tool_choice forced order_status")?;
            ensure(call.name == "order_status", || {
                format!("called {:?}", call.name)
            })?;
            ensure(!call.id.is_empty(), || "the tool call has no id".into())?;
            let args = ok(call.arguments_json(), "tool arguments")?;
            ensure(args.is_object(), || {
                "tool arguments are not a JSON object".into()
            })?;
            ensure(r.finish_reason == FinishReason::ToolCalls, || {
                format!("finish reason {:?}, expected tool_calls", r.finish_reason)
            })
        }),
        scenario!("chat.json_object", Some(Chat), need_json, |c| {
            let req = ChatRequest::new(vec![Message::user(
                "Describe your return policy as a JSON object.",
            )])
            .with_response_format(ResponseFormat::JsonObject);
            let r = ok(c.chat()?.chat(req).await, "chat in JSON mode")?;
            let v: serde_json::Value = serde_json::from_str(&r.text)
                .map_err(|e| format!("JSON mode answer does not parse: {e}"))?;
            ensure(v.is_object(), || "JSON mode answer is not an object".into())
        }),
        scenario!("chat.invalid_request", Some(Chat), no_need, |c| {
            let m = c.chat()?;
            expect_kind(
                m.chat(ChatRequest::new(vec![])).await,
                ErrorKind::InvalidRequest,
                "chat without messages",
            )?;
            match m.chat_stream(ChatRequest::new(vec![])).await {
                Err(e) if e.kind() == ErrorKind::InvalidRequest => Ok(()),
                Err(e) => Err(format!(
                    "chat_stream without messages: expected invalid_request, got {e}"
                )),
                Ok(mut s) => match s.next().await {
                    Some(Err(e)) if e.kind() == ErrorKind::InvalidRequest => Ok(()),
                    other => Err(format!(
                        "chat_stream without messages: expected invalid_request, got {other:?}"
                    )),
                },
            }
        }),
        scenario!(
            "forecast.shapes_and_quantiles",
            Some(Forecast),
            no_need,
            |c| {
                let req = ForecastRequest::new(fixtures::series(), 14)
                    .with_quantiles(vec![0.1, 0.5, 0.9]);
                let r = ok(c.forecaster()?.forecast(req).await, "forecast")?;
                meta_ok(&r.meta, "forecast")?;
                let got: Vec<&str> = r.series.iter().map(|s| s.id.as_str()).collect();
                ensure(got == ["sku-weekly", "sku-intermittent"], || {
                    format!("series out of order or missing: {got:?}")
                })?;
                for s in &r.series {
                    ensure(s.error.is_none(), || {
                        format!("series {} failed: {:?}", s.id, s.error)
                    })?;
                    ensure(
                        s.point.len() == 14 && s.point.iter().all(|v| v.is_finite()),
                        || {
                            format!(
                                "series {}: point forecast has {} values or a non-finite one",
                                s.id,
                                s.point.len()
                            )
                        },
                    )?;
                    ensure(
                        s.quantiles.len() == 3
                            && s.quantiles.iter().all(|q| {
                                q.values.len() == 14 && q.values.iter().all(|v| v.is_finite())
                            }),
                        || format!("series {}: wrong quantile shapes", s.id),
                    )?;
                    let levels: Vec<f64> = s.quantiles.iter().map(|q| q.level).collect();
                    ensure(levels == [0.1, 0.5, 0.9], || {
                        format!("series {}: quantile levels {levels:?}", s.id)
                    })?;
                    for t in 0..14 {
                        ensure(
                            s.quantiles
                                .windows(2)
                                .all(|w| w[0].values[t] <= w[1].values[t] + 1e-9),
                            || format!("series {}: quantiles cross at step {t}", s.id),
                        )?;
                    }
                    ensure(!s.model.is_empty(), || {
                        format!("series {}: model is empty", s.id)
                    })?;
                }
                Ok(())
            }
        ),
        scenario!(
            "forecast.bad_series_isolated",
            Some(Forecast),
            no_need,
            |c| {
                let mut series = fixtures::series();
                series.insert(1, Series::new("bad", vec![1.0, f64::NAN, 2.0]));
                let r = ok(
                    c.forecaster()?
                        .forecast(ForecastRequest::new(series, 7))
                        .await,
                    "forecast with one bad series",
                )?;
                ensure(r.series.len() == 3, || {
                    format!("{} results for 3 series", r.series.len())
                })?;
                let bad = r.get("bad").ok_or("no entry for the bad series")?;
                ensure(
                    bad.error
                        .as_ref()
                        .is_some_and(|e| e.kind == ErrorKind::InvalidRequest),
                    || {
                        format!(
                            "bad series: expected an invalid_request error, got {:?}",
                            bad.error
                        )
                    },
                )?;
                ensure(
                    r.series
                        .iter()
                        .filter(|s| s.id != "bad")
                        .all(|s| s.error.is_none() && s.point.len() == 7),
                    || "a good series failed because of a bad one".into(),
                )
            }
        ),
        scenario!("forecast.invalid_request", Some(Forecast), no_need, |c| {
            let f = c.forecaster()?;
            expect_kind(
                f.forecast(ForecastRequest::new(fixtures::series(), 0))
                    .await,
                ErrorKind::InvalidRequest,
                "horizon 0",
            )?;
            expect_kind(
                f.forecast(ForecastRequest::new(fixtures::series(), 7).with_quantiles(vec![1.5]))
                    .await,
                ErrorKind::InvalidRequest,
                "quantile 1.5",
            )
        }),
    ]
}

/// Which call a fault scenario makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultCall {
    Search,
    Recommend,
    Chat,
    ChatStream,
    Forecast,
}

impl FaultCall {
    fn name(self) -> &'static str {
        match self {
            FaultCall::Search => "search",
            FaultCall::Recommend => "recommend",
            FaultCall::Chat => "chat",
            FaultCall::ChatStream => "chat_stream",
            FaultCall::Forecast => "forecast",
        }
    }
    fn capability(self) -> Capability {
        match self {
            FaultCall::Search => Capability::Search,
            FaultCall::Recommend => Capability::Recommend,
            FaultCall::Chat | FaultCall::ChatStream => Capability::Chat,
            FaultCall::Forecast => Capability::Forecast,
        }
    }
    const ALL: [FaultCall; 5] = [
        FaultCall::Search,
        FaultCall::Recommend,
        FaultCall::Chat,
        FaultCall::ChatStream,
        FaultCall::Forecast,
    ];
}

fn fault_matrix() -> Vec<(String, FaultCall, Fault)> {
    let mut out = Vec::new();
    for call in FaultCall::ALL {
        for fault in Fault::MATRIX {
            if fault == Fault::StreamCut && call != FaultCall::ChatStream {
                continue;
            }
            out.push((
                format!("fault.{}.{}", call.name(), fault.name()),
                call,
                fault,
            ));
        }
    }
    out
}

/// The names of every scenario, in the order the suite runs them.
pub fn scenario_names() -> Vec<String> {
    functional()
        .iter()
        .map(|s| s.name.to_owned())
        .chain(fault_matrix().into_iter().map(|(n, _, _)| n))
        .collect()
}

/// What a faulted call produced.
struct FaultObservation {
    error: Option<Error>,
    events_before_error: usize,
    trailing_items: usize,
    /// What a successful call returned, in a form to compare two calls by.
    result: String,
}

async fn faulted_call(
    p: &Arc<dyn Provider>,
    call: FaultCall,
) -> std::result::Result<FaultObservation, String> {
    let err_only = |r: crate::Result<String>| match r {
        Ok(result) => FaultObservation {
            error: None,
            events_before_error: 0,
            trailing_items: 0,
            result,
        },
        Err(e) => FaultObservation {
            error: Some(e),
            events_before_error: 0,
            trailing_items: 0,
            result: String::new(),
        },
    };
    let missing = || format!("the provider offers no {}", call.capability());
    Ok(match call {
        FaultCall::Search => {
            let s = p.searcher().ok_or_else(missing)?;
            err_only(s.search(SearchRequest::new("teapot")).await.map(|r| {
                let ids: Vec<&str> = r.hits.iter().map(|h| h.product_id.as_str()).collect();
                ids.join(",")
            }))
        }
        FaultCall::Recommend => {
            let r = p.recommender().ok_or_else(missing)?;
            err_only(
                r.recommend(RecommendRequest::new(Scene::Home).with_subject("cs-1"))
                    .await
                    .map(|r| {
                        let ids: Vec<&str> =
                            r.items.iter().map(|i| i.product_id.as_str()).collect();
                        ids.join(",")
                    }),
            )
        }
        FaultCall::Chat => {
            let c = p.chat_model().ok_or_else(missing)?;
            err_only(
                c.chat(ChatRequest::new(vec![Message::user("Hello")]))
                    .await
                    .map(|r| r.text),
            )
        }
        FaultCall::Forecast => {
            let f = p.forecaster().ok_or_else(missing)?;
            err_only(
                f.forecast(ForecastRequest::new(fixtures::series(), 7))
                    .await
                    .map(|r| {
                        format!(
                            "{:?}",
                            r.series.iter().map(|s| &s.point).collect::<Vec<_>>()
                        )
                    }),
            )
        }
        FaultCall::ChatStream => {
            let c = p.chat_model().ok_or_else(missing)?;
            match c
                .chat_stream(ChatRequest::new(vec![Message::user(
                    "Tell me about your teapots",
                )]))
                .await
            {
                Err(e) => FaultObservation {
                    error: Some(e),
                    events_before_error: 0,
                    trailing_items: 0,
                    result: String::new(),
                },
                Ok(mut s) => {
                    let mut obs = FaultObservation {
                        error: None,
                        events_before_error: 0,
                        trailing_items: 0,
                        result: String::new(),
                    };
                    while let Some(item) = s.next().await {
                        match item {
                            Ok(ChatEvent::TextDelta { text }) if obs.error.is_none() => {
                                obs.events_before_error += 1;
                                obs.result.push_str(&text);
                            }
                            Ok(_) if obs.error.is_none() => obs.events_before_error += 1,
                            Err(e) if obs.error.is_none() => obs.error = Some(e),
                            _ => obs.trailing_items += 1,
                        }
                    }
                    obs
                }
            }
        }
    })
}

fn expected_kind(f: Fault) -> &'static [ErrorKind] {
    match f {
        Fault::RateLimited(_) => &[ErrorKind::RateLimited],
        Fault::QuotaExhausted => &[ErrorKind::QuotaExceeded],
        Fault::ServerError(_) => &[ErrorKind::Unavailable],
        Fault::Timeout => &[ErrorKind::Timeout],
        Fault::ConnectionReset => &[ErrorKind::Unavailable],
        Fault::MalformedBody => &[ErrorKind::Decode],
        Fault::StreamCut => &[ErrorKind::Unavailable, ErrorKind::Decode],
        Fault::SlowBody => &[ErrorKind::Timeout],
        Fault::Rechunked => &[],
    }
}

async fn run_fault(
    ctx: &Ctx,
    h: &Arc<dyn FaultHarness>,
    call: FaultCall,
    fault: Fault,
    expected_attempts: usize,
) -> Outcome {
    if fault == Fault::Rechunked {
        return run_rechunked(ctx, h, call).await;
    }
    if !h.inject(call.capability(), fault).await {
        return Outcome::Skipped("the fault harness cannot produce this fault here".into());
    }
    let obs = faulted_call(&ctx.provider, call).await;
    let attempts = h.attempts().await;
    h.clear().await;
    let obs = match obs {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(e),
    };
    let Some(err) = obs.error else {
        return Outcome::Failed(format!(
            "{} succeeded although the upstream failed with {}",
            call.name(),
            fault.name()
        ));
    };
    let kinds = expected_kind(fault);
    if !kinds.contains(&err.kind()) {
        return Outcome::Failed(format!(
            "expected {:?}, got {err}",
            kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()
        ));
    }
    // Retry signal: a bare adapter (one attempt) reports the kind's default; a layered stack
    // that retried reports the error as exhausted.
    if expected_attempts == 1 && err.is_retryable() != err.kind().default_retryable() {
        return Outcome::Failed(format!(
            "{err}: is_retryable() = {}, expected {}",
            err.is_retryable(),
            err.kind().default_retryable()
        ));
    }
    let hint_kept = match fault {
        Fault::RateLimited(RetryAfterForm::Seconds(s)) => err
            .retry_after()
            .is_some_and(|d| d.as_secs() >= s && d <= Duration::from_secs(s + 1)),
        // An HTTP date has one-second resolution and is read a moment after it was written.
        Fault::RateLimited(RetryAfterForm::HttpDate(s)) => err
            .retry_after()
            .is_some_and(|d| d <= Duration::from_secs(s + 2)),
        _ => true,
    };
    if !hint_kept {
        return Outcome::Failed(format!(
            "the Retry-After of {} was not kept: retry_after() = {:?}",
            fault.name(),
            err.retry_after()
        ));
    }
    if obs.trailing_items > 0 {
        return Outcome::Failed(format!(
            "{} stream items followed the error",
            obs.trailing_items
        ));
    }
    let want = if fault == Fault::StreamCut || !err.kind().default_retryable() {
        1
    } else {
        expected_attempts
    };
    if attempts != want {
        return Outcome::Failed(format!("{attempts} upstream attempts, expected {want}"));
    }
    Outcome::Passed
}

/// The answer split at every byte must decode to the same result as the answer unsplit, with as
/// many upstream requests.
async fn run_rechunked(ctx: &Ctx, h: &Arc<dyn FaultHarness>, call: FaultCall) -> Outcome {
    h.clear().await;
    let baseline = match faulted_call(&ctx.provider, call).await {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(e),
    };
    if let Some(e) = baseline.error {
        return Outcome::Failed(format!("the unsplit call failed: {e}"));
    }
    // Some calls make more than one upstream request (embed, then rerank).
    let baseline_attempts = h.attempts().await;
    if !h.inject(call.capability(), Fault::Rechunked).await {
        return Outcome::Skipped("the fault harness cannot produce this fault here".into());
    }
    let obs = faulted_call(&ctx.provider, call).await;
    let attempts = h.attempts().await;
    h.clear().await;
    let obs = match obs {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(e),
    };
    if let Some(e) = obs.error {
        return Outcome::Failed(format!("the answer split at every byte failed: {e}"));
    }
    if obs.result != baseline.result {
        // Lengths only: the results may hold vendor text.
        return Outcome::Failed(format!(
            "the answer split at every byte decoded differently ({} bytes of result vs {} unsplit)",
            obs.result.len(),
            baseline.result.len()
        ));
    }
    if attempts != baseline_attempts {
        return Outcome::Failed(format!(
            "{attempts} upstream attempts, expected {baseline_attempts} as unsplit"
        ));
    }
    Outcome::Passed
}

/// The conformance suite, configured for one provider.
pub struct Suite {
    provider: Arc<dyn Provider>,
    harness: Option<Arc<dyn FaultHarness>>,
    expected_attempts: usize,
    skips: Vec<(String, String)>,
    timeout: Duration,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("provider", &self.provider.info().name)
            .field("harness", &self.harness.is_some())
            .field("expected_attempts", &self.expected_attempts)
            .field("skips", &self.skips)
            .finish()
    }
}

impl Suite {
    /// The suite for `provider`, without fault scenarios until a harness is given.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Suite {
            provider,
            harness: None,
            expected_attempts: 1,
            skips: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
    /// Enables the fault matrix through `harness`.
    #[must_use]
    pub fn with_fault_harness(mut self, harness: Arc<dyn FaultHarness>) -> Self {
        self.harness = Some(harness);
        self
    }
    /// Upstream attempts a failing retryable call must make (1 for a bare adapter; the retry
    /// layer's maximum for a layered stack). Non-retryable faults must always take exactly one.
    #[must_use]
    pub fn with_expected_attempts(mut self, n: usize) -> Self {
        self.expected_attempts = n.max(1);
        self
    }
    /// Skips a scenario by name, with the reason (printed in the report).
    #[must_use]
    pub fn skip(mut self, name: impl Into<String>, reason: impl Into<String>) -> Self {
        self.skips.push((name.into(), reason.into()));
        self
    }
    /// The longest one scenario may take before it fails (default 60 s).
    #[must_use]
    pub fn with_scenario_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    async fn guarded(&self, fut: BoxFuture<'_, Outcome>) -> Outcome {
        match tokio::time::timeout(self.timeout, AssertUnwindSafe(fut).catch_unwind()).await {
            Err(_) => Outcome::Failed(format!("did not finish within {:?}", self.timeout)),
            Ok(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Outcome::Failed(format!("panicked: {msg}"))
            }
            Ok(Ok(o)) => o,
        }
    }

    /// Runs every scenario in order and reports each.
    pub async fn run(&self) -> SuiteReport {
        let ctx = Ctx {
            provider: self.provider.clone(),
        };
        let caps = self.provider.info().capabilities;
        let unknown: Vec<&String> = self
            .skips
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !scenario_names().contains(n))
            .collect();
        let mut results = Vec::new();
        for n in unknown {
            results.push(ScenarioResult {
                name: n.clone(),
                capability: None,
                outcome: Outcome::Failed("skip names a scenario that does not exist".into()),
            });
        }
        let declared_skip = |name: &str| {
            self.skips
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| format!("skipped by the test: {r}"))
        };
        for s in functional() {
            let outcome = if let Some(r) = declared_skip(s.name) {
                Outcome::Skipped(r)
            } else if let Some(c) = s.capability.filter(|c| !caps.has(*c)) {
                Outcome::Skipped(format!("the provider does not declare {c}"))
            } else if let Some(why) = (s.needs)(&caps) {
                Outcome::Skipped(why.into())
            } else {
                if let Some(h) = &self.harness {
                    h.before_scenario(s.name).await;
                }
                let fut: BoxFuture<'_, Outcome> = Box::pin(async {
                    match (s.run)(&ctx).await {
                        Ok(()) => Outcome::Passed,
                        Err(m) => Outcome::Failed(m),
                    }
                });
                self.guarded(fut).await
            };
            results.push(ScenarioResult {
                name: s.name.into(),
                capability: s.capability,
                outcome,
            });
        }
        for (name, call, fault) in fault_matrix() {
            let cap = call.capability();
            let outcome = if let Some(r) = declared_skip(&name) {
                Outcome::Skipped(r)
            } else if !caps.has(cap) {
                Outcome::Skipped(format!("the provider does not declare {cap}"))
            } else if let Some(h) = &self.harness {
                h.before_scenario(&name).await;
                let fut: BoxFuture<'_, Outcome> =
                    Box::pin(run_fault(&ctx, h, call, fault, self.expected_attempts));
                let o = self.guarded(fut).await;
                h.clear().await;
                o
            } else {
                Outcome::Skipped("no fault harness (in-process provider or none given)".into())
            };
            results.push(ScenarioResult {
                name,
                capability: Some(cap),
                outcome,
            });
        }
        SuiteReport {
            provider: self.provider.info().name.clone(),
            results,
        }
    }
}

/// What the suite found.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// The provider's name.
    pub provider: String,
    /// One result per scenario.
    pub results: Vec<ScenarioResult>,
}

impl SuiteReport {
    /// The failed scenarios.
    pub fn failures(&self) -> Vec<&ScenarioResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }
    /// The skipped scenarios.
    pub fn skipped(&self) -> Vec<&ScenarioResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
            .collect()
    }
    /// The passed scenarios.
    pub fn passed(&self) -> Vec<&ScenarioResult> {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Passed)
            .collect()
    }
    /// The result of one scenario.
    pub fn get(&self, name: &str) -> Option<&ScenarioResult> {
        self.results.iter().find(|r| r.name == name)
    }
    /// Prints one line per scenario and a summary.
    pub fn print(&self) {
        println!("{self}");
    }
    /// Panics, listing every failure, unless all scenarios passed or were skipped.
    pub fn assert_passed(&self) {
        let f = self.failures();
        if !f.is_empty() {
            let lines: Vec<String> = f
                .iter()
                .map(|r| match &r.outcome {
                    Outcome::Failed(m) => format!("  {}: {m}", r.name),
                    _ => unreachable!(),
                })
                .collect();
            panic!(
                "contract suite failed for provider {}: {} scenario(s)\n{}",
                self.provider,
                f.len(),
                lines.join("\n")
            );
        }
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            match &r.outcome {
                Outcome::Passed => writeln!(f, "  ok       {}", r.name)?,
                Outcome::Failed(m) => writeln!(f, "  FAILED   {}: {m}", r.name)?,
                Outcome::Skipped(m) => writeln!(f, "  skipped  {}: {m}", r.name)?,
            }
        }
        write!(
            f,
            "contract suite for {}: {} scenarios ok / {} FAILED / {} skipped",
            self.provider,
            self.passed().len(),
            self.failures().len(),
            self.skipped().len()
        )
    }
}
