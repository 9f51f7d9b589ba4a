//! Event-based recommendations: time-decayed popularity, item-to-item co-occurrence, content
//! similarity, personal history and the merchant's [`BusinessRules`].
//!
//! # How items are scored
//!
//! `record` updates every statistic incrementally (no recomputation per call):
//!
//! - **popularity**: per item, the sum of event weights ([`EventWeights`]) decayed with
//!   [`RecommendConfig::half_life_days`]. Decay is exponential, so the ranking depends only on
//!   the event times, never on the wall clock: results are deterministic.
//! - **bought together**: purchases, add-to-carts and ratings of one subject within
//!   [`RecommendConfig::cooc_window_days`] (or one session) pair up, once per subject and pair.
//! - **viewed together**: views and clicks in one session (the event's `session`, else a gap of
//!   more than [`RecommendConfig::session_gap_minutes`] starts a new one) pair up once per
//!   session.
//! - co-occurrence is normalized, `c / sqrt(n_i * n_j) * c / (c + shrinkage)`, where `c` counts
//!   the subjects (sessions) with both items and `n_i` those with item `i`;
//! - **content similarity** (cold start): weighted cosine over category path levels, brand,
//!   title tokens (lower-cased words; character bigrams for Chinese, Japanese and Korean), tags
//!   and attributes;
//! - **personal**: the subject's items, weighted by event weight decayed with
//!   [`RecommendConfig::history_half_life_days`]; each votes for its nearest co-occurrence
//!   neighbours.
//!
//! **Manipulation resistance**: one subject's events on one item count at most
//! [`RecommendConfig::max_events_per_subject_item_day`] times per UTC day; a bot's flood of
//! views cannot outweigh many distinct buyers. Event quantities are ignored for the same reason.
//!
//! # Scenes and blend
//!
//! Each source's scores are divided by that source's maximum, multiplied by its weight in
//! [`BlendWeights`] and summed; the reason is the source that contributed most.
//!
//! | scene | sources |
//! |---|---|
//! | `home`, `email`, others | personal (subject history and session items), else popular |
//! | `product_page` | viewed together, bought together, similar, popular in category of the anchor |
//! | `cart` | bought together (full weight), viewed together and similar (half) of the session items |
//! | `post_purchase` | bought together, similar, popular in category of the anchor or last purchase (never that item) |
//!
//! Every scene adds global popularity (weight `popular`), then fills from the rest of the
//! catalog, so a request returns `limit` items whenever enough products pass the filters and
//! rules. Events on products not in the catalog are kept, but such products are only
//! recommended once they are in it.
//!
//! ```toml
//! [providers.rules.recommend]
//! half_life_days = 14.0
//! max_events_per_subject_item_day = 3
//! neighbours = 20
//! [providers.rules.recommend.weights]
//! purchase = 5.0
//! view = 1.0
//! [providers.rules.recommend.rules]
//! max_per_category = 3
//! ```

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use merchant_ai::business_rules::{BusinessRules, Candidate};
use merchant_ai::text::is_cjk;
use merchant_ai::*;
use serde::{Deserialize, Serialize};

use crate::Catalog;

/// Maps and sets with a fixed (deterministic, fast) hasher: iteration order depends only on
/// the insertions, so results are reproducible.
type DetMap<K, V> = rustc_hash::FxHashMap<K, V>;
type DetSet<K> = rustc_hash::FxHashSet<K>;

const DAY: f64 = 86_400.0;

/// `[providers.NAME.recommend]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendConfig {
    /// The merchant's rules (`[providers.NAME.recommend.rules]`).
    pub rules: BusinessRules,
    /// Half-life of popularity, in days (default 14).
    pub half_life_days: f64,
    /// Half-life of a subject's history, in days (default 7).
    pub history_half_life_days: f64,
    /// Weight of each event kind.
    pub weights: EventWeights,
    /// How often one subject's events on one item count per UTC day (default 3).
    pub max_events_per_subject_item_day: u32,
    /// Purchases of one subject this close in time are "bought together", in days (default 30).
    pub cooc_window_days: f64,
    /// Views further apart than this start a new session when events carry none, in minutes
    /// (default 30).
    pub session_gap_minutes: f64,
    /// Shrinkage of co-occurrence similarity towards 0 for rare pairs (default 2).
    pub shrinkage: f64,
    /// Nearest neighbours each history item votes for (default 20).
    pub neighbours: usize,
    /// How many of the subject's strongest (most recent, weightiest) history items are used
    /// (default 10).
    pub history_items: usize,
    /// How many recent items per subject are remembered for pairing (default 100).
    pub max_history: usize,
    /// Weight of each candidate source.
    pub blend: BlendWeights,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            rules: BusinessRules::default(),
            half_life_days: 14.0,
            history_half_life_days: 7.0,
            weights: EventWeights::default(),
            max_events_per_subject_item_day: 3,
            cooc_window_days: 30.0,
            session_gap_minutes: 30.0,
            shrinkage: 2.0,
            neighbours: 20,
            history_items: 10,
            max_history: 100,
            blend: BlendWeights::default(),
        }
    }
}

pub use merchant_ai::business_rules::EventWeights;

/// Weight of each candidate source in the blend (`[providers.NAME.recommend.blend]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlendWeights {
    /// Neighbours of the subject's history (default 1).
    pub personal: f64,
    /// Bought together with the anchor or cart (default 1).
    pub bought_together: f64,
    /// Viewed together with the anchor or session (default 0.8).
    pub viewed_together: f64,
    /// Similar content (default 0.5).
    pub similar: f64,
    /// Popular in the anchor's category (default 0.2).
    pub popular_in_category: f64,
    /// Popular overall (default 0.05).
    pub popular: f64,
}

impl Default for BlendWeights {
    fn default() -> Self {
        BlendWeights {
            personal: 1.0,
            bought_together: 1.0,
            viewed_together: 0.8,
            similar: 0.5,
            popular_in_category: 0.2,
            popular: 0.05,
        }
    }
}

impl RecommendConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.rules
            .validate()
            .map_err(|e| Error::config(format!("recommend.{}", e.message())))?;
        for (name, v) in [
            ("half_life_days", self.half_life_days),
            ("history_half_life_days", self.history_half_life_days),
            ("cooc_window_days", self.cooc_window_days),
            ("session_gap_minutes", self.session_gap_minutes),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(Error::config(format!(
                    "recommend.{name} must be a positive number, got {v}"
                )));
            }
        }
        let w = &self.weights;
        let b = &self.blend;
        for (name, v) in [
            ("weights.view", w.view),
            ("weights.click", w.click),
            ("weights.add_to_cart", w.add_to_cart),
            ("weights.purchase", w.purchase),
            ("weights.return", w.return_),
            ("weights.rating", w.rating),
            ("blend.personal", b.personal),
            ("blend.bought_together", b.bought_together),
            ("blend.viewed_together", b.viewed_together),
            ("blend.similar", b.similar),
            ("blend.popular_in_category", b.popular_in_category),
            ("blend.popular", b.popular),
        ] {
            if !v.is_finite() || v.abs() > 1e6 {
                return Err(Error::config(format!(
                    "recommend.{name} must be a finite number, got {v}"
                )));
            }
        }
        if !self.shrinkage.is_finite() || self.shrinkage < 0.0 {
            return Err(Error::config(format!(
                "recommend.shrinkage must be 0 or more, got {}",
                self.shrinkage
            )));
        }
        for (name, v) in [
            (
                "max_events_per_subject_item_day",
                self.max_events_per_subject_item_day as usize,
            ),
            ("neighbours", self.neighbours),
            ("history_items", self.history_items),
            ("max_history", self.max_history),
        ] {
            if v == 0 {
                return Err(Error::config(format!("recommend.{name} must be 1 or more")));
            }
        }
        Ok(())
    }
}

/// Content features per product, with the product they were computed from.
type FeatureCache = DetMap<ProductId, (Arc<Product>, Arc<Features>)>;

/// The rules recommend capability.
pub struct RulesRecommender {
    name: String,
    cfg: RecommendConfig,
    catalog: Arc<Catalog>,
    state: RwLock<State>,
    features: Mutex<FeatureCache>,
}

/// Shows sizes only: the state holds subjects' histories, which never go to logs.
impl std::fmt::Debug for RulesRecommender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("RulesRecommender")
            .field("name", &self.name)
            .field("items", &st.item_ids.len())
            .field("subjects", &st.subj.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SessionKey {
    Named(String),
    Derived,
}

#[derive(Debug, Default)]
struct Subject {
    /// Recent bought-class items (item, time), for pairing.
    recent: VecDeque<(u32, i64)>,
    /// Bought-class items already paired.
    seen: DetSet<u32>,
    /// Purchased items.
    bought: DetSet<u32>,
    /// The latest purchase (time, item).
    last_purchase: Option<(i64, u32)>,
    /// Decayed interest per item (scaled by the state's reference time).
    hist: DetMap<u32, f64>,
    /// The current view session.
    session: Option<(SessionKey, i64, Vec<u32>)>,
}

#[derive(Debug, Default)]
struct State {
    items: DetMap<ProductId, u32>,
    item_ids: Vec<ProductId>,
    subjects: DetMap<SubjectId, u32>,
    subj: Vec<Subject>,
    cap: DetMap<(u32, u32, i64), u32>,
    max_day: i64,
    ref_ts: Option<i64>,
    pop: Vec<f64>,
    co_b: Vec<DetMap<u32, f32>>,
    n_b: Vec<f32>,
    co_v: Vec<DetMap<u32, f32>>,
    n_v: Vec<f32>,
    /// Items with positive popularity, best first; `None` after new events.
    pop_sorted: Option<Arc<Vec<(u32, f64)>>>,
}

impl State {
    fn item(&mut self, id: &ProductId) -> u32 {
        if let Some(&i) = self.items.get(id) {
            return i;
        }
        let i = self.item_ids.len() as u32;
        self.items.insert(id.clone(), i);
        self.item_ids.push(id.clone());
        self.pop.push(0.0);
        self.co_b.push(DetMap::default());
        self.n_b.push(0.0);
        self.co_v.push(DetMap::default());
        self.n_v.push(0.0);
        i
    }

    fn subject(&mut self, id: &SubjectId) -> u32 {
        if let Some(&s) = self.subjects.get(id) {
            return s;
        }
        let s = self.subj.len() as u32;
        self.subjects.insert(id.clone(), s);
        self.subj.push(Subject::default());
        s
    }

    /// Decay factors (popularity, history) of time `ts` against the reference time, rebasing
    /// the accumulators when the factors grow large.
    fn factors(&mut self, ts: i64, hl_pop: f64, hl_hist: f64) -> (f64, f64) {
        let r = *self.ref_ts.get_or_insert(ts);
        let dt = (ts - r) as f64;
        if dt / hl_pop.min(hl_hist) > 400.0 {
            let (fp, fh) = ((-dt / hl_pop).exp2(), (-dt / hl_hist).exp2());
            self.pop.iter_mut().for_each(|v| *v *= fp);
            for s in &mut self.subj {
                s.hist.values_mut().for_each(|v| *v *= fh);
            }
            self.ref_ts = Some(ts);
            return (1.0, 1.0);
        }
        ((dt / hl_pop).exp2(), (dt / hl_hist).exp2())
    }

    fn pair(co: &mut [DetMap<u32, f32>], a: u32, b: u32) {
        *co[a as usize].entry(b).or_insert(0.0) += 1.0;
        *co[b as usize].entry(a).or_insert(0.0) += 1.0;
    }
}

/// Content features of a product: hashed tokens with weights, and the vector's norm.
#[derive(Debug)]
struct Features {
    f: Vec<(u64, f32)>,
    norm: f32,
}

fn hash_str(prefix: &str, s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    prefix.hash(&mut h);
    s.hash(&mut h);
    h.finish()
}

/// Lower-cased words of two or more characters; runs of CJK characters become bigrams (a
/// single character stays a unigram).
fn tokens(text: &str, out: &mut Vec<String>) {
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_word = |w: &mut String, out: &mut Vec<String>| {
        if w.chars().count() >= 2 {
            out.push(std::mem::take(w));
        } else {
            w.clear();
        }
    };
    let flush_cjk = |c: &mut Vec<char>, out: &mut Vec<String>| {
        if c.len() == 1 {
            out.push(c[0].to_string());
        }
        for w in c.windows(2) {
            out.push(w.iter().collect());
        }
        c.clear();
    };
    for ch in text.chars() {
        if is_cjk(ch) {
            flush_word(&mut word, out);
            cjk.push(ch);
        } else if ch.is_alphanumeric() {
            flush_cjk(&mut cjk, out);
            word.extend(ch.to_lowercase());
        } else {
            flush_word(&mut word, out);
            flush_cjk(&mut cjk, out);
        }
    }
    flush_word(&mut word, out);
    flush_cjk(&mut cjk, out);
}

fn features(p: &Product) -> Features {
    let mut f: DetMap<u64, f32> = DetMap::default();
    let mut path = String::new();
    for (d, level) in p.category.iter().enumerate() {
        path.push_str(&level.to_lowercase());
        path.push('>');
        f.insert(hash_str("c", &path), 1.0 + d as f32);
    }
    if let Some(b) = &p.brand {
        f.insert(hash_str("b", &b.to_lowercase()), 1.5);
    }
    let mut toks = Vec::new();
    tokens(&p.title, &mut toks);
    for l in p.localized.values() {
        tokens(&l.title, &mut toks);
    }
    for t in toks {
        f.insert(hash_str("t", &t), 1.0);
    }
    for t in &p.tags {
        f.insert(hash_str("g", &t.to_lowercase()), 1.0);
    }
    for (k, v) in &p.attributes {
        f.insert(
            hash_str("a", &format!("{}={}", k.to_lowercase(), v.to_lowercase())),
            0.5,
        );
    }
    let mut f: Vec<(u64, f32)> = f.into_iter().collect();
    f.sort_unstable_by_key(|x| x.0);
    let norm = f.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
    Features { f, norm }
}

fn cosine(a: &Features, b: &Features) -> f32 {
    if a.norm == 0.0 || b.norm == 0.0 {
        return 0.0;
    }
    let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
    while i < a.f.len() && j < b.f.len() {
        match a.f[i].0.cmp(&b.f[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a.f[i].1 * b.f[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    dot / (a.norm * b.norm)
}

/// One item's score in a candidate source: the sum of contributions and the seed item of the
/// largest one.
#[derive(Debug, Clone, Copy)]
struct Score {
    sum: f64,
    best: f64,
    seed: Option<u32>,
}

/// A candidate source's raw scores by item index.
type Scores = DetMap<u32, Score>;

fn add(scores: &mut Scores, item: u32, s: f64, seed: Option<u32>) {
    let e = scores.entry(item).or_insert(Score {
        sum: 0.0,
        best: f64::NEG_INFINITY,
        seed,
    });
    e.sum += s;
    if s > e.best {
        e.best = s;
        e.seed = seed;
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    Personal,
    Bought,
    Viewed,
    Similar,
    PopCat,
    Pop,
}

struct Acc {
    total: f64,
    best: f64,
    src: Src,
    seed: Option<u32>,
}

impl RulesRecommender {
    /// A recommender over `catalog`; the error names a bad config field.
    pub fn new(name: &str, cfg: RecommendConfig, catalog: Arc<Catalog>) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            name: name.into(),
            cfg,
            catalog,
            state: RwLock::new(State::default()),
            features: Mutex::new(DetMap::default()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RecommendConfig {
        &self.cfg
    }

    /// Drops everything kept about `subject`: its history, purchases, sessions and rate-limit
    /// counters. Returns how many records (items of history, purchases, pending pairs,
    /// session views) were dropped. Aggregates that hold no subject id (item popularity,
    /// co-occurrence counts) stay.
    pub fn forget_subject(&self, subject: &SubjectId) -> u64 {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let Some(s) = st.subjects.remove(subject) else {
            return 0;
        };
        let sub = std::mem::take(&mut st.subj[s as usize]);
        st.cap.retain(|k, _| k.0 != s);
        let session = sub.session.map_or(0, |(_, _, items)| items.len());
        (sub.hist.len() + sub.bought.len() + sub.recent.len() + session) as u64
    }

    fn features_of(&self, p: &Arc<Product>) -> Arc<Features> {
        let mut cache = self.features.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cp, f)) = cache.get(&p.id)
            && Arc::ptr_eq(cp, p)
        {
            return f.clone();
        }
        let f = Arc::new(features(p));
        cache.insert(p.id.clone(), (p.clone(), f.clone()));
        f
    }

    fn ingest(&self, st: &mut State, e: &Event) {
        let cfg = &self.cfg;
        let ts = e.timestamp.timestamp();
        let s = st.subject(&e.subject);
        let i = st.item(&e.product);
        let day = ts.div_euclid(86_400);
        let n = st.cap.entry((s, i, day)).or_insert(0);
        if *n >= cfg.max_events_per_subject_item_day {
            return;
        }
        *n += 1;
        st.max_day = st.max_day.max(day);
        if st.cap.len() > 2_000_000 {
            let keep = st.max_day - 1;
            st.cap.retain(|k, _| k.2 >= keep);
        }
        let w = cfg.weights.of_kind(e.kind);
        let (fp, fh) = st.factors(
            ts,
            cfg.half_life_days * DAY,
            cfg.history_half_life_days * DAY,
        );
        st.pop[i as usize] += w * fp;
        let State {
            subj,
            co_b,
            n_b,
            co_v,
            n_v,
            ..
        } = st;
        let sub = &mut subj[s as usize];
        *sub.hist.entry(i).or_insert(0.0) += w * fh;
        match e.kind {
            EventKind::AddToCart | EventKind::Purchase | EventKind::Rating => {
                if e.kind == EventKind::Purchase {
                    sub.bought.insert(i);
                    if sub.last_purchase.is_none_or(|(t, _)| ts >= t) {
                        sub.last_purchase = Some((ts, i));
                    }
                }
                if sub.seen.insert(i) {
                    let window = (cfg.cooc_window_days * DAY) as i64;
                    n_b[i as usize] += 1.0;
                    for &(j, tj) in &sub.recent {
                        if j != i && (ts - tj).abs() <= window {
                            State::pair(co_b, i, j);
                        }
                    }
                    sub.recent.push_back((i, ts));
                    if sub.recent.len() > cfg.max_history {
                        sub.recent.pop_front();
                    }
                }
            }
            EventKind::View | EventKind::Click => {
                let gap = (cfg.session_gap_minutes * 60.0) as i64;
                let key = match &e.session {
                    Some(name) => SessionKey::Named(name.clone()),
                    None => SessionKey::Derived,
                };
                let same = sub.session.as_ref().is_some_and(|(k, last, _)| {
                    *k == key && (matches!(key, SessionKey::Named(_)) || (ts - last).abs() <= gap)
                });
                if !same {
                    sub.session = Some((key, ts, Vec::new()));
                }
                if let Some((_, last, items)) = &mut sub.session {
                    *last = (*last).max(ts);
                    if !items.contains(&i) {
                        n_v[i as usize] += 1.0;
                        for &j in items.iter() {
                            State::pair(co_v, i, j);
                        }
                        items.push(i);
                        if items.len() > cfg.max_history {
                            items.remove(0);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn sim(&self, c: f32, ni: f32, nj: f32) -> f64 {
        let c = c as f64;
        let d = (ni as f64 * nj as f64).sqrt();
        if d <= 0.0 {
            return 0.0;
        }
        c / d * c / (c + self.cfg.shrinkage)
    }

    /// Co-occurrence neighbours of weighted seeds.
    fn co_source(&self, st: &State, seeds: &[(u32, f64)], viewed: bool, k: usize) -> Scores {
        let (co, n) = if viewed {
            (&st.co_v, &st.n_v)
        } else {
            (&st.co_b, &st.n_b)
        };
        let mut out = Scores::default();
        let mut nb: Vec<(u32, f64)> = Vec::new();
        for &(seed, w) in seeds {
            nb.clear();
            let ni = n[seed as usize];
            for (&j, &c) in &co[seed as usize] {
                nb.push((j, self.sim(c, ni, n[j as usize])));
            }
            if nb.len() > k {
                nb.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                nb.truncate(k);
            }
            nb.sort_unstable_by_key(|x| x.0);
            for &(j, s) in &nb {
                add(&mut out, j, w * s, Some(seed));
            }
        }
        out
    }

    /// Content neighbours of seeds (seeds must be in the catalog to count).
    fn similar_source(&self, st: &State, seeds: &[(u32, f64)]) -> Scores {
        let mut out = Scores::default();
        let seed_f: Vec<(u32, f64, Arc<Features>)> = seeds
            .iter()
            .filter_map(|&(s, w)| {
                let p = self.catalog.get(&st.item_ids[s as usize])?;
                Some((s, w, self.features_of(&p)))
            })
            .collect();
        if seed_f.is_empty() {
            return out;
        }
        for p in self.catalog.all() {
            // Every catalog item was interned by `prepare` (a concurrent upsert may be missed).
            let Some(&i) = st.items.get(&p.id) else {
                continue;
            };
            let f = self.features_of(&p);
            for (s, w, sf) in &seed_f {
                if *s != i {
                    let c = cosine(sf, &f) as f64;
                    if c > 0.0 {
                        add(&mut out, i, w * c, Some(*s));
                    }
                }
            }
        }
        out
    }

    /// Interns what a request needs (anchor, session items, and for content scenes the whole
    /// catalog) and refreshes the popularity ranking, under the write lock only when needed.
    fn prepare(&self, req: &RecommendRequest) {
        let content = matches!(
            req.scene,
            Scene::ProductPage | Scene::PostPurchase | Scene::Cart
        );
        let wanted = |st: &State| -> Vec<ProductId> {
            let mut v: Vec<ProductId> = req
                .anchor
                .iter()
                .chain(&req.session_items)
                .filter(|id| !st.items.contains_key(*id) && self.catalog.get(id).is_some())
                .cloned()
                .collect();
            if content {
                v.extend(
                    self.catalog
                        .all()
                        .into_iter()
                        .filter(|p| !st.items.contains_key(&p.id))
                        .map(|p| p.id.clone()),
                );
            }
            v
        };
        {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            if st.pop_sorted.is_some() && wanted(&st).is_empty() {
                return;
            }
        }
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        for id in wanted(&st) {
            st.item(&id);
        }
        if st.pop_sorted.is_none() {
            let v = Self::popular_sorted(&st);
            st.pop_sorted = Some(v);
        }
    }

    fn popular_sorted(st: &State) -> Arc<Vec<(u32, f64)>> {
        if let Some(p) = &st.pop_sorted {
            return p.clone();
        }
        let mut v: Vec<(u32, f64)> = st
            .pop
            .iter()
            .enumerate()
            .filter(|x| *x.1 > 0.0)
            .map(|(i, &p)| (i as u32, p))
            .collect();
        let ids = &st.item_ids;
        v.sort_unstable_by(|x, y| {
            y.1.total_cmp(&x.1)
                .then_with(|| ids[x.0 as usize].cmp(&ids[y.0 as usize]))
        });
        Arc::new(v)
    }

    fn popular_source(&self, st: &State, category: Option<&[String]>) -> Scores {
        let mut out = Scores::default();
        for (i, &v) in st.pop.iter().enumerate() {
            if v <= 0.0 {
                continue;
            }
            if let Some(cat) = category {
                let Some(p) = self.catalog.get(&st.item_ids[i]) else {
                    continue;
                };
                if !p.in_category(cat) {
                    continue;
                }
            }
            add(&mut out, i as u32, v, None);
        }
        out
    }

    /// The subject's strongest history items, newest-weighted, plus session items.
    fn history(&self, st: &State, subject: Option<u32>, session: &[u32]) -> Vec<(u32, f64)> {
        let mut h: Vec<(u32, f64)> = subject
            .map(|s| {
                st.subj[s as usize]
                    .hist
                    .iter()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(&i, &v)| (i, v))
                    .collect()
            })
            .unwrap_or_default();
        h.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        h.truncate(self.cfg.history_items);
        let max = h.first().map_or(1.0, |x| x.1);
        for x in &mut h {
            x.1 /= max;
        }
        for &i in session {
            match h.iter_mut().find(|x| x.0 == i) {
                Some(x) => x.1 = 1.0,
                None => h.push((i, 1.0)),
            }
        }
        h
    }

    fn blend(acc: &mut DetMap<u32, Acc>, scores: Scores, weight: f64, src: Src) {
        let max = scores.values().map(|x| x.sum).fold(0.0, f64::max);
        if max <= 0.0 || weight == 0.0 {
            return;
        }
        for (i, x) in scores {
            let seed = x.seed;
            let c = weight * x.sum.max(0.0) / max;
            let e = acc.entry(i).or_insert(Acc {
                total: 0.0,
                best: f64::NEG_INFINITY,
                src,
                seed,
            });
            e.total += c;
            if c > e.best {
                e.best = c;
                e.src = src;
                e.seed = seed;
            }
        }
    }

    fn reason(&self, st: &State, a: &Acc, product: &Product, cat: Option<&[String]>) -> Reason {
        let title = |seed: Option<u32>| {
            seed.and_then(|s| self.catalog.get(&st.item_ids[s as usize]))
                .map(|p| p.title.chars().take(60).collect::<String>())
                .unwrap_or_else(|| "this item".into())
        };
        match a.src {
            Src::Personal => Reason::new(ReasonKind::Personalized, "based on recent activity"),
            Src::Bought => Reason::new(
                ReasonKind::BoughtTogether,
                format!("bought with {}", title(a.seed)),
            ),
            Src::Viewed => Reason::new(
                ReasonKind::ViewedTogether,
                format!("viewed with {}", title(a.seed)),
            ),
            Src::Similar => {
                Reason::new(ReasonKind::Similar, format!("similar to {}", title(a.seed)))
            }
            Src::PopCat => {
                let c = cat
                    .and_then(|c| c.last())
                    .or(product.category.last())
                    .map_or("its category", |s| s.as_str());
                Reason::new(ReasonKind::PopularInCategory, format!("popular in {c}"))
            }
            Src::Pop => Reason::new(ReasonKind::Popular, "popular now"),
        }
    }
}

fn cands_of(held: &[(Arc<Product>, f32, Reason)]) -> Vec<Candidate<'_>> {
    held.iter()
        .map(|(p, s, r)| Candidate::new(p.id.clone(), *s, r.clone()).with_product(p))
        .collect()
}

/// FNV-1a over the parts of a request that decide its answer.
fn trace_id(req: &RecommendRequest) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(req.scene.as_str());
    eat(req.subject().map_or("", |s| s.as_str()));
    eat(req.anchor.as_ref().map_or("", |s| s.as_str()));
    for i in &req.session_items {
        eat(i.as_str());
    }
    eat("|");
    for i in &req.exclude {
        eat(i.as_str());
    }
    eat(&req.limit.to_string());
    eat(&format!("{:?}", req.filters));
    format!("rules-{h:016x}")
}

#[async_trait]
impl merchant_ai::erasure::SubjectEraser for RulesRecommender {
    async fn forget(&self, subject: &SubjectId) -> Result<u64> {
        Ok(self.forget_subject(subject))
    }
}

#[async_trait]
impl Recommender for RulesRecommender {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        for (n, e) in events.iter().enumerate() {
            if e.subject.as_str().trim().is_empty() {
                return Err(Error::invalid_request(format!(
                    "events[{n}]: subject is empty"
                )));
            }
            if e.product.as_str().trim().is_empty() {
                return Err(Error::invalid_request(format!(
                    "events[{n}]: product is empty"
                )));
            }
        }
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].timestamp);
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        for i in order {
            self.ingest(&mut st, &events[i]);
        }
        st.pop_sorted = None;
        Ok(())
    }

    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        let started = Instant::now();
        req.validate()?;
        let cfg = &self.cfg;
        let b = &cfg.blend;
        let k = cfg.neighbours;
        self.prepare(&req);
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let subject = req.subject().and_then(|s| st.subjects.get(s).copied());
        let session: Vec<u32> = req
            .session_items
            .iter()
            .filter_map(|p| st.items.get(p).copied())
            .collect();
        let mut extra_exclude: Vec<ProductId> = Vec::new();
        let mut acc: DetMap<u32, Acc> = DetMap::default();
        let mut cat: Option<Vec<String>> = None;
        // Anchors not in the catalog were not interned: requests never grow the state.
        let anchor = req.anchor.as_ref().and_then(|a| st.items.get(a).copied());
        let scene = match req.scene {
            Scene::ProductPage if anchor.is_some() => Scene::ProductPage,
            Scene::PostPurchase => Scene::PostPurchase,
            Scene::Cart => Scene::Cart,
            _ => Scene::Home,
        };
        match scene {
            Scene::ProductPage | Scene::PostPurchase => {
                let seed = anchor.or_else(|| {
                    subject.and_then(|s| st.subj[s as usize].last_purchase.map(|x| x.1))
                });
                if let Some(seed) = seed {
                    let id = st.item_ids[seed as usize].clone();
                    cat = self.catalog.get(&id).map(|p| p.category.clone());
                    extra_exclude.push(id);
                    let seeds = [(seed, 1.0)];
                    if scene == Scene::ProductPage {
                        let v = self.co_source(&st, &seeds, true, k);
                        Self::blend(&mut acc, v, b.viewed_together, Src::Viewed);
                    }
                    let bt = self.co_source(&st, &seeds, false, k);
                    Self::blend(&mut acc, bt, b.bought_together, Src::Bought);
                    let sim = self.similar_source(&st, &seeds);
                    Self::blend(&mut acc, sim, b.similar, Src::Similar);
                    if let Some(c) = cat.as_deref().filter(|c| !c.is_empty()) {
                        let pc = self.popular_source(&st, Some(c));
                        Self::blend(&mut acc, pc, b.popular_in_category, Src::PopCat);
                    }
                }
            }
            Scene::Cart => {
                let mut seeds: Vec<(u32, f64)> = session.iter().map(|&i| (i, 1.0)).collect();
                if let Some(a) = anchor
                    && !session.contains(&a)
                {
                    seeds.push((a, 1.0));
                }
                for &(s, _) in &seeds {
                    extra_exclude.push(st.item_ids[s as usize].clone());
                }
                let bt = self.co_source(&st, &seeds, false, k);
                Self::blend(&mut acc, bt, b.bought_together, Src::Bought);
                let v = self.co_source(&st, &seeds, true, k);
                Self::blend(&mut acc, v, b.viewed_together * 0.5, Src::Viewed);
                let sim = self.similar_source(&st, &seeds);
                Self::blend(&mut acc, sim, b.similar * 0.5, Src::Similar);
            }
            _ => {
                let hist = self.history(&st, subject, &session);
                if !hist.is_empty() {
                    let mut p = self.co_source(&st, &hist, false, k);
                    for (i, x) in self.co_source(&st, &hist, true, k) {
                        add(&mut p, i, 0.5 * x.sum, x.seed);
                    }
                    Self::blend(&mut acc, p, b.personal, Src::Personal);
                }
            }
        }
        let bought: HashSet<ProductId> = subject
            .map(|s| {
                st.subj[s as usize]
                    .bought
                    .iter()
                    .map(|&i| st.item_ids[i as usize].clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut rreq = req.clone();
        rreq.exclude.extend(extra_exclude);
        // Enough candidates for the rules to drop some and still fill the limit; when they
        // drop more, the second pass takes the whole catalog. Boost and bury rules change
        // scores, so with them every candidate is considered at once.
        let want = if cfg.rules.boost.is_empty() && cfg.rules.bury.is_empty() {
            req.limit * 4 + cfg.rules.pin.len() + 32
        } else {
            usize::MAX
        };

        // Global popularity: for every scored item, then the most popular others.
        let pops = Self::popular_sorted(&st);
        let pmax = pops.first().map_or(0.0, |x| x.1);
        let wp = b.popular.max(1e-9);
        if pmax > 0.0 {
            for (&i, a) in acc.iter_mut() {
                let c = wp * st.pop[i as usize].max(0.0) / pmax;
                a.total += c;
                if c > a.best {
                    a.best = c;
                    a.src = Src::Pop;
                    a.seed = None;
                }
            }
            let mut added = 0;
            for &(i, v) in pops.iter() {
                if added >= want {
                    break;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = acc.entry(i) {
                    let c = wp * v / pmax;
                    e.insert(Acc {
                        total: c,
                        best: c,
                        src: Src::Pop,
                        seed: None,
                    });
                    added += 1;
                }
            }
        }

        let mut ranked: Vec<(u32, f64)> = acc.iter().map(|(&i, a)| (i, a.total)).collect();
        ranked.sort_unstable_by(|x, y| {
            y.1.total_cmp(&x.1)
                .then_with(|| st.item_ids[x.0 as usize].cmp(&st.item_ids[y.0 as usize]))
        });
        // Items the rules would drop anyway are skipped before their reasons are written.
        let mut skip: HashSet<&ProductId> = rreq.exclude.iter().collect();
        if cfg.rules.drop_bought {
            skip.extend(bought.iter());
        }
        let held_of = |ranked: &[(u32, f64)], n: usize| -> Vec<(Arc<Product>, f32, Reason)> {
            ranked
                .iter()
                .filter_map(|&(i, s)| {
                    let id = &st.item_ids[i as usize];
                    if skip.contains(id) {
                        return None;
                    }
                    let p = self.catalog.get(id)?;
                    let a = acc.get(&i)?;
                    let r = self.reason(&st, a, &p, cat.as_deref());
                    Some((p, s as f32, r))
                })
                .take(n)
                .collect()
        };
        let held = held_of(&ranked, want);
        let mut items = cfg
            .rules
            .apply(&rreq, cands_of(&held), &bought, |id| self.catalog.get(id));
        if items.len() < req.limit {
            // Second pass: every scored item, then the rest of the catalog by popularity.
            let mut held = held_of(&ranked, usize::MAX);
            let in_acc: HashSet<ProductId> = held.iter().map(|h| h.0.id.clone()).collect();
            let mut rest: Vec<(f64, Arc<Product>)> = self
                .catalog
                .all()
                .into_iter()
                .filter(|p| !in_acc.contains(&p.id) && !skip.contains(&p.id))
                .map(|p| {
                    let v = st.items.get(&p.id).map_or(0.0, |&i| st.pop[i as usize]);
                    let c = if pmax > 0.0 {
                        wp * v.max(0.0) / pmax
                    } else {
                        0.0
                    };
                    (c, p)
                })
                .collect();
            rest.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            held.extend(rest.into_iter().map(|(c, p)| {
                let r = if c > 0.0 {
                    Reason::new(ReasonKind::Popular, "popular now")
                } else {
                    Reason::new(ReasonKind::Popular, "from the catalog")
                };
                (p, c as f32, r)
            }));
            items = cfg
                .rules
                .apply(&rreq, cands_of(&held), &bought, |id| self.catalog.get(id));
        }
        drop(st);
        let meta = ResponseMeta::new(self.name.clone())
            .with_model("rules-cooc")
            .with_usage(Usage::new().with_units(1u64))
            .with_latency(started.elapsed());
        let trace = req.ctx.trace_id.clone().unwrap_or_else(|| trace_id(&req));
        Ok(RecommendResponse::new(items, meta).with_trace_id(trace))
    }
}
