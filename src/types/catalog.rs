use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Consent, Money, ProductId, SubjectId};
use crate::error::{Error, Result};

/// Title and description in one more language.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalizedText {
    /// The title in that language.
    pub title: String,
    /// The description in that language.
    #[serde(default)]
    pub description: String,
}

impl LocalizedText {
    /// A localized title (and empty description).
    pub fn new(title: impl Into<String>) -> Self {
        LocalizedText {
            title: title.into(),
            description: String::new(),
        }
    }
    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
}

/// A product of the merchant's catalog.
///
/// ```
/// use merchant_ai::{Product, Money, Currency};
/// let p = Product::new("sku-1", "Trail running shoe", Money::new(59900, Currency::CNY))
///     .with_brand("Peakline")
///     .with_category(["Sports", "Running", "Shoes"])
///     .with_stock(12)
///     .with_localized_title("zh", "越野跑鞋");
/// assert!(p.in_stock());
/// assert_eq!(p.category_path(), "Sports > Running > Shoes");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The product id.
    pub id: ProductId,
    /// The title in the catalog's main language.
    pub title: String,
    /// A longer description.
    #[serde(default)]
    pub description: String,
    /// The brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// The category path from the root, e.g. `["Home", "Kitchen", "Cookware"]`.
    #[serde(default)]
    pub category: Vec<String>,
    /// The selling price.
    pub price: Money,
    /// The unit cost, when known (used by margin rules).
    #[serde(default)]
    pub cost: Option<Money>,
    /// Attributes such as colour or size.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Units in stock; `None` when not tracked (treated as in stock).
    #[serde(default)]
    pub stock: Option<u32>,
    /// Image URLs.
    #[serde(default)]
    pub image_urls: Vec<String>,
    /// The language of `title` and `description` (BCP 47, e.g. `en`, `zh`).
    #[serde(default)]
    pub language: Option<String>,
    /// Title and description in other languages, keyed by language tag.
    #[serde(default)]
    pub localized: BTreeMap<String, LocalizedText>,
    /// When the product was listed.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

setters!(Product {
    /// Sets the description.
    description: String => with_description;
    /// Sets the brand.
    brand: String => with_brand, ?;
    /// Sets the unit cost.
    cost: Money => with_cost, ?;
    /// Sets the stock quantity.
    stock: u32 => with_stock, some;
    /// Sets the language of the main title.
    language: String => with_language, ?;
    /// Sets the listing time.
    created_at: DateTime<Utc> => with_created_at, ?;
});

impl Product {
    /// A product with an id, a title and a price.
    pub fn new(id: impl Into<ProductId>, title: impl Into<String>, price: Money) -> Self {
        Product {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            brand: None,
            category: Vec::new(),
            price,
            cost: None,
            attributes: BTreeMap::new(),
            tags: Vec::new(),
            stock: None,
            image_urls: Vec::new(),
            language: None,
            localized: BTreeMap::new(),
            created_at: None,
        }
    }

    /// Sets the category path.
    #[must_use]
    pub fn with_category<I, S>(mut self, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.category = path.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an attribute.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds an image URL.
    #[must_use]
    pub fn with_image_url(mut self, url: impl Into<String>) -> Self {
        self.image_urls.push(url.into());
        self
    }

    /// Adds a title in another language.
    #[must_use]
    pub fn with_localized_title(
        mut self,
        lang: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        self.localized
            .insert(lang.into(), LocalizedText::new(title));
        self
    }

    /// Adds title and description in another language.
    #[must_use]
    pub fn with_localized(mut self, lang: impl Into<String>, text: LocalizedText) -> Self {
        self.localized.insert(lang.into(), text);
        self
    }

    /// Whether the product can be sold now (`stock` untracked or above zero).
    pub fn in_stock(&self) -> bool {
        self.stock != Some(0)
    }

    /// The category path joined with `" > "`.
    pub fn category_path(&self) -> String {
        self.category.join(" > ")
    }

    /// Whether the category path starts with `prefix` (case-insensitive per level).
    pub fn in_category(&self, prefix: &[String]) -> bool {
        prefix.len() <= self.category.len()
            && prefix
                .iter()
                .zip(&self.category)
                .all(|(a, b)| a.eq_ignore_ascii_case(b) || a == b)
    }

    /// The title in `lang` if known, else the main title.
    pub fn title_in(&self, lang: &str) -> &str {
        self.localized
            .get(lang)
            .map(|l| l.title.as_str())
            .unwrap_or(&self.title)
    }

    /// Checks the fields an adapter relies on; the error names the product and field.
    pub fn validate(&self) -> Result<()> {
        if self.id.as_str().trim().is_empty() {
            return Err(Error::invalid_request("product id is empty"));
        }
        if self.title.trim().is_empty() {
            return Err(Error::invalid_request(format!(
                "product {}: title is empty",
                self.id
            )));
        }
        if self.price.minor < 0 {
            return Err(Error::invalid_request(format!(
                "product {}: price is negative",
                self.id
            )));
        }
        if let Some(c) = self.cost
            && c.currency != self.price.currency
        {
            return Err(Error::invalid_request(format!(
                "product {}: cost currency {} differs from price currency {}",
                self.id, c.currency, self.price.currency
            )));
        }
        Ok(())
    }
}

/// What a shopper did.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Viewed a product page.
    View,
    /// Clicked a product (e.g. in a recommendation or search result).
    Click,
    /// Added to the cart.
    AddToCart,
    /// Bought.
    Purchase,
    /// Returned after buying.
    Return,
    /// Rated (see [`Event::value`]).
    Rating,
}

impl EventKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::Click => "click",
            EventKind::AddToCart => "add_to_cart",
            EventKind::Purchase => "purchase",
            EventKind::Return => "return",
            EventKind::Rating => "rating",
        }
    }
}

/// One interaction of a shopper with a product.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The pseudonymous subject.
    pub subject: SubjectId,
    /// The browsing session, if known.
    #[serde(default)]
    pub session: Option<String>,
    /// The product.
    pub product: ProductId,
    /// What happened.
    pub kind: EventKind,
    /// Units (for add to cart, purchase, return); 1 by default.
    #[serde(default = "one")]
    pub quantity: u32,
    /// The rating for [`EventKind::Rating`] (e.g. 1 to 5); otherwise an optional weight.
    #[serde(default)]
    pub value: Option<f64>,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The recommendation or search trace id this event follows from, for feedback.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The subject's consent to AI processing. A provider whose data leaves the process never
    /// receives an event marked [`Consent::Denied`] (nor an [`Consent::Unknown`] one when the
    /// profile's `consent_unknown` is `"deny"`); in-process providers receive every event.
    #[serde(default)]
    pub consent: Consent,
}

fn one() -> u32 {
    1
}

setters!(Event {
    /// Sets the session.
    session: String => with_session, ?;
    /// Sets the quantity.
    quantity: u32 => with_quantity, =;
    /// Sets the value (rating).
    value: f64 => with_value, some;
    /// Links the event to a recommendation's trace id.
    trace_id: String => with_trace_id, ?;
    /// Sets the subject's consent.
    consent: Consent => with_consent, =;
});

impl Event {
    /// An event of `kind` by `subject` on `product` at `timestamp`.
    pub fn new(
        subject: impl Into<SubjectId>,
        product: impl Into<ProductId>,
        kind: EventKind,
        timestamp: DateTime<Utc>,
    ) -> Self {
        Event {
            subject: subject.into(),
            session: None,
            product: product.into(),
            kind,
            quantity: 1,
            value: None,
            timestamp,
            trace_id: None,
            consent: Consent::Unknown,
        }
    }
}
