//! Embeddings (`text-embedding-v4`, `-v3`, ...) as an [`Embedder`], and rerank
//! (`gte-rerank-v2` on the native API, `qwen3-rerank` on the compatible API) as a
//! [`Reranker`].
//!
//! Embeddings go in batches of at most 10 texts (the v3/v4 limit; older models take 25), one
//! call after the other, each answer re-ordered by `text_index` and checked (every index once,
//! one dimension, finite values). Queries are sent with `text_type = "query"`, documents with
//! `"document"`. Rerank answers are checked too (indices in range, each once) and returned
//! best first.

use std::fmt;

use async_trait::async_trait;
use merchant_ai::embedding::{
    EmbedPurpose, EmbedRequest, Embedder, Embeddings, RerankRequest, RerankScore, Reranked,
    Reranker,
};
use merchant_ai::{Error, Result, Usage};
use serde_json::{Map, Value, json};

use super::client::{Client, header_request_id};

/// The path of embeddings under the native base.
pub const EMBED_PATH: &str = "/services/embeddings/text-embedding/text-embedding";
/// The path of gte-rerank under the native base.
pub const RERANK_PATH: &str = "/services/rerank/text-rerank/text-rerank";
/// The path of qwen3-rerank under the compatible API base.
pub const COMPAT_RERANK_PATH: &str = "/reranks";

/// The most texts one call may carry for a model.
pub fn max_batch(model: &str) -> usize {
    if model.starts_with("text-embedding-v1") || model.starts_with("text-embedding-v2") {
        25
    } else {
        10
    }
}

/// The DashScope embedder.
#[derive(Clone)]
pub struct DashScopeEmbedder {
    client: Client,
    url: String,
    model: String,
    dimension: Option<usize>,
    batch: usize,
}

impl fmt::Debug for DashScopeEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashScopeEmbedder")
            .field("provider", &self.client.name)
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("batch", &self.batch)
            .finish()
    }
}

fn tag(client: &Client, e: Error, op: &str) -> Error {
    e.with_provider(client.name.clone()).with_operation(op)
}

fn decode_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::decode(format!(
            "the {what} answer is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// An error body inside a 2xx: `{"code","message"}` without `output`.
fn embedded_error(v: &Value) -> Option<Error> {
    if v.get("output").is_some_and(|o| !o.is_null()) || v.get("results").is_some() {
        return None;
    }
    let (code, message, rid) = super::error::fields(v);
    code.as_ref()?;
    Some(super::error::from_code(
        code.as_deref(),
        message.as_deref(),
        None,
        rid.as_deref(),
    ))
}

impl DashScopeEmbedder {
    /// An embedder for `model`; `dimension` is sent as `parameters.dimension` (v3/v4) and
    /// checked on every answer; `batch` is capped at the model's limit.
    pub fn new(client: Client, model: String, dimension: Option<usize>, batch: usize) -> Self {
        let url = format!("{}{EMBED_PATH}", client.endpoint().native_base());
        let batch = batch.clamp(1, max_batch(&model));
        DashScopeEmbedder {
            client,
            url,
            model,
            dimension,
            batch,
        }
    }

    /// Texts per call.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    async fn embed_batch(
        &self,
        texts: &[String],
        purpose: EmbedPurpose,
        dim: &mut Option<usize>,
    ) -> Result<(Vec<Vec<f32>>, Option<u64>, Option<String>)> {
        let mut params = Map::new();
        if let Some(d) = self.dimension {
            params.insert("dimension".into(), json!(d));
        }
        let tt = match purpose {
            EmbedPurpose::Query => "query",
            _ => "document",
        };
        params.insert("text_type".into(), json!(tt));
        params.insert("output_type".into(), json!("dense"));
        let body = json!({"model": self.model, "input": {"texts": texts}, "parameters": params});
        let (bytes, headers) = self.client.post_json(&self.url, &body).await?;
        let v = decode_json(&bytes, "embeddings")?;
        if let Some(e) = embedded_error(&v) {
            return Err(e);
        }
        let rid = v
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| header_request_id(&headers));
        let items = v
            .get("output")
            .and_then(|o| o.get("embeddings"))
            .and_then(Value::as_array)
            .ok_or_else(|| Error::decode("the embeddings answer has no output.embeddings list"))?;
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (k, it) in items.iter().enumerate() {
            let idx = it
                .get("text_index")
                .and_then(Value::as_u64)
                .map_or(k, |i| i as usize);
            let Some(slot) = slots.get_mut(idx) else {
                return Err(Error::decode(format!(
                    "the embeddings answer names text_index {idx} for a batch of {}",
                    texts.len()
                )));
            };
            if slot.is_some() {
                return Err(Error::decode(format!(
                    "the embeddings answer names text_index {idx} twice"
                )));
            }
            let arr = it
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    Error::decode(format!("embedding {idx} of the answer is not a list"))
                })?;
            let mut vec = Vec::with_capacity(arr.len());
            for x in arr {
                let f = x.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                    Error::decode(format!("embedding {idx} holds a non-numeric value"))
                })?;
                vec.push(f as f32);
            }
            match *dim {
                Some(d) if d != vec.len() => {
                    return Err(Error::decode(format!(
                        "embedding {idx} has {} values, expected {d}",
                        vec.len()
                    )));
                }
                None if vec.is_empty() => {
                    return Err(Error::decode(format!("embedding {idx} is empty")));
                }
                None => *dim = Some(vec.len()),
                _ => {}
            }
            *slot = Some(vec);
        }
        let mut out = Vec::with_capacity(texts.len());
        for (i, s) in slots.into_iter().enumerate() {
            out.push(s.ok_or_else(|| {
                Error::decode(format!("the embeddings answer has no vector for text {i}"))
            })?);
        }
        let tokens = v
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(Value::as_u64);
        Ok((out, tokens, rid))
    }
}

#[async_trait]
impl Embedder for DashScopeEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> Option<usize> {
        self.dimension
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings> {
        let op = "embed";
        if let Some(i) = req.texts.iter().position(|t| t.trim().is_empty()) {
            return Err(tag(
                &self.client,
                Error::invalid_request(format!("texts[{i}] is empty")),
                op,
            ));
        }
        let mut vectors = Vec::with_capacity(req.texts.len());
        let mut tokens: Option<u64> = None;
        let mut rid = None;
        let mut dim = self.dimension;
        for chunk in req.texts.chunks(self.batch) {
            req.ctx
                .check_deadline()
                .map_err(|e| tag(&self.client, e, op))?;
            let (vs, t, r) = self
                .embed_batch(chunk, req.purpose, &mut dim)
                .await
                .map_err(|e| tag(&self.client, e, op))?;
            vectors.extend(vs);
            // Separate calls: their usage adds up.
            if let Some(t) = t {
                tokens = Some(tokens.unwrap_or(0) + t);
            }
            rid = r.or(rid);
        }
        let mut usage = Usage::new();
        usage.input_tokens = tokens;
        let mut e = Embeddings::new(vectors, self.model.clone()).with_usage(usage);
        if let Some(r) = rid {
            e = e.with_request_id(r);
        }
        Ok(e)
    }
}

/// Which rerank API a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankApi {
    /// `{native}/services/rerank/text-rerank/text-rerank` (gte-rerank-v2).
    Native,
    /// `{root}/compatible-api/v1/reranks`, flat body (qwen3-rerank).
    Compatible,
}

impl RerankApi {
    /// The API of a model: `qwen3-rerank*` the compatible one, others the native one.
    pub fn for_model(model: &str) -> Self {
        if model.starts_with("qwen3-rerank") {
            RerankApi::Compatible
        } else {
            RerankApi::Native
        }
    }
}

/// The DashScope reranker.
#[derive(Clone)]
pub struct DashScopeReranker {
    client: Client,
    url: String,
    model: String,
    api: RerankApi,
}

impl fmt::Debug for DashScopeReranker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashScopeReranker")
            .field("provider", &self.client.name)
            .field("model", &self.model)
            .field("api", &self.api)
            .finish()
    }
}

impl DashScopeReranker {
    /// A reranker for `model` over `api`.
    pub fn new(client: Client, model: String, api: RerankApi) -> Self {
        let url = match api {
            RerankApi::Native => format!("{}{RERANK_PATH}", client.endpoint().native_base()),
            RerankApi::Compatible => format!(
                "{}{COMPAT_RERANK_PATH}",
                client.endpoint().compatible_api_base()
            ),
        };
        DashScopeReranker {
            client,
            url,
            model,
            api,
        }
    }
}

/// Reads rerank results from any of the shapes seen: `output.results` (native),
/// `results` or `data` (compatible, whose exact shape is not documented), scores as
/// `relevance_score` or `score`. Checks indices and returns them best first, at most `top_n`.
pub fn parse_rerank(v: &Value, n_docs: usize, top_n: usize) -> Result<Vec<RerankScore>> {
    let list = v
        .get("output")
        .and_then(|o| o.get("results"))
        .or_else(|| v.get("results"))
        .or_else(|| v.get("data"))
        .and_then(Value::as_array)
        .ok_or_else(|| Error::decode("the rerank answer has no results list"))?;
    let mut seen = vec![false; n_docs];
    let mut out = Vec::with_capacity(list.len());
    for (k, r) in list.iter().enumerate() {
        let idx = r
            .get("index")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::decode(format!("rerank result {k} has no index")))?
            as usize;
        let score = r
            .get("relevance_score")
            .or_else(|| r.get("score"))
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite())
            .ok_or_else(|| Error::decode(format!("rerank result {k} has no numeric score")))?;
        match seen.get_mut(idx) {
            None => {
                return Err(Error::decode(format!(
                    "rerank result {k} names document {idx} of {n_docs}"
                )));
            }
            Some(true) => {
                return Err(Error::decode(format!(
                    "rerank result {k} names document {idx} twice"
                )));
            }
            Some(s) => *s = true,
        }
        out.push(RerankScore::new(idx, score as f32));
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    out.truncate(top_n);
    Ok(out)
}

#[async_trait]
impl Reranker for DashScopeReranker {
    fn model(&self) -> &str {
        &self.model
    }

    async fn rerank(&self, req: RerankRequest) -> Result<Reranked> {
        let op = "rerank";
        let n = req.documents.len();
        let top_n = req.top_n.unwrap_or(n).min(n);
        if n == 0 || top_n == 0 {
            return Ok(Reranked::new(Vec::new(), self.model.clone()));
        }
        if req.query.trim().is_empty() {
            return Err(tag(
                &self.client,
                Error::invalid_request("the rerank query is empty"),
                op,
            ));
        }
        let body = match self.api {
            RerankApi::Native => json!({
                "model": self.model,
                "input": {"query": req.query, "documents": req.documents},
                "parameters": {"top_n": top_n, "return_documents": false}
            }),
            RerankApi::Compatible => json!({
                "model": self.model, "query": req.query, "documents": req.documents,
                "top_n": top_n
            }),
        };
        let (bytes, headers) = self
            .client
            .post_json(&self.url, &body)
            .await
            .map_err(|e| tag(&self.client, e, op))?;
        let v = decode_json(&bytes, "rerank").map_err(|e| tag(&self.client, e, op))?;
        if let Some(e) = embedded_error(&v) {
            return Err(tag(&self.client, e, op));
        }
        let results = parse_rerank(&v, n, top_n).map_err(|e| tag(&self.client, e, op))?;
        let mut usage = Usage::new();
        usage.input_tokens = v
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(Value::as_u64);
        let mut r = Reranked::new(results, self.model.clone()).with_usage(usage);
        if let Some(id) = v
            .get("request_id")
            .or_else(|| v.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| header_request_id(&headers))
        {
            r = r.with_request_id(id);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_shapes() {
        let native = json!({"output":{"results":[
            {"index":1,"relevance_score":0.04},
            {"index":0,"relevance_score":0.93,"document":{"text":"x"}}]},
            "usage":{"total_tokens":31},"request_id":"k-1"});
        let r = parse_rerank(&native, 2, 2).unwrap();
        assert_eq!(r.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
        let flat = json!({"results":[{"index":0,"score":0.2},{"index":2,"score":0.9}]});
        let r = parse_rerank(&flat, 3, 1).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].index, 2);
        assert!(parse_rerank(&json!({"results":[{"index":5,"score":1.0}]}), 2, 2).is_err());
        assert!(
            parse_rerank(
                &json!({"results":[{"index":0,"score":1.0},{"index":0,"score":0.5}]}),
                2,
                2
            )
            .is_err()
        );
        assert!(parse_rerank(&json!({"output":{}}), 2, 2).is_err());
    }

    #[test]
    fn batch_limits() {
        assert_eq!(max_batch("text-embedding-v4"), 10);
        assert_eq!(max_batch("text-embedding-v3"), 10);
        assert_eq!(max_batch("text-embedding-v2"), 25);
        assert_eq!(RerankApi::for_model("qwen3-rerank"), RerankApi::Compatible);
        assert_eq!(RerankApi::for_model("gte-rerank-v2"), RerankApi::Native);
    }
}
