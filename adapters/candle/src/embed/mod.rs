//! Sentence embeddings from a BERT-family model in a local folder.
//!
//! [`BertEmbedder`] loads `config.json`, `tokenizer.json` and `model.safetensors` (tensor names
//! with or without a `bert.` prefix) and implements the core's
//! [`Embedder`]:
//!
//! - texts are tokenized without padding (a shipped tokenizer's fixed padding is turned off)
//!   and truncated to the model's `max_seq_length` (from `sentence_bert_config.json`, as
//!   sentence-transformers does);
//! - vectors are the attention-masked mean of the token vectors, L2-normalised (the pooling of
//!   sentence-transformers models such as all-MiniLM-L6-v2);
//! - the work runs on a dedicated worker thread, off the async runtime, with the matrix products
//!   on a bounded rayon pool (`threads`, or `RAYON_NUM_THREADS`); requests wait in a bounded
//!   queue;
//! - requests that arrive while the model is busy are micro-batched: the worker takes every
//!   waiting request (up to `max_batch` texts) into one run, sorts the texts by token length and
//!   cuts the run into forward passes of similar lengths (`max_batch_tokens`); within a pass
//!   the sequences are packed end to end, so no compute goes to padding at all.
//!
//! ```no_run
//! # async fn demo() -> merchant_ai::Result<()> {
//! use merchant_ai::embedding::{EmbedRequest, Embedder};
//! use merchant_ai_candle::embed::{BertEmbedder, EmbedConfig};
//!
//! let model = BertEmbedder::load("/models/all-MiniLM-L6-v2", EmbedConfig::default())?;
//! let out = model.embed(EmbedRequest::new(vec!["red running shoes".into()])).await?;
//! assert_eq!(out.vectors[0].len(), 384);
//! # Ok(()) }
//! ```

mod kernels;
mod model;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use async_trait::async_trait;
use merchant_ai::embedding::{EmbedPurpose, EmbedRequest, Embedder, Embeddings};
use merchant_ai::{Error, ErrorKind, Result, Usage};
use serde::Deserialize;
use tokenizers::Tokenizer;
use tokio::sync::{mpsc, oneshot};

use model::{BertConfig, Encoder};

/// Options of a [`BertEmbedder`]; in config, the `[providers.NAME.embedding]` table.
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// The model name reported in responses. Default: the model folder's name (its parent's
    /// when the folder is called `model`).
    pub model_name: Option<String>,
    /// Texts taken into one run of the model, across waiting requests (default 256). A larger
    /// single request is still served in one run.
    pub max_batch: usize,
    /// Tokens in one forward pass (default 8192): bounds memory, keeps the matrices large.
    pub max_batch_tokens: usize,
    /// Truncate texts to this many tokens, special tokens included. Default: the model's
    /// `sentence_bert_config.json` `max_seq_length`, else its position embeddings.
    pub max_seq_length: Option<usize>,
    /// Threads for this model's pool. Default: the global rayon pool (`RAYON_NUM_THREADS`,
    /// else one per core).
    pub threads: Option<usize>,
    /// Requests that may wait for the model; further callers wait for a slot (default 1024).
    pub queue: usize,
    /// Prepended to query texts (for models trained with one, e.g. `"query: "`).
    pub query_prefix: String,
    /// Prepended to document texts (e.g. `"passage: "`).
    pub document_prefix: String,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model_name: None,
            max_batch: 256,
            max_batch_tokens: 8192,
            max_seq_length: None,
            threads: None,
            queue: 1024,
            query_prefix: String::new(),
            document_prefix: String::new(),
        }
    }
}

impl EmbedConfig {
    /// Sets the reported model name.
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = Some(name.into());
        self
    }
    /// Sets the texts per run.
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }
    /// Sets the tokens per forward pass.
    pub fn with_max_batch_tokens(mut self, n: usize) -> Self {
        self.max_batch_tokens = n;
        self
    }
    /// Sets the truncation length.
    pub fn with_max_seq_length(mut self, n: usize) -> Self {
        self.max_seq_length = Some(n);
        self
    }
    /// Runs the model on its own pool of `n` threads.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Sets the query and document prefixes.
    pub fn with_prefixes(mut self, query: impl Into<String>, document: impl Into<String>) -> Self {
        self.query_prefix = query.into();
        self.document_prefix = document.into();
        self
    }

    fn validate(&self) -> Result<()> {
        if self.max_batch == 0 {
            return Err(Error::config("embedding.max_batch must be at least 1"));
        }
        if self.queue == 0 {
            return Err(Error::config("embedding.queue must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(Error::config("embedding.threads must be at least 1"));
        }
        if self.max_seq_length.is_some_and(|n| n < 2) {
            return Err(Error::config(
                "embedding.max_seq_length must be at least 2 (the special tokens)",
            ));
        }
        Ok(())
    }
}

struct Job {
    texts: Vec<String>,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Result<(Vec<Vec<f32>>, u64)>>,
}

struct Model {
    encoder: Encoder,
    tokenizer: Tokenizer,
    cfg: EmbedConfig,
    max_tokens: usize,
    pool: Option<rayon::ThreadPool>,
}

/// A BERT-family sentence-embedding model run in process. See the [module docs](self).
pub struct BertEmbedder {
    name: String,
    dimension: usize,
    max_seq_length: usize,
    query_prefix: String,
    document_prefix: String,
    tx: mpsc::Sender<Job>,
}

impl fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("model", &self.name)
            .field("dimension", &self.dimension)
            .field("max_seq_length", &self.max_seq_length)
            .finish_non_exhaustive()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::config(format!("{}: {e}", path.display())))
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default = "yes")]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

fn yes() -> bool {
    true
}

fn default_name(dir: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match name(dir) {
        Some(n) if n == "model" => dir.parent().and_then(name).unwrap_or(n),
        Some(n) => n,
        None => "bert".into(),
    }
}

impl BertEmbedder {
    /// Loads the model in `dir` and starts its worker thread. Blocking (reads the weights): in
    /// async code call it from `spawn_blocking`. Errors name the file or setting at fault.
    pub fn load(dir: impl AsRef<Path>, cfg: EmbedConfig) -> Result<BertEmbedder> {
        let dir = dir.as_ref();
        cfg.validate()?;
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "embedding model folder {} does not exist (install the assets with scripts/assets, or set embedding_model)",
                dir.display()
            )));
        }
        let file = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::config(format!(
                    "embedding model folder {} has no {name}",
                    dir.display()
                )))
            }
        };
        let bert: BertConfig = read_json(&file("config.json")?)?;
        let pooling = dir.join("1_Pooling/config.json");
        if pooling.is_file() {
            let p: PoolingConfig = read_json(&pooling)?;
            if !p.pooling_mode_mean_tokens
                || p.pooling_mode_cls_token
                || p.pooling_mode_max_tokens
                || p.pooling_mode_mean_sqrt_len_tokens
            {
                return Err(Error::config(format!(
                    "{}: only mean pooling is supported",
                    pooling.display()
                )));
            }
        }
        let st_cfg = dir.join("sentence_bert_config.json");
        let st_max = if st_cfg.is_file() {
            read_json::<SentenceBertConfig>(&st_cfg)?.max_seq_length
        } else {
            None
        };
        let encoder = Encoder::load(&file("model.safetensors")?, bert)?;
        let max_seq_length = cfg
            .max_seq_length
            .or(st_max)
            .unwrap_or(encoder.max_positions())
            .min(encoder.max_positions());
        let tokenizer = load_tokenizer(&file("tokenizer.json")?, max_seq_length)?;
        let pool = match cfg.threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("merchant-ai-embed-{i}"))
                    .build()
                    .map_err(|e| Error::config(format!("embedding thread pool: {e}")))?,
            ),
            None => None,
        };
        let name = cfg.model_name.clone().unwrap_or_else(|| default_name(dir));
        let (tx, rx) = mpsc::channel(cfg.queue);
        let model = Model {
            max_tokens: cfg.max_batch_tokens.max(max_seq_length),
            encoder,
            tokenizer,
            cfg: cfg.clone(),
            pool,
        };
        let dimension = model.encoder.hidden_size();
        let rx = Arc::new(Mutex::new(rx));
        std::thread::Builder::new()
            .name("merchant-ai-embed".into())
            .spawn(move || worker(model, rx))
            .map_err(|e| Error::config(format!("could not start the embedding worker: {e}")))?;
        Ok(BertEmbedder {
            name,
            dimension,
            max_seq_length,
            query_prefix: cfg.query_prefix,
            document_prefix: cfg.document_prefix,
            tx,
        })
    }

    /// Texts are truncated to this many tokens, special tokens included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }
}

fn load_tokenizer(path: &Path, max_len: usize) -> Result<Tokenizer> {
    let mut tok = Tokenizer::from_file(path)
        .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
    // The shipped tokenizer of all-MiniLM-L6-v2 pads every text to 128 tokens; padding would
    // only cost time here (sequences are packed), so it is off.
    tok.with_padding(None);
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: max_len,
        ..Default::default()
    }))
    .map_err(|e| Error::config(format!("{}: truncation: {e}", path.display())))?;
    Ok(tok)
}

fn worker(model: Model, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = {
            let Ok(mut rx) = rx.lock() else { return };
            let Some(first) = rx.blocking_recv() else {
                return;
            };
            let mut texts = first.texts.len();
            let mut jobs = vec![first];
            while texts < model.cfg.max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        texts += job.texts.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let now = Instant::now();
        // A caller that went away (dropped its future) is not worked for.
        jobs.retain(|job| !job.reply.is_closed());
        let (live, late): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.deadline.is_none_or(|d| d > now));
        for job in late {
            let _ = job.reply.send(Err(Error::new(
                ErrorKind::Timeout,
                "the request's deadline passed while it waited for the embedding model",
            )));
        }
        if live.is_empty() {
            continue;
        }
        let run = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.run(live)));
        let outcome = match &model.pool {
            Some(pool) => pool.install(run),
            None => run(),
        };
        if outcome.is_err() {
            // The jobs' reply senders were dropped with the panic: their callers get an error.
            tracing::error!("the embedding model panicked; the requests of that run failed");
        }
    }
}

impl Model {
    fn run(&self, jobs: Vec<Job>) {
        // Tokenize each request on its own, so one bad request does not fail the others.
        let mut ok_jobs = Vec::with_capacity(jobs.len());
        let mut seqs: Vec<Vec<u32>> = Vec::new();
        for job in jobs {
            let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
            match self.tokenizer.encode_batch(texts, true) {
                Ok(encs) => {
                    let start = seqs.len();
                    seqs.extend(encs.into_iter().map(|e| e.get_ids().to_vec()));
                    ok_jobs.push((job, start));
                }
                Err(_) => {
                    let _ = job.reply.send(Err(Error::invalid_request(
                        "a text could not be tokenized for the embedding model",
                    )));
                }
            }
        }
        if ok_jobs.is_empty() {
            return;
        }
        match self.embed_all(&seqs) {
            Ok(mut vectors) => {
                // Hand each request its slice, in order; walk backwards to move, not copy.
                for (job, start) in ok_jobs.into_iter().rev() {
                    let mine = vectors.split_off(start);
                    let tokens = seqs[start..start + mine.len()]
                        .iter()
                        .map(|s| s.len() as u64)
                        .sum();
                    let _ = job.reply.send(Ok((mine, tokens)));
                }
            }
            Err(e) => {
                for (job, _) in ok_jobs {
                    let _ = job
                        .reply
                        .send(Err(Error::new(e.kind(), e.message().to_owned())));
                }
            }
        }
    }

    /// Embeds every sequence: sorted by length, cut into forward passes of at most
    /// `max_batch` sequences and `max_tokens` tokens, results back in input order.
    fn embed_all(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); seqs.len()];
        let mut i = 0;
        while i < order.len() {
            let mut tokens = 0;
            let mut j = i;
            while j < order.len()
                && j - i < self.cfg.max_batch
                && (j == i || tokens + seqs[order[j]].len() <= self.max_tokens)
            {
                tokens += seqs[order[j]].len();
                j += 1;
            }
            let pass: Vec<&[u32]> = order[i..j].iter().map(|&k| seqs[k].as_slice()).collect();
            let vectors = self.encoder.embed(&pass)?;
            for (&k, v) in order[i..j].iter().zip(vectors) {
                out[k] = v;
            }
            i = j;
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for BertEmbedder {
    fn model(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> Option<usize> {
        Some(self.dimension)
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings> {
        if req.texts.is_empty() {
            return Ok(Embeddings::new(Vec::new(), self.name.clone()));
        }
        let prefix = match req.purpose {
            EmbedPurpose::Query => &self.query_prefix,
            _ => &self.document_prefix,
        };
        let texts = if prefix.is_empty() {
            req.texts
        } else {
            req.texts
                .into_iter()
                .map(|t| format!("{prefix}{t}"))
                .collect()
        };
        let n = texts.len();
        let (reply, rx) = oneshot::channel();
        let job = Job {
            texts,
            deadline: req.ctx.deadline,
            reply,
        };
        let stopped = || Error::new(ErrorKind::Unavailable, "the embedding worker has stopped");
        self.tx.send(job).await.map_err(|_| stopped())?;
        let (vectors, tokens) = rx.await.map_err(|_| stopped())??;
        if vectors.len() != n {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "the embedding model returned {} vectors for {n} texts",
                    vectors.len()
                ),
            ));
        }
        Ok(Embeddings::new(vectors, self.name.clone())
            .with_usage(Usage::default().with_input_tokens(tokens)))
    }
}
