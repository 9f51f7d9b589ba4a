//! # merchant-ai-openai
//!
//! The [merchant-ai](merchant_ai) adapter for OpenAI and every server that speaks its chat
//! completions API: Azure OpenAI, DeepSeek, DashScope's compatible mode, vLLM, llama.cpp's
//! server, Ollama, SGLang, TGI.
//!
//! - **chat**: messages with image parts, tools and tool choice, parallel tool calls, JSON
//!   object and JSON schema output (with a fallback to JSON object plus a local schema check
//!   when a server rejects `json_schema`; [`ChatResponse::format_used`](merchant_ai::ChatResponse)
//!   says which was applied), sampling options, vendor body fields, reasoning text kept apart.
//! - **streaming**: an own SSE decoder ([`sse`]) that survives any split of the byte stream,
//!   with a bound on event size; tool-call fragments accumulated by index in any order; usage
//!   from the final chunk.
//! - **errors**: one mapping ([`parse_error`]) from status, headers and body to an
//!   `ErrorKind`; the adapter never retries (the core's retry layer
//!   does, once).
//! - **search and recommend** (when `embedding_model` is set): `/embeddings` ([`embed`]:
//!   batching, `dimensions`, `float` or `base64` vectors) feeds the core's
//!   [`semantic`](merchant_ai::semantic) searcher and recommender: filters, facets, sorts and
//!   paging like every provider, an optional `/rerank` of the top matches (`rerank_model`; the
//!   shape vLLM, llama.cpp, Jina, Cohere and TEI accept), recommendations from item vectors
//!   and a recency-weighted subject profile with the merchant's business rules. The
//!   `[catalog]` files are embedded when the provider is built. Recommend reads stored
//!   vectors and makes no call of its own. For keyword plus semantic, route search through a
//!   hybrid: `[profiles.NAME.hybrid.search] semantic = "local", keyword = "rules"`.
//! - forecast is not offered.
//!
//! ```toml
//! [providers.local]
//! kind = "openai"
//! base_url = "http://127.0.0.1:8080/v1"
//! chat_model = "qwen2.5-7b-instruct"
//! local = true                  # a loopback server you run: data stays on this machine
//! embedding_model = "bge-m3"    # optional: search and recommend over embeddings
//! embedding_batch = 64          # inputs per /embeddings request
//! embedding_encoding = "float"  # or "base64"
//! # embedding_dimensions = 512  # for models that shorten vectors (text-embedding-3-*)
//! # query_prefix = "query: "    # instruction-prefixed models (E5)
//! # document_prefix = "passage: "
//! rerank_model = "bge-reranker-v2-m3"   # optional: POST {base_url}/rerank
//! # rerank_url = "https://api.cohere.com/v2/rerank"
//!
//! [providers.local.semantic.search]
//! min_score = 0.2               # cosine a match must exceed
//! rerank_window = 50
//! [providers.local.semantic.recommend]
//! half_life_days = 7.0
//! [providers.local.semantic.recommend.rules]
//! max_per_category = 3
//!
//! [providers.openai]
//! kind = "openai"
//! api_key_env = "OPENAI_API_KEY"
//! chat_model = "gpt-4o-mini"
//! jurisdiction = "US"
//! ```

#![warn(missing_docs)]

pub mod embed;
mod error;
pub mod sse;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatEvent, ChatModel, ChatRequest, ChatResponse,
    ChatStream, Error, ErrorKind, Forecaster, Jurisdiction, Provider, ProviderConfig, ProviderInfo,
    ProviderOptions, Recommender, ResponseFormat, ResponseMeta, Result, Searcher,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use embed::{EncodingFormat, OpenAiEmbedder, OpenAiReranker};
pub use error::{parse_error, retry_after, transport_error};
use merchant_ai::semantic::{SemanticConfig, SemanticStack};
pub use sse::{DEFAULT_MAX_EVENT_BYTES, SseDecoder, SseEvent};
pub use wire::ChunkDecoder;

/// The `kind` of this adapter in config.
pub const KIND: &str = "openai";

/// The Azure OpenAI variant: `api-key` header and a deployment path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The `api-version` query parameter (e.g. `2024-10-21`).
    pub api_version: String,
    /// The deployment name used for chat.
    pub deployment: String,
    /// The deployment name used for embeddings (`/openai/deployments/NAME/embeddings`).
    #[serde(default)]
    pub embedding_deployment: Option<String>,
}

/// Options of a `[providers.NAME]` section of kind `openai`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, up to and including `/v1` (for Azure: the resource endpoint,
    /// `https://NAME.openai.azure.com`). Default `https://api.openai.com/v1`.
    pub base_url: String,
    /// The `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// The `OpenAI-Project` header.
    pub project: Option<String>,
    /// Headers added to every request (not secret: they may appear in diagnostics).
    pub extra_headers: BTreeMap<String, String>,
    /// Fields added to every request body (e.g. `enable_thinking = false`); a request's
    /// `provider_options` override them.
    pub extra_body: toml::Table,
    /// The chat model (a request's `model` overrides it).
    pub chat_model: Option<String>,
    /// Longest wait, in milliseconds, for each of: the response headers, a whole non-streamed
    /// body, and the next event of a stream (so a body that trickles in byte by byte cannot
    /// hold a call open). Default 60 000. The core's timeout layer bounds whole attempts.
    pub timeout_ms: u64,
    /// Longest TCP/TLS connect, in milliseconds. Default 10 000.
    pub connect_timeout_ms: u64,
    /// The vendor region, for the route table (e.g. `eastus`): the section's `region` key,
    /// which the core reads (like `api_key_env`, optional: local servers need no key).
    #[serde(skip)]
    pub region: Option<String>,
    /// Where the data sent is processed (e.g. `US`, `EU`, `CN`).
    pub jurisdiction: Option<String>,
    /// A server you run on this machine: data does not leave the host's control; the provider
    /// is declared in-process (`data_leaves_process = false`). Only for loopback servers:
    /// a `base_url` on another host is a config error.
    pub local: bool,
    /// Send the request's pseudonymous subject id as the `user` field. Default off.
    pub send_user: bool,
    /// The name of the token-limit field: `max_tokens` (default, what compatible servers
    /// read) or `max_completion_tokens` (OpenAI's reasoning models).
    pub max_tokens_field: String,
    /// The bound on one streamed event, in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Whether the server accepts image parts. Default on.
    pub images: bool,
    /// The Azure variant.
    pub azure: Option<AzureConfig>,
    /// The embeddings model (`/embeddings`). Setting it offers search and recommend.
    pub embedding_model: Option<String>,
    /// The `dimensions` sent with embedding requests (models that can shorten vectors).
    pub embedding_dimensions: Option<usize>,
    /// Inputs per embeddings request (default 64, at most 2048).
    pub embedding_batch: usize,
    /// `float` (default) or `base64` vectors on the wire.
    pub embedding_encoding: EncodingFormat,
    /// Prepended to queries before embedding (e.g. `"query: "` for E5 models).
    pub query_prefix: String,
    /// Prepended to product texts before embedding (e.g. `"passage: "` for E5 models).
    pub document_prefix: String,
    /// The rerank model (`/rerank`); when set, search reranks its top matches.
    pub rerank_model: Option<String>,
    /// The rerank URL, when not `{base_url}/rerank` (e.g. Cohere's `https://api.cohere.com/v2/rerank`).
    pub rerank_url: Option<String>,
    /// Semantic search and recommendation tuning (`[providers.NAME.semantic]`, see
    /// [`merchant_ai::semantic`]).
    pub semantic: SemanticConfig,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".into(),
            organization: None,
            project: None,
            extra_headers: BTreeMap::new(),
            extra_body: toml::Table::new(),
            chat_model: None,
            timeout_ms: 60_000,
            connect_timeout_ms: 10_000,
            region: None,
            jurisdiction: None,
            local: false,
            send_user: false,
            max_tokens_field: "max_tokens".into(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            images: true,
            azure: None,
            embedding_model: None,
            embedding_dimensions: None,
            embedding_batch: 64,
            embedding_encoding: EncodingFormat::Float,
            query_prefix: String::new(),
            document_prefix: String::new(),
            rerank_model: None,
            rerank_url: None,
            semantic: SemanticConfig::default(),
        }
    }
}

impl OpenAiConfig {
    /// Whether chat is configured (a chat model or an Azure deployment).
    pub fn has_chat(&self) -> bool {
        self.azure.is_some() || self.chat_model.as_deref().is_some_and(|m| !m.is_empty())
    }

    /// Whether embeddings are configured (search and recommend are offered).
    pub fn has_embeddings(&self) -> bool {
        self.embedding_model
            .as_deref()
            .is_some_and(|m| !m.is_empty())
    }

    /// Checks the options; the error names the key.
    pub fn validate(&self, cfg: &ProviderConfig) -> Result<()> {
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::config(format!(
                "{}: must start with http:// or https://",
                cfg.key_path("base_url")
            )));
        }
        if self.local && !is_loopback(url) {
            return Err(Error::config(format!(
                "{}: local = true is only for a server on this machine (127.0.0.1, ::1 or \
                 localhost); {url:?} is not, so data would leave it: remove `local` and set \
                 `jurisdiction`",
                cfg.key_path("local")
            )));
        }
        if !self.has_chat() && !self.has_embeddings() {
            return Err(Error::config(format!(
                "{}: a chat model is required (or an [azure] deployment, or an embedding_model \
                 for search and recommend)",
                cfg.key_path("chat_model")
            )));
        }
        if self
            .embedding_model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err(Error::config(format!(
                "{}: must not be empty",
                cfg.key_path("embedding_model")
            )));
        }
        if self.embedding_batch == 0 || self.embedding_batch > 2048 {
            return Err(Error::config(format!(
                "{}: must be between 1 and 2048, got {}",
                cfg.key_path("embedding_batch"),
                self.embedding_batch
            )));
        }
        if self.embedding_dimensions == Some(0) {
            return Err(Error::config(format!(
                "{}: must be at least 1",
                cfg.key_path("embedding_dimensions")
            )));
        }
        if self.rerank_model.is_some() && !self.has_embeddings() {
            return Err(Error::config(format!(
                "{}: reranking needs an embedding_model (it reorders semantic search results)",
                cfg.key_path("rerank_model")
            )));
        }
        if let Some(u) = &self.rerank_url {
            let u = u.trim();
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(Error::config(format!(
                    "{}: must start with http:// or https://",
                    cfg.key_path("rerank_url")
                )));
            }
            if self.local && !is_loopback(u) {
                return Err(Error::config(format!(
                    "{}: local = true, but {u:?} is not on this machine",
                    cfg.key_path("rerank_url")
                )));
            }
        }
        self.semantic
            .validate()
            .map_err(|e| Error::config(format!("providers.{}.{}", cfg.name(), e.message())))?;
        if self.timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(Error::config(format!(
                "{}: timeouts must be at least 1 ms",
                cfg.key_path("timeout_ms")
            )));
        }
        if !matches!(
            self.max_tokens_field.as_str(),
            "max_tokens" | "max_completion_tokens"
        ) {
            return Err(Error::config(format!(
                "{}: must be max_tokens or max_completion_tokens",
                cfg.key_path("max_tokens_field")
            )));
        }
        for (k, v) in &self.extra_headers {
            if HeaderName::from_bytes(k.as_bytes()).is_err() || HeaderValue::from_str(v).is_err() {
                return Err(Error::config(format!(
                    "{}: {k:?} is not a valid HTTP header",
                    cfg.key_path("extra_headers")
                )));
            }
        }
        if let Some(a) = &self.azure
            && (a.api_version.is_empty() || a.deployment.is_empty())
        {
            return Err(Error::config(format!(
                "{}: api_version and deployment must be set",
                cfg.key_path("azure")
            )));
        }
        Ok(())
    }
}

/// Whether the URL's host is a loopback address.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct Inner {
    name: String,
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    model: Option<String>,
    cfg: OpenAiConfig,
    extra_body: ProviderOptions,
}

impl Inner {
    /// `timeout_ms` as a duration.
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// The chat capability of [`OpenAiProvider`].
#[derive(Debug, Clone)]
pub struct OpenAiChat(Arc<Inner>);

/// A provider speaking the OpenAI chat completions API.
#[derive(Debug)]
pub struct OpenAiProvider {
    info: ProviderInfo,
    chat: Arc<OpenAiChat>,
    semantic: Option<SemanticStack>,
    reranker: Option<Arc<dyn merchant_ai::embedding::Reranker>>,
}

impl OpenAiProvider {
    /// What the provider offers under `cfg`.
    pub fn capabilities(cfg: &OpenAiConfig) -> Capabilities {
        let mut c = Capabilities::none();
        if cfg.has_chat() {
            c = c.with_chat(true, true, true, cfg.images);
        }
        if cfg.has_embeddings() {
            c = c.with_search().with_recommend();
        }
        c
    }

    /// A provider named `name`; `api_key` is sent as `Authorization: Bearer` (Azure:
    /// `api-key`) and nowhere else.
    pub fn new(name: &str, cfg: OpenAiConfig, api_key: Option<SecretString>) -> Result<Self> {
        install_crypto();
        let mut headers = HeaderMap::new();
        let bad = |what: &str| Error::config(format!("providers.{name}: invalid {what} header"));
        if let Some(key) = &api_key {
            let (hname, value) = if cfg.azure.is_some() {
                ("api-key", key.expose_secret().to_owned())
            } else {
                ("authorization", format!("Bearer {}", key.expose_secret()))
            };
            let mut v = HeaderValue::from_str(&value).map_err(|_| bad("API key"))?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static(hname), v);
        }
        if let Some(o) = &cfg.organization {
            headers.insert(
                "openai-organization",
                HeaderValue::from_str(o).map_err(|_| bad("organization"))?,
            );
        }
        if let Some(p) = &cfg.project {
            headers.insert(
                "openai-project",
                HeaderValue::from_str(p).map_err(|_| bad("project"))?,
            );
        }
        for (k, v) in &cfg.extra_headers {
            let k = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("extra"))?;
            headers.insert(k, HeaderValue::from_str(v).map_err(|_| bad("extra"))?);
        }
        let base = cfg.base_url.trim().trim_end_matches('/');
        let url = match &cfg.azure {
            Some(a) => format!(
                "{base}/openai/deployments/{}/chat/completions?api-version={}",
                a.deployment, a.api_version
            ),
            None => format!("{base}/chat/completions"),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .read_timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .map_err(|e| Error::config(format!("providers.{name}: HTTP client: {e}")))?;
        let extra_body = match serde_json::to_value(&cfg.extra_body) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => ProviderOptions::new(),
        };
        let caps = Self::capabilities(&cfg);
        let jurisdiction = cfg.jurisdiction.as_deref().map(Jurisdiction::new);
        let info = if cfg.local {
            let mut i = ProviderInfo::local(name, KIND, caps);
            i.region = cfg.region.clone();
            i
        } else {
            ProviderInfo::remote(name, KIND, cfg.region.clone(), jurisdiction, caps)
        };
        let mut reranker_handle = None;
        let semantic = match &cfg.embedding_model {
            Some(m) if !m.is_empty() => {
                let embed_url = match &cfg.azure {
                    Some(a) => format!(
                        "{base}/openai/deployments/{}/embeddings?api-version={}",
                        a.embedding_deployment.as_deref().unwrap_or(m),
                        a.api_version
                    ),
                    None => format!("{base}/embeddings"),
                };
                let ep = |url: String| embed::Endpoint {
                    provider: name.to_owned(),
                    http: http.clone(),
                    url,
                    headers: headers.clone(),
                    timeout: Duration::from_millis(cfg.timeout_ms),
                };
                let embedder = Arc::new(OpenAiEmbedder::new(
                    ep(embed_url),
                    embed::EmbeddingOptions {
                        model: m.clone(),
                        dimensions: cfg.embedding_dimensions,
                        batch: cfg.embedding_batch,
                        encoding: cfg.embedding_encoding,
                        query_prefix: cfg.query_prefix.clone(),
                        document_prefix: cfg.document_prefix.clone(),
                    },
                ));
                let reranker = cfg.rerank_model.as_ref().map(|rm| {
                    let url = cfg
                        .rerank_url
                        .as_deref()
                        .map(|u| u.trim().to_owned())
                        .unwrap_or_else(|| format!("{base}/rerank"));
                    Arc::new(OpenAiReranker::new(ep(url), rm.clone()))
                        as Arc<dyn merchant_ai::embedding::Reranker>
                });
                reranker_handle = reranker.clone();
                Some(cfg.semantic.build(name, embedder, reranker)?)
            }
            _ => None,
        };
        let model = match &cfg.azure {
            Some(a) => Some(
                cfg.chat_model
                    .clone()
                    .unwrap_or_else(|| a.deployment.clone()),
            ),
            None => cfg.chat_model.clone(),
        };
        Ok(OpenAiProvider {
            info,
            chat: Arc::new(OpenAiChat(Arc::new(Inner {
                name: name.to_owned(),
                http,
                url,
                headers,
                model,
                cfg,
                extra_body,
            }))),
            semantic,
            reranker: reranker_handle,
        })
    }

    /// The `/rerank` client, when a rerank model is configured.
    pub fn reranker(&self) -> Option<Arc<dyn merchant_ai::embedding::Reranker>> {
        self.reranker.clone()
    }

    /// The semantic searcher and recommender, when an embedding model is configured.
    pub fn semantic(&self) -> Option<&SemanticStack> {
        self.semantic.as_ref()
    }

    /// The concrete chat model.
    pub fn openai_chat(&self) -> &Arc<OpenAiChat> {
        &self.chat
    }
}

impl Provider for OpenAiProvider {
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
        self.info
            .capabilities
            .chat
            .then(|| self.chat.clone() as Arc<dyn ChatModel>)
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        None
    }
}

/// Whether a 400 says the server does not take `json_schema` output.
fn rejects_json_schema(e: &Error) -> bool {
    if e.status() != Some(400) && e.status() != Some(422) {
        return false;
    }
    let m = e.message().to_ascii_lowercase();
    let c = e.vendor_code().unwrap_or_default().to_ascii_lowercase();
    m.contains("response_format") || m.contains("json_schema") || c.contains("response_format")
}

impl OpenAiChat {
    fn meta(&self, model: Option<String>, request_id: Option<String>) -> ResponseMeta {
        let mut m = ResponseMeta::new(self.0.name.clone());
        m.model = model.or_else(|| self.0.model.clone());
        m.request_id = request_id;
        m
    }

    /// Sends one request; a non-2xx status is mapped by [`parse_error`].
    async fn send(
        &self,
        req: &ChatRequest,
        stream: bool,
        format: &ResponseFormat,
    ) -> Result<reqwest::Response> {
        let i = &self.0;
        let model = req.model.as_deref().or(i.model.as_deref());
        let user = if i.cfg.send_user {
            req.ctx.subject.as_ref().map(|s| s.as_str())
        } else {
            None
        };
        let body = wire::request_body(
            req,
            &wire::BodyOptions {
                model: if i.cfg.azure.is_some() { None } else { model },
                stream,
                format,
                user,
                max_tokens_field: &i.cfg.max_tokens_field,
                extra_body: &i.extra_body,
            },
        );
        let body = serde_json::to_vec(&body)?;
        tracing::debug!(provider = %i.name, stream, bytes = body.len(), "openai chat request");
        let resp = i
            .http
            .post(&i.url)
            .headers(i.headers.clone())
            .header("content-type", "application/json")
            .header(
                "accept",
                if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = read_body(resp, i.timeout()).await.unwrap_or_default();
        let e = parse_error(status, &headers, &body);
        tracing::debug!(provider = %i.name, status, kind = %e.kind(), "openai chat error");
        Err(e)
    }

    /// Sends with the request's format, falling back from `json_schema` to `json_object` when
    /// the server rejects the former. Returns the response and the format used.
    async fn send_with_fallback(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<(reqwest::Response, ResponseFormat)> {
        match self.send(req, stream, &req.response_format).await {
            Err(e)
                if matches!(req.response_format, ResponseFormat::JsonSchema { .. })
                    && rejects_json_schema(&e) =>
            {
                tracing::debug!(provider = %self.0.name, "json_schema rejected; using json_object");
                let f = ResponseFormat::JsonObject;
                let r = self.send(req, stream, &f).await?;
                Ok((r, f))
            }
            Err(e) => Err(e),
            Ok(r) => Ok((r, req.response_format.clone())),
        }
    }

    fn tag(&self, e: Error, op: &str) -> Error {
        e.with_provider(self.0.name.clone()).with_operation(op)
    }
}

pub(crate) fn request_id(h: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-dashscope-request-id"]
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

fn check_fallback_schema(text: &str, requested: &ResponseFormat) -> Result<()> {
    if let ResponseFormat::JsonSchema { schema, name, .. } = requested {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::decode(format!(
                "the answer in json_object mode (fallback for schema {name:?}) is not JSON: line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        wire::check_schema(&v, schema, "$").map_err(|m| {
            Error::decode(format!(
                "the answer does not match schema {name:?} (checked locally after the server rejected json_schema): {m}"
            ))
        })?;
    }
    Ok(())
}

#[async_trait]
impl ChatModel for OpenAiChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        req.validate().map_err(|e| self.tag(e, "chat"))?;
        let started = Instant::now();
        let (resp, used) = self
            .send_with_fallback(&req, false)
            .await
            .map_err(|e| self.tag(e, "chat"))?;
        let rid = request_id(resp.headers());
        let body = read_body(resp, self.0.timeout())
            .await
            .map_err(|e| self.tag(e, "chat"))?;
        let c = wire::parse_completion(&body).map_err(|e| {
            let e = match &rid {
                Some(r) if e.request_id().is_none() => e.with_request_id(r.clone()),
                _ => e,
            };
            self.tag(e, "chat")
        })?;
        if used != req.response_format {
            check_fallback_schema(&c.text, &req.response_format)
                .map_err(|e| self.tag(e, "chat"))?;
        }
        let mut meta = self.meta(c.model, rid).with_latency(started.elapsed());
        if let Some(u) = c.usage {
            meta.usage = u;
        }
        let mut r = ChatResponse::new(c.text, c.finish_reason, meta).with_tool_calls(c.tool_calls);
        r.reasoning = c.reasoning;
        if used != ResponseFormat::Text {
            r = r.with_format_used(used);
        }
        Ok(r)
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        req.validate().map_err(|e| self.tag(e, "chat_stream"))?;
        let started = Instant::now();
        let (resp, used) = self
            .send_with_fallback(&req, true)
            .await
            .map_err(|e| self.tag(e, "chat_stream"))?;
        let rid = request_id(resp.headers());
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let this = self.clone();
        if ctype.starts_with("application/json") {
            // Some servers answer a streamed request with one JSON body (an error, or no
            // streaming support): read it whole.
            let body = read_body(resp, self.0.timeout())
                .await
                .map_err(|e| self.tag(e, "chat_stream"))?;
            let c = wire::parse_completion(&body).map_err(|e| self.tag(e, "chat_stream"))?;
            let mut meta = self.meta(c.model, rid).with_latency(started.elapsed());
            if let Some(u) = c.usage {
                meta.usage = u;
            }
            let mut events = Vec::new();
            if let Some(r) = c.reasoning {
                events.push(Ok(ChatEvent::ReasoningDelta { text: r }));
            }
            if !c.text.is_empty() {
                events.push(Ok(ChatEvent::TextDelta { text: c.text }));
            }
            for call in c.tool_calls {
                events.push(Ok(ChatEvent::ToolCall { call }));
            }
            events.push(Ok(ChatEvent::Finished {
                finish_reason: c.finish_reason,
                meta,
            }));
            return Ok(Box::pin(futures::stream::iter(events)));
        }
        let max = self.0.cfg.max_event_bytes;
        let bytes = resp.bytes_stream();
        let state = StreamState {
            bytes: Box::pin(bytes),
            sse: SseDecoder::new(max),
            chunks: ChunkDecoder::new(),
            queue: std::collections::VecDeque::new(),
            ended: false,
            // After a json_schema fallback the text is kept to check the schema at the end.
            check: (used != req.response_format).then(|| req.response_format.clone()),
            text: String::new(),
            idle: self.0.timeout(),
            next_event_by: tokio::time::Instant::now() + self.0.timeout(),
        };
        let s = futures::stream::unfold(state, move |mut st| {
            let this = this.clone();
            let rid = rid.clone();
            async move {
                loop {
                    if let Some(item) = st.queue.pop_front() {
                        if item.is_err() {
                            st.queue.clear();
                            st.ended = true;
                        }
                        return Some((item, st));
                    }
                    if st.ended {
                        return None;
                    }
                    let next = tokio::time::timeout_at(st.next_event_by, st.bytes.next()).await;
                    let Ok(next) = next else {
                        // Bytes may still be arriving, but no whole event came in time.
                        st.fail(this.tag(
                            Error::new(
                                ErrorKind::Timeout,
                                "no stream event arrived within timeout_ms",
                            ),
                            "chat_stream",
                        ));
                        continue;
                    };
                    match next {
                        Some(Ok(b)) => {
                            if let Err(e) = st.feed(&b) {
                                st.fail(this.tag(e, "chat_stream"));
                            }
                            if !st.queue.is_empty() {
                                st.next_event_by = tokio::time::Instant::now() + st.idle;
                            }
                        }
                        Some(Err(e)) => {
                            let e = transport_error(e);
                            // A body that breaks off is a cut stream: Unavailable.
                            let e = if e.kind() == ErrorKind::Decode {
                                Error::new(ErrorKind::Unavailable, e.message().to_owned())
                            } else {
                                e
                            };
                            st.fail(this.tag(e, "chat_stream"));
                        }
                        None => {
                            st.ended = true;
                            if st.sse.has_partial() || !st.chunks.completed() {
                                st.fail(this.tag(
                                    Error::new(
                                        ErrorKind::Unavailable,
                                        "the stream was cut off before the answer finished",
                                    ),
                                    "chat_stream",
                                ));
                            } else {
                                let meta =
                                    this.meta(None, rid.clone()).with_latency(started.elapsed());
                                let checked = match &st.check {
                                    Some(f) => check_fallback_schema(&st.text, f),
                                    None => Ok(()),
                                };
                                match checked.and_then(|()| st.chunks.finish(meta)) {
                                    Ok(evs) => st.queue.extend(evs.into_iter().map(Ok)),
                                    Err(e) => st.fail(this.tag(e, "chat_stream")),
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(Box::pin(s))
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

struct StreamState {
    bytes: ByteStream,
    sse: SseDecoder,
    chunks: ChunkDecoder,
    queue: std::collections::VecDeque<Result<ChatEvent>>,
    ended: bool,
    check: Option<ResponseFormat>,
    text: String,
    /// `timeout_ms`: the longest wait for the next event.
    idle: Duration,
    /// When the next event is due.
    next_event_by: tokio::time::Instant,
}

/// Reads a whole response body within `limit` (a body that trickles in is a timeout).
async fn read_body(resp: reqwest::Response, limit: Duration) -> Result<bytes::Bytes> {
    match tokio::time::timeout(limit, resp.bytes()).await {
        Ok(r) => r.map_err(transport_error),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            "the response body did not arrive within timeout_ms",
        )),
    }
}

impl StreamState {
    fn feed(&mut self, b: &[u8]) -> Result<()> {
        let mut events = Vec::new();
        let pushed = self.sse.push(b, &mut events);
        for ev in events {
            if self.chunks.is_done() {
                continue;
            }
            let evs = self.chunks.push(ev.event.as_deref(), &ev.data)?;
            if self.check.is_some() {
                for e in &evs {
                    if let ChatEvent::TextDelta { text } = e {
                        self.text.push_str(text);
                    }
                }
            }
            self.queue.extend(evs.into_iter().map(Ok));
        }
        pushed
    }
    fn fail(&mut self, e: Error) {
        self.queue.push_back(Err(e));
    }
}

/// Decodes a whole recorded stream, fed in the given chunks, into the events
/// [`ChatModel::chat_stream`] would yield (with a `Finished` whose meta names `provider`).
/// The core of the streaming path without the network: for tests, fuzzing and replay.
pub fn decode_recorded<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    provider: &str,
    max_event_bytes: usize,
) -> Vec<Result<ChatEvent>> {
    let mut sse = SseDecoder::new(max_event_bytes);
    let mut dec = ChunkDecoder::new();
    let mut out = Vec::new();
    let fail = |out: &mut Vec<Result<ChatEvent>>, e| {
        out.push(Err(e));
    };
    for c in chunks {
        let mut evs = Vec::new();
        let pushed = sse.push(c, &mut evs);
        for ev in evs {
            if dec.is_done() {
                continue;
            }
            match dec.push(ev.event.as_deref(), &ev.data) {
                Ok(e) => out.extend(e.into_iter().map(Ok)),
                Err(e) => {
                    fail(&mut out, e);
                    return out;
                }
            }
        }
        if let Err(e) = pushed {
            fail(&mut out, e);
            return out;
        }
    }
    if sse.has_partial() || !dec.completed() {
        fail(
            &mut out,
            Error::new(
                ErrorKind::Unavailable,
                "the stream was cut off before the answer finished",
            ),
        );
        return out;
    }
    match dec.finish(ResponseMeta::new(provider)) {
        Ok(evs) => out.extend(evs.into_iter().map(Ok)),
        Err(e) => out.push(Err(e)),
    }
    out
}

/// The factory to register: `Registry::new().with(merchant_ai_openai::factory())`.
pub fn factory() -> OpenAiFactory {
    OpenAiFactory
}

/// Builds [`OpenAiProvider`]s from `kind = "openai"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiFactory;

#[async_trait]
impl AdapterFactory for OpenAiFactory {
    fn kind(&self) -> &str {
        KIND
    }

    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: OpenAiConfig = cfg.options_as()?;
        c.validate(cfg)?;
        Ok(OpenAiProvider::capabilities(&c))
    }

    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let mut c: OpenAiConfig = ctx.provider.options_as()?;
        c.validate(ctx.provider)?;
        c.region = ctx.provider.region().map(str::to_owned);
        let key = ctx.provider.api_key()?;
        let p = OpenAiProvider::new(ctx.provider.name(), c, key)?;
        if let Some(stack) = p.semantic() {
            // Like every provider holding the catalog, load the `[catalog]` files at start.
            let cat = ctx.config.catalog();
            if let Some(path) = &cat.products {
                let products = read_jsonl::<merchant_ai::Product>("catalog.products", path)?;
                stack.searcher.upsert(products).await?;
            }
            if let Some(path) = &cat.events {
                let events = read_jsonl::<merchant_ai::Event>("catalog.events", path)?;
                stack.recommender.record(events).await?;
            }
        }
        Ok(Arc::new(p))
    }
}

/// Reads a JSON lines file; errors name the config key, the file and the line.
fn read_jsonl<T: serde::de::DeserializeOwned>(key: &str, path: &std::path::Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(line).map_err(|e| {
            Error::config(format!("{key}: {} line {}: {}", path.display(), i + 1, e))
        })?;
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for u in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:11434/v1",
            "http://[::1]:8000/v1",
            "http://127.8.0.1/v1",
            "http://user@localhost/v1",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "http://10.0.0.5:8080/v1",
            "https://api.openai.com/v1",
            "http://localhost.example.com/v1",
            "http://127.0.0.1.nip.io/v1",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }

    #[test]
    fn local_must_be_loopback() {
        let pc = ProviderConfig::new("x", KIND);
        let c = OpenAiConfig {
            base_url: "http://10.0.0.5:8080/v1".into(),
            chat_model: Some("m".into()),
            local: true,
            ..Default::default()
        };
        let e = c.validate(&pc).unwrap_err();
        assert!(e.message().contains("providers.x.local"), "{e}");
    }
}
