//! Keyword search on tantivy.
//!
//! BM25 over boosted fields (title over brand over category over tags/attributes over
//! description), typo tolerance scaled to the word length, prefix matching on the last word,
//! CJK character n-grams, synonyms from config, every filter, facet and sort of
//! [`SearchRequest`]. The index lives in memory or, with `index_dir`, on disk, where it is
//! reopened on restart instead of rebuilt.
//!
//! ```toml
//! [providers.rules.search]
//! index_dir = "/var/lib/shop/search-index"   # optional; in memory when absent
//! synonyms = [["tee", "t-shirt"], ["sneakers", "trainers", "运动鞋"]]
//! typo_tolerance = true
//! prefix = true
//! writer_memory_mb = 64
//! ```

mod text;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use merchant_ai::*;
use serde::Deserialize;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, DisjunctionMaxQuery, EnableScoring, Occur, Query, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher as TvSearcher,
    TantivyDocument, TantivyError, Term,
};

use crate::Catalog;
use text::{ANALYZER, QueryToken};

/// The engine name reported in [`ResponseMeta::model`].
pub const MODEL: &str = "tantivy-bm25";

/// `[providers.NAME.search]` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Directory of a persistent index; reopened when it exists with the same schema. In
    /// memory when absent.
    pub index_dir: Option<PathBuf>,
    /// Groups of equivalent words or phrases, applied at query time, e.g.
    /// `[["tee", "t-shirt"], ["sneakers", "trainers", "运动鞋"]]`.
    pub synonyms: Vec<Vec<String>>,
    /// Tolerate typos: none for words up to 3 characters, 1 edit up to 7, 2 from 8.
    pub typo_tolerance: bool,
    /// Match the last query word as a prefix (search as you type).
    pub prefix: bool,
    /// Memory for the index writer, in MiB (at least 15 per writer thread).
    pub writer_memory_mb: usize,
    /// Index writer threads; 0 = up to 2, depending on the machine.
    pub writer_threads: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index_dir: None,
            synonyms: Vec::new(),
            typo_tolerance: true,
            prefix: true,
            writer_memory_mb: 64,
            writer_threads: 0,
        }
    }
}

impl SearchConfig {
    /// Keeps the index in `dir` (reopened on restart).
    #[must_use]
    pub fn with_index_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.index_dir = Some(dir.into());
        self
    }
    /// Adds a group of equivalent words or phrases.
    #[must_use]
    pub fn with_synonyms<I, S>(mut self, group: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.synonyms
            .push(group.into_iter().map(Into::into).collect());
        self
    }
}

/// Batches larger than this are committed on the blocking pool.
const BLOCKING_BATCH: usize = 64;
/// Most fuzzy variants per query word.
const MAX_FUZZY: usize = 6;
/// Most prefix completions of the last query word.
const MAX_PREFIX: usize = 8;
/// A word found in at least this many documents is taken as spelled right: no typo variants.
const FUZZY_SKIP_DF: u64 = 16;
/// A batch at least this large (and at least half the index) is merged into one segment.
const MERGE_BATCH: usize = 10_000;
/// Dictionary terms scanned per segment for prefix completions.
const PREFIX_SCAN: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    slot: Field,
    json: Field,
    title: Field,
    brand: Field,
    category: Field,
    extra: Field,
    desc: Field,
    all: Field,
}

impl Fields {
    fn boosted(&self) -> [(Field, f32); 5] {
        [
            (self.title, 3.0),
            (self.brand, 2.0),
            (self.category, 1.5),
            (self.extra, 1.2),
            (self.desc, 0.5),
        ]
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let scored = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let plain = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        slot: b.add_u64_field("slot", FAST | STORED | INDEXED),
        json: b.add_text_field("product", STORED),
        title: b.add_text_field("title", scored.clone()),
        brand: b.add_text_field("brand", scored.clone()),
        category: b.add_text_field("category", scored.clone()),
        extra: b.add_text_field("extra", scored.clone()),
        desc: b.add_text_field("description", scored),
        all: b.add_text_field("all", plain),
    };
    (b.build(), f)
}

/// Products by slot number (the `slot` fast field of each document).
#[derive(Default)]
struct Slots {
    by_id: HashMap<ProductId, u64>,
    items: Vec<Option<Arc<Product>>>,
}

impl Slots {
    fn slot_for(&mut self, id: &ProductId) -> u64 {
        if let Some(s) = self.by_id.get(id) {
            return *s;
        }
        let s = self.items.len() as u64;
        self.items.push(None);
        self.by_id.insert(id.clone(), s);
        s
    }
    fn set(&mut self, slot: u64, p: Option<Arc<Product>>) {
        let i = slot as usize;
        if self.items.len() <= i {
            self.items.resize(i + 1, None);
        }
        self.items[i] = p;
    }
    fn live(&self) -> usize {
        self.items.iter().filter(|p| p.is_some()).count()
    }
}

struct Inner {
    name: String,
    catalog: Arc<Catalog>,
    index_dir: Option<PathBuf>,
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    slots: RwLock<Slots>,
    f: Fields,
    lev1: LevenshteinAutomatonBuilder,
    lev2: LevenshteinAutomatonBuilder,
    /// Synonym groups, each phrase as query tokens.
    synonyms: Vec<Vec<Vec<String>>>,
    query_analyzer: TextAnalyzer,
    typo: bool,
    prefix: bool,
}

/// The rules searcher.
#[derive(Clone)]
pub struct RulesSearcher {
    inner: Arc<Inner>,
}

impl fmt::Debug for RulesSearcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let docs = self.inner.slots.read().map(|s| s.live()).unwrap_or(0);
        f.debug_struct("RulesSearcher")
            .field("name", &self.inner.name)
            .field("docs", &docs)
            .field(
                "segments",
                &self.inner.reader.searcher().segment_readers().len(),
            )
            .field("index_dir", &self.inner.index_dir)
            .field("synonym_groups", &self.inner.synonyms.len())
            .finish()
    }
}

fn tv(e: TantivyError) -> Error {
    Error::new(ErrorKind::Unexpected, format!("search index: {e}"))
}

fn poisoned() -> Error {
    Error::new(
        ErrorKind::Unexpected,
        "search index: a lock was poisoned by a panic",
    )
}

impl RulesSearcher {
    /// A searcher over `catalog` (indexes what it already holds). With `cfg.index_dir`, an
    /// existing index there is reopened (its products are loaded into the catalog) and only
    /// catalog products that differ from it are re-indexed.
    pub fn new(name: &str, cfg: SearchConfig, catalog: Arc<Catalog>) -> Result<Self> {
        let threads = if cfg.writer_threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get().min(2))
                .unwrap_or(1)
        } else {
            cfg.writer_threads
        };
        if cfg.writer_memory_mb < 15 * threads {
            return Err(Error::config(format!(
                "search.writer_memory_mb must be at least {} for {threads} writer thread(s), got {}",
                15 * threads,
                cfg.writer_memory_mb
            )));
        }
        if cfg.writer_memory_mb > 4000 {
            return Err(Error::config(format!(
                "search.writer_memory_mb must be at most 4000, got {}",
                cfg.writer_memory_mb
            )));
        }
        let (schema, f) = schema();
        let index = match &cfg.index_dir {
            None => Index::create_in_ram(schema),
            Some(dir) => {
                let bad = |e: &dyn fmt::Display| {
                    Error::config(format!("search.index_dir {}: {e}", dir.display()))
                };
                std::fs::create_dir_all(dir).map_err(|e| bad(&e))?;
                let d = MmapDirectory::open(dir).map_err(|e| bad(&e))?;
                Index::open_or_create(d, schema).map_err(|e| bad(&e))?
            }
        };
        index.tokenizers().register(ANALYZER, text::analyzer(false));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tv)?;
        let writer: IndexWriter = index
            .writer_with_num_threads(threads, cfg.writer_memory_mb * 1_000_000)
            .map_err(tv)?;

        let mut query_analyzer = text::analyzer(true);
        let mut synonyms = Vec::new();
        for (gi, group) in cfg.synonyms.iter().enumerate() {
            let phrases: Vec<Vec<String>> = group
                .iter()
                .map(|p| {
                    text::query_tokens(&mut query_analyzer, p)
                        .into_iter()
                        .map(|t| t.text)
                        .collect::<Vec<_>>()
                })
                .filter(|p| !p.is_empty())
                .collect();
            if phrases.len() < 2 {
                return Err(Error::config(format!(
                    "search.synonyms[{gi}] needs at least two non-empty entries"
                )));
            }
            synonyms.push(phrases);
        }

        let searcher = RulesSearcher {
            inner: Arc::new(Inner {
                name: name.into(),
                catalog,
                index_dir: cfg.index_dir.clone(),
                index,
                reader,
                writer: Mutex::new(writer),
                slots: RwLock::new(Slots::default()),
                f,
                lev1: LevenshteinAutomatonBuilder::new(1, true),
                lev2: LevenshteinAutomatonBuilder::new(2, true),
                synonyms,
                query_analyzer,
                typo: cfg.typo_tolerance,
                prefix: cfg.prefix,
            }),
        };
        searcher.inner.load_existing()?;
        let pending: Vec<Product> = {
            let slots = searcher.inner.slots.read().map_err(|_| poisoned())?;
            searcher
                .inner
                .catalog
                .all()
                .into_iter()
                .filter(|p| {
                    slots
                        .by_id
                        .get(&p.id)
                        .and_then(|s| slots.items.get(*s as usize))
                        .and_then(|x| x.as_deref())
                        != Some(p.as_ref())
                })
                .map(|p| (*p).clone())
                .collect()
        };
        if !pending.is_empty() {
            let report = searcher.inner.upsert_blocking(pending)?;
            if !report.rejected.is_empty() {
                tracing::warn!(
                    rejected = report.rejected.len(),
                    "search: catalog products rejected"
                );
            }
        }
        Ok(searcher)
    }

    /// Number of searchable products.
    pub fn len(&self) -> usize {
        self.inner.slots.read().map(|s| s.live()).unwrap_or(0)
    }

    /// Whether nothing is searchable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Searches synchronously (what [`Searcher::search`] does, without the async wrapper).
    pub fn search_sync(&self, req: &SearchRequest) -> Result<SearchResponse> {
        self.inner.search(req)
    }

    /// Upserts synchronously, committing in the calling thread.
    pub fn upsert_sync(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.inner.upsert_blocking(products)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        big: bool,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        if big && tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(move || f(&inner))
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unexpected,
                        format!("search index: indexing task failed: {e}"),
                    )
                })?
        } else {
            f(&inner)
        }
    }
}

/// A Levenshtein DFA as an FST automaton, with the first character of the word fixed (typos
/// in the first letter are rare, and fixing it keeps the dictionary walk short).
struct Lev<'a> {
    dfa: &'a DFA,
    head: &'a [u8],
}

impl tantivy_fst::Automaton for Lev<'_> {
    /// The DFA state and the bytes of the head seen so far; `None` once the head differs.
    type State = Option<(u32, usize)>;
    fn start(&self) -> Self::State {
        Some((self.dfa.initial_state(), 0))
    }
    fn is_match(&self, s: &Self::State) -> bool {
        s.is_some_and(|(d, n)| {
            n >= self.head.len() && matches!(self.dfa.distance(d), Distance::Exact(_))
        })
    }
    fn can_match(&self, s: &Self::State) -> bool {
        s.is_some_and(|(d, _)| d != SINK_STATE)
    }
    fn accept(&self, s: &Self::State, b: u8) -> Self::State {
        let (d, n) = (*s)?;
        if n < self.head.len() && self.head[n] != b {
            return None;
        }
        Some((self.dfa.transition(d, b), n + 1))
    }
}

fn idf(n: u64, df: u64) -> f32 {
    let n = n as f32;
    let df = df as f32;
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln().max(1e-6)
}

/// Matches collected for one query.
struct Outcome<'a> {
    total: u64,
    entries: Vec<(Score, &'a Product)>,
    facets: Vec<HashMap<String, u64>>,
}

impl Inner {
    fn load_existing(&self) -> Result<()> {
        let searcher = self.reader.searcher();
        let mut slots = self.slots.write().map_err(|_| poisoned())?;
        let mut loaded = Vec::new();
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            for doc in seg.doc_ids_alive() {
                let d: TantivyDocument =
                    searcher.doc(DocAddress::new(ord as u32, doc)).map_err(tv)?;
                let slot = d.get_first(self.f.slot).and_then(|v| v.as_u64());
                let json = d.get_first(self.f.json).and_then(|v| v.as_str());
                let (Some(slot), Some(json)) = (slot, json) else {
                    return Err(Error::config(
                        "search.index_dir holds a document without slot or product; delete the directory to rebuild",
                    ));
                };
                let p: Product = serde_json::from_str(json).map_err(|e| {
                    Error::config(format!(
                        "search.index_dir holds an unreadable product ({e}); delete the directory to rebuild"
                    ))
                })?;
                slots.by_id.insert(p.id.clone(), slot);
                slots.set(slot, Some(Arc::new(p.clone())));
                loaded.push(p);
            }
        }
        drop(slots);
        let missing: Vec<Product> = loaded
            .into_iter()
            .filter(|p| self.catalog.get(&p.id).is_none())
            .collect();
        self.catalog.upsert(missing);
        Ok(())
    }

    fn make_doc(&self, p: &Product, slot: u64) -> Result<TantivyDocument> {
        let f = &self.f;
        let mut d = TantivyDocument::new();
        d.add_text(f.id, p.id.as_str());
        d.add_u64(f.slot, slot);
        d.add_text(f.json, serde_json::to_string(p)?);
        let mut both = |field: Field, s: &str| {
            if !s.is_empty() {
                d.add_text(field, s);
                d.add_text(f.all, s);
            }
        };
        both(f.title, &p.title);
        for l in p.localized.values() {
            both(f.title, &l.title);
            both(f.desc, &l.description);
        }
        if let Some(b) = &p.brand {
            both(f.brand, b);
        }
        for c in &p.category {
            both(f.category, c);
        }
        for t in &p.tags {
            both(f.extra, t);
        }
        for v in p.attributes.values() {
            both(f.extra, v);
        }
        both(f.desc, &p.description);
        Ok(d)
    }

    fn upsert_blocking(&self, products: Vec<Product>) -> Result<IndexReport> {
        let mut report = IndexReport::default();
        let mut valid = Vec::with_capacity(products.len());
        for p in products {
            match p.validate() {
                Ok(()) => valid.push(p),
                Err(e) => report
                    .rejected
                    .push((p.id.clone(), e.message().to_string())),
            }
        }
        // The last occurrence of an id in one batch wins.
        let mut seen = HashSet::new();
        let mut batch: Vec<Product> = valid
            .into_iter()
            .rev()
            .filter(|p| seen.insert(p.id.clone()))
            .collect();
        batch.reverse();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut writer = self.writer.lock().map_err(|_| poisoned())?;
        let assigned: Vec<u64> = {
            let mut slots = self.slots.write().map_err(|_| poisoned())?;
            batch.iter().map(|p| slots.slot_for(&p.id)).collect()
        };
        let total_after = self.reader.searcher().num_docs() as usize + batch.len();
        let bulk = batch.len() >= MERGE_BATCH && batch.len() * 2 >= total_after;
        if bulk {
            writer.set_merge_policy(Box::new(NoMergePolicy));
        }
        let staged = (|| -> Result<()> {
            for (p, slot) in batch.iter().zip(&assigned) {
                writer.delete_term(Term::from_field_text(self.f.id, p.id.as_str()));
                writer.add_document(self.make_doc(p, *slot)?).map_err(tv)?;
            }
            writer.commit().map_err(tv)?;
            Ok(())
        })();
        if bulk {
            // One segment after a bulk load keeps queries fast; a failed merge leaves a valid
            // index of several segments.
            if staged.is_ok()
                && let Ok(ids) = self.index.searchable_segment_ids()
                && ids.len() > 1
                && let Err(e) = writer.merge(&ids).wait()
            {
                tracing::warn!("search: merging segments after a bulk upsert failed: {e}");
            }
            writer.set_merge_policy(Box::new(LogMergePolicy::default()));
        }
        if let Err(e) = staged {
            let _ = writer.rollback();
            return Err(e);
        }
        self.reader.reload().map_err(tv)?;
        {
            let mut slots = self.slots.write().map_err(|_| poisoned())?;
            for (p, slot) in batch.iter().zip(&assigned) {
                slots.set(*slot, Some(Arc::new(p.clone())));
            }
        }
        drop(writer);
        report.applied = batch.len();
        self.catalog.upsert(batch);
        Ok(report)
    }

    fn remove_blocking(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let mut writer = self.writer.lock().map_err(|_| poisoned())?;
        let known: Vec<&ProductId> = {
            let slots = self.slots.read().map_err(|_| poisoned())?;
            ids.iter()
                .filter(|id| slots.by_id.contains_key(*id))
                .collect()
        };
        let mut applied = 0;
        if !known.is_empty() {
            for id in &known {
                writer.delete_term(Term::from_field_text(self.f.id, id.as_str()));
            }
            if let Err(e) = writer.commit() {
                let _ = writer.rollback();
                return Err(tv(e));
            }
            self.reader.reload().map_err(tv)?;
            let mut slots = self.slots.write().map_err(|_| poisoned())?;
            for id in &known {
                if let Some(s) = slots.by_id.remove(*id) {
                    if slots.items.get(s as usize).is_some_and(|x| x.is_some()) {
                        applied += 1;
                    }
                    slots.set(s, None);
                }
            }
        }
        drop(writer);
        let in_catalog = self.catalog.remove(&ids);
        Ok(IndexReport::new(applied.max(in_catalog)))
    }

    /// A term in every boosted field, each field's BM25 scaled by its boost and `weight`.
    fn term_query(&self, term: &str, weight: f32) -> Box<dyn Query> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = self
            .f
            .boosted()
            .into_iter()
            .map(|(field, boost)| {
                let q = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                (
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(q), boost * weight)) as Box<dyn Query>,
                )
            })
            .collect();
        Box::new(BooleanQuery::new(clauses))
    }

    /// Every token of a phrase.
    fn phrase_query(&self, tokens: &[String], weight: f32) -> Box<dyn Query> {
        if tokens.len() == 1 {
            return self.term_query(&tokens[0], weight);
        }
        Box::new(BooleanQuery::new(
            tokens
                .iter()
                .map(|t| (Occur::Must, self.term_query(t, weight)))
                .collect(),
        ))
    }

    /// Typo and prefix variants of `word` found in the index, with their weights.
    fn expansions(
        &self,
        searcher: &TvSearcher,
        word: &str,
        prefix: bool,
    ) -> Result<Vec<(String, f32)>> {
        let nchars = word.chars().count();
        let max_dist = if !self.typo || nchars <= 3 || word.chars().any(|c| c.is_ascii_digit()) {
            0
        } else if nchars <= 7 {
            1
        } else {
            2
        };
        let prefix = prefix && self.prefix && nchars >= 2;
        if max_dist == 0 && !prefix {
            return Ok(Vec::new());
        }
        // Sum the exact word's document frequency first: a common word is spelled right.
        let mut exact_df = 0u64;
        for seg in searcher.segment_readers() {
            let inv = seg.inverted_index(self.f.all).map_err(tv)?;
            if let Some(ti) = inv.terms().get(word.as_bytes()).map_err(|e| tv(e.into()))? {
                exact_df += u64::from(ti.doc_freq);
            }
        }
        let max_dist = if exact_df >= FUZZY_SKIP_DF {
            0
        } else {
            max_dist
        };
        if max_dist == 0 && !prefix {
            return Ok(Vec::new());
        }
        let dfa = match max_dist {
            1 => Some(self.lev1.build_dfa(word)),
            2 => Some(self.lev2.build_dfa(word)),
            _ => None,
        };
        // term -> (weight before idf scaling, summed doc freq)
        let mut found: HashMap<String, (f32, u64)> = HashMap::new();
        for seg in searcher.segment_readers() {
            let inv = seg.inverted_index(self.f.all).map_err(tv)?;
            let dict = inv.terms();
            if let Some(dfa) = &dfa {
                let head_len = word.chars().next().map_or(0, char::len_utf8);
                let aut = Lev {
                    dfa,
                    head: &word.as_bytes()[..head_len],
                };
                let mut s = dict.search(aut).into_stream().map_err(|e| tv(e.into()))?;
                while s.advance() {
                    let key = s.key();
                    if key == word.as_bytes() {
                        continue;
                    }
                    let Ok(k) = std::str::from_utf8(key) else {
                        continue;
                    };
                    let w = match dfa.eval(key) {
                        Distance::Exact(1) => 0.5,
                        Distance::Exact(_) => 0.3,
                        Distance::AtLeast(_) => continue,
                    };
                    let e = found.entry(k.to_string()).or_insert((0.0, 0));
                    e.0 = e.0.max(w);
                    e.1 += u64::from(s.value().doc_freq);
                }
            }
            if prefix {
                let mut s = dict
                    .range()
                    .ge(word.as_bytes())
                    .into_stream()
                    .map_err(|e| tv(e.into()))?;
                let mut scanned = 0;
                while scanned < PREFIX_SCAN && s.advance() {
                    scanned += 1;
                    let key = s.key();
                    if !key.starts_with(word.as_bytes()) {
                        break;
                    }
                    if key == word.as_bytes() {
                        continue;
                    }
                    let Ok(k) = std::str::from_utf8(key) else {
                        continue;
                    };
                    let e = found.entry(k.to_string()).or_insert((0.0, 0));
                    e.0 = e.0.max(0.7);
                    e.1 += u64::from(s.value().doc_freq);
                }
            }
        }
        let n = searcher.num_docs().max(1);
        let exact_idf = (exact_df > 0).then(|| idf(n, exact_df));
        let mut out: Vec<(String, f32, u64)> = found
            .into_iter()
            .map(|(k, (w, df))| {
                // A variant never scores above what the exact word would: scale a rarer
                // variant down to the exact word's idf.
                let scale = exact_idf.map_or(1.0, |e| (e / idf(n, df)).min(1.0));
                (k, w * scale, df)
            })
            .collect();
        out.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then_with(|| a.0.cmp(&b.0))
        });
        out.truncate(if prefix {
            MAX_FUZZY + MAX_PREFIX
        } else {
            MAX_FUZZY
        });
        Ok(out.into_iter().map(|(k, w, _)| (k, w)).collect())
    }

    /// The longest synonym phrase at the start of `tokens`: (group, length).
    fn synonym_at(&self, tokens: &[QueryToken]) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (gi, group) in self.synonyms.iter().enumerate() {
            for phrase in group {
                if phrase.len() <= tokens.len()
                    && phrase.iter().zip(tokens).all(|(a, b)| *a == b.text)
                    && best.is_none_or(|(_, l)| phrase.len() > l)
                {
                    best = Some((gi, phrase.len()));
                }
            }
        }
        best
    }

    /// One query per group of query words; a document must match every group (or, failing
    /// that, any).
    fn groups(&self, searcher: &TvSearcher, tokens: &[QueryToken]) -> Result<Vec<Box<dyn Query>>> {
        let mut groups = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if let Some((gi, len)) = self.synonym_at(&tokens[i..]) {
                let matched: Vec<&str> =
                    tokens[i..i + len].iter().map(|t| t.text.as_str()).collect();
                let variants: Vec<Box<dyn Query>> = self.synonyms[gi]
                    .iter()
                    .map(|p| {
                        let w = if p.iter().map(String::as_str).eq(matched.iter().copied()) {
                            1.0
                        } else {
                            0.9
                        };
                        self.phrase_query(p, w)
                    })
                    .collect();
                groups.push(
                    Box::new(DisjunctionMaxQuery::with_tie_breaker(variants, 0.1))
                        as Box<dyn Query>,
                );
                i += len;
                continue;
            }
            let t = &tokens[i];
            let last = i + 1 == tokens.len();
            let mut variants = vec![self.term_query(&t.text, 1.0)];
            if !t.cjk {
                for (k, w) in self.expansions(searcher, &t.text, last)? {
                    variants.push(self.term_query(&k, w));
                }
            }
            groups.push(if variants.len() == 1 {
                variants.remove(0)
            } else {
                Box::new(DisjunctionMaxQuery::with_tie_breaker(variants, 0.1))
            });
            i += 1;
        }
        Ok(groups)
    }

    fn collect<'a>(
        &self,
        searcher: &TvSearcher,
        slots: &'a Slots,
        query: &dyn Query,
        req: &SearchRequest,
    ) -> Result<Outcome<'a>> {
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(searcher))
            .map_err(tv)?;
        let filtered = !req.filters.is_empty();
        let mut out = Outcome {
            total: 0,
            entries: Vec::new(),
            facets: vec![HashMap::new(); req.facets.len()],
        };
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("slot").map_err(tv)?;
            let alive = seg.alive_bitset();
            weight
                .for_each(seg, &mut |doc, score| {
                    if alive.is_some_and(|a| a.is_deleted(doc)) {
                        return;
                    }
                    let Some(slot) = col.first(doc) else {
                        return;
                    };
                    let Some(Some(p)) = slots.items.get(slot as usize) else {
                        return;
                    };
                    if filtered && !req.filters.matches(p) {
                        return;
                    }
                    out.total += 1;
                    for (facet, counts) in req.facets.iter().zip(out.facets.iter_mut()) {
                        if let Some(label) = facet.labels(p) {
                            *counts.entry(label).or_insert(0) += 1;
                        }
                    }
                    out.entries.push((score, p.as_ref()));
                })
                .map_err(tv)?;
        }
        Ok(out)
    }

    fn search(&self, req: &SearchRequest) -> Result<SearchResponse> {
        req.validate()?;
        req.ctx.check_deadline()?;
        let started = Instant::now();
        let searcher = self.reader.searcher();
        let slots = self.slots.read().map_err(|_| poisoned())?;
        let query = req.query.trim();
        let mut outcome = if query.is_empty() {
            self.collect(&searcher, &slots, &AllQuery, req)?
        } else {
            let tokens = text::query_tokens(&mut self.query_analyzer.clone(), query);
            let groups = self.groups(&searcher, &tokens)?;
            match groups.len() {
                0 => Outcome {
                    total: 0,
                    entries: Vec::new(),
                    facets: vec![HashMap::new(); req.facets.len()],
                },
                1 => self.collect(&searcher, &slots, groups[0].as_ref(), req)?,
                _ => {
                    let all = BooleanQuery::new(
                        groups
                            .iter()
                            .map(|g| (Occur::Must, g.box_clone()))
                            .collect(),
                    );
                    let o = self.collect(&searcher, &slots, &all, req)?;
                    if o.total > 0 {
                        o
                    } else {
                        let any = BooleanQuery::new(
                            groups.into_iter().map(|g| (Occur::Should, g)).collect(),
                        );
                        self.collect(&searcher, &slots, &any, req)?
                    }
                }
            }
        };

        let by_id = |a: &Product, b: &Product| a.id.cmp(&b.id);
        let cmp = |a: &(Score, &Product), b: &(Score, &Product)| -> Ordering {
            req.sort
                .compare_products(a.1, b.1)
                .then_with(|| b.0.total_cmp(&a.0))
                .then_with(|| by_id(a.1, b.1))
        };
        let entries = &mut outcome.entries;
        let wanted = req.offset.saturating_add(req.limit);
        if wanted < entries.len() {
            entries.select_nth_unstable_by(wanted, cmp);
            entries.truncate(wanted);
        }
        entries.sort_unstable_by(cmp);
        let hits: Vec<SearchHit> = entries
            .iter()
            .skip(req.offset)
            .map(|(score, p)| SearchHit::new(p.id.clone(), *score).with_product((*p).clone()))
            .collect();
        let facets = req
            .facets
            .iter()
            .zip(outcome.facets)
            .map(|(facet, counts)| {
                let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
                counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                FacetCounts::new(facet.name(), counts)
            })
            .collect();
        let meta = ResponseMeta::new(self.name.clone())
            .with_model(MODEL)
            .with_usage(Usage::new().with_units(1u64))
            .with_latency(started.elapsed());
        Ok(SearchResponse::new(hits, outcome.total, meta)
            .with_facets(facets)
            .with_mode(SearchMode::Keyword))
    }
}

#[async_trait]
impl Searcher for RulesSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        // On disk, a commit syncs files: never on the async runtime.
        let big = products.len() > BLOCKING_BATCH || self.inner.index_dir.is_some();
        self.blocking(big, move |inner| inner.upsert_blocking(products))
            .await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        let big = ids.len() > BLOCKING_BATCH || self.inner.index_dir.is_some();
        self.blocking(big, move |inner| inner.remove_blocking(ids))
            .await
    }
    async fn search(&self, req: SearchRequest) -> Result<SearchResponse> {
        self.inner.search(&req)
    }
}
