//! The chat completions wire format: request bodies out, lenient parsing in.
//!
//! Responses are read as `serde_json::Value` and picked apart field by field, so a missing
//! optional field, an extra field, a `null` where a string was expected or an unknown finish
//! reason never fails a response.

use std::collections::BTreeMap;

use merchant_ai::{
    ChatEvent, ChatRequest, ContentPart, Error, FinishReason, Message, ProviderOptions,
    ResponseFormat, Result, Role, ToolCall, ToolChoice, Usage,
};
use serde_json::{Map, Value, json};

use crate::error::parse_error;

/// What the request body needs beyond the [`ChatRequest`].
#[derive(Debug, Clone)]
pub struct BodyOptions<'a> {
    /// The model name (`None` for Azure, where the deployment names it).
    pub model: Option<&'a str>,
    /// Stream or not.
    pub stream: bool,
    /// The response format to send (may differ from the request's after a fallback).
    pub format: &'a ResponseFormat,
    /// The `user` field to send, if any.
    pub user: Option<&'a str>,
    /// The name of the token-limit field (`max_tokens` or `max_completion_tokens`).
    pub max_tokens_field: &'a str,
    /// Extra body fields from config (request `provider_options` win over these).
    pub extra_body: &'a ProviderOptions,
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        _ => "user",
    }
}

fn message(m: &Message) -> Value {
    let mut o = Map::new();
    o.insert("role".into(), json!(role(m.role)));
    let has_image = m
        .content
        .iter()
        .any(|p| matches!(p, ContentPart::Image { .. }));
    let content = if has_image {
        Value::Array(
            m.content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
                    ContentPart::Image { url } => {
                        Some(json!({"type": "image_url", "image_url": {"url": url}}))
                    }
                    _ => None,
                })
                .collect(),
        )
    } else if m.content.is_empty() && !m.tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(m.text())
    };
    o.insert("content".into(), content);
    if !m.tool_calls.is_empty() {
        o.insert(
            "tool_calls".into(),
            Value::Array(
                m.tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect(),
            ),
        );
    }
    if let Some(id) = &m.tool_call_id {
        o.insert("tool_call_id".into(), json!(id));
    }
    Value::Object(o)
}

/// The JSON body of a chat completions request.
pub fn request_body(req: &ChatRequest, o: &BodyOptions<'_>) -> Value {
    let mut b = Map::new();
    if let Some(m) = o.model {
        b.insert("model".into(), json!(m));
    }
    b.insert(
        "messages".into(),
        Value::Array(req.messages.iter().map(message).collect()),
    );
    if o.stream {
        b.insert("stream".into(), json!(true));
        b.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !req.tools.is_empty() {
        b.insert(
            "tools".into(),
            Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.parameters}})
                    })
                    .collect(),
            ),
        );
        let choice = match &req.tool_choice {
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(n) => json!({"type": "function", "function": {"name": n}}),
            _ => json!("auto"),
        };
        b.insert("tool_choice".into(), choice);
    }
    match o.format {
        ResponseFormat::JsonObject => {
            b.insert("response_format".into(), json!({"type": "json_object"}));
        }
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            b.insert(
                "response_format".into(),
                json!({"type": "json_schema",
                       "json_schema": {"name": name, "schema": schema, "strict": strict}}),
            );
        }
        _ => {}
    }
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        b.insert("top_p".into(), json!(p));
    }
    if let Some(m) = req.max_tokens {
        b.insert(o.max_tokens_field.to_owned(), json!(m));
    }
    if !req.stop.is_empty() {
        b.insert("stop".into(), json!(req.stop));
    }
    if let Some(s) = req.seed {
        b.insert("seed".into(), json!(s));
    }
    if let Some(u) = o.user {
        b.insert("user".into(), json!(u));
    }
    for (k, v) in o.extra_body.iter().chain(req.provider_options.iter()) {
        b.insert(k.clone(), v.clone());
    }
    Value::Object(b)
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        // Some servers answer content as parts.
        Value::Array(parts) => {
            let s: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            Some(s)
        }
        _ => None,
    }
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
}

/// Usage from a `usage` object (absent or `null`: `None`).
pub fn usage(v: Option<&Value>) -> Option<Usage> {
    let u = v.filter(|u| u.is_object())?;
    let mut out = Usage::default();
    out.input_tokens = u64_of(u.get("prompt_tokens")).or(u64_of(u.get("input_tokens")));
    out.output_tokens = u64_of(u.get("completion_tokens")).or(u64_of(u.get("output_tokens")));
    out.reasoning_tokens = u64_of(
        u.get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")),
    );
    Some(out)
}

fn finish(v: Option<&Value>) -> Option<FinishReason> {
    v.and_then(Value::as_str).map(FinishReason::from)
}

fn reasoning_of(m: &Value) -> Option<String> {
    text_of(m.get("reasoning_content"))
        .or_else(|| text_of(m.get("reasoning")))
        .filter(|s| !s.is_empty())
}

/// A parsed non-streamed completion.
#[derive(Debug)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// Reasoning text.
    pub reasoning: Option<String>,
    /// Tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Usage, if reported.
    pub usage: Option<Usage>,
    /// The model that served it, if reported.
    pub model: Option<String>,
}

/// An error object inside a 200 body (`{"error": {...}}`) mapped like an HTTP error: a numeric
/// `code` of 400-599 is taken as the status, else 500.
pub fn embedded_error(v: &Value) -> Option<Error> {
    let e = v.get("error").filter(|e| !e.is_null())?;
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .or_else(|| v.get("status_code").and_then(Value::as_u64))
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500) as u16;
    let body = serde_json::to_vec(v).unwrap_or_default();
    Some(parse_error(
        status,
        &reqwest::header::HeaderMap::new(),
        &body,
    ))
}

/// Parses the body of a 200 non-streamed completion.
pub fn parse_completion(body: &[u8]) -> Result<Completion> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Error::decode(format!(
            "the completion is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if let Some(e) = embedded_error(&v) {
        return Err(e);
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| Error::decode("the completion has no choices"))?;
    let msg = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| Error::decode("choices[0] has no message"))?;
    let mut tool_calls = Vec::new();
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            let f = c.get("function");
            let name = text_of(f.and_then(|f| f.get("name"))).unwrap_or_default();
            let args = match f.and_then(|f| f.get("arguments")) {
                Some(Value::String(s)) => s.clone(),
                // Some servers send the arguments as an object.
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => String::new(),
            };
            let id = text_of(c.get("id")).unwrap_or_else(|| format!("call_{i}"));
            tool_calls.push(ToolCall::new(id, name, args));
        }
    }
    let finish_reason = finish(choice.get("finish_reason")).unwrap_or(if tool_calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    });
    Ok(Completion {
        text: text_of(msg.get("content")).unwrap_or_default(),
        reasoning: reasoning_of(msg),
        tool_calls,
        finish_reason,
        usage: usage(v.get("usage")),
        model: text_of(v.get("model")).filter(|m| !m.is_empty()),
    })
}

/// Turns the `data:` payloads of a streamed completion into [`ChatEvent`]s (without the final
/// `Finished`, which [`ChunkDecoder::finish`] makes).
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    calls: BTreeMap<usize, ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    done: bool,
}

impl ChunkDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `[DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the stream reached a natural end (`[DONE]` or a finish reason).
    pub fn completed(&self) -> bool {
        self.done || self.finish_reason.is_some()
    }

    /// The model, once a chunk named it.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Decodes one event; `event` is its `event:` field.
    pub fn push(&mut self, event: Option<&str>, data: &str) -> Result<Vec<ChatEvent>> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if event == Some("error") {
            // An error reported inside a 200 stream (DashScope and others).
            return Err(serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|v| embedded_error(&v))
                .unwrap_or_else(|| {
                    parse_error(500, &reqwest::header::HeaderMap::new(), data.as_bytes())
                }));
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            Error::decode(format!(
                "a stream chunk is not JSON (column {} of {} bytes)",
                e.column(),
                data.len()
            ))
        })?;
        if let Some(e) = embedded_error(&v) {
            return Err(e);
        }
        let mut out = Vec::new();
        if self.model.is_none() {
            self.model = text_of(v.get("model")).filter(|m| !m.is_empty());
        }
        if let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            let delta = choice.get("delta").or_else(|| choice.get("message"));
            if let Some(d) = delta {
                if let Some(r) = reasoning_of(d) {
                    out.push(ChatEvent::ReasoningDelta { text: r });
                }
                if let Some(t) = text_of(d.get("content")).filter(|t| !t.is_empty()) {
                    out.push(ChatEvent::TextDelta { text: t });
                }
                if let Some(calls) = d.get("tool_calls").and_then(Value::as_array) {
                    for (pos, c) in calls.iter().enumerate() {
                        let index = u64_of(c.get("index")).map_or(pos, |i| i as usize);
                        let f = c.get("function");
                        let id = text_of(c.get("id")).filter(|s| !s.is_empty());
                        let name = text_of(f.and_then(|f| f.get("name"))).filter(|s| !s.is_empty());
                        let arguments = match f.and_then(|f| f.get("arguments")) {
                            Some(Value::String(s)) => s.clone(),
                            Some(v @ Value::Object(_)) => v.to_string(),
                            _ => String::new(),
                        };
                        let acc = self
                            .calls
                            .entry(index)
                            .or_insert_with(|| ToolCall::new("", "", ""));
                        if let Some(id) = &id {
                            acc.id = id.clone();
                        }
                        if let Some(n) = &name {
                            acc.name = n.clone();
                        }
                        acc.arguments.push_str(&arguments);
                        out.push(ChatEvent::ToolCallDelta {
                            index,
                            id,
                            name,
                            arguments,
                        });
                    }
                }
            }
            if let Some(f) = finish(choice.get("finish_reason")) {
                self.finish_reason = Some(f);
            }
        }
        // The usage-only final chunk has `choices: []`; DashScope repeats cumulative usage in
        // every frame: the last one wins.
        if let Some(u) = usage(v.get("usage")) {
            self.usage = Some(u.clone());
            out.push(ChatEvent::Usage { usage: u });
        }
        Ok(out)
    }

    /// The closing events: one completed `ToolCall` per accumulated call (by index), then
    /// `Finished`. `meta` gets the model and the last usage.
    pub fn finish(&mut self, mut meta: merchant_ai::ResponseMeta) -> Result<Vec<ChatEvent>> {
        let mut out = Vec::new();
        for (i, mut c) in std::mem::take(&mut self.calls) {
            if c.name.is_empty() {
                return Err(Error::decode(format!(
                    "streamed tool call #{i} never received a name"
                )));
            }
            if c.id.is_empty() {
                c.id = format!("call_{i}");
            }
            c.arguments_json()?;
            out.push(ChatEvent::ToolCall { call: c });
        }
        let reason = self.finish_reason.take().unwrap_or(if out.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        if meta.model.is_none() {
            meta.model = self.model.clone();
        }
        if let Some(u) = self.usage.take() {
            meta.usage = u;
        }
        out.push(ChatEvent::Finished {
            finish_reason: reason,
            meta,
        });
        Ok(out)
    }
}

/// Checks `value` against the parts of a JSON Schema a fallback can check locally: `type`,
/// `required` and `properties` (recursively), `items`, `enum`. Returns what is wrong, naming
/// the path and the schema's key, never the value.
pub fn check_schema(value: &Value, schema: &Value, path: &str) -> std::result::Result<(), String> {
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let ok = types.is_empty()
            || types.iter().any(|t| match *t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => true,
            });
        if !ok {
            return Err(format!("{path} is not of type {}", types.join(" or ")));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        return Err(format!("{path} is not one of the schema's enum values"));
    }
    if let Some(obj) = value.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for k in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(k) {
                    return Err(format!("{path} lacks the required key {k:?}"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(v) = obj.get(k) {
                    check_schema(v, s, &format!("{path}.{k}"))?;
                }
            }
        }
    }
    if let (Some(arr), Some(items)) = (value.as_array(), schema.get("items")) {
        for (i, v) in arr.iter().enumerate() {
            check_schema(v, items, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}
