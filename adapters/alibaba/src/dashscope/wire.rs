//! The native DashScope chat protocol: request bodies, answers and streamed frames.
//!
//! Request: `{"model", "input": {"messages": [...]}, "parameters": {...}}`, always with
//! `result_format = "message"`. Answer: `{"output": {"choices": [{"message", "finish_reason"}]},
//! "usage", "request_id"}`. Streams send the same shape per frame with `incremental_output`
//! deltas, `finish_reason` the string `"null"` until the last frame, cumulative usage (the
//! last frame's usage is the total: it is kept, never summed), and errors as `event:error`
//! frames inside an HTTP 200.

use std::collections::BTreeMap;

use merchant_ai::{
    ChatEvent, ChatRequest, ContentPart, Error, ErrorKind, FinishReason, ProviderOptions,
    ResponseFormat, ResponseMeta, Result, Role, ToolCall, ToolChoice, Usage,
};
use serde_json::{Map, Value, json};

use super::error;
use super::sse::Frame;

/// Options of one request body beyond the [`ChatRequest`].
#[derive(Debug, Clone, Copy)]
pub struct BodyOptions<'a> {
    /// The model.
    pub model: &'a str,
    /// Streaming (sets `incremental_output = true`).
    pub stream: bool,
    /// Configured defaults for `parameters` (`enable_search`, `enable_thinking`, ...);
    /// the request's `provider_options` override them.
    pub parameters: &'a ProviderOptions,
    /// Configured top-level body fields.
    pub extra_body: &'a ProviderOptions,
}

fn role(r: Role) -> Option<&'static str> {
    Some(match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        _ => return None,
    })
}

/// Builds the JSON body of a native chat request. Fails (naming the field, never quoting the
/// text) for what DashScope would refuse: image parts (served by the multimodal endpoint),
/// `tool_choice = required` with several tools, a seed above 2^63-1, JSON mode together
/// with thinking, JSON object mode whose messages never mention "json".
pub fn request_body(req: &ChatRequest, o: &BodyOptions<'_>) -> Result<Value> {
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let mut text = String::new();
        for p in &m.content {
            match p {
                ContentPart::Text { text: t } => text.push_str(t),
                ContentPart::Image { .. } => {
                    return Err(Error::unsupported(format!(
                        "messages[{i}]: image parts are not supported by DashScope's \
                         text-generation endpoint"
                    )));
                }
                _ => {
                    return Err(Error::unsupported(format!(
                        "messages[{i}]: a content part of an unknown type"
                    )));
                }
            }
        }
        let mut msg = Map::new();
        let Some(r) = role(m.role) else {
            return Err(Error::unsupported(format!(
                "messages[{i}]: a role DashScope does not know"
            )));
        };
        msg.insert("role".into(), json!(r));
        msg.insert("content".into(), json!(text));
        if !m.tool_calls.is_empty() {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    json!({"index": k, "id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(id) = &m.tool_call_id {
            msg.insert("tool_call_id".into(), json!(id));
        }
        messages.push(Value::Object(msg));
    }

    let mut p = Map::new();
    for (k, v) in o.parameters {
        p.insert(k.clone(), v.clone());
    }
    for (k, v) in &req.provider_options {
        p.insert(k.clone(), v.clone());
    }
    p.insert("result_format".into(), json!("message"));
    if let Some(t) = req.temperature {
        p.insert("temperature".into(), json!(t));
    }
    if let Some(t) = req.top_p {
        p.insert("top_p".into(), json!(t));
    }
    if let Some(n) = req.max_tokens {
        p.insert("max_tokens".into(), json!(n));
    }
    if let Some(s) = req.seed {
        if s > i64::MAX as u64 {
            return Err(Error::invalid_request(
                "seed must be at most 2^63-1 for DashScope",
            ));
        }
        p.insert("seed".into(), json!(s));
    }
    if !req.stop.is_empty() {
        p.insert("stop".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        p.insert("tools".into(), Value::Array(tools));
        let choice = match &req.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            ToolChoice::Required if req.tools.len() == 1 => {
                json!({"type": "function", "function": {"name": req.tools[0].name}})
            }
            ToolChoice::Required => {
                return Err(Error::unsupported(
                    "tool_choice = required with several tools is not supported by DashScope; \
                     name the tool to call",
                ));
            }
            _ => json!("auto"),
        };
        p.insert("tool_choice".into(), choice);
    }
    let json_mode = match &req.response_format {
        ResponseFormat::Text => false,
        ResponseFormat::JsonObject => {
            p.insert("response_format".into(), json!({"type": "json_object"}));
            let mentions_json = req
                .messages
                .iter()
                .any(|m| m.text().to_ascii_lowercase().contains("json"));
            if !mentions_json {
                return Err(Error::invalid_request(
                    "response_format json_object: DashScope requires the word \"json\" in the \
                     messages (say what JSON to produce)",
                ));
            }
            true
        }
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            p.insert(
                "response_format".into(),
                json!({"type": "json_schema",
                       "json_schema": {"name": name, "schema": schema, "strict": strict}}),
            );
            true
        }
        _ => false,
    };
    if json_mode && p.get("enable_thinking") == Some(&Value::Bool(true)) {
        return Err(Error::invalid_request(
            "response_format: JSON output is not available with enable_thinking = true on \
             DashScope; turn thinking off for this request",
        ));
    }
    if o.stream {
        p.insert("incremental_output".into(), json!(true));
    }

    let mut body = Map::new();
    for (k, v) in o.extra_body {
        body.insert(k.clone(), v.clone());
    }
    body.insert("model".into(), json!(o.model));
    body.insert("input".into(), json!({ "messages": messages }));
    body.insert("parameters".into(), Value::Object(p));
    Ok(Value::Object(body))
}

/// Usage from DashScope's `usage` object.
pub fn usage(v: Option<&Value>) -> Option<Usage> {
    let u = v?.as_object()?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let mut out = Usage::new();
    out.input_tokens = n("input_tokens").or_else(|| n("prompt_tokens"));
    out.output_tokens = n("output_tokens").or_else(|| n("completion_tokens"));
    out.reasoning_tokens = u
        .get("output_tokens_details")
        .and_then(|d| d.get("reasoning_tokens"))
        .and_then(Value::as_u64);
    if out.input_tokens.is_none() && out.output_tokens.is_none() {
        out.units = n("total_tokens");
    }
    Some(out)
}

/// A message's `content`: a string, or a list of `{"text": ...}` parts.
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// A finish reason, where `"null"`, `null` and `""` mean "not finished".
fn finish(v: Option<&Value>) -> Option<FinishReason> {
    match v? {
        Value::String(s) if s != "null" && !s.is_empty() => Some(FinishReason::from(s.as_str())),
        _ => None,
    }
}

/// One parsed answer or frame.
#[derive(Debug, Default)]
struct Parsed {
    text: String,
    reasoning: String,
    calls: Vec<CallPart>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    request_id: Option<String>,
}

#[derive(Debug)]
struct CallPart {
    index: usize,
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

/// An error frame or body: `{"code", "message"}` without `output`.
fn embedded_error(v: &Value, status: Option<u16>) -> Option<Error> {
    if v.get("output").is_some_and(|o| !o.is_null()) {
        return None;
    }
    let (code, message, rid) = error::fields(v);
    code.as_ref()?;
    Some(error::from_code(
        code.as_deref(),
        message.as_deref(),
        status,
        rid.as_deref(),
    ))
}

fn parse_value(v: &Value) -> Result<Parsed> {
    let output = v
        .get("output")
        .filter(|o| o.is_object())
        .ok_or_else(|| Error::decode("the answer has no output object"))?;
    let mut p = Parsed {
        usage: usage(v.get("usage")),
        request_id: v
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..Default::default()
    };
    match output.get("choices") {
        Some(Value::Array(choices)) => {
            if let Some(c) = choices.first() {
                let m = c.get("message");
                p.text = content_text(m.and_then(|m| m.get("content")));
                if let Some(r) = m
                    .and_then(|m| m.get("reasoning_content"))
                    .and_then(Value::as_str)
                {
                    p.reasoning = r.to_owned();
                }
                if let Some(Value::Array(calls)) = m.and_then(|m| m.get("tool_calls")) {
                    for (k, call) in calls.iter().enumerate() {
                        let f = call.get("function");
                        let s = |x: Option<&Value>| {
                            x.and_then(Value::as_str)
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned)
                        };
                        p.calls.push(CallPart {
                            index: call
                                .get("index")
                                .and_then(Value::as_u64)
                                .map_or(k, |i| i as usize),
                            id: s(call.get("id")),
                            name: s(f.and_then(|f| f.get("name"))),
                            arguments: f
                                .and_then(|f| f.get("arguments"))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        });
                    }
                }
                p.finish = finish(c.get("finish_reason"));
            }
        }
        Some(_) => return Err(Error::decode("output.choices is not a list")),
        None => {
            // result_format = "text" (a configured override): output.text.
            p.text = content_text(output.get("text"));
            p.finish = finish(output.get("finish_reason"));
        }
    }
    Ok(p)
}

/// A non-streamed answer.
#[derive(Debug)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// Reasoning text, apart from the answer.
    pub reasoning: Option<String>,
    /// Complete tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Usage.
    pub usage: Option<Usage>,
    /// The vendor's request id.
    pub request_id: Option<String>,
}

fn bad_json(e: &serde_json::Error) -> Error {
    // Position and category only: the payload is customer text.
    Error::decode(format!(
        "the answer is not valid JSON (line {}, column {})",
        e.line(),
        e.column()
    ))
}

/// Parses a non-streamed answer (an error body inside a 2xx becomes that error).
pub fn parse_completion(body: &[u8]) -> Result<Completion> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_json(&e))?;
    if let Some(e) = embedded_error(&v, None) {
        return Err(e);
    }
    let p = parse_value(&v)?;
    let mut calls: BTreeMap<usize, ToolCall> = BTreeMap::new();
    for c in p.calls {
        let e = calls
            .entry(c.index)
            .or_insert_with(|| ToolCall::new("", "", ""));
        if let Some(id) = c.id {
            e.id = id;
        }
        if let Some(n) = c.name {
            e.name = n;
        }
        e.arguments.push_str(&c.arguments);
    }
    let tool_calls = finish_calls(calls)?;
    let finish_reason = p.finish.unwrap_or(if tool_calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    });
    Ok(Completion {
        text: p.text,
        reasoning: (!p.reasoning.is_empty()).then_some(p.reasoning),
        tool_calls,
        finish_reason,
        usage: p.usage,
        request_id: p.request_id,
    })
}

fn finish_calls(calls: BTreeMap<usize, ToolCall>) -> Result<Vec<ToolCall>> {
    let mut out = Vec::with_capacity(calls.len());
    for (i, mut c) in calls {
        if c.name.is_empty() {
            return Err(Error::decode(format!(
                "tool call #{i} has no function name"
            )));
        }
        if c.id.is_empty() {
            c.id = format!("call_{i}");
        }
        if c.arguments.trim().is_empty() {
            c.arguments = "{}".into();
        }
        if serde_json::from_str::<Value>(&c.arguments).is_err() {
            return Err(Error::decode(format!(
                "the arguments of tool call #{i} ({}) are not valid JSON",
                c.name
            )));
        }
        out.push(c);
    }
    Ok(out)
}

/// Turns streamed frames into [`ChatEvent`]s: deltas as they come, then (at
/// [`finish`](Self::finish), when the connection closed) the complete tool calls and one
/// [`ChatEvent::Finished`] carrying the last cumulative usage and the request id.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    calls: BTreeMap<usize, ToolCall>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    request_id: Option<String>,
    emitted: bool,
    failed: bool,
}

impl StreamDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a frame with a finish reason arrived.
    pub fn completed(&self) -> bool {
        self.finish.is_some()
    }

    /// Whether any content event was produced.
    pub fn emitted(&self) -> bool {
        self.emitted
    }

    /// The last request id seen.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Decodes one frame. An `event:error` frame (or an error-shaped data frame) becomes
    /// its [`Error`], classified by code and the frame's `:HTTP_STATUS`.
    pub fn push(&mut self, frame: &Frame) -> Result<Vec<ChatEvent>> {
        if self.failed {
            return Err(Error::decode("the stream already failed"));
        }
        let r = self.push_inner(frame);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn push_inner(&mut self, frame: &Frame) -> Result<Vec<ChatEvent>> {
        let is_error = frame.event.as_deref() == Some("error");
        if frame.data.trim().is_empty() {
            if is_error {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the stream reported an error without details",
                )
                .with_retryable(true));
            }
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(&frame.data).map_err(|e| {
            Error::decode(format!(
                "a streamed frame is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(rid) = v.get("request_id").and_then(Value::as_str) {
            self.request_id = Some(rid.to_owned());
        }
        if let Some(e) = embedded_error(&v, frame.status) {
            let e = match (&self.request_id, e.request_id()) {
                (Some(r), None) => e.with_request_id(r.clone()),
                _ => e,
            };
            return Err(e);
        }
        if is_error {
            return Err(Error::decode("an error frame without a code"));
        }
        let p = parse_value(&v)?;
        if let Some(u) = p.usage {
            // Cumulative: the last one is the total.
            self.usage = Some(u);
        }
        let mut out = Vec::new();
        if !p.reasoning.is_empty() {
            out.push(ChatEvent::ReasoningDelta { text: p.reasoning });
        }
        if !p.text.is_empty() {
            out.push(ChatEvent::TextDelta { text: p.text });
        }
        for c in p.calls {
            let e = self
                .calls
                .entry(c.index)
                .or_insert_with(|| ToolCall::new("", "", ""));
            if let Some(id) = &c.id {
                e.id.clone_from(id);
            }
            if let Some(n) = &c.name {
                e.name.clone_from(n);
            }
            e.arguments.push_str(&c.arguments);
            out.push(ChatEvent::ToolCallDelta {
                index: c.index,
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            });
        }
        if p.finish.is_some() {
            self.finish = p.finish;
        }
        self.emitted |= !out.is_empty();
        Ok(out)
    }

    /// The closing events once the connection closed: complete tool calls, then
    /// [`ChatEvent::Finished`] with the last usage. Fails if no frame carried a finish
    /// reason (the stream was cut).
    pub fn finish(&mut self, mut meta: ResponseMeta) -> Result<Vec<ChatEvent>> {
        let Some(reason) = self.finish.take() else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the stream was cut off before the answer finished",
            ));
        };
        let calls = finish_calls(std::mem::take(&mut self.calls))?;
        let mut out: Vec<ChatEvent> = calls
            .into_iter()
            .map(|call| ChatEvent::ToolCall { call })
            .collect();
        if let Some(u) = self.usage.take() {
            meta.usage = u;
        }
        if meta.request_id.is_none() {
            meta.request_id = self.request_id.clone();
        }
        out.push(ChatEvent::Finished {
            finish_reason: reason,
            meta,
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use merchant_ai::{Message, Tool};

    fn opts<'a>(p: &'a ProviderOptions, e: &'a ProviderOptions) -> BodyOptions<'a> {
        BodyOptions {
            model: "qwen-plus",
            stream: false,
            parameters: p,
            extra_body: e,
        }
    }

    #[test]
    fn body_shape() {
        let mut params = ProviderOptions::new();
        params.insert("enable_search".into(), json!(true));
        let extra = ProviderOptions::new();
        let call = ToolCall::new("call_1", "get_weather", "{\"city\":\"Hangzhou\"}");
        let req = ChatRequest::new(vec![
            Message::system("You are terse."),
            Message::user("Weather?"),
            Message::assistant_tool_calls(vec![call]),
            Message::tool_result("call_1", "{\"temp\":21}"),
        ])
        .with_tool(Tool::new(
            "get_weather",
            "Look up weather",
            json!({"type":"object","properties":{"city":{"type":"string"}}}),
        ))
        .with_temperature(0.5)
        .with_seed(42)
        .with_stop("\n\n");
        let b = request_body(&req, &opts(&params, &extra)).unwrap();
        assert_eq!(b["model"], "qwen-plus");
        let m = &b["input"]["messages"];
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(m[3]["role"], "tool");
        assert_eq!(m[3]["tool_call_id"], "call_1");
        let p = &b["parameters"];
        assert_eq!(p["result_format"], "message");
        assert_eq!(p["enable_search"], true);
        assert_eq!(p["seed"], 42);
        assert_eq!(p["stop"], json!(["\n\n"]));
        assert_eq!(p["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(p["tool_choice"], "auto");
        assert!(p.get("incremental_output").is_none());
    }

    #[test]
    fn refusals_name_the_problem() {
        let none = ProviderOptions::new();
        let o = opts(&none, &none);
        let r = ChatRequest::new(vec![Message::user("hi")]).with_seed(u64::MAX);
        assert!(request_body(&r, &o).unwrap_err().message().contains("seed"));
        let r = ChatRequest::new(vec![Message::user("hi")])
            .with_response_format(ResponseFormat::JsonObject);
        let e = request_body(&r, &o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(!e.message().contains("hi"));
        let mut think = ProviderOptions::new();
        think.insert("enable_thinking".into(), json!(true));
        let r = ChatRequest::new(vec![Message::user("as json")])
            .with_response_format(ResponseFormat::JsonObject)
            .with_provider_options(think);
        assert!(
            request_body(&r, &o)
                .unwrap_err()
                .message()
                .contains("enable_thinking")
        );
        let r = ChatRequest::new(vec![Message::user("x").with_image("https://a/b.png")]);
        assert_eq!(
            request_body(&r, &o).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn completion_with_tool_calls() {
        let body = br#"{"output":{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Hangzhou\"}"}}]}}]},"usage":{"input_tokens":57,"output_tokens":21,"total_tokens":78},"request_id":"5354a793"}"#;
        let c = parse_completion(body).unwrap();
        assert_eq!(c.finish_reason, FinishReason::ToolCalls);
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].id, "call_1");
        assert_eq!(c.usage.unwrap().input_tokens, Some(57));
        assert_eq!(c.request_id.as_deref(), Some("5354a793"));
    }
}
