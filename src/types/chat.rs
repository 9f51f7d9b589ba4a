use std::fmt;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::common::{ProviderOptions, RequestContext, ResponseMeta, Usage};
use crate::error::{Error, Result};

/// Who wrote a message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// The shopper or operator.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A piece of a message.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL (`https://...` or a `data:` URL).
    Image {
        /// The URL.
        url: String,
    },
}

/// One chat message.
#[non_exhaustive]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The author.
    pub role: Role,
    /// Text and image parts.
    #[serde(default)]
    pub content: Vec<ContentPart>,
    /// Tool calls the assistant made (assistant messages only).
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// The call this message answers (tool messages only).
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl fmt::Debug for Message {
    /// Shows the shape, never the text: messages hold customer content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("role", &self.role)
            .field("parts", &self.content.len())
            .field("chars", &self.text().chars().count())
            .field("tool_calls", &self.tool_calls.len())
            .finish()
    }
}

impl Message {
    /// A message with one text part.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: vec![ContentPart::Text { text: text.into() }],
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Message::new(Role::System, text)
    }
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Message::new(Role::User, text)
    }
    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message::new(Role::Assistant, text)
    }
    /// An assistant message that calls tools.
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        Message {
            role: Role::Assistant,
            content: Vec::new(),
            tool_calls: calls,
            tool_call_id: None,
        }
    }
    /// A tool result answering the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: vec![ContentPart::Text {
                text: content.into(),
            }],
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
    /// Adds an image part.
    #[must_use]
    pub fn with_image(mut self, url: impl Into<String>) -> Self {
        self.content.push(ContentPart::Image { url: url.into() });
        self
    }
    /// All text parts, joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.content {
            if let ContentPart::Text { text } = p {
                out.push_str(text);
            }
        }
        out
    }
}

/// A tool the model may call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The function name (`order_status`).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The arguments as a JSON Schema object.
    pub parameters: serde_json::Value,
}

impl Tool {
    /// A tool; `parameters` is a JSON Schema (`{"type":"object","properties":{...}}`).
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Tool {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// Whether and which tool the model must call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Tool(String),
}

/// The shape of the answer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Whether the provider must follow it strictly.
        #[serde(default)]
        strict: bool,
    },
}

/// A tool call made by the model.
#[non_exhaustive]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, quoted by the tool result.
    pub id: String,
    /// The tool name.
    pub name: String,
    /// The arguments as JSON text, as the model produced them.
    pub arguments: String,
}

impl fmt::Debug for ToolCall {
    /// Shows the name, not the arguments: they may carry customer data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCall")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("argument_bytes", &self.arguments.len())
            .finish()
    }
}

impl ToolCall {
    /// A tool call.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
    /// The arguments parsed as JSON (`{}` when empty, as some servers send `""`).
    pub fn arguments_json(&self) -> Result<serde_json::Value> {
        if self.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_str(&self.arguments).map_err(|e| {
            Error::decode(format!(
                "arguments of tool call {} ({}) are not valid JSON: {e}",
                self.id, self.name
            ))
        })
    }
}

/// Why generation stopped. Unknown vendor values are kept in `Other`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    #[default]
    Stop,
    /// Hit the token limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// A content filter cut the answer.
    ContentFilter,
    /// A value this library does not know.
    Other(String),
}

impl FinishReason {
    /// The snake_case name (or the vendor's value).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

impl From<&str> for FinishReason {
    fn from(s: &str) -> Self {
        match s {
            "stop" | "end_turn" | "eos" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
            "content_filter" | "sensitive" => FinishReason::ContentFilter,
            o => FinishReason::Other(o.to_owned()),
        }
    }
}

impl Serialize for FinishReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for FinishReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(FinishReason::from(String::deserialize(d)?.as_str()))
    }
}

/// A chat completion request.
///
/// ```
/// use merchant_ai::{ChatRequest, Message, Tool, ResponseFormat};
/// let req = ChatRequest::new(vec![
///     Message::system("You are the shop's assistant."),
///     Message::user("Where is my order 12345?"),
/// ])
/// .with_tool(Tool::new("order_status", "Look up an order", serde_json::json!({
///     "type": "object",
///     "properties": {"order_id": {"type": "string"}},
///     "required": ["order_id"]
/// })))
/// .with_temperature(0.2)
/// .with_max_tokens(256);
/// assert!(req.validate().is_ok());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Who asks.
    #[serde(default)]
    pub ctx: RequestContext,
    /// A model name overriding the provider's configured chat model.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Whether and which tool to call.
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// The answer's shape.
    #[serde(default)]
    pub response_format: ResponseFormat,
    /// Sampling temperature (0 to 2).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling (0 to 1].
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Most tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Seed for reproducible sampling, where supported.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Vendor-specific options (e.g. `enable_thinking`).
    #[serde(default)]
    pub provider_options: ProviderOptions,
}

setters!(ChatRequest {
    /// Sets the context.
    ctx: RequestContext => with_ctx;
    /// Overrides the model.
    model: String => with_model, ?;
    /// Sets the tool choice.
    tool_choice: ToolChoice => with_tool_choice;
    /// Sets the response format.
    response_format: ResponseFormat => with_response_format;
    /// Sets the temperature.
    temperature: f32 => with_temperature, some;
    /// Sets top_p.
    top_p: f32 => with_top_p, some;
    /// Sets the token limit.
    max_tokens: u32 => with_max_tokens, some;
    /// Sets the seed.
    seed: u64 => with_seed, some;
    /// Sets vendor options.
    provider_options: ProviderOptions => with_provider_options;
});

impl ChatRequest {
    /// A request with these messages.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            ctx: RequestContext::default(),
            model: None,
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::default(),
            response_format: ResponseFormat::default(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            seed: None,
            provider_options: ProviderOptions::new(),
        }
    }
    /// Adds a tool.
    #[must_use]
    pub fn with_tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }
    /// Adds a stop sequence.
    #[must_use]
    pub fn with_stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }
    /// The text of the last user message, if any.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(Message::text)
    }
    /// Checks the request; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.messages.is_empty() {
            return Err(Error::invalid_request("messages is empty"));
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(Error::invalid_request(format!(
                "temperature must be between 0 and 2, got {t}"
            )));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::invalid_request(format!(
                "top_p must be in (0, 1], got {p}"
            )));
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_request("max_tokens must be at least 1"));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if m.role == Role::Tool && m.tool_call_id.is_none() {
                return Err(Error::invalid_request(format!(
                    "messages[{i}]: a tool message needs tool_call_id"
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tools.iter().enumerate() {
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::invalid_request(format!(
                    "tools[{i}].name {:?} must be non-empty ASCII letters, digits, _ or -",
                    t.name
                )));
            }
            if !names.insert(t.name.as_str()) {
                return Err(Error::invalid_request(format!(
                    "tools[{i}].name {:?} is defined twice",
                    t.name
                )));
            }
            if !t.parameters.is_object() {
                return Err(Error::invalid_request(format!(
                    "tools[{i}].parameters must be a JSON Schema object"
                )));
            }
        }
        if let ToolChoice::Tool(name) = &self.tool_choice
            && !self.tools.iter().any(|t| &t.name == name)
        {
            return Err(Error::invalid_request(format!(
                "tool_choice names {name:?}, which is not in tools"
            )));
        }
        Ok(())
    }
}

/// A chat completion.
#[non_exhaustive]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer's text.
    pub text: String,
    /// Tools the model called.
    pub tool_calls: Vec<ToolCall>,
    /// Reasoning ("thinking") text, kept apart from the answer.
    pub reasoning: Option<String>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Who served it and what it cost.
    pub meta: ResponseMeta,
    /// The response format the provider actually applied, when it reports one: a provider
    /// that fell back from [`ResponseFormat::JsonSchema`] to [`ResponseFormat::JsonObject`]
    /// (and checked the schema itself) says `JsonObject` here. `None`: not reported.
    #[serde(default)]
    pub format_used: Option<ResponseFormat>,
}

impl fmt::Debug for ChatResponse {
    /// Shows the shape, not the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatResponse")
            .field("text_chars", &self.text.chars().count())
            .field("tool_calls", &self.tool_calls)
            .field("has_reasoning", &self.reasoning.is_some())
            .field("finish_reason", &self.finish_reason)
            .field("meta", &self.meta)
            .field("format_used", &self.format_used.as_ref().map(format_name))
            .finish()
    }
}

fn format_name(f: &ResponseFormat) -> &'static str {
    match f {
        ResponseFormat::Text => "text",
        ResponseFormat::JsonObject => "json_object",
        ResponseFormat::JsonSchema { .. } => "json_schema",
    }
}

impl ChatResponse {
    /// A text answer.
    pub fn new(text: impl Into<String>, finish_reason: FinishReason, meta: ResponseMeta) -> Self {
        ChatResponse {
            text: text.into(),
            tool_calls: Vec::new(),
            reasoning: None,
            finish_reason,
            meta,
            format_used: None,
        }
    }
    /// Sets the response format actually applied.
    #[must_use]
    pub fn with_format_used(mut self, f: ResponseFormat) -> Self {
        self.format_used = Some(f);
        self
    }
    /// Sets the tool calls.
    #[must_use]
    pub fn with_tool_calls(mut self, calls: Vec<ToolCall>) -> Self {
        self.tool_calls = calls;
        self
    }
    /// Sets the reasoning text.
    #[must_use]
    pub fn with_reasoning(mut self, r: impl Into<String>) -> Self {
        self.reasoning = Some(r.into());
        self
    }
    /// The answer as an assistant message, to append to the conversation.
    pub fn to_message(&self) -> Message {
        let mut m = Message::assistant(self.text.clone());
        if self.text.is_empty() {
            m.content.clear();
        }
        m.tool_calls = self.tool_calls.clone();
        m
    }
}

/// One event of a streamed chat completion.
#[non_exhaustive]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
// `Finished` carries the whole `ResponseMeta`; events are handed over one at a time, so the
// size is paid once per event in flight, and keeping `meta` unboxed keeps the variant easy to
// build and match.
#[allow(clippy::large_enum_variant)]
pub enum ChatEvent {
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// More reasoning text.
    ReasoningDelta {
        /// The new text.
        text: String,
    },
    /// A fragment of a tool call, as it arrives.
    ToolCallDelta {
        /// The call's index among this answer's calls.
        index: usize,
        /// The call id, when this fragment carries it.
        id: Option<String>,
        /// The tool name, when this fragment carries it.
        name: Option<String>,
        /// More argument text.
        arguments: String,
    },
    /// A tool call, complete.
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// Usage so far (the last one counts).
    Usage {
        /// The usage.
        usage: Usage,
    },
    /// The end of the answer. Always the last event of a successful stream.
    Finished {
        /// Why it stopped.
        finish_reason: FinishReason,
        /// Who served it; usage is the final usage.
        meta: ResponseMeta,
    },
}

impl fmt::Debug for ChatEvent {
    /// Shows the kind and size of an event, not its text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatEvent::TextDelta { text } => write!(f, "TextDelta({} chars)", text.chars().count()),
            ChatEvent::ReasoningDelta { text } => {
                write!(f, "ReasoningDelta({} chars)", text.chars().count())
            }
            ChatEvent::ToolCallDelta {
                index, arguments, ..
            } => write!(f, "ToolCallDelta(#{index}, {} bytes)", arguments.len()),
            ChatEvent::ToolCall { call } => write!(f, "{call:?}"),
            ChatEvent::Usage { usage } => write!(f, "Usage({usage:?})"),
            ChatEvent::Finished {
                finish_reason,
                meta,
            } => write!(f, "Finished({finish_reason:?}, {meta:?})"),
        }
    }
}

/// A streamed chat completion: events, then [`ChatEvent::Finished`]; or an error item, after
/// which the stream ends. Dropping the stream cancels the generation.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatEvent>> + Send + 'static>>;

/// Assembles [`ChatEvent`]s into the [`ChatResponse`] a non-streamed call would give.
///
/// Tool calls come from [`ChatEvent::ToolCall`] events; fragments of calls that never completed
/// are assembled by index, in any order. The last [`ChatEvent::Usage`] wins (vendors send
/// cumulative usage). Use it when you also want to act on each event as it arrives (print the
/// text, say); [`collect_stream`] does the whole stream at once.
#[derive(Debug, Default)]
pub struct StreamCollector {
    text: String,
    reasoning: String,
    calls: Vec<ToolCall>,
    partial: std::collections::BTreeMap<usize, ToolCall>,
    usage: Option<Usage>,
}

impl StreamCollector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Adds one event; returns the whole response when the event is [`ChatEvent::Finished`].
    pub fn push(&mut self, ev: ChatEvent) -> Option<ChatResponse> {
        match ev {
            ChatEvent::TextDelta { text } => self.text.push_str(&text),
            ChatEvent::ReasoningDelta { text } => self.reasoning.push_str(&text),
            ChatEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let c = self
                    .partial
                    .entry(index)
                    .or_insert_with(|| ToolCall::new("", "", ""));
                if let Some(id) = id {
                    c.id = id;
                }
                if let Some(n) = name {
                    c.name = n;
                }
                c.arguments.push_str(&arguments);
            }
            ChatEvent::ToolCall { call } => self.calls.push(call),
            ChatEvent::Usage { usage } => self.usage = Some(usage),
            ChatEvent::Finished {
                finish_reason,
                mut meta,
            } => {
                let mut calls = std::mem::take(&mut self.calls);
                if calls.is_empty() {
                    calls = std::mem::take(&mut self.partial).into_values().collect();
                }
                if meta.usage == Usage::default()
                    && let Some(u) = self.usage.take()
                {
                    meta.usage = u;
                }
                let text = std::mem::take(&mut self.text);
                let mut r = ChatResponse::new(text, finish_reason, meta).with_tool_calls(calls);
                if !self.reasoning.is_empty() {
                    r.reasoning = Some(std::mem::take(&mut self.reasoning));
                }
                return Some(r);
            }
        }
        None
    }
}

/// Collects a [`ChatStream`] into the [`ChatResponse`] a non-streamed call would give (see
/// [`StreamCollector`]). A stream that ends without [`ChatEvent::Finished`] is an
/// [`Unavailable`](crate::ErrorKind::Unavailable) error.
pub async fn collect_stream(mut stream: ChatStream) -> Result<ChatResponse> {
    let mut c = StreamCollector::new();
    while let Some(ev) = stream.next().await {
        if let Some(r) = c.push(ev?) {
            return Ok(r);
        }
    }
    Err(Error::new(
        crate::ErrorKind::Unavailable,
        "the stream ended without a finished event",
    ))
}
