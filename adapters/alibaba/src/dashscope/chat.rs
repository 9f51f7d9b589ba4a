//! [`ChatModel`] over DashScope's native text-generation API.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use merchant_ai::{
    ChatEvent, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, ProviderOptions,
    ResponseFormat, ResponseMeta, Result, collect_stream,
};

use super::client::{Client, header_request_id};
use super::sse::{Frame, FrameDecoder};
use super::wire::{self, BodyOptions, StreamDecoder};

/// The path of native chat under the native base.
pub const CHAT_PATH: &str = "/services/aigc/text-generation/generation";

/// Native chat settings.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// The model, unless a request names one.
    pub model: String,
    /// Defaults merged into `parameters`.
    pub parameters: ProviderOptions,
    /// Top-level body fields.
    pub extra_body: ProviderOptions,
    /// The bound on one streamed frame.
    pub max_frame_bytes: usize,
    /// Answer `chat` by streaming and collecting (models that only stream: QwQ, the
    /// open-source Qwen3 thinking models). Without it, `chat` still switches to a stream
    /// when DashScope answers that the model needs one.
    pub chat_via_stream: bool,
}

struct Inner {
    client: Client,
    url: String,
    s: ChatSettings,
}

/// The native DashScope chat model.
#[derive(Clone)]
pub struct DashScopeChat(Arc<Inner>);

impl fmt::Debug for DashScopeChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashScopeChat")
            .field("provider", &self.0.client.name)
            .field("url", &self.0.url)
            .field("model", &self.0.s.model)
            .finish_non_exhaustive()
    }
}

impl DashScopeChat {
    /// A chat model over `client`.
    pub fn new(client: Client, s: ChatSettings) -> Self {
        let url = format!("{}{CHAT_PATH}", client.endpoint().native_base());
        DashScopeChat(Arc::new(Inner { client, url, s }))
    }

    fn tag(&self, e: Error, op: &str) -> Error {
        e.with_provider(self.0.client.name.clone())
            .with_operation(op)
    }

    fn meta(&self, model: &str, rid: Option<String>) -> ResponseMeta {
        let mut m = ResponseMeta::new(self.0.client.name.clone());
        m.model = Some(model.to_owned());
        m.request_id = rid;
        m
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<(serde_json::Value, String)> {
        let model = req.model.clone().unwrap_or_else(|| self.0.s.model.clone());
        let b = wire::request_body(
            req,
            &BodyOptions {
                model: &model,
                stream,
                parameters: &self.0.s.parameters,
                extra_body: &self.0.s.extra_body,
            },
        )?;
        Ok((b, model))
    }
}

/// Whether an error says the model only answers in stream mode ("This model only support
/// stream mode, please enable the stream parameter ...").
fn needs_stream(e: &Error) -> bool {
    e.status() == Some(400)
        && e.kind() == ErrorKind::InvalidRequest
        && e.message().to_ascii_lowercase().contains("stream")
}

impl DashScopeChat {
    /// `chat` through a stream, collected.
    async fn chat_collected(&self, req: ChatRequest) -> Result<ChatResponse> {
        let format = req.response_format.clone();
        let s = self.chat_stream(req).await?;
        let mut r = collect_stream(s)
            .await
            .map_err(|e| e.with_provider(self.0.client.name.clone()))?;
        if format != ResponseFormat::Text {
            r = r.with_format_used(format);
        }
        Ok(r)
    }

    async fn chat_once(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let op = "chat";
        let started = Instant::now();
        let (body, model) = self.body(req, false).map_err(|e| self.tag(e, op))?;
        let (bytes, headers) = self
            .0
            .client
            .post_json(&self.0.url, &body)
            .await
            .map_err(|e| self.tag(e, op))?;
        let hrid = header_request_id(&headers);
        let c = wire::parse_completion(&bytes).map_err(|e| {
            let e = match (&hrid, e.request_id()) {
                (Some(r), None) => e.with_request_id(r.clone()),
                _ => e,
            };
            self.tag(e, op)
        })?;
        let mut meta = self
            .meta(&model, c.request_id.or(hrid))
            .with_latency(started.elapsed());
        if let Some(u) = c.usage {
            meta.usage = u;
        }
        let mut r = ChatResponse::new(c.text, c.finish_reason, meta).with_tool_calls(c.tool_calls);
        r.reasoning = c.reasoning;
        if req.response_format != ResponseFormat::Text {
            r = r.with_format_used(req.response_format.clone());
        }
        Ok(r)
    }
}

#[async_trait]
impl ChatModel for DashScopeChat {
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse> {
        req.validate().map_err(|e| self.tag(e, "chat"))?;
        if self.0.s.chat_via_stream {
            return self.chat_collected(req).await;
        }
        match self.chat_once(&req).await {
            Err(e) if needs_stream(&e) => {
                tracing::debug!(provider = %self.0.client.name, "the model needs a stream; streaming");
                self.chat_collected(req).await
            }
            r => r,
        }
    }

    async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream> {
        let op = "chat_stream";
        req.validate().map_err(|e| self.tag(e, op))?;
        let started = Instant::now();
        let (body, model) = self.body(&req, true).map_err(|e| self.tag(e, op))?;
        let resp = self
            .0
            .client
            .post(&self.0.url, &body, true)
            .await
            .map_err(|e| self.tag(e, op))?;
        let hrid = header_request_id(resp.headers());
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ctype.starts_with("application/json") {
            // A streamed request answered with one JSON body (an error, or a server that
            // does not stream): read it whole.
            let bytes = super::client::read_body(resp, self.0.client.timeout)
                .await
                .map_err(|e| self.tag(e, op))?;
            let c = wire::parse_completion(&bytes).map_err(|e| self.tag(e, op))?;
            let mut meta = self
                .meta(&model, c.request_id.or(hrid))
                .with_latency(started.elapsed());
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
        let this = self.clone();
        let meta = self.meta(&model, hrid);
        let bytes = resp
            .bytes_stream()
            .map(|r| r.map_err(merchant_ai_openai::transport_error));
        Ok(Box::pin(decode_stream(
            Box::pin(bytes),
            self.0.client.timeout,
            self.0.s.max_frame_bytes,
            meta,
            started,
            move |e| this.tag(e, op),
        )))
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes>> + Send>>;

struct State<F> {
    bytes: ByteStream,
    frames: FrameDecoder,
    dec: StreamDecoder,
    queue: VecDeque<Result<ChatEvent>>,
    ended: bool,
    meta: Option<ResponseMeta>,
    started: Instant,
    tag: F,
}

impl<F: Fn(Error) -> Error> State<F> {
    fn fail(&mut self, e: Error) {
        let e = (self.tag)(e);
        self.queue.push_back(Err(e));
    }

    fn feed(&mut self, b: &[u8]) {
        let mut frames: Vec<Frame> = Vec::new();
        let pushed = self.frames.push(b, &mut frames);
        for f in &frames {
            match self.dec.push(f) {
                Ok(evs) => self.queue.extend(evs.into_iter().map(Ok)),
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        if let Err(e) = pushed {
            self.fail(e);
        }
    }

    fn close(&mut self) {
        if self.frames.has_partial() {
            self.fail(Error::new(
                ErrorKind::Unavailable,
                "the stream was cut off in the middle of an event",
            ));
            return;
        }
        let meta = self
            .meta
            .take()
            .unwrap_or_default()
            .with_latency(self.started.elapsed());
        match self.dec.finish(meta) {
            Ok(evs) => self.queue.extend(evs.into_iter().map(Ok)),
            Err(e) => self.fail(e),
        }
    }
}

/// Turns a body of DashScope frames into chat events: deltas as they arrive, the closing
/// events when the body ends, or one error item after which nothing follows. A body that
/// breaks off is `Unavailable`.
fn decode_stream<F>(
    bytes: ByteStream,
    idle: std::time::Duration,
    max_frame_bytes: usize,
    meta: ResponseMeta,
    started: Instant,
    tag: F,
) -> impl Stream<Item = Result<ChatEvent>> + Send + 'static
where
    F: Fn(Error) -> Error + Send + 'static,
{
    let st = State {
        bytes,
        frames: FrameDecoder::new(max_frame_bytes),
        dec: StreamDecoder::new(),
        queue: VecDeque::new(),
        ended: false,
        meta: Some(meta),
        started,
        tag,
    };
    let next_event_by = tokio::time::Instant::now() + idle;
    futures::stream::unfold(
        (st, next_event_by),
        move |(mut st, mut next_event_by)| async move {
            loop {
                if let Some(item) = st.queue.pop_front() {
                    if item.is_err() {
                        st.queue.clear();
                        st.ended = true;
                    }
                    return Some((item, (st, next_event_by)));
                }
                if st.ended {
                    return None;
                }
                let Ok(next) = tokio::time::timeout_at(next_event_by, st.bytes.next()).await else {
                    // Bytes may still be trickling in, but no whole event came in time.
                    st.ended = true;
                    st.fail(Error::new(
                        ErrorKind::Timeout,
                        "no stream event arrived within timeout_ms",
                    ));
                    continue;
                };
                match next {
                    Some(Ok(b)) => {
                        st.feed(&b);
                        if !st.queue.is_empty() {
                            next_event_by = tokio::time::Instant::now() + idle;
                        }
                    }
                    Some(Err(e)) => {
                        st.ended = true;
                        // A body that breaks off is a cut stream.
                        let e = if e.kind() == ErrorKind::Decode {
                            Error::new(ErrorKind::Unavailable, e.message().to_owned())
                        } else {
                            e
                        };
                        st.fail(e);
                    }
                    None => {
                        st.ended = true;
                        st.close();
                    }
                }
            }
        },
    )
}

/// Decodes a whole recorded DashScope stream, fed in the given chunks, into the events
/// [`ChatModel::chat_stream`] would yield (with a `Finished` whose meta names `provider`).
/// The streaming path without the network: for tests, fuzzing and replay.
pub fn decode_recorded<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    provider: &str,
    max_frame_bytes: usize,
) -> Vec<Result<ChatEvent>> {
    let mut frames = FrameDecoder::new(max_frame_bytes);
    let mut dec = StreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        let mut fs = Vec::new();
        let pushed = frames.push(c, &mut fs);
        for f in &fs {
            match dec.push(f) {
                Ok(evs) => out.extend(evs.into_iter().map(Ok)),
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
        if let Err(e) = pushed {
            out.push(Err(e));
            return out;
        }
    }
    if frames.has_partial() {
        out.push(Err(Error::new(
            ErrorKind::Unavailable,
            "the stream was cut off in the middle of an event",
        )));
        return out;
    }
    match dec.finish(ResponseMeta::new(provider)) {
        Ok(evs) => out.extend(evs.into_iter().map(Ok)),
        Err(e) => out.push(Err(e)),
    }
    out
}
