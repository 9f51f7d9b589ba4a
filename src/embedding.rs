//! Embeddings and reranking: the two model calls semantic search and recommendations are built on.
//!
//! Any adapter that can turn text into vectors (a remote embeddings API, a local model)
//! implements [`Embedder`]; one that can score documents against a query implements
//! [`Reranker`]. The semantic searcher and the embeddings recommender in the core are generic
//! over these traits, so every adapter ranks, filters and explains the same way, over the
//! shared [`vector`](crate::vector) index.
//!
//! Contract for implementors:
//! - [`Embedder::embed`] returns exactly one vector per input text, in input order, each of
//!   [`Embedder::dimension`] values when that is known; an empty input list returns an empty
//!   list without a call. Batching to the vendor's limit is the implementor's job.
//! - [`Reranker::rerank`] returns at most `top_n` scores, each naming the index of a document in
//!   the request, best first, no index twice.
//! - Neither retries (the retry layer does), and neither logs or echoes the texts.

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{RequestContext, Usage};

/// What the texts of an [`EmbedRequest`] are: some models embed queries and documents
/// differently (DashScope's `text_type`, instruction-prefixed models).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EmbedPurpose {
    /// A search query or a subject's profile text.
    Query,
    /// A catalog document (product text).
    #[default]
    Document,
}

/// A batch of texts to embed.
#[non_exhaustive]
#[derive(Clone)]
pub struct EmbedRequest {
    /// The texts, in order.
    pub texts: Vec<String>,
    /// Query or document.
    pub purpose: EmbedPurpose,
    /// Who is asking (tenant, consent, deadline, trace id).
    pub ctx: RequestContext,
}

impl EmbedRequest {
    /// A request to embed `texts` as documents, with a default context.
    pub fn new(texts: Vec<String>) -> Self {
        Self {
            texts,
            purpose: EmbedPurpose::Document,
            ctx: RequestContext::default(),
        }
    }

    /// Sets what the texts are.
    pub fn with_purpose(mut self, purpose: EmbedPurpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// Sets the request context.
    pub fn with_context(mut self, ctx: RequestContext) -> Self {
        self.ctx = ctx;
        self
    }
}

impl fmt::Debug for EmbedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbedRequest")
            .field("texts", &self.texts.len())
            .field("purpose", &self.purpose)
            .field("ctx", &self.ctx)
            .finish()
    }
}

/// The vectors for an [`EmbedRequest`], one per text, in request order.
#[non_exhaustive]
#[derive(Clone, Default)]
pub struct Embeddings {
    /// One vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The model that produced them.
    pub model: String,
    /// Tokens (or other units) billed.
    pub usage: Usage,
    /// The vendor's request id, when it returned one (the last one for a batched request).
    pub request_id: Option<String>,
}

impl Embeddings {
    /// Vectors produced by `model`.
    pub fn new(vectors: Vec<Vec<f32>>, model: impl Into<String>) -> Self {
        Self {
            vectors,
            model: model.into(),
            usage: Usage::default(),
            request_id: None,
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the vendor request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
}

impl fmt::Debug for Embeddings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embeddings")
            .field("vectors", &self.vectors.len())
            .field("dimension", &self.vectors.first().map(Vec::len))
            .field("model", &self.model)
            .field("usage", &self.usage)
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// Turns texts into vectors. See the [module docs](self) for the contract.
#[async_trait]
pub trait Embedder: Send + Sync + fmt::Debug + 'static {
    /// The model name reported in [`ResponseMeta`](crate::ResponseMeta).
    fn model(&self) -> &str;

    /// The vector length, when known before the first call.
    fn dimension(&self) -> Option<usize>;

    /// Embeds the texts of `req`, one vector per text, in order.
    async fn embed(&self, req: EmbedRequest) -> Result<Embeddings>;
}

/// A query and candidate documents to score against it.
#[non_exhaustive]
#[derive(Clone)]
pub struct RerankRequest {
    /// The query.
    pub query: String,
    /// The candidate documents, in order; results refer to them by index.
    pub documents: Vec<String>,
    /// How many results to return at most (`None`: all).
    pub top_n: Option<usize>,
    /// Who is asking.
    pub ctx: RequestContext,
}

impl RerankRequest {
    /// A request to score `documents` against `query`.
    pub fn new(query: impl Into<String>, documents: Vec<String>) -> Self {
        Self {
            query: query.into(),
            documents,
            top_n: None,
            ctx: RequestContext::default(),
        }
    }

    /// Sets the maximum number of results.
    pub fn with_top_n(mut self, n: usize) -> Self {
        self.top_n = Some(n);
        self
    }

    /// Sets the request context.
    pub fn with_context(mut self, ctx: RequestContext) -> Self {
        self.ctx = ctx;
        self
    }
}

impl fmt::Debug for RerankRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RerankRequest")
            .field("documents", &self.documents.len())
            .field("top_n", &self.top_n)
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

/// One scored document of a [`Reranked`] result.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankScore {
    /// Index of the document in [`RerankRequest::documents`].
    pub index: usize,
    /// Relevance; higher is better (scale is the model's).
    pub score: f32,
}

impl RerankScore {
    /// A score for document `index`.
    pub fn new(index: usize, score: f32) -> Self {
        Self { index, score }
    }
}

/// The result of a [`Reranker::rerank`] call, best first.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct Reranked {
    /// Scores, best first, each index at most once.
    pub results: Vec<RerankScore>,
    /// The model that scored them.
    pub model: String,
    /// Tokens or documents billed.
    pub usage: Usage,
    /// The vendor's request id.
    pub request_id: Option<String>,
}

impl Reranked {
    /// Scores produced by `model`.
    pub fn new(results: Vec<RerankScore>, model: impl Into<String>) -> Self {
        Self {
            results,
            model: model.into(),
            usage: Usage::default(),
            request_id: None,
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the vendor request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
}

/// Scores documents against a query (a cross-encoder). See the [module docs](self).
#[async_trait]
pub trait Reranker: Send + Sync + fmt::Debug + 'static {
    /// The model name.
    fn model(&self) -> &str;

    /// Scores the documents of `req`, best first.
    async fn rerank(&self, req: RerankRequest) -> Result<Reranked>;
}
