//! DashScope (Alibaba Cloud Model Studio, Qwen): chat, embeddings and rerank.
//!
//! - **chat** over the native protocol ([`DashScopeChat`]): messages, tools and tool
//!   results, JSON object / JSON schema output, reasoning ("thinking") text kept apart,
//!   `enable_search`, `search_options`, `enable_thinking` and every other documented
//!   parameter (typed keys or the `parameters` table; a request's `provider_options` go into
//!   `parameters` too), extra body fields; streaming over server-sent events with
//!   `X-DashScope-SSE: enable` and `incremental_output`, the last cumulative usage kept,
//!   request ids, errors that arrive as `event:error` inside an HTTP 200 classified like
//!   HTTP errors ([`error`]). Or, with `mode = "compatible"`, through
//!   [`merchant_ai_openai`] pointed at the region's compatible-mode base.
//! - **embeddings** ([`DashScopeEmbedder`], an [`Embedder`])
//!   and **rerank** ([`DashScopeReranker`], a [`Reranker`]), powering **search** and
//!   **recommend** through the core's [`merchant_ai::semantic`] searcher and recommender
//!   (products embedded on upsert, queries with `text_type = "query"`, the top window
//!   reranked when `rerank_model` is set), tuned by `[providers.NAME.semantic]`.
//! - The region is explicit ([`crate::region`]); the key is sent as `Authorization: Bearer` and
//!   never appears in `Debug` or errors; `workspace` adds `X-DashScope-WorkSpace`.
//! - The adapter never retries: the core's retry layer does, once per call, reading
//!   [`Error::is_retryable`] and [`Error::retry_after`].
//!
//! ```toml
//! [providers.qwen]
//! kind = "dashscope"
//! region = "ap-southeast-1"            # Singapore; required, never guessed from the key
//! api_key_env = "DASHSCOPE_API_KEY"
//! chat_model = "qwen-plus"
//! # workspace = "llm-xxxx"             # X-DashScope-WorkSpace
//! # mode = "compatible"                # OpenAI-compatible protocol instead of the native one
//! # enable_search = true
//! # parameters = { top_k = 20 }        # any documented DashScope parameter
//! embedding_model = "text-embedding-v4"
//! dimension = 1024
//! rerank_model = "gte-rerank-v2"       # or "qwen3-rerank"
//! # base_url = "https://my-proxy.example.com"   # any host; keeps the region's jurisdiction
//!
//! [providers.qwen.semantic.search]
//! rerank_window = 50                   # top matches sent to the reranker
//! ```

pub mod chat;
pub mod client;
pub mod embed;
pub mod error;
pub mod sse;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use merchant_ai::embedding::{Embedder, Reranker};
use merchant_ai::hybrid::{HybridConfig, HybridSearcher};
use merchant_ai::semantic::{SemanticConfig, SemanticStack};
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream,
    Error, Forecaster, Provider, ProviderConfig, ProviderInfo, ProviderOptions, Recommender,
    Result, Searcher,
};
use secrecy::SecretString;
use serde::Deserialize;

pub use chat::{DashScopeChat, decode_recorded};
pub use client::Client;
pub use embed::{DashScopeEmbedder, DashScopeReranker, RerankApi};
pub use sse::{DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecoder};

use crate::region::{self, Endpoint};

/// The `kind` of this adapter in config.
pub const KIND: &str = "dashscope";

/// The chat protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// DashScope's own protocol (request ids, cumulative usage, code-level errors).
    #[default]
    Native,
    /// The OpenAI-compatible protocol, through `merchant-ai-openai`.
    Compatible,
}

/// Options of a `[providers.NAME]` section of kind `dashscope` (besides the core's `region`
/// and `api_key_env`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashScopeConfig {
    /// The region, from the section's `region` key (read by the core).
    #[serde(skip)]
    pub region: Option<String>,
    /// `X-DashScope-WorkSpace` (and the workspace of `gateway` hosts).
    pub workspace: Option<String>,
    /// Use the workspace-scoped host `{workspace}.{region}.maas.aliyuncs.com` (always for
    /// Frankfurt and Tokyo).
    pub gateway: bool,
    /// Any root URL instead of the region's host (a proxy, a private gateway, a mock).
    pub base_url: Option<String>,
    /// The jurisdiction of `base_url` when it differs from the region's, or when no region
    /// is set.
    pub jurisdiction: Option<String>,
    /// `native` (default) or `compatible`.
    pub mode: Mode,
    /// The chat model; default `qwen-plus`. A request's `model` overrides it.
    pub chat_model: String,
    /// `parameters.enable_search`.
    pub enable_search: Option<bool>,
    /// `parameters.search_options` (`forced_search`, `search_strategy`, `enable_source`...).
    pub search_options: Option<toml::Table>,
    /// `parameters.enable_thinking`.
    pub enable_thinking: Option<bool>,
    /// `parameters.thinking_budget`.
    pub thinking_budget: Option<u32>,
    /// Any other `parameters` (`top_k`, `repetition_penalty`, `presence_penalty`, ...).
    pub parameters: toml::Table,
    /// Top-level body fields.
    pub extra_body: toml::Table,
    /// Headers added to every request (not secret), e.g.
    /// `{ "X-DashScope-DataInspection" = '{"input":"cip","output":"cip"}' }` for extra
    /// moderation.
    pub extra_headers: BTreeMap<String, String>,
    /// The embedding model (e.g. `text-embedding-v4`); none: no embeddings.
    pub embedding_model: Option<String>,
    /// The embedding dimension (v3/v4: 64 to 2048, model-dependent).
    pub dimension: Option<usize>,
    /// Texts per embeddings call; default and maximum 10 for v3/v4.
    pub embedding_batch: Option<usize>,
    /// The rerank model (`gte-rerank-v2`, `qwen3-rerank`); reranks the top window of
    /// semantic search results. None: no rerank.
    pub rerank_model: Option<String>,
    /// Semantic search and recommendation tuning (`[providers.NAME.semantic]`, see
    /// [`merchant_ai::semantic`]); used when `embedding_model` is set.
    pub semantic: SemanticConfig,
    /// Longest silence while waiting for bytes, in milliseconds. Default 60 000.
    pub timeout_ms: u64,
    /// Longest connect, in milliseconds. Default 10 000.
    pub connect_timeout_ms: u64,
    /// The bound on one streamed event, in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Answer `chat` by streaming and collecting, for models that only stream (QwQ, the
    /// open-source Qwen3 thinking models). Without it `chat` switches to a stream anyway when
    /// DashScope says the model needs one (one extra request).
    pub chat_via_stream: bool,
}

impl Default for DashScopeConfig {
    fn default() -> Self {
        DashScopeConfig {
            region: None,
            workspace: None,
            gateway: false,
            base_url: None,
            jurisdiction: None,
            mode: Mode::Native,
            chat_model: "qwen-plus".into(),
            enable_search: None,
            search_options: None,
            enable_thinking: None,
            thinking_budget: None,
            parameters: toml::Table::new(),
            extra_body: toml::Table::new(),
            extra_headers: BTreeMap::new(),
            embedding_model: None,
            dimension: None,
            embedding_batch: None,
            rerank_model: None,
            semantic: SemanticConfig::default(),
            timeout_ms: 60_000,
            connect_timeout_ms: 10_000,
            max_event_bytes: DEFAULT_MAX_FRAME_BYTES,
            chat_via_stream: false,
        }
    }
}

fn table_to_json(t: &toml::Table) -> ProviderOptions {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => ProviderOptions::new(),
    }
}

impl DashScopeConfig {
    /// Resolves the endpoint; errors name the key (`providers.qwen.region`).
    pub fn endpoint(&self, name: &str) -> Result<Endpoint> {
        let kp = |k: &str| format!("providers.{name}.{k}");
        region::resolve(
            self.region.as_deref(),
            self.workspace.as_deref(),
            self.gateway,
            self.base_url.as_deref(),
            self.jurisdiction.as_deref(),
            &kp,
        )
    }

    /// Checks the options; the error names the key.
    pub fn validate(&self, name: &str) -> Result<()> {
        let kp = |k: &str| format!("providers.{name}.{k}");
        self.endpoint(name)?;
        if self.chat_model.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: must not be empty",
                kp("chat_model")
            )));
        }
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(Error::config(format!(
                "{}: timeouts must be at least 1 ms",
                kp("timeout_ms")
            )));
        }
        if let Some(ws) = &self.workspace
            && (ws.is_empty() || reqwest::header::HeaderValue::from_str(ws).is_err())
        {
            return Err(Error::config(format!(
                "{}: not a workspace id",
                kp("workspace")
            )));
        }
        for (k, v) in &self.extra_headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(Error::config(format!(
                    "{}: {k:?} is not a valid HTTP header",
                    kp("extra_headers")
                )));
            }
        }
        if let Some(m) = &self.embedding_model {
            if m.trim().is_empty() {
                return Err(Error::config(format!(
                    "{}: must not be empty",
                    kp("embedding_model")
                )));
            }
            if let Some(b) = self.embedding_batch {
                let max = embed::max_batch(m);
                if b == 0 || b > max {
                    return Err(Error::config(format!(
                        "{}: must be between 1 and {max} for {m}",
                        kp("embedding_batch")
                    )));
                }
            }
            if self.dimension == Some(0) {
                return Err(Error::config(format!(
                    "{}: must be at least 1",
                    kp("dimension")
                )));
            }
        } else if self.dimension.is_some() || self.embedding_batch.is_some() {
            return Err(Error::config(format!(
                "{}: set embedding_model to use dimension or embedding_batch",
                kp("embedding_model")
            )));
        }
        if let Some(m) = &self.rerank_model {
            if m.trim().is_empty() {
                return Err(Error::config(format!(
                    "{}: must not be empty",
                    kp("rerank_model")
                )));
            }
            if self.embedding_model.is_none() {
                return Err(Error::config(format!(
                    "{}: reranking reorders semantic search results: set embedding_model too",
                    kp("rerank_model")
                )));
            }
        }
        self.semantic
            .validate()
            .map_err(|e| e.context(kp("semantic")))
    }

    /// The configured `parameters`, typed keys included.
    pub fn chat_parameters(&self) -> ProviderOptions {
        let mut p = table_to_json(&self.parameters);
        if let Some(b) = self.enable_search {
            p.insert("enable_search".into(), b.into());
        }
        if let Some(s) = &self.search_options {
            p.insert(
                "search_options".into(),
                serde_json::Value::Object(table_to_json(s)),
            );
        }
        if let Some(b) = self.enable_thinking {
            p.insert("enable_thinking".into(), b.into());
        }
        if let Some(t) = self.thinking_budget {
            p.insert("thinking_budget".into(), t.into());
        }
        p
    }
}

/// A DashScope provider: chat, and the embedder and reranker when configured.
#[derive(Debug)]
pub struct DashScopeProvider {
    info: ProviderInfo,
    chat: Arc<dyn ChatModel>,
    embedder: Option<Arc<DashScopeEmbedder>>,
    reranker: Option<Arc<DashScopeReranker>>,
    semantic: Option<SemanticStack>,
    endpoint: Endpoint,
}

impl DashScopeProvider {
    /// What a provider with `cfg` offers: chat (streaming, tools, JSON; images only in
    /// compatible mode); with an `embedding_model`, semantic search and recommendations.
    pub fn capabilities(cfg: &DashScopeConfig) -> Capabilities {
        let c = Capabilities::none().with_chat(true, true, true, cfg.mode == Mode::Compatible);
        if cfg.embedding_model.is_some() {
            c.with_search().with_recommend()
        } else {
            c
        }
    }

    /// A provider named `name`; `api_key` is sent as `Authorization: Bearer` and nowhere
    /// else.
    pub fn new(name: &str, cfg: DashScopeConfig, api_key: Option<SecretString>) -> Result<Self> {
        cfg.validate(name)?;
        let endpoint = cfg.endpoint(name)?;
        let client = Client::new(client::ClientOptions {
            name: name.to_owned(),
            endpoint: endpoint.clone(),
            api_key: api_key.clone(),
            workspace: cfg.workspace.clone(),
            extra_headers: cfg
                .extra_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            read_timeout: Duration::from_millis(cfg.timeout_ms),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        })?;
        let chat: Arc<dyn ChatModel> = match cfg.mode {
            Mode::Native => Arc::new(DashScopeChat::new(
                client.clone(),
                chat::ChatSettings {
                    model: cfg.chat_model.clone(),
                    parameters: cfg.chat_parameters(),
                    extra_body: table_to_json(&cfg.extra_body),
                    max_frame_bytes: cfg.max_event_bytes,
                    chat_via_stream: cfg.chat_via_stream,
                },
            )),
            Mode::Compatible => compatible_chat(name, &cfg, &endpoint, api_key)?,
        };
        let embedder = cfg.embedding_model.as_ref().map(|m| {
            Arc::new(DashScopeEmbedder::new(
                client.clone(),
                m.clone(),
                cfg.dimension,
                cfg.embedding_batch.unwrap_or(embed::max_batch(m)),
            ))
        });
        let reranker = cfg.rerank_model.as_ref().map(|m| {
            Arc::new(DashScopeReranker::new(
                client.clone(),
                m.clone(),
                RerankApi::for_model(m),
            ))
        });
        let semantic = match &embedder {
            Some(e) => Some(cfg.semantic.build(
                name,
                e.clone(),
                reranker.clone().map(|r| r as Arc<dyn Reranker>),
            )?),
            None => None,
        };
        let caps = Self::capabilities(&cfg);
        // Always remote: even a loopback base_url may be a proxy to DashScope. Without a
        // region or jurisdiction (a mock server) the jurisdiction is unknown.
        let info = ProviderInfo::remote(
            name,
            KIND,
            endpoint.region().map(|r| r.id().to_owned()),
            endpoint.jurisdiction().cloned(),
            caps,
        );
        Ok(DashScopeProvider {
            info,
            chat,
            embedder,
            reranker,
            semantic,
            endpoint,
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The embedder, when `embedding_model` is set.
    pub fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.embedder.clone().map(|e| e as Arc<dyn Embedder>)
    }

    /// The semantic searcher and recommender, when `embedding_model` is set.
    pub fn semantic(&self) -> Option<&SemanticStack> {
        self.semantic.as_ref()
    }

    /// Semantic search fused with a keyword searcher (the rules provider's, say) by
    /// reciprocal rank fusion ([`merchant_ai::hybrid`]), named after this provider. Writes go to
    /// both sides; when one side is throttled or down the other answers alone and
    /// `meta.fallbacks` says so. `ConfigInvalid` without an `embedding_model`.
    pub fn hybrid_searcher(
        &self,
        keyword: Arc<dyn Searcher>,
        config: HybridConfig,
    ) -> Result<HybridSearcher> {
        let semantic = self.searcher().ok_or_else(|| {
            Error::config(format!(
                "providers.{}.embedding_model: hybrid search needs embeddings",
                self.info.name
            ))
        })?;
        HybridSearcher::new(self.info.name.clone(), semantic, keyword).with_config(config)
    }

    /// The reranker, when `rerank_model` is set.
    pub fn reranker(&self) -> Option<Arc<dyn Reranker>> {
        self.reranker.clone().map(|r| r as Arc<dyn Reranker>)
    }
}

fn compatible_chat(
    name: &str,
    cfg: &DashScopeConfig,
    endpoint: &Endpoint,
    api_key: Option<SecretString>,
) -> Result<Arc<dyn ChatModel>> {
    let mut extra_headers = cfg.extra_headers.clone();
    if let Some(ws) = &cfg.workspace {
        extra_headers.insert(client::WORKSPACE_HEADER.into(), ws.clone());
    }
    // DashScope's extras are top-level fields in compatible mode.
    let mut extra_body = cfg.extra_body.clone();
    if let Ok(toml::Value::Table(p)) = toml::Value::try_from(cfg.chat_parameters()) {
        for (k, v) in p {
            extra_body.insert(k, v);
        }
    }
    let mut oc = merchant_ai_openai::OpenAiConfig {
        base_url: endpoint.compatible_base(),
        chat_model: Some(cfg.chat_model.clone()),
        extra_headers,
        extra_body,
        timeout_ms: cfg.timeout_ms,
        connect_timeout_ms: cfg.connect_timeout_ms,
        jurisdiction: endpoint.jurisdiction().map(|j| j.to_string()),
        max_event_bytes: cfg.max_event_bytes,
        ..Default::default()
    };
    oc.region = endpoint.region().map(|r| r.id().to_owned());
    let p = merchant_ai_openai::OpenAiProvider::new(name, oc, api_key)?;
    Ok(Arc::new(CompatibleChat(p.openai_chat().clone())))
}

/// Chat in compatible mode: `merchant-ai-openai` pointed at the region's compatible-mode
/// base, its errors re-read by DashScope code ([`error::reclassify`]).
#[derive(Debug, Clone)]
pub struct CompatibleChat(Arc<merchant_ai_openai::OpenAiChat>);

#[async_trait]
impl ChatModel for CompatibleChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        self.0.chat(req).await.map_err(error::reclassify)
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let s = self.0.chat_stream(req).await.map_err(error::reclassify)?;
        Ok(Box::pin(s.map(|item| item.map_err(error::reclassify))))
    }
}

impl Provider for DashScopeProvider {
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
        Some(self.chat.clone())
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_alibaba::dashscope_factory())`.
pub fn factory() -> DashScopeFactory {
    DashScopeFactory
}

/// Builds [`DashScopeProvider`]s from `kind = "dashscope"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct DashScopeFactory;

impl DashScopeFactory {
    fn config(cfg: &ProviderConfig) -> Result<DashScopeConfig> {
        let mut c: DashScopeConfig = cfg.options_as()?;
        c.region = cfg.region().map(str::to_owned);
        c.validate(cfg.name())?;
        Ok(c)
    }
}

#[async_trait]
impl AdapterFactory for DashScopeFactory {
    fn kind(&self) -> &str {
        KIND
    }

    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        Ok(DashScopeProvider::capabilities(&Self::config(cfg)?))
    }

    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let c = Self::config(ctx.provider)?;
        let key = ctx.provider.api_key()?;
        Ok(Arc::new(DashScopeProvider::new(
            ctx.provider.name(),
            c,
            key,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(opts: &[(&str, toml::Value)]) -> ProviderConfig {
        let mut pc = ProviderConfig::new("qwen", KIND).with_region("ap-southeast-1");
        for (k, v) in opts {
            pc = pc.with_option(*k, v.clone());
        }
        pc
    }

    fn err(opts: &[(&str, toml::Value)]) -> String {
        match DashScopeFactory.capabilities(&section(opts)) {
            Err(e) => e.message().to_owned(),
            Ok(_) => panic!(
                "accepted: {:?}",
                opts.iter().map(|(k, _)| *k).collect::<Vec<_>>()
            ),
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        let m = err(&[
            ("embedding_model", "text-embedding-v4".into()),
            ("embedding_batch", 11.into()),
        ]);
        assert!(
            m.contains("providers.qwen.embedding_batch") && m.contains("10"),
            "{m}"
        );
        let m = err(&[("rerank_model", "gte-rerank-v2".into())]);
        assert!(m.contains("providers.qwen.rerank_model"), "{m}");
        let m = err(&[("dimension", 1024.into())]);
        assert!(m.contains("providers.qwen.embedding_model"), "{m}");
        let m = err(&[("mode", "openai".into())]);
        assert!(m.contains("providers.qwen"), "{m}");
        let m = err(&[("chat_modle", "qwen-max".into())]);
        assert!(m.contains("chat_modle"), "{m}");
        let m = err(&[(
            "semantic",
            toml::Value::Table(toml::Table::from_iter([(
                "search".to_owned(),
                toml::Value::Table(toml::Table::from_iter([(
                    "max_candidates".to_owned(),
                    toml::Value::from(0),
                )])),
            )])),
        )]);
        assert!(m.contains("providers.qwen.semantic"), "{m}");
        let m = err(&[("timeout_ms", 0.into())]);
        assert!(m.contains("providers.qwen.timeout_ms"), "{m}");
        let m = err(&[(
            "extra_headers",
            toml::Value::Table(toml::Table::from_iter([(
                "bad header".to_owned(),
                toml::Value::from("x"),
            )])),
        )]);
        assert!(m.contains("providers.qwen.extra_headers"), "{m}");
        let pc = ProviderConfig::new("qwen", KIND).with_region("eu-central-1");
        let m = DashScopeFactory.capabilities(&pc).unwrap_err().to_string();
        assert!(
            m.contains("providers.qwen.region") && m.contains("workspace"),
            "{m}"
        );
        let ok = section(&[("embedding_model", "text-embedding-v4".into())]);
        let c = DashScopeFactory.capabilities(&ok).unwrap();
        assert!(c.chat && c.search && c.recommend && !c.chat_images);
    }

    #[test]
    fn typed_parameters_go_into_parameters() {
        let c = DashScopeConfig {
            enable_search: Some(true),
            enable_thinking: Some(false),
            thinking_budget: Some(512),
            search_options: Some(toml::Table::from_iter([(
                "forced_search".to_owned(),
                toml::Value::from(true),
            )])),
            ..Default::default()
        };
        let p = c.chat_parameters();
        assert_eq!(p["enable_search"], true);
        assert_eq!(p["enable_thinking"], false);
        assert_eq!(p["thinking_budget"], 512);
        assert_eq!(p["search_options"]["forced_search"], true);
    }
}
