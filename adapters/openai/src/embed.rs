//! `/v1/embeddings` and `/v1/rerank` clients: the [`Embedder`] and [`Reranker`] the core's
//! semantic searcher and recommender run on.
//!
//! - Embeddings: inputs are sent in batches of [`EmbeddingOptions::batch`] per request, with
//!   `dimensions` when configured and `encoding_format` `float` or `base64` (little-endian
//!   `f32`, a quarter of the bytes on the wire). Answers are put back in input order by their
//!   `index`; usage is summed over the batches. Instruction-prefixed models get their query
//!   and document prefixes (e.g. E5's `query: ` and `passage: `).
//! - Rerank: `{model, query, documents, top_n}` answered by `results[{index,
//!   relevance_score}]`, the shape vLLM, llama.cpp's server, Jina, Cohere and TEI accept (TEI's
//!   bare array of `{index, score}` is read too).
//!
//! Neither retries nor logs texts; a bad answer is a `Decode` error naming what is wrong.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use merchant_ai::embedding::{
    EmbedPurpose, EmbedRequest, Embedder, Embeddings, RerankRequest, RerankScore, Reranked,
    Reranker,
};
use merchant_ai::{Error, ErrorKind, RequestContext, Result, Usage};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{parse_error, transport_error};
use crate::wire::embedded_error;

/// How vectors travel on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingFormat {
    /// JSON arrays of numbers (every server).
    #[default]
    Float,
    /// Base64 of little-endian `f32`s (OpenAI, vLLM, recent llama.cpp).
    Base64,
}

impl EncodingFormat {
    fn as_str(self) -> &'static str {
        match self {
            EncodingFormat::Float => "float",
            EncodingFormat::Base64 => "base64",
        }
    }
}

/// What an [`OpenAiEmbedder`] sends.
#[derive(Debug, Clone)]
pub struct EmbeddingOptions {
    /// The model.
    pub model: String,
    /// The `dimensions` field (shortened vectors, for models that support it).
    pub dimensions: Option<usize>,
    /// Inputs per request (at least 1).
    pub batch: usize,
    /// The wire encoding.
    pub encoding: EncodingFormat,
    /// Prepended to query texts.
    pub query_prefix: String,
    /// Prepended to document texts.
    pub document_prefix: String,
}

/// One HTTP endpoint with its client and headers.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) provider: String,
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    /// `timeout_ms`: the longest wait for a whole response body.
    pub(crate) timeout: Duration,
}

impl Endpoint {
    /// POSTs `body` as JSON; returns the parsed JSON answer and the request id. A non-2xx
    /// status is mapped by [`parse_error`]; an error object in a 200 body likewise.
    async fn post(
        &self,
        op: &str,
        body: &Value,
        ctx: &RequestContext,
    ) -> Result<(Value, Option<String>)> {
        let tag = |e: Error| e.with_provider(self.provider.clone()).with_operation(op);
        ctx.check_deadline().map_err(tag)?;
        let bytes = serde_json::to_vec(body).map_err(|e| tag(e.into()))?;
        tracing::debug!(provider = %self.provider, op, bytes = bytes.len(), "openai request");
        let mut rb = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(bytes);
        if let Some(left) = ctx.remaining() {
            rb = rb.timeout(left.max(Duration::from_millis(1)));
        }
        let resp = rb.send().await.map_err(|e| tag(transport_error(e)))?;
        let status = resp.status().as_u16();
        let rid = crate::request_id(resp.headers());
        let headers = resp.headers().clone();
        let body = match tokio::time::timeout(self.timeout, resp.bytes()).await {
            Ok(b) => b,
            Err(_) => {
                return Err(tag(Error::new(
                    ErrorKind::Timeout,
                    "the response body did not arrive within timeout_ms",
                )));
            }
        };
        let body = body.map_err(|e| {
            let e = transport_error(e);
            // A body that breaks off is a dropped connection, not a bad answer.
            tag(if e.kind() == ErrorKind::Decode {
                Error::new(ErrorKind::Unavailable, e.message().to_owned())
            } else {
                e
            })
        })?;
        if !(200..300).contains(&status) {
            let e = parse_error(status, &headers, &body);
            tracing::debug!(provider = %self.provider, op, status, kind = %e.kind(), "openai error");
            return Err(tag(e));
        }
        let with_rid = |e: Error| match &rid {
            Some(r) if e.request_id().is_none() => tag(e.with_request_id(r.clone())),
            _ => tag(e),
        };
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            with_rid(Error::decode(format!(
                "the {op} answer is not JSON: line {}, column {}",
                e.line(),
                e.column()
            )))
        })?;
        if let Some(e) = embedded_error(&v) {
            return Err(with_rid(e));
        }
        Ok((v, rid))
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_u64().or_else(|| {
        cur.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.max(0.0) as u64)
    })
}

/// The `/v1/embeddings` client.
pub struct OpenAiEmbedder {
    ep: Endpoint,
    opts: EmbeddingOptions,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("provider", &self.ep.provider)
            .field("url", &self.ep.url)
            .field("model", &self.opts.model)
            .field("dimensions", &self.opts.dimensions)
            .field("batch", &self.opts.batch)
            .field("encoding", &self.opts.encoding)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbedder {
    pub(crate) fn new(ep: Endpoint, mut opts: EmbeddingOptions) -> Self {
        opts.batch = opts.batch.max(1);
        OpenAiEmbedder { ep, opts }
    }

    /// The options in force.
    pub fn options(&self) -> &EmbeddingOptions {
        &self.opts
    }

    fn body(&self, inputs: &[String]) -> Value {
        let mut b = json!({
            "model": self.opts.model,
            "input": inputs,
            "encoding_format": self.opts.encoding.as_str(),
        });
        if let Some(d) = self.opts.dimensions {
            b["dimensions"] = json!(d);
        }
        b
    }
}

/// Parses an embeddings answer for `n` inputs: vectors in input order, the model, usage.
pub fn parse_embeddings(v: &Value, n: usize) -> Result<(Vec<Vec<f32>>, Option<String>, Usage)> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::decode("the embeddings answer has no `data` list"))?;
    if data.len() != n {
        return Err(Error::decode(format!(
            "the embeddings answer has {} vectors for {n} inputs",
            data.len()
        )));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (pos, item) in data.iter().enumerate() {
        let idx = match item.get("index") {
            None | Some(Value::Null) => pos,
            Some(i) => i
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < n)
                .ok_or_else(|| {
                    Error::decode(format!(
                        "embeddings data[{pos}].index is not an index below {n}"
                    ))
                })?,
        };
        let vec = match item.get("embedding") {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    x.as_f64()
                        .map(|f| f as f32)
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| {
                            Error::decode(format!(
                                "embeddings data[{pos}].embedding[{j}] is not a finite number"
                            ))
                        })
                })
                .collect::<Result<Vec<f32>>>()?,
            Some(Value::String(s)) => decode_base64_f32(s)
                .map_err(|m| Error::decode(format!("embeddings data[{pos}].embedding: {m}")))?,
            _ => {
                return Err(Error::decode(format!(
                    "embeddings data[{pos}] has no embedding list or base64 string"
                )));
            }
        };
        if vec.is_empty() {
            return Err(Error::decode(format!("embeddings data[{pos}] is empty")));
        }
        if out[idx].replace(vec).is_some() {
            return Err(Error::decode(format!(
                "embeddings index {idx} appears twice"
            )));
        }
    }
    let vectors: Vec<Vec<f32>> = out.into_iter().flatten().collect();
    let model = v.get("model").and_then(Value::as_str).map(str::to_owned);
    let mut usage = Usage::new();
    usage.input_tokens =
        u64_at(v, &["usage", "prompt_tokens"]).or(u64_at(v, &["usage", "total_tokens"]));
    Ok((vectors, model, usage))
}

/// Decodes standard base64 (padding optional) of little-endian `f32`s.
pub fn decode_base64_f32(s: &str) -> std::result::Result<Vec<f32>, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim().trim_end_matches('='))
        .map_err(|e| format!("invalid base64 ({e})"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "{} bytes of base64 data are not a whole number of f32 values",
            bytes.len()
        ));
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("value {i} is not finite"));
    }
    Ok(v)
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.opts.model
    }

    fn dimension(&self) -> Option<usize> {
        self.opts.dimensions
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings> {
        if req.texts.is_empty() {
            return Ok(Embeddings::new(Vec::new(), self.opts.model.clone()));
        }
        let prefix = match req.purpose {
            EmbedPurpose::Query => &self.opts.query_prefix,
            _ => &self.opts.document_prefix,
        };
        let mut vectors = Vec::with_capacity(req.texts.len());
        let mut usage = Usage::new();
        let mut model = None;
        let mut rid = None;
        for chunk in req.texts.chunks(self.opts.batch) {
            let inputs: Vec<String> = chunk
                .iter()
                .map(|t| {
                    // Servers refuse an empty input: a space embeds as "nothing".
                    let t = if t.trim().is_empty() { " " } else { t.as_str() };
                    format!("{prefix}{t}")
                })
                .collect();
            let (v, r) = self.ep.post("embed", &self.body(&inputs), &req.ctx).await?;
            let (vs, m, u) = parse_embeddings(&v, inputs.len()).map_err(|e| {
                let e = e
                    .with_provider(self.ep.provider.clone())
                    .with_operation("embed");
                match &r {
                    Some(id) => e.with_request_id(id.clone()),
                    None => e,
                }
            })?;
            vectors.extend(vs);
            usage.input_tokens = add(usage.input_tokens, u.input_tokens);
            model = m.or(model);
            rid = r.or(rid);
        }
        let mut e = Embeddings::new(vectors, model.unwrap_or_else(|| self.opts.model.clone()))
            .with_usage(usage);
        e.request_id = rid;
        Ok(e)
    }
}

/// The `/v1/rerank` client.
pub struct OpenAiReranker {
    ep: Endpoint,
    model: String,
}

impl fmt::Debug for OpenAiReranker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiReranker")
            .field("provider", &self.ep.provider)
            .field("url", &self.ep.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiReranker {
    pub(crate) fn new(ep: Endpoint, model: String) -> Self {
        OpenAiReranker { ep, model }
    }
}

/// Parses a rerank answer for `n` documents: scores best first, each index once.
pub fn parse_rerank(v: &Value, n: usize) -> Result<(Vec<RerankScore>, Option<String>, Usage)> {
    let list = v
        .get("results")
        .or_else(|| v.get("data"))
        .unwrap_or(v)
        .as_array()
        .ok_or_else(|| Error::decode("the rerank answer has no `results` list"))?;
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(list.len());
    for (pos, r) in list.iter().enumerate() {
        let index = r
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| i as usize)
            .filter(|i| *i < n)
            .ok_or_else(|| {
                Error::decode(format!(
                    "rerank results[{pos}].index is not an index below {n}"
                ))
            })?;
        let score = r
            .get("relevance_score")
            .or_else(|| r.get("score"))
            .and_then(Value::as_f64)
            .map(|f| f as f32)
            .filter(|f| f.is_finite())
            .ok_or_else(|| {
                Error::decode(format!(
                    "rerank results[{pos}] has no finite relevance_score"
                ))
            })?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(Error::decode(format!("rerank index {index} appears twice")));
        }
        out.push(RerankScore::new(index, score));
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    let model = v.get("model").and_then(Value::as_str).map(str::to_owned);
    let mut usage = Usage::new();
    usage.input_tokens = u64_at(v, &["usage", "prompt_tokens"])
        .or(u64_at(v, &["usage", "total_tokens"]))
        .or(u64_at(v, &["meta", "billed_units", "input_tokens"]));
    usage.units = u64_at(v, &["meta", "billed_units", "search_units"]);
    Ok((out, model, usage))
}

#[async_trait]
impl Reranker for OpenAiReranker {
    fn model(&self) -> &str {
        &self.model
    }

    async fn rerank(&self, req: RerankRequest) -> Result<Reranked> {
        let n = req.documents.len();
        if n == 0 {
            return Ok(Reranked::new(Vec::new(), self.model.clone()));
        }
        let top_n = req.top_n.unwrap_or(n).min(n);
        let body = json!({
            "model": self.model,
            "query": req.query,
            "documents": req.documents,
            "top_n": top_n,
            "return_documents": false,
        });
        let (v, rid) = self.ep.post("rerank", &body, &req.ctx).await?;
        let (mut scores, model, usage) = parse_rerank(&v, n).map_err(|e| {
            let e = e
                .with_provider(self.ep.provider.clone())
                .with_operation("rerank");
            match &rid {
                Some(id) => e.with_request_id(id.clone()),
                None => e,
            }
        })?;
        scores.truncate(top_n);
        let mut r =
            Reranked::new(scores, model.unwrap_or_else(|| self.model.clone())).with_usage(usage);
        r.request_id = rid;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_errors() {
        use base64::Engine;
        let v = [1.0f32, -0.5, 0.25];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let s = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(decode_base64_f32(&s).unwrap(), v);
        assert!(
            decode_base64_f32("AAA")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            decode_base64_f32("@@@@")
                .unwrap_err()
                .contains("invalid base64")
        );
        let nan = base64::engine::general_purpose::STANDARD.encode(f32::NAN.to_le_bytes());
        assert!(decode_base64_f32(&nan).unwrap_err().contains("not finite"));
    }

    #[test]
    fn embeddings_are_put_in_index_order() {
        let v = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]}
        ], "model": "m", "usage": {"prompt_tokens": 4, "total_tokens": 4}});
        let (vs, m, u) = parse_embeddings(&v, 2).unwrap();
        assert_eq!(vs, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(m.as_deref(), Some("m"));
        assert_eq!(u.input_tokens, Some(4));
        let dup =
            json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]});
        assert!(
            parse_embeddings(&dup, 2)
                .unwrap_err()
                .message()
                .contains("twice")
        );
        assert!(
            parse_embeddings(&json!({"data": []}), 1)
                .unwrap_err()
                .message()
                .contains("0 vectors for 1")
        );
        let bad = json!({"data": [{"index": 0, "embedding": ["x"]}]});
        assert_eq!(
            parse_embeddings(&bad, 1).unwrap_err().kind(),
            ErrorKind::Decode
        );
    }

    #[test]
    fn rerank_shapes() {
        let v = json!({"results": [{"index": 1, "relevance_score": 0.2}, {"index": 0, "relevance_score": 0.9}],
                       "meta": {"billed_units": {"search_units": 1}}});
        let (s, _, u) = parse_rerank(&v, 2).unwrap();
        assert_eq!(s[0].index, 0);
        assert_eq!(u.units, Some(1));
        // TEI: a bare array with `score`.
        let (s, _, _) = parse_rerank(&json!([{"index": 0, "score": -1.5}]), 1).unwrap();
        assert_eq!(s[0].score, -1.5);
        assert!(
            parse_rerank(
                &json!({"results": [{"index": 5, "relevance_score": 1.0}]}),
                2
            )
            .is_err()
        );
        assert!(parse_rerank(&json!({"results": [{"index": 0}]}), 2).is_err());
    }
}
