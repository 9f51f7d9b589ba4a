//! The four capability traits and the [`Provider`] that offers them.
//!
//! Every trait is narrow, object-safe and used as `Arc<dyn Trait>`. No operation has a default
//! body, so a wrapping layer cannot silently skip forwarding one.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::types::*;

/// Product search over the merchant's catalog.
///
/// # Contract
/// - `upsert` adds or replaces products by id; it is idempotent. Invalid products are listed in
///   [`IndexReport::rejected`] and do not fail the others. A product is searchable when
///   `upsert` returns.
/// - `remove` deletes by id; unknown ids are not an error. A removed product never appears in
///   later results.
/// - `search` validates the request ([`SearchRequest::validate`]) and answers
///   `InvalidRequest` otherwise; returns at most `limit` hits after skipping `offset`, with
///   non-increasing scores under [`SortBy::Relevance`]; every hit satisfies every filter;
///   `total` counts all matches; facets are counted over all matches.
/// - Errors carry the right [`ErrorKind`](crate::ErrorKind); nothing panics on vendor input.
#[async_trait]
pub trait Searcher: Send + Sync + fmt::Debug + 'static {
    /// Adds or replaces products.
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport>;
    /// Removes products by id.
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport>;
    /// Searches.
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse>;
}

/// Recommendations from shoppers' behaviour.
///
/// # Contract
/// - `record` ingests events (views, carts, purchases); they influence later recommendations.
/// - `recommend` returns at most `limit` distinct items, best first, never an item in
///   `exclude` nor the anchor itself, each passing `filters`, each with a [`Reason`]. A cold
///   start (no events, unknown subject) still answers, possibly with no items.
#[async_trait]
pub trait Recommender: Send + Sync + fmt::Debug + 'static {
    /// Records interaction events.
    async fn record(&self, events: Vec<Event>) -> Result<()>;
    /// Recommends items.
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse>;
}

/// A conversational model.
///
/// # Contract
/// - `chat` validates the request ([`ChatRequest::validate`]) and answers with text and/or
///   tool calls and a [`FinishReason`].
/// - `chat_stream` yields deltas and ends with exactly one [`ChatEvent::Finished`]; or with one
///   error item, after which nothing follows. The concatenated text deltas equal what `chat`
///   would have answered for the same deterministic request. Dropping the stream cancels.
/// - With [`ResponseFormat::JsonObject`] or `JsonSchema`, the text parses as JSON.
#[async_trait]
pub trait ChatModel: Send + Sync + fmt::Debug + 'static {
    /// Completes the conversation.
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse>;
    /// Completes the conversation as a stream of events.
    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream>;
}

/// Demand forecasting.
///
/// # Contract
/// - `forecast` validates the request ([`ForecastRequest::validate`]); then answers one
///   [`SeriesForecast`] per series, in order. A bad series gets its own
///   [`SeriesForecast::error`] and never fails the others.
/// - Each successful series has `horizon` finite point values and one quantile vector per
///   requested level, non-decreasing in the level at every step.
#[async_trait]
pub trait Forecaster: Send + Sync + fmt::Debug + 'static {
    /// Forecasts every series of the request.
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse>;
}

/// One of the four jobs.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// [`Searcher`].
    Search,
    /// [`Recommender`].
    Recommend,
    /// [`ChatModel`].
    Chat,
    /// [`Forecaster`].
    Forecast,
}

impl Capability {
    /// All four, in a fixed order.
    pub const ALL: [Capability; 4] = [
        Capability::Search,
        Capability::Recommend,
        Capability::Chat,
        Capability::Forecast,
    ];
    /// The snake_case name, as used in config routes.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Search => "search",
            Capability::Recommend => "recommend",
            Capability::Chat => "chat",
            Capability::Forecast => "forecast",
        }
    }
    /// Parses a name as used in config.
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider can do.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Offers [`Searcher`].
    pub search: bool,
    /// Offers [`Recommender`].
    pub recommend: bool,
    /// Offers [`ChatModel`].
    pub chat: bool,
    /// Offers [`Forecaster`].
    pub forecast: bool,
    /// Chat streams real deltas (not one chunk at the end).
    pub chat_streaming: bool,
    /// Chat supports tools.
    pub chat_tools: bool,
    /// Chat supports JSON response formats.
    pub chat_json: bool,
    /// Chat accepts image parts.
    pub chat_images: bool,
}

impl Capabilities {
    /// Nothing.
    pub fn none() -> Self {
        Self::default()
    }
    /// All four capabilities with every chat feature.
    pub fn all() -> Self {
        Capabilities {
            search: true,
            recommend: true,
            chat: true,
            forecast: true,
            chat_streaming: true,
            chat_tools: true,
            chat_json: true,
            chat_images: true,
        }
    }
    /// Adds search.
    #[must_use]
    pub fn with_search(mut self) -> Self {
        self.search = true;
        self
    }
    /// Adds recommend.
    #[must_use]
    pub fn with_recommend(mut self) -> Self {
        self.recommend = true;
        self
    }
    /// Adds chat with the given features.
    #[must_use]
    pub fn with_chat(mut self, streaming: bool, tools: bool, json: bool, images: bool) -> Self {
        self.chat = true;
        self.chat_streaming = streaming;
        self.chat_tools = tools;
        self.chat_json = json;
        self.chat_images = images;
        self
    }
    /// Adds forecast.
    #[must_use]
    pub fn with_forecast(mut self) -> Self {
        self.forecast = true;
        self
    }
    /// Whether the capability is offered.
    pub fn has(&self, c: Capability) -> bool {
        match c {
            Capability::Search => self.search,
            Capability::Recommend => self.recommend,
            Capability::Chat => self.chat,
            Capability::Forecast => self.forecast,
        }
    }
}

/// Who a provider is and where its data goes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The configured name (`qwen`, `local`, `rules`).
    pub name: String,
    /// The adapter kind (`alibaba`, `openai`, `candle`, `rules`).
    pub kind: String,
    /// The vendor region (e.g. `ap-southeast-1`), if remote.
    pub region: Option<String>,
    /// The jurisdiction data sent to it is processed in; `None` for in-process providers.
    pub jurisdiction: Option<Jurisdiction>,
    /// Whether request data leaves this process (any remote vendor: `true`).
    pub data_leaves_process: bool,
    /// What it can do.
    pub capabilities: Capabilities,
}

impl ProviderInfo {
    /// An in-process provider (data stays in the process).
    pub fn local(
        name: impl Into<String>,
        kind: impl Into<String>,
        capabilities: Capabilities,
    ) -> Self {
        ProviderInfo {
            name: name.into(),
            kind: kind.into(),
            region: None,
            jurisdiction: None,
            data_leaves_process: false,
            capabilities,
        }
    }
    /// A remote provider in `region`, processing data under `jurisdiction`.
    pub fn remote(
        name: impl Into<String>,
        kind: impl Into<String>,
        region: Option<String>,
        jurisdiction: Option<Jurisdiction>,
        capabilities: Capabilities,
    ) -> Self {
        ProviderInfo {
            name: name.into(),
            kind: kind.into(),
            region,
            jurisdiction,
            data_leaves_process: true,
            capabilities,
        }
    }
}

/// A configured provider: its identity and its capability handles.
///
/// A method returns `None` exactly when [`ProviderInfo::capabilities`] says the capability is
/// missing.
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// Identity, region and capabilities.
    fn info(&self) -> &ProviderInfo;
    /// The search capability.
    fn searcher(&self) -> Option<Arc<dyn Searcher>>;
    /// The recommend capability.
    fn recommender(&self) -> Option<Arc<dyn Recommender>>;
    /// The chat capability.
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>>;
    /// The forecast capability.
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>>;
    /// Deletes what the provider keeps about a subject, if it keeps anything and can delete
    /// it (see [`crate::erasure`]). `None`: no delete operation exists; erasure reports list
    /// the provider as such.
    fn eraser(&self) -> Option<Arc<dyn crate::erasure::SubjectEraser>> {
        None
    }
}
