//! Merchant rules applied by every recommender, whichever engine scored the candidates.
//!
//! An adapter (rules, embeddings, a vendor model) produces scored candidates; it then calls
//! [`BusinessRules::apply`], which enforces the request (exclusions, anchor, filters, limit) and
//! the merchant's rules, in this order:
//!
//! 1. drop duplicates (the first occurrence wins), excluded items, the anchor, unknown products
//!    when the request has filters, products failing [`Filters::matches`];
//! 2. drop out-of-stock products ([`BusinessRules::drop_out_of_stock`]), products the subject
//!    already bought ([`BusinessRules::drop_bought`]) and products under the margin floor
//!    ([`BusinessRules::min_margin`]);
//! 3. multiply scores by every matching [`boost`](BusinessRules::boost) and
//!    [`bury`](BusinessRules::bury) rule, then sort (score descending, then product id);
//! 4. keep at most [`max_per_category`](BusinessRules::max_per_category) items per category
//!    (the first [`category_depth`](BusinessRules::category_depth) levels of the path);
//! 5. place [`pin`](BusinessRules::pin)ned products at their positions (a pin still obeys
//!    step 1 and 2);
//! 6. cut to the request's limit, make the scores non-increasing, and mark items a rule moved up
//!    with [`ReasonKind::Pinned`] or [`ReasonKind::Boosted`].
//!
//! # Example configuration
//!
//! ```toml
//! [providers.rules.recommend.rules]
//! drop_out_of_stock = true
//! drop_bought = true
//! max_per_category = 3
//! category_depth = 2
//! min_margin = 0.15
//!
//! [[providers.rules.recommend.rules.pin]]
//! product = "sku-42"
//! position = 1
//! scenes = ["home"]
//!
//! [[providers.rules.recommend.rules.boost]]
//! brand = "Peakline"
//! multiplier = 1.5
//!
//! [[providers.rules.recommend.rules.bury]]
//! category_prefix = ["Clearance"]
//! multiplier = 0.5
//! ```
//!
//! ```
//! use std::collections::HashSet;
//! use merchant_ai::business_rules::{BusinessRules, Candidate};
//! use merchant_ai::{Currency, Money, Product, Reason, ReasonKind, RecommendRequest, Scene};
//!
//! let rules: BusinessRules = toml::from_str("max_per_category = 1").unwrap();
//! let a = Product::new("a", "Tea", Money::new(100, Currency::CNY)).with_category(["Drinks"]);
//! let b = Product::new("b", "Coffee", Money::new(100, Currency::CNY)).with_category(["Drinks"]);
//! let cands = vec![
//!     Candidate::new("a", 2.0, Reason::new(ReasonKind::Popular, "popular")).with_product(&a),
//!     Candidate::new("b", 1.0, Reason::new(ReasonKind::Popular, "popular")).with_product(&b),
//! ];
//! let req = RecommendRequest::new(Scene::Home);
//! let items = rules.apply(&req, cands, &HashSet::new(), |_| None::<Product>);
//! assert_eq!(items.len(), 1);
//! assert_eq!(items[0].product_id.as_str(), "a");
//! ```

use std::borrow::{Borrow, Cow};
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{
    Filters, Product, ProductId, Reason, ReasonKind, RecommendRequest, RecommendedItem, Scene,
};

/// The merchant's rules for recommendations (`[providers.NAME.recommend.rules]`).
///
/// Every field has a default; an empty table applies only the two drops.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessRules {
    /// Never recommend products whose stock is zero (default `true`).
    pub drop_out_of_stock: bool,
    /// Never recommend products the subject already bought (default `true`); the caller passes
    /// the bought set to [`BusinessRules::apply`].
    pub drop_bought: bool,
    /// Products placed at fixed positions.
    pub pin: Vec<PinRule>,
    /// Score multipliers of at least 1 for matching products.
    pub boost: Vec<ScoreRule>,
    /// Score multipliers between 0 and 1 for matching products.
    pub bury: Vec<ScoreRule>,
    /// At most this many items per category; `None` = no cap.
    pub max_per_category: Option<usize>,
    /// How many levels of the category path form "a category" for `max_per_category`
    /// (default 1: the top level).
    pub category_depth: usize,
    /// Minimum margin `(price - cost) / price` (e.g. `0.15`); products without a cost pass.
    pub min_margin: Option<f64>,
}

impl Default for BusinessRules {
    fn default() -> Self {
        BusinessRules {
            drop_out_of_stock: true,
            drop_bought: true,
            pin: Vec::new(),
            boost: Vec::new(),
            bury: Vec::new(),
            max_per_category: None,
            category_depth: 1,
            min_margin: None,
        }
    }
}

/// A product placed at a fixed position.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRule {
    /// The product.
    pub product: ProductId,
    /// The 1-based position (1 = first). Beyond the list's end, the item goes last.
    pub position: usize,
    /// Scenes where the pin applies (snake_case names such as `home`); empty = all.
    #[serde(default)]
    pub scenes: Vec<String>,
}

impl PinRule {
    /// A pin of `product` at 1-based `position` in every scene.
    pub fn new(product: impl Into<ProductId>, position: usize) -> Self {
        PinRule {
            product: product.into(),
            position,
            scenes: Vec::new(),
        }
    }
    /// Restricts the pin to a scene (may be called several times).
    #[must_use]
    pub fn with_scene(mut self, scene: impl Into<String>) -> Self {
        self.scenes.push(scene.into());
        self
    }
}

/// A score multiplier for products matching every criterion given (at least one).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRule {
    /// Only this product.
    #[serde(default)]
    pub product: Option<ProductId>,
    /// Only this brand (ASCII case ignored).
    #[serde(default)]
    pub brand: Option<String>,
    /// Only products under this category prefix.
    #[serde(default)]
    pub category_prefix: Vec<String>,
    /// Only products with this tag (ASCII case ignored).
    #[serde(default)]
    pub tag: Option<String>,
    /// The multiplier: at least 1 in `boost`, between 0 and 1 in `bury`.
    pub multiplier: f64,
    /// Scenes where the rule applies; empty = all.
    #[serde(default)]
    pub scenes: Vec<String>,
}

impl ScoreRule {
    /// A rule with `multiplier` and no criterion yet (add one with a `for_*` method).
    pub fn new(multiplier: f64) -> Self {
        ScoreRule {
            product: None,
            brand: None,
            category_prefix: Vec::new(),
            tag: None,
            multiplier,
            scenes: Vec::new(),
        }
    }
    /// Matches one product.
    #[must_use]
    pub fn for_product(mut self, id: impl Into<ProductId>) -> Self {
        self.product = Some(id.into());
        self
    }
    /// Matches a brand.
    #[must_use]
    pub fn for_brand(mut self, brand: impl Into<String>) -> Self {
        self.brand = Some(brand.into());
        self
    }
    /// Matches a category prefix.
    #[must_use]
    pub fn for_category<I, S>(mut self, prefix: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.category_prefix = prefix.into_iter().map(Into::into).collect();
        self
    }
    /// Matches a tag.
    #[must_use]
    pub fn for_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
    /// Restricts the rule to a scene (may be called several times).
    #[must_use]
    pub fn with_scene(mut self, scene: impl Into<String>) -> Self {
        self.scenes.push(scene.into());
        self
    }

    fn has_criterion(&self) -> bool {
        self.product.is_some()
            || self.brand.is_some()
            || !self.category_prefix.is_empty()
            || self.tag.is_some()
    }

    /// Whether the rule applies to `id` (with its record, if known) in `scene`. Criteria other
    /// than the product id need the record.
    fn matches(&self, id: &ProductId, p: Option<&Product>, scene: &Scene) -> bool {
        if !scene_ok(&self.scenes, scene) || !self.has_criterion() {
            return false;
        }
        if self.product.as_ref().is_some_and(|x| x != id) {
            return false;
        }
        let needs_record =
            self.brand.is_some() || !self.category_prefix.is_empty() || self.tag.is_some();
        if !needs_record {
            return true;
        }
        let Some(p) = p else { return false };
        self.brand.as_deref().is_none_or(|b| {
            p.brand
                .as_deref()
                .is_some_and(|pb| pb.eq_ignore_ascii_case(b))
        }) && (self.category_prefix.is_empty() || p.in_category(&self.category_prefix))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| p.tags.iter().any(|pt| pt.eq_ignore_ascii_case(t)))
    }
}

fn scene_ok(scenes: &[String], scene: &Scene) -> bool {
    scenes.is_empty() || scenes.iter().any(|s| s == scene.as_str())
}

/// A scored candidate handed to [`BusinessRules::apply`].
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The product.
    pub product_id: ProductId,
    /// The engine's score; higher is better. Non-finite scores count as 0.
    pub score: f32,
    /// Why the engine chose it.
    pub reason: Reason,
    /// The product record, if the caller holds it (else the lookup is asked).
    pub product: Option<&'a Product>,
}

impl<'a> Candidate<'a> {
    /// A candidate without its record.
    pub fn new(product_id: impl Into<ProductId>, score: f32, reason: Reason) -> Self {
        Candidate {
            product_id: product_id.into(),
            score,
            reason,
            product: None,
        }
    }
    /// Attaches the record.
    #[must_use]
    pub fn with_product(mut self, p: &'a Product) -> Self {
        self.product = Some(p);
        self
    }
}

/// One survivor of the hard rules, with its record.
struct Kept<'a> {
    id: ProductId,
    raw: f32,
    score: f32,
    boosted: bool,
    pinned: bool,
    reason: Reason,
    product: Option<Cow<'a, Product>>,
}

impl BusinessRules {
    /// Rules with the defaults (drop out-of-stock and bought items, nothing else).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a pin.
    #[must_use]
    pub fn with_pin(mut self, pin: PinRule) -> Self {
        self.pin.push(pin);
        self
    }
    /// Adds a boost.
    #[must_use]
    pub fn with_boost(mut self, rule: ScoreRule) -> Self {
        self.boost.push(rule);
        self
    }
    /// Adds a bury.
    #[must_use]
    pub fn with_bury(mut self, rule: ScoreRule) -> Self {
        self.bury.push(rule);
        self
    }
    /// Caps items per category at `depth` levels.
    #[must_use]
    pub fn with_max_per_category(mut self, max: usize, depth: usize) -> Self {
        self.max_per_category = Some(max);
        self.category_depth = depth;
        self
    }
    /// Sets the margin floor.
    #[must_use]
    pub fn with_min_margin(mut self, min: f64) -> Self {
        self.min_margin = Some(min);
        self
    }
    /// Sets whether out-of-stock products are dropped.
    #[must_use]
    pub fn with_drop_out_of_stock(mut self, on: bool) -> Self {
        self.drop_out_of_stock = on;
        self
    }
    /// Sets whether bought products are dropped.
    #[must_use]
    pub fn with_drop_bought(mut self, on: bool) -> Self {
        self.drop_bought = on;
        self
    }

    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        for (i, p) in self.pin.iter().enumerate() {
            if p.position == 0 {
                return Err(Error::config(format!(
                    "rules.pin[{i}].position must be 1 or more (1 = first)"
                )));
            }
        }
        for (list, rules, lo, hi) in [
            ("boost", &self.boost, 1.0, f64::MAX),
            ("bury", &self.bury, f64::MIN_POSITIVE, 1.0),
        ] {
            for (i, r) in rules.iter().enumerate() {
                if !r.has_criterion() {
                    return Err(Error::config(format!(
                        "rules.{list}[{i}] needs product, brand, category_prefix or tag"
                    )));
                }
                if !r.multiplier.is_finite() || r.multiplier < lo || r.multiplier > hi {
                    return Err(Error::config(format!(
                        "rules.{list}[{i}].multiplier must be {}, got {}",
                        if list == "boost" {
                            "at least 1"
                        } else {
                            "above 0 and at most 1"
                        },
                        r.multiplier
                    )));
                }
            }
        }
        if self.max_per_category == Some(0) {
            return Err(Error::config("rules.max_per_category must be 1 or more"));
        }
        if self.category_depth == 0 {
            return Err(Error::config("rules.category_depth must be 1 or more"));
        }
        if let Some(m) = self.min_margin
            && (!m.is_finite() || !(-1.0..1.0).contains(&m))
        {
            return Err(Error::config(format!(
                "rules.min_margin must be a fraction below 1 (e.g. 0.15), got {m}"
            )));
        }
        Ok(())
    }

    /// Whether `p` passes the margin floor (products without a comparable cost pass).
    pub fn margin_ok(&self, p: &Product) -> bool {
        let (Some(floor), Some(cost)) = (self.min_margin, p.cost) else {
            return true;
        };
        if cost.currency != p.price.currency {
            return true;
        }
        if p.price.minor <= 0 {
            return false;
        }
        let margin = (p.price.minor - cost.minor) as f64 / p.price.minor as f64;
        margin >= floor
    }

    /// The multiplier of every matching boost and bury rule for `id` in `scene`.
    pub fn multiplier(&self, id: &ProductId, p: Option<&Product>, scene: &Scene) -> f64 {
        self.boost
            .iter()
            .chain(&self.bury)
            .filter(|r| r.matches(id, p, scene))
            .map(|r| r.multiplier)
            .product()
    }

    /// Applies the request and the rules to scored candidates (see the [module](self) docs for
    /// the order) and returns at most `req.limit` distinct items, best first.
    ///
    /// `bought` holds the subject's bought products (used when `drop_bought`); `lookup` finds a
    /// product record for candidates without one and for pins. A candidate whose record is
    /// unknown is kept only when the request has no filters (it cannot be checked against
    /// them), and is not subject to the stock, margin and category rules.
    pub fn apply<'a, P, F>(
        &self,
        req: &RecommendRequest,
        candidates: Vec<Candidate<'a>>,
        bought: &HashSet<ProductId>,
        mut lookup: F,
    ) -> Vec<RecommendedItem>
    where
        P: Borrow<Product>,
        F: FnMut(&ProductId) -> Option<P>,
    {
        let scene = &req.scene;
        let mut seen: HashSet<ProductId> = req.exclude.iter().cloned().collect();
        seen.extend(req.anchor.iter().cloned());
        if self.drop_bought {
            seen.extend(bought.iter().cloned());
        }
        let blocked = seen.clone();

        let mut kept: Vec<Kept<'a>> = Vec::with_capacity(candidates.len());
        for c in candidates {
            if !seen.insert(c.product_id.clone()) {
                continue;
            }
            let product: Option<Cow<'a, Product>> = match c.product {
                Some(p) => Some(Cow::Borrowed(p)),
                None => lookup(&c.product_id).map(|p| Cow::Owned(p.borrow().clone())),
            };
            if !self.passes(&req.filters, product.as_deref()) {
                continue;
            }
            let raw = if c.score.is_finite() { c.score } else { 0.0 };
            let m = self.multiplier(&c.product_id, product.as_deref(), scene);
            kept.push(Kept {
                id: c.product_id,
                raw,
                score: (raw as f64 * m) as f32,
                boosted: m > 1.0,
                pinned: false,
                reason: c.reason,
                product,
            });
        }

        // Rank before the score rules, to tell which items a boost moved up.
        let mut by_raw: Vec<usize> = (0..kept.len()).collect();
        by_raw.sort_by(|&a, &b| {
            kept[b]
                .raw
                .total_cmp(&kept[a].raw)
                .then_with(|| kept[a].id.cmp(&kept[b].id))
        });
        let mut raw_rank: HashMap<ProductId, usize> = HashMap::with_capacity(kept.len());
        for (r, &i) in by_raw.iter().enumerate() {
            raw_rank.insert(kept[i].id.clone(), r);
        }
        kept.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));

        // Category cap.
        if let Some(max) = self.max_per_category {
            let mut per: HashMap<Vec<String>, usize> = HashMap::new();
            kept.retain(|k| {
                let Some(p) = &k.product else { return true };
                if p.category.is_empty() {
                    return true;
                }
                let key: Vec<String> = p
                    .category
                    .iter()
                    .take(self.category_depth)
                    .map(|s| s.to_lowercase())
                    .collect();
                let n = per.entry(key).or_insert(0);
                *n += 1;
                *n <= max
            });
        }

        // Pins, by position.
        let mut pins: Vec<&PinRule> = self
            .pin
            .iter()
            .filter(|p| p.position > 0 && scene_ok(&p.scenes, scene))
            .collect();
        pins.sort_by(|a, b| a.position.cmp(&b.position).then(a.product.cmp(&b.product)));
        let mut pinned_ids: HashSet<ProductId> = HashSet::new();
        for pin in pins {
            if blocked.contains(&pin.product) || !pinned_ids.insert(pin.product.clone()) {
                continue;
            }
            let existing = kept.iter().position(|k| k.id == pin.product);
            let mut item = match existing {
                Some(i) => kept.remove(i),
                None => {
                    let product = lookup(&pin.product).map(|p| Cow::Owned(p.borrow().clone()));
                    if product.is_none() || !self.passes(&req.filters, product.as_deref()) {
                        continue;
                    }
                    Kept {
                        id: pin.product.clone(),
                        raw: 0.0,
                        score: 0.0,
                        boosted: false,
                        pinned: true,
                        reason: Reason::new(ReasonKind::Pinned, "featured"),
                        product,
                    }
                }
            };
            item.pinned = true;
            let at = (pin.position - 1).min(kept.len());
            kept.insert(at, item);
        }

        kept.truncate(req.limit);

        // Non-increasing scores: a pinned item takes the score of the item after it.
        for i in (0..kept.len()).rev() {
            if kept[i].pinned {
                kept[i].score = if i + 1 < kept.len() {
                    kept[i + 1].score
                } else {
                    kept[..i]
                        .iter()
                        .filter(|k| !k.pinned)
                        .map(|k| k.score)
                        .fold(kept[i].score, f32::min)
                };
            }
        }

        kept.into_iter()
            .enumerate()
            .map(|(pos, k)| {
                let reason = if k.pinned {
                    if k.reason.kind == ReasonKind::Pinned {
                        k.reason
                    } else {
                        Reason::new(ReasonKind::Pinned, format!("featured; {}", k.reason.detail))
                    }
                } else if k.boosted && raw_rank.get(&k.id).is_some_and(|&r| pos < r) {
                    Reason::new(
                        ReasonKind::Boosted,
                        format!("promoted; {}", k.reason.detail),
                    )
                } else {
                    k.reason
                };
                let mut item = RecommendedItem::new(k.id, k.score, reason);
                item.product = k.product.map(Cow::into_owned);
                item
            })
            .collect()
    }

    /// Filters, stock and margin for one candidate.
    fn passes(&self, filters: &Filters, p: Option<&Product>) -> bool {
        match p {
            None => filters.is_empty(),
            Some(p) => {
                filters.matches(p) && (!self.drop_out_of_stock || p.in_stock()) && self.margin_ok(p)
            }
        }
    }
}

/// Weight of each [`EventKind`](crate::EventKind) in a recommender's signals (`[...recommend.weights]`):
/// item popularity in the rules recommender, the subject profile in the embedding recommender.
/// A negative weight (a return) pulls away from the item.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventWeights {
    /// A product view (default 1).
    pub view: f64,
    /// A click (default 1.5).
    pub click: f64,
    /// An add to cart (default 3).
    pub add_to_cart: f64,
    /// A purchase (default 5).
    pub purchase: f64,
    /// A return (default -5).
    #[serde(rename = "return")]
    pub return_: f64,
    /// A rating (default 3). [`of`](Self::of) scales it by `(rating - 3) / 2` when the event
    /// has a value, so a 1-star rating pulls away and a 5-star one pulls towards;
    /// [`of_kind`](Self::of_kind) takes it as it is.
    pub rating: f64,
}

impl Default for EventWeights {
    fn default() -> Self {
        EventWeights {
            view: 1.0,
            click: 1.5,
            add_to_cart: 3.0,
            purchase: 5.0,
            return_: -5.0,
            rating: 3.0,
        }
    }
}

impl EventWeights {
    /// The weight of an event kind, whatever the event's value.
    pub fn of_kind(&self, k: crate::types::EventKind) -> f64 {
        use crate::types::EventKind;
        match k {
            EventKind::View => self.view,
            EventKind::Click => self.click,
            EventKind::AddToCart => self.add_to_cart,
            EventKind::Purchase => self.purchase,
            EventKind::Return => self.return_,
            EventKind::Rating => self.rating,
        }
    }

    /// The weight of one event, a rating scaled by its value.
    pub fn of(&self, e: &crate::types::Event) -> f64 {
        use crate::types::EventKind;
        match e.kind {
            EventKind::View => self.view,
            EventKind::Click => self.click,
            EventKind::AddToCart => self.add_to_cart,
            EventKind::Purchase => self.purchase,
            EventKind::Return => self.return_,
            EventKind::Rating => match e.value.filter(|v| v.is_finite()) {
                Some(v) => self.rating * ((v - 3.0) / 2.0).clamp(-1.0, 1.0),
                None => self.rating,
            },
        }
    }

    /// Checks every weight is a finite number; the error names `path.KEY`.
    pub fn validate(&self, path: &str) -> Result<()> {
        for (n, w) in [
            ("view", self.view),
            ("click", self.click),
            ("add_to_cart", self.add_to_cart),
            ("purchase", self.purchase),
            ("return", self.return_),
            ("rating", self.rating),
        ] {
            if !w.is_finite() {
                return Err(Error::config(format!(
                    "{path}.{n} must be a finite number, got {w}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Currency, Money};

    fn prod(id: &str, cat: &[&str]) -> Product {
        Product::new(id, format!("title {id}"), Money::new(1000, Currency::CNY))
            .with_category(cat.iter().copied())
    }

    fn cand<'a>(p: &'a Product, score: f32) -> Candidate<'a> {
        Candidate::new(
            p.id.clone(),
            score,
            Reason::new(ReasonKind::Popular, "popular"),
        )
        .with_product(p)
    }

    fn ids(items: &[RecommendedItem]) -> Vec<&str> {
        items.iter().map(|i| i.product_id.as_str()).collect()
    }

    fn none(_: &ProductId) -> Option<Product> {
        None
    }

    fn run(rules: &BusinessRules, req: &RecommendRequest, c: Vec<Candidate<'_>>) -> Vec<String> {
        rules
            .apply(req, c, &HashSet::new(), none)
            .into_iter()
            .map(|i| i.product_id.as_str().to_owned())
            .collect()
    }

    #[test]
    fn defaults_and_toml() {
        let r: BusinessRules = toml::from_str("").unwrap();
        assert_eq!(r, BusinessRules::default());
        assert!(r.drop_out_of_stock && r.drop_bought);
        let r: BusinessRules = toml::from_str(
            r#"
            max_per_category = 3
            category_depth = 2
            min_margin = 0.15
            [[pin]]
            product = "sku-42"
            position = 1
            scenes = ["home"]
            [[boost]]
            brand = "Peakline"
            multiplier = 1.5
            [[bury]]
            category_prefix = ["Clearance"]
            multiplier = 0.5
            "#,
        )
        .unwrap();
        r.validate().unwrap();
        assert_eq!(r.pin[0].position, 1);
        assert!(toml::from_str::<BusinessRules>("nope = 1").is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let bad = BusinessRules::new().with_boost(ScoreRule::new(0.5).for_brand("x"));
        assert!(bad.validate().unwrap_err().message().contains("boost[0]"));
        let bad = BusinessRules::new().with_bury(ScoreRule::new(2.0).for_brand("x"));
        assert!(bad.validate().unwrap_err().message().contains("bury[0]"));
        let bad = BusinessRules::new().with_boost(ScoreRule::new(2.0));
        assert!(bad.validate().unwrap_err().message().contains("needs"));
        let bad = BusinessRules::new().with_pin(PinRule::new("a", 0));
        assert!(bad.validate().unwrap_err().message().contains("position"));
        let bad = BusinessRules::new().with_min_margin(f64::NAN);
        assert!(bad.validate().unwrap_err().message().contains("min_margin"));
        let bad = BusinessRules::new().with_max_per_category(0, 1);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn exclusions_anchor_duplicates_and_limit() {
        let ps: Vec<Product> = (0..6).map(|i| prod(&format!("p{i}"), &["A"])).collect();
        let mut c: Vec<Candidate> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| cand(p, 10.0 - i as f32))
            .collect();
        c.push(cand(&ps[1], 100.0)); // duplicate: first wins
        let req = RecommendRequest::new(Scene::Home)
            .with_anchor("p0")
            .with_exclude("p2")
            .with_limit(3usize);
        assert_eq!(run(&BusinessRules::new(), &req, c), ["p1", "p3", "p4"]);
    }

    #[test]
    fn filters_apply_and_unknown_products_need_no_filters() {
        let a = prod("a", &["Shoes"]);
        let b = prod("b", &["Hats"]);
        let c = vec![
            cand(&a, 2.0),
            cand(&b, 1.0),
            Candidate::new("u", 3.0, Reason::new(ReasonKind::Model, "m")),
        ];
        let req = RecommendRequest::new(Scene::Home)
            .with_filters(Filters::new().with_category_prefix(["hats"]));
        assert_eq!(run(&BusinessRules::new(), &req, c.clone()), ["b"]);
        let req = RecommendRequest::new(Scene::Home);
        assert_eq!(run(&BusinessRules::new(), &req, c), ["u", "a", "b"]);
    }

    #[test]
    fn out_of_stock_dropped_unless_disabled() {
        let a = prod("a", &[]).with_stock(0u32);
        let b = prod("b", &[]).with_stock(2u32);
        let req = RecommendRequest::new(Scene::Home);
        let c = vec![cand(&a, 2.0), cand(&b, 1.0)];
        assert_eq!(run(&BusinessRules::new(), &req, c.clone()), ["b"]);
        let off = BusinessRules::new().with_drop_out_of_stock(false);
        assert_eq!(run(&off, &req, c), ["a", "b"]);
    }

    #[test]
    fn bought_dropped_unless_disabled() {
        let a = prod("a", &[]);
        let b = prod("b", &[]);
        let bought: HashSet<ProductId> = [ProductId::from("a")].into();
        let req = RecommendRequest::new(Scene::Home);
        let c = vec![cand(&a, 2.0), cand(&b, 1.0)];
        let out = BusinessRules::new().apply(&req, c.clone(), &bought, none);
        assert_eq!(ids(&out), ["b"]);
        let out = BusinessRules::new()
            .with_drop_bought(false)
            .apply(&req, c, &bought, none);
        assert_eq!(ids(&out), ["a", "b"]);
    }

    #[test]
    fn pin_places_items_and_respects_scene_and_exclusions() {
        let ps: Vec<Product> = (0..5).map(|i| prod(&format!("p{i}"), &[])).collect();
        let c: Vec<Candidate> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| cand(p, 10.0 - i as f32))
            .collect();
        let rules = BusinessRules::new()
            .with_pin(PinRule::new("p4", 1).with_scene("home"))
            .with_pin(PinRule::new("x", 3));
        let lookup = |id: &ProductId| (id.as_str() == "x").then(|| prod("x", &[]));
        let req = RecommendRequest::new(Scene::Home);
        let out = rules.apply(&req, c.clone(), &HashSet::new(), lookup);
        assert_eq!(ids(&out), ["p4", "p0", "x", "p1", "p2", "p3"]);
        assert_eq!(out[0].reason.kind, ReasonKind::Pinned);
        assert_eq!(out[2].reason.kind, ReasonKind::Pinned);
        assert!(out.windows(2).all(|w| w[0].score >= w[1].score));
        // Other scene: only the scene-less pin.
        let req = RecommendRequest::new(Scene::Cart);
        let out = rules.apply(&req, c.clone(), &HashSet::new(), lookup);
        assert_eq!(ids(&out), ["p0", "p1", "x", "p2", "p3", "p4"]);
        // An excluded pin is never shown; unknown pins are skipped.
        let req = RecommendRequest::new(Scene::Home).with_exclude("p4");
        let out = rules.apply(&req, c, &HashSet::new(), none);
        assert_eq!(ids(&out), ["p0", "p1", "p2", "p3"]);
    }

    #[test]
    fn boost_and_bury_by_id_brand_category_tag() {
        let a = prod("a", &["Food", "Tea"]);
        let b = prod("b", &["Food", "Coffee"]).with_brand("Bean");
        let c = prod("c", &["Toys"]).with_tag("Sale");
        let d = prod("d", &["Toys"]);
        let cands = || vec![cand(&a, 4.0), cand(&b, 3.0), cand(&c, 2.0), cand(&d, 1.0)];
        let req = RecommendRequest::new(Scene::Home);
        let r = BusinessRules::new().with_boost(ScoreRule::new(10.0).for_product("d"));
        let out = r.apply(&req, cands(), &HashSet::new(), none);
        assert_eq!(ids(&out), ["d", "a", "b", "c"]);
        assert_eq!(out[0].reason.kind, ReasonKind::Boosted);
        assert_eq!(out[1].reason.kind, ReasonKind::Popular);
        let r = BusinessRules::new().with_boost(ScoreRule::new(2.0).for_brand("bean"));
        assert_eq!(run(&r, &req, cands()), ["b", "a", "c", "d"]);
        let r = BusinessRules::new().with_boost(ScoreRule::new(3.0).for_tag("sale"));
        assert_eq!(run(&r, &req, cands()), ["c", "a", "b", "d"]);
        let r = BusinessRules::new().with_bury(ScoreRule::new(0.1).for_category(["Food"]));
        assert_eq!(run(&r, &req, cands()), ["c", "d", "a", "b"]);
        // Scene-restricted rule does nothing elsewhere.
        let r = BusinessRules::new().with_bury(
            ScoreRule::new(0.1)
                .for_category(["Food"])
                .with_scene("cart"),
        );
        assert_eq!(run(&r, &req, cands()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn max_per_category_at_depth() {
        let a = prod("a", &["Food", "Tea"]);
        let b = prod("b", &["Food", "Tea"]);
        let c = prod("c", &["Food", "Coffee"]);
        let d = prod("d", &["Toys"]);
        let cands = || vec![cand(&a, 4.0), cand(&b, 3.0), cand(&c, 2.0), cand(&d, 1.0)];
        let req = RecommendRequest::new(Scene::Home);
        let r = BusinessRules::new().with_max_per_category(1, 1);
        assert_eq!(run(&r, &req, cands()), ["a", "d"]);
        let r = BusinessRules::new().with_max_per_category(1, 2);
        assert_eq!(run(&r, &req, cands()), ["a", "c", "d"]);
    }

    #[test]
    fn margin_floor() {
        let cny = Currency::CNY;
        let hi = prod("hi", &[]).with_cost(Money::new(500, cny)); // 50 %
        let lo = prod("lo", &[]).with_cost(Money::new(950, cny)); // 5 %
        let nocost = prod("n", &[]);
        let req = RecommendRequest::new(Scene::Home);
        let r = BusinessRules::new().with_min_margin(0.2);
        let c = vec![cand(&hi, 3.0), cand(&lo, 2.0), cand(&nocost, 1.0)];
        assert_eq!(run(&r, &req, c), ["hi", "n"]);
    }

    #[test]
    fn non_finite_scores_are_zero() {
        let a = prod("a", &[]);
        let b = prod("b", &[]);
        let req = RecommendRequest::new(Scene::Home);
        let out = BusinessRules::new().apply(
            &req,
            vec![cand(&a, f32::NAN), cand(&b, 1.0)],
            &HashSet::new(),
            none,
        );
        assert_eq!(ids(&out), ["b", "a"]);
        assert!(out.iter().all(|i| i.score.is_finite()));
    }
}
