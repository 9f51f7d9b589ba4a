use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalog::Product;
use super::common::{ProductId, ProviderOptions, RequestContext, ResponseMeta, SubjectId};
use super::search::Filters;
use crate::error::{Error, Result};

/// Where the recommendations will be shown.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Scene {
    /// The home page: personal picks or what is popular.
    #[default]
    Home,
    /// A product page: items like the anchor product.
    ProductPage,
    /// The cart: items bought with what is in it.
    Cart,
    /// After checkout: complements of what was bought.
    PostPurchase,
    /// An email campaign.
    Email,
    /// A scene of the merchant's own.
    Other(String),
}

impl Scene {
    /// The snake_case name.
    pub fn as_str(&self) -> &str {
        match self {
            Scene::Home => "home",
            Scene::ProductPage => "product_page",
            Scene::Cart => "cart",
            Scene::PostPurchase => "post_purchase",
            Scene::Email => "email",
            Scene::Other(s) => s,
        }
    }
}

impl From<&str> for Scene {
    fn from(s: &str) -> Self {
        match s {
            "home" => Scene::Home,
            "product_page" | "product" => Scene::ProductPage,
            "cart" => Scene::Cart,
            "post_purchase" => Scene::PostPurchase,
            "email" => Scene::Email,
            other => Scene::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scene {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for Scene {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Scene::from(String::deserialize(d)?.as_str()))
    }
}

/// A request for recommendations.
///
/// ```
/// use merchant_ai::{RecommendRequest, Scene};
/// let req = RecommendRequest::new(Scene::ProductPage)
///     .with_anchor("sku-1")
///     .with_subject("u_7f3a")
///     .with_limit(8);
/// assert_eq!(req.subject().unwrap().as_str(), "u_7f3a");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommendRequest {
    /// Who asks.
    #[serde(default)]
    pub ctx: RequestContext,
    /// The subject to personalize for (defaults to `ctx.subject`).
    #[serde(default)]
    pub subject: Option<SubjectId>,
    /// Items seen in this session, most recent last.
    #[serde(default)]
    pub session_items: Vec<ProductId>,
    /// The product the recommendations relate to (similar items, bought together).
    #[serde(default)]
    pub anchor: Option<ProductId>,
    /// Where they will be shown.
    #[serde(default)]
    pub scene: Scene,
    /// How many items (1 to 200).
    pub limit: usize,
    /// Items never to return.
    #[serde(default)]
    pub exclude: Vec<ProductId>,
    /// Restrictions on the candidates.
    #[serde(default)]
    pub filters: Filters,
    /// Vendor-specific options.
    #[serde(default)]
    pub provider_options: ProviderOptions,
}

setters!(RecommendRequest {
    /// Sets the context.
    ctx: RequestContext => with_ctx;
    /// Sets the subject.
    subject: SubjectId => with_subject, ?;
    /// Sets the anchor product.
    anchor: ProductId => with_anchor, ?;
    /// Sets the limit.
    limit: usize => with_limit, =;
    /// Sets the filters.
    filters: Filters => with_filters;
    /// Sets vendor options.
    provider_options: ProviderOptions => with_provider_options;
});

impl RecommendRequest {
    /// Highest accepted `limit`.
    pub const MAX_LIMIT: usize = 200;

    /// A request for 10 items in `scene`.
    pub fn new(scene: Scene) -> Self {
        RecommendRequest {
            ctx: RequestContext::default(),
            subject: None,
            session_items: Vec::new(),
            anchor: None,
            scene,
            limit: 10,
            exclude: Vec::new(),
            filters: Filters::default(),
            provider_options: ProviderOptions::new(),
        }
    }
    /// Sets the session items.
    #[must_use]
    pub fn with_session_items<I, P>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<ProductId>,
    {
        self.session_items = items.into_iter().map(Into::into).collect();
        self
    }
    /// Adds an excluded item.
    #[must_use]
    pub fn with_exclude(mut self, id: impl Into<ProductId>) -> Self {
        self.exclude.push(id.into());
        self
    }
    /// The subject to personalize for: `subject`, else `ctx.subject`.
    pub fn subject(&self) -> Option<&SubjectId> {
        self.subject.as_ref().or(self.ctx.subject.as_ref())
    }
    /// Checks the limit and filters; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > Self::MAX_LIMIT {
            return Err(Error::invalid_request(format!(
                "limit must be between 1 and {}, got {}",
                Self::MAX_LIMIT,
                self.limit
            )));
        }
        self.filters.validate()
    }
}

/// Why an item was recommended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// Popular overall.
    Popular,
    /// Popular in the category.
    PopularInCategory,
    /// Often bought with the anchor or cart items.
    BoughtTogether,
    /// Often viewed with the anchor or session items.
    ViewedTogether,
    /// Similar in content (title, brand, category, attributes).
    Similar,
    /// Based on the subject's history.
    Personalized,
    /// Pinned by a business rule.
    Pinned,
    /// Promoted by a business rule.
    Boosted,
    /// Chosen by a vendor model.
    Model,
    /// Anything else.
    Other(String),
}

impl ReasonKind {
    /// The snake_case name.
    pub fn as_str(&self) -> &str {
        match self {
            ReasonKind::Popular => "popular",
            ReasonKind::PopularInCategory => "popular_in_category",
            ReasonKind::BoughtTogether => "bought_together",
            ReasonKind::ViewedTogether => "viewed_together",
            ReasonKind::Similar => "similar",
            ReasonKind::Personalized => "personalized",
            ReasonKind::Pinned => "pinned",
            ReasonKind::Boosted => "boosted",
            ReasonKind::Model => "model",
            ReasonKind::Other(s) => s,
        }
    }
}

impl From<&str> for ReasonKind {
    fn from(s: &str) -> Self {
        match s {
            "popular" => ReasonKind::Popular,
            "popular_in_category" => ReasonKind::PopularInCategory,
            "bought_together" => ReasonKind::BoughtTogether,
            "viewed_together" => ReasonKind::ViewedTogether,
            "similar" => ReasonKind::Similar,
            "personalized" => ReasonKind::Personalized,
            "pinned" => ReasonKind::Pinned,
            "boosted" => ReasonKind::Boosted,
            "model" => ReasonKind::Model,
            o => ReasonKind::Other(o.to_owned()),
        }
    }
}

impl Serialize for ReasonKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for ReasonKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(ReasonKind::from(String::deserialize(d)?.as_str()))
    }
}

/// The reason attached to a recommended item.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The kind of reason.
    pub kind: ReasonKind,
    /// A short explanation for people (e.g. "bought with Trail shoe").
    pub detail: String,
}

impl Reason {
    /// A reason.
    pub fn new(kind: ReasonKind, detail: impl Into<String>) -> Self {
        Reason {
            kind,
            detail: detail.into(),
        }
    }
}

/// One recommended item.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendedItem {
    /// The product.
    pub product_id: ProductId,
    /// Score; higher is better, comparable only within one response.
    pub score: f32,
    /// Why.
    pub reason: Reason,
    /// The product record, when the provider holds the catalog.
    #[serde(default)]
    pub product: Option<Product>,
}

impl RecommendedItem {
    /// An item.
    pub fn new(product_id: impl Into<ProductId>, score: f32, reason: Reason) -> Self {
        RecommendedItem {
            product_id: product_id.into(),
            score,
            reason,
            product: None,
        }
    }
    /// Attaches the product record.
    #[must_use]
    pub fn with_product(mut self, p: Product) -> Self {
        self.product = Some(p);
        self
    }
}

/// The answer to a [`RecommendRequest`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendResponse {
    /// Items, best first.
    pub items: Vec<RecommendedItem>,
    /// Quote this in feedback events ([`Event::trace_id`](crate::Event::trace_id)).
    pub trace_id: Option<String>,
    /// Who served it.
    pub meta: ResponseMeta,
}

impl RecommendResponse {
    /// A response.
    pub fn new(items: Vec<RecommendedItem>, meta: ResponseMeta) -> Self {
        RecommendResponse {
            items,
            trace_id: None,
            meta,
        }
    }
    /// Sets the trace id.
    #[must_use]
    pub fn with_trace_id(mut self, id: impl Into<String>) -> Self {
        self.trace_id = Some(id.into());
        self
    }
}
