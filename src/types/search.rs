use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::Product;
use super::common::{Money, ProductId, ProviderOptions, RequestContext, ResponseMeta};
use crate::error::{Error, Result};

/// A price range; either end may be open. Both ends are inclusive.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceRange {
    /// Lowest price, inclusive.
    pub min: Option<Money>,
    /// Highest price, inclusive.
    pub max: Option<Money>,
}

impl PriceRange {
    /// A range between `min` and `max` (either open).
    pub fn new(min: Option<Money>, max: Option<Money>) -> Self {
        PriceRange { min, max }
    }
    /// Whether `price` lies in the range (a different currency never matches).
    pub fn contains(&self, price: Money) -> bool {
        self.min
            .is_none_or(|m| m.currency == price.currency && price.minor >= m.minor)
            && self
                .max
                .is_none_or(|m| m.currency == price.currency && price.minor <= m.minor)
    }
}

/// Restrictions on which products may appear in results. Shared by search and recommend.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// Only products whose category path starts with this prefix.
    #[serde(default)]
    pub category_prefix: Vec<String>,
    /// Only these brands (any of them); empty = all.
    #[serde(default)]
    pub brands: Vec<String>,
    /// Only prices in this range.
    #[serde(default)]
    pub price: Option<PriceRange>,
    /// Only products in stock.
    #[serde(default)]
    pub in_stock: bool,
    /// Only products whose attribute equals the value, for every entry.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

setters!(Filters {
    /// Sets the price range.
    price: PriceRange => with_price, ?;
    /// Restricts to products in stock.
    in_stock: bool => with_in_stock, =;
});

impl Filters {
    /// No restriction.
    pub fn new() -> Self {
        Self::default()
    }
    /// Restricts to a category prefix.
    #[must_use]
    pub fn with_category_prefix<I, S>(mut self, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.category_prefix = path.into_iter().map(Into::into).collect();
        self
    }
    /// Adds an allowed brand.
    #[must_use]
    pub fn with_brand(mut self, brand: impl Into<String>) -> Self {
        self.brands.push(brand.into());
        self
    }
    /// Requires an attribute value.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self == &Filters::default()
    }
    /// Whether `p` passes every filter. Adapters that filter in-process use this, so every
    /// provider applies the same semantics: brand and attribute comparisons ignore ASCII case.
    pub fn matches(&self, p: &Product) -> bool {
        (self.category_prefix.is_empty() || p.in_category(&self.category_prefix))
            && (self.brands.is_empty()
                || p.brand
                    .as_deref()
                    .is_some_and(|b| self.brands.iter().any(|x| x.eq_ignore_ascii_case(b))))
            && self.price.is_none_or(|r| r.contains(p.price))
            && (!self.in_stock || p.in_stock())
            && self.attributes.iter().all(|(k, v)| {
                p.attributes
                    .get(k)
                    .is_some_and(|pv| pv.eq_ignore_ascii_case(v))
            })
    }
    /// Checks for contradictory filters; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(PriceRange {
            min: Some(lo),
            max: Some(hi),
        }) = self.price
        {
            if lo.currency != hi.currency {
                return Err(Error::invalid_request(
                    "filters.price: min and max have different currencies",
                ));
            }
            if lo.minor > hi.minor {
                return Err(Error::invalid_request(format!(
                    "filters.price: min {lo} is above max {hi}"
                )));
            }
        }
        Ok(())
    }
}

/// A facet to count over the matching products.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Facet {
    /// Counts per brand.
    Brand,
    /// Counts per category at `depth` (0 = top level).
    Category {
        /// The level of the category path to count.
        depth: usize,
    },
    /// Counts per value of an attribute.
    Attribute {
        /// The attribute name.
        name: String,
    },
    /// Counts per price bucket; each bound is an upper bound (exclusive), the last bucket open.
    Price {
        /// Ascending bucket bounds.
        bounds: Vec<Money>,
    },
    /// Counts of in-stock and out-of-stock products.
    InStock,
}

impl Facet {
    /// A short name for the facet (`brand`, `category:1`, `attribute:color`, `price`, `in_stock`).
    pub fn name(&self) -> String {
        match self {
            Facet::Brand => "brand".into(),
            Facet::Category { depth } => format!("category:{depth}"),
            Facet::Attribute { name } => format!("attribute:{name}"),
            Facet::Price { .. } => "price".into(),
            Facet::InStock => "in_stock".into(),
        }
    }
    /// The bucket label(s) `p` falls in for this facet.
    pub fn labels(&self, p: &Product) -> Option<String> {
        match self {
            Facet::Brand => p.brand.clone(),
            Facet::Category { depth } => p.category.get(*depth).cloned(),
            Facet::Attribute { name } => p.attributes.get(name).cloned(),
            Facet::Price { bounds } => {
                let mut lower: Option<Money> = None;
                for b in bounds {
                    if b.currency == p.price.currency && p.price.minor < b.minor {
                        return Some(match lower {
                            Some(l) => format!("{}-{}", l, b),
                            None => format!("<{}", b),
                        });
                    }
                    lower = Some(*b);
                }
                lower.map(|l| format!(">={l}"))
            }
            Facet::InStock => Some(
                if p.in_stock() {
                    "in_stock"
                } else {
                    "out_of_stock"
                }
                .into(),
            ),
        }
    }
}

/// Counts for one facet.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetCounts {
    /// The facet's name ([`Facet::name`]).
    pub facet: String,
    /// Value and count, most frequent first.
    pub counts: Vec<(String, u64)>,
}

impl FacetCounts {
    /// Counts for a facet.
    pub fn new(facet: impl Into<String>, counts: Vec<(String, u64)>) -> Self {
        FacetCounts {
            facet: facet.into(),
            counts,
        }
    }

    /// Counts every facet over `products` (the matches of a search), in the order of
    /// `facets`; values most frequent first, ties by value. Adapters that hold the catalog
    /// in-process use this, so every provider counts the same way.
    ///
    /// ```
    /// use merchant_ai::{Currency, Facet, FacetCounts, Money, Product};
    /// let p = |id: &str, brand: &str| {
    ///     Product::new(id, "Tea", Money::new(100, Currency::CNY)).with_brand(brand)
    /// };
    /// let ps = [p("a", "X"), p("b", "Y"), p("c", "Y")];
    /// let counts = FacetCounts::tally(&[Facet::Brand], &ps);
    /// assert_eq!(counts[0].counts, vec![("Y".to_owned(), 2), ("X".to_owned(), 1)]);
    /// ```
    pub fn tally<'a, I>(facets: &[Facet], products: I) -> Vec<FacetCounts>
    where
        I: IntoIterator<Item = &'a Product>,
    {
        if facets.is_empty() {
            return Vec::new();
        }
        let mut maps: Vec<std::collections::HashMap<String, u64>> =
            vec![std::collections::HashMap::new(); facets.len()];
        for p in products {
            for (facet, counts) in facets.iter().zip(maps.iter_mut()) {
                if let Some(label) = facet.labels(p) {
                    *counts.entry(label).or_insert(0) += 1;
                }
            }
        }
        facets
            .iter()
            .zip(maps)
            .map(|(facet, counts)| {
                let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
                counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                FacetCounts::new(facet.name(), counts)
            })
            .collect()
    }
}

/// Result order.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Best match first.
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Most expensive first.
    PriceDesc,
    /// Newest listing first.
    Newest,
}

impl SortBy {
    /// Orders two products by this sort's key: price or listing time (products without one
    /// last); [`SortBy::Relevance`] leaves them equal, for the caller to order by score.
    /// Adapters that sort in-process use this, then break ties by score and product id.
    pub fn compare_products(self, a: &Product, b: &Product) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match self {
            SortBy::PriceAsc => a.price.minor.cmp(&b.price.minor),
            SortBy::PriceDesc => b.price.minor.cmp(&a.price.minor),
            SortBy::Newest => match (a.created_at, b.created_at) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            SortBy::Relevance => Ordering::Equal,
        }
    }
}

/// How to match the query. A hint: providers that cannot do a mode use the closest they have
/// and report it in [`SearchResponse::mode`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Let the provider choose.
    #[default]
    Auto,
    /// Words and their variants.
    Keyword,
    /// Meaning (embeddings).
    Semantic,
    /// Both, fused.
    Hybrid,
}

/// A product search.
///
/// ```
/// use merchant_ai::{SearchRequest, Filters, SortBy, Facet};
/// let req = SearchRequest::new("running shoes")
///     .with_filters(Filters::new().with_in_stock(true).with_brand("Peakline"))
///     .with_facet(Facet::Brand)
///     .with_sort(SortBy::PriceAsc)
///     .with_limit(20);
/// assert!(req.validate().is_ok());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Who asks.
    #[serde(default)]
    pub ctx: RequestContext,
    /// The shopper's query; may be empty when filters alone select.
    pub query: String,
    /// Restrictions.
    #[serde(default)]
    pub filters: Filters,
    /// Facets to count over all matches.
    #[serde(default)]
    pub facets: Vec<Facet>,
    /// Order of results.
    #[serde(default)]
    pub sort: SortBy,
    /// Results to skip.
    #[serde(default)]
    pub offset: usize,
    /// Results to return (1 to 1000).
    pub limit: usize,
    /// How to match.
    #[serde(default)]
    pub mode: SearchMode,
    /// The query's language, if known.
    #[serde(default)]
    pub language: Option<String>,
    /// Vendor-specific options.
    #[serde(default)]
    pub provider_options: ProviderOptions,
}

setters!(SearchRequest {
    /// Sets the context.
    ctx: RequestContext => with_ctx;
    /// Sets the filters.
    filters: Filters => with_filters;
    /// Sets the sort order.
    sort: SortBy => with_sort;
    /// Sets the offset.
    offset: usize => with_offset, =;
    /// Sets the limit.
    limit: usize => with_limit, =;
    /// Sets the mode hint.
    mode: SearchMode => with_mode;
    /// Sets the language.
    language: String => with_language, ?;
    /// Sets vendor options.
    provider_options: ProviderOptions => with_provider_options;
});

impl SearchRequest {
    /// Highest accepted `limit`.
    pub const MAX_LIMIT: usize = 1000;

    /// A search for `query`, 10 results.
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            ctx: RequestContext::default(),
            query: query.into(),
            filters: Filters::default(),
            facets: Vec::new(),
            sort: SortBy::default(),
            offset: 0,
            limit: 10,
            mode: SearchMode::default(),
            language: None,
            provider_options: ProviderOptions::new(),
        }
    }
    /// Adds a facet.
    #[must_use]
    pub fn with_facet(mut self, facet: Facet) -> Self {
        self.facets.push(facet);
        self
    }
    /// Checks limits and filters; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > Self::MAX_LIMIT {
            return Err(Error::invalid_request(format!(
                "limit must be between 1 and {}, got {}",
                Self::MAX_LIMIT,
                self.limit
            )));
        }
        if self.query.chars().count() > 2000 {
            return Err(Error::invalid_request(
                "query is longer than 2000 characters",
            ));
        }
        self.filters.validate()
    }
}

/// One search result.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The product.
    pub product_id: ProductId,
    /// Relevance score; higher is better, comparable only within one response.
    pub score: f32,
    /// The product record, when the provider holds the catalog.
    #[serde(default)]
    pub product: Option<Product>,
}

impl SearchHit {
    /// A hit.
    pub fn new(product_id: impl Into<ProductId>, score: f32) -> Self {
        SearchHit {
            product_id: product_id.into(),
            score,
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

/// The answer to a [`SearchRequest`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The requested page of hits.
    pub hits: Vec<SearchHit>,
    /// How many products matched in all.
    pub total: u64,
    /// Facet counts, in the order requested.
    pub facets: Vec<FacetCounts>,
    /// The mode the provider actually used.
    pub mode: SearchMode,
    /// Who served it.
    pub meta: ResponseMeta,
}

impl SearchResponse {
    /// A response.
    pub fn new(hits: Vec<SearchHit>, total: u64, meta: ResponseMeta) -> Self {
        SearchResponse {
            hits,
            total,
            facets: Vec::new(),
            mode: SearchMode::Keyword,
            meta,
        }
    }
    /// Sets the facet counts.
    #[must_use]
    pub fn with_facets(mut self, facets: Vec<FacetCounts>) -> Self {
        self.facets = facets;
        self
    }
    /// Sets the mode used.
    #[must_use]
    pub fn with_mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }
}

/// What an upsert or remove did.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    /// Items applied.
    pub applied: usize,
    /// Items refused, with the reason (e.g. a validation error).
    pub rejected: Vec<(ProductId, String)>,
    /// Providers of a route that failed to apply the change, with the error.
    pub provider_errors: Vec<(String, String)>,
}

impl IndexReport {
    /// A report of `applied` items.
    pub fn new(applied: usize) -> Self {
        IndexReport {
            applied,
            ..Default::default()
        }
    }
    /// Adds a rejected item.
    #[must_use]
    pub fn with_rejected(mut self, id: ProductId, reason: impl Into<String>) -> Self {
        self.rejected.push((id, reason.into()));
        self
    }
}
