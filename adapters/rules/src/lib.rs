//! # merchant-ai-rules
//!
//! The deterministic, offline provider of [merchant-ai](merchant_ai): no network, no keys,
//! always available, so it is the fallback at the end of every route and the default a new
//! user meets first.
//!
//! - **search**: BM25 on tantivy with field boosts, typo tolerance, prefix matching, CJK
//!   n-grams, synonyms, every filter, facet and sort of [`SearchRequest`](merchant_ai::SearchRequest).
//! - **recommend**: time-decayed popularity, co-occurrence, content similarity, personal
//!   history and business rules, each item with its reason.
//! - **chat**: intents from config with templated answers, tool calls, product answers through
//!   search, and an explicit hand-off to a human otherwise.
//! - **forecast**: naive, seasonal naive, SES, Holt, damped Holt, Holt-Winters/ETS, Theta,
//!   Croston / SBA / TSB, chosen per series; prediction intervals; replenishment.
//!
//! ```toml
//! [providers.rules]
//! kind = "rules"
//! ```

#![warn(missing_docs)]

mod catalog;
pub mod chat;
pub mod forecast;
pub mod forecaster;
pub mod recommend;
pub mod sample;
pub mod search;

use std::sync::Arc;

use async_trait::async_trait;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Forecaster, Provider, ProviderConfig,
    ProviderInfo, Recommender, Result, Searcher,
};
use serde::Deserialize;

pub use catalog::{Catalog, read_events, read_jsonl, read_products};
pub use chat::{ChatConfig, RulesChat};
pub use forecaster::{ForecastConfig, RulesForecaster};
pub use recommend::{RecommendConfig, RulesRecommender};
pub use search::{RulesSearcher, SearchConfig};

/// The `kind` of this adapter in config.
pub const KIND: &str = "rules";

/// Options of a `[providers.NAME]` section of kind `rules`; each capability has its own table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// `[providers.NAME.search]`.
    pub search: SearchConfig,
    /// `[providers.NAME.recommend]`.
    pub recommend: RecommendConfig,
    /// `[providers.NAME.chat]`.
    pub chat: ChatConfig,
    /// `[providers.NAME.forecast]`.
    pub forecast: ForecastConfig,
}

/// The rules provider: all four capabilities, in process, sharing one catalog.
#[derive(Debug)]
pub struct RulesProvider {
    info: ProviderInfo,
    catalog: Arc<Catalog>,
    searcher: Arc<RulesSearcher>,
    recommender: Arc<RulesRecommender>,
    chat: Arc<RulesChat>,
    forecaster: Arc<RulesForecaster>,
}

impl RulesProvider {
    /// What the rules provider offers.
    pub fn capabilities() -> Capabilities {
        Capabilities::none()
            .with_search()
            .with_recommend()
            .with_chat(true, true, true, false)
            .with_forecast()
    }

    /// A provider named `name` with an empty catalog.
    pub fn new(name: &str, cfg: RulesConfig) -> Result<Self> {
        let catalog = Arc::new(Catalog::new());
        let searcher = Arc::new(RulesSearcher::new(name, cfg.search, catalog.clone())?);
        let recommender = Arc::new(RulesRecommender::new(name, cfg.recommend, catalog.clone())?);
        let chat = Arc::new(RulesChat::new(
            name,
            cfg.chat,
            Some(searcher.clone() as Arc<dyn Searcher>),
        )?);
        let forecaster = Arc::new(RulesForecaster::new(name, cfg.forecast)?);
        Ok(RulesProvider {
            info: ProviderInfo::local(name, KIND, Self::capabilities()),
            catalog,
            searcher,
            recommender,
            chat,
            forecaster,
        })
    }

    /// The shared catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The concrete searcher.
    pub fn rules_searcher(&self) -> &Arc<RulesSearcher> {
        &self.searcher
    }

    /// The concrete recommender.
    pub fn rules_recommender(&self) -> &Arc<RulesRecommender> {
        &self.recommender
    }
}

impl Provider for RulesProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        Some(self.searcher.clone())
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        Some(self.recommender.clone())
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        Some(self.chat.clone())
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        Some(self.forecaster.clone())
    }
    /// The recommender keeps shoppers' events: erasure drops a subject's history.
    fn eraser(&self) -> Option<Arc<dyn merchant_ai::erasure::SubjectEraser>> {
        Some(self.recommender.clone())
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_rules::factory())`.
pub fn factory() -> RulesFactory {
    RulesFactory
}

/// Builds [`RulesProvider`]s from `kind = "rules"` sections, loading the `[catalog]` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct RulesFactory;

#[async_trait]
impl AdapterFactory for RulesFactory {
    fn kind(&self) -> &str {
        KIND
    }

    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        cfg.options_as::<RulesConfig>()?;
        Ok(RulesProvider::capabilities())
    }

    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let cfg: RulesConfig = ctx.provider.options_as()?;
        let provider = RulesProvider::new(ctx.provider.name(), cfg)?;
        let catalog = ctx.config.catalog();
        if let Some(path) = &catalog.products {
            let products = read_products(path)?;
            let report = provider.searcher.upsert(products).await?;
            if !report.rejected.is_empty() {
                tracing::warn!(
                    rejected = report.rejected.len(),
                    "catalog products rejected"
                );
            }
        }
        if let Some(path) = &catalog.events {
            let events = read_events(path)?;
            provider.recommender.record(events).await?;
        }
        Ok(Arc::new(provider))
    }
}
