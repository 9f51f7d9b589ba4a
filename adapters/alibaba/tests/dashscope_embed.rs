//! Embeddings and rerank against wiremock: batches of at most 10, `text_type` query or
//! document, `dimension`, vectors re-ordered by `text_index`, usage summed over batches,
//! checks on bad answers; gte-rerank-v2 (native) and qwen3-rerank (compatible API) shapes.

mod common;

use common::*;
use merchant_ai::ErrorKind;
use merchant_ai::embedding::{EmbedPurpose, EmbedRequest, RerankRequest};
use merchant_ai_alibaba::dashscope::{DashScopeConfig, DashScopeProvider};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider_at(server: &MockServer, f: impl FnOnce(&mut DashScopeConfig)) -> DashScopeProvider {
    let mut c = DashScopeConfig {
        region: Some("cn-beijing".into()),
        base_url: Some(server.uri()),
        workspace: Some(WORKSPACE.into()),
        embedding_model: Some("text-embedding-v4".into()),
        dimension: Some(DIM),
        rerank_model: Some("gte-rerank-v2".into()),
        ..Default::default()
    };
    f(&mut c);
    DashScopeProvider::new("qwen", c, Some(SecretString::from(KEY))).unwrap()
}

async fn bodies(server: &MockServer, p: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn batches_of_ten_reordered_by_text_index() {
    let s = MockServer::start().await;
    mount_normal(&s).await;
    let p = provider_at(&s, |_| {});
    let e = p.embedder().unwrap();
    assert_eq!(e.model(), "text-embedding-v4");
    assert_eq!(e.dimension(), Some(DIM));
    let texts: Vec<String> = (0..23)
        .map(|i| format!("product number {i} red shoes"))
        .collect();
    let out = e.embed(EmbedRequest::new(texts.clone())).await.unwrap();
    assert_eq!(out.vectors.len(), 23);
    for (t, v) in texts.iter().zip(&out.vectors) {
        assert_eq!(v, &fake_embedding(t), "vector of {t:?} out of order");
    }
    assert_eq!(
        out.usage.input_tokens,
        Some(23 * 3),
        "usage adds up over batches"
    );
    assert_eq!(out.request_id.as_deref(), Some("e-1"));
    let b = bodies(&s, EMBED).await;
    let sizes: Vec<usize> = b
        .iter()
        .map(|b| b["input"]["texts"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 10, 3]);
    for body in &b {
        assert_eq!(body["model"], "text-embedding-v4");
        assert_eq!(body["parameters"]["text_type"], "document");
        assert_eq!(body["parameters"]["dimension"], DIM);
    }
    // Every call carried the key and the workspace (the mock requires both).
    let reqs = s.received_requests().await.unwrap();
    assert!(
        reqs.iter()
            .all(|r| r.headers.get("authorization").is_some())
    );

    s.reset().await;
    mount_normal(&s).await;
    e.embed(EmbedRequest::new(vec!["red shoes".into()]).with_purpose(EmbedPurpose::Query))
        .await
        .unwrap();
    assert_eq!(
        bodies(&s, EMBED).await[0]["parameters"]["text_type"],
        "query"
    );

    // Nothing to embed: no call.
    s.reset().await;
    assert!(
        e.embed(EmbedRequest::new(vec![]))
            .await
            .unwrap()
            .vectors
            .is_empty()
    );
    assert!(s.received_requests().await.unwrap().is_empty());
    let err = e
        .embed(EmbedRequest::new(vec!["a".into(), "  ".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("texts[1]"), "{err}");
}

#[tokio::test]
async fn documented_embeddings_answer_out_of_order() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EMBED))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("embeddings_unordered.json"), "application/json"),
        )
        .mount(&s)
        .await;
    let p = provider_at(&s, |c| c.dimension = None);
    let out = p
        .embedder()
        .unwrap()
        .embed(EmbedRequest::new(vec!["a".into(), "b".into(), "c".into()]))
        .await
        .unwrap();
    assert_eq!(out.vectors[0], [0.012f32, -0.034, 0.1]);
    assert_eq!(out.vectors[1], [0.051f32, 0.007, -0.2]);
    assert_eq!(out.vectors[2], [0.5f32, 0.5, 0.0]);
    // Fewer texts than the answer names: a decode error, not a panic.
    let e = p
        .embedder()
        .unwrap()
        .embed(EmbedRequest::new(vec!["a".into(), "b".into()]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("text_index 2"), "{e}");
}

#[tokio::test]
async fn bad_embedding_answers_are_decode_errors() {
    let cases = [
        json!({"output":{"embeddings":[{"text_index":0,"embedding":[1.0,2.0]},{"text_index":0,"embedding":[1.0,2.0]}]}}),
        json!({"output":{"embeddings":[{"text_index":0,"embedding":[1.0,2.0]},{"text_index":1,"embedding":[1.0]}]}}),
        json!({"output":{"embeddings":[{"text_index":0,"embedding":[1.0,"x"]},{"text_index":1,"embedding":[1.0,2.0]}]}}),
        json!({"output":{"embeddings":[{"text_index":0,"embedding":[1.0,2.0]}]}}),
        json!({"output":{}}),
    ];
    for body in cases {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(EMBED))
            .respond_with(ResponseTemplate::new(200).set_body_json(&body))
            .mount(&s)
            .await;
        let p = provider_at(&s, |c| c.dimension = None);
        let e = p
            .embedder()
            .unwrap()
            .embed(EmbedRequest::new(vec!["a".into(), "b".into()]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{body}: {e}");
        assert_eq!(e.operation(), Some("embed"));
    }
    // An error body in a 200, and a throttled batch.
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EMBED))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3").set_body_json(
            json!({"code":"Throttling.RateQuota","message":"Requests rate limit exceeded","request_id":"e-9"}),
        ))
        .mount(&s)
        .await;
    let p = provider_at(&s, |_| {});
    let e = p
        .embedder()
        .unwrap()
        .embed(EmbedRequest::new(vec!["a".into()]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn gte_rerank_native_shape() {
    let s = MockServer::start().await;
    mount_normal(&s).await;
    let p = provider_at(&s, |_| {});
    let r = p.reranker().unwrap();
    let out = r
        .rerank(
            RerankRequest::new(
                "what is rerank",
                vec![
                    "Rerank sorts candidates by relevance".into(),
                    "Quantum computing is new".into(),
                ],
            )
            .with_top_n(2),
        )
        .await
        .unwrap();
    assert_eq!(out.results.len(), 2);
    assert_eq!(out.results[0].index, 0);
    assert!((out.results[0].score - 0.93).abs() < 1e-6);
    assert_eq!(out.request_id.as_deref(), Some("k-1"));
    assert_eq!(out.usage.input_tokens, Some(31));
    let b = &bodies(&s, RERANK).await[0];
    assert_eq!(b["model"], "gte-rerank-v2");
    assert_eq!(b["input"]["query"], "what is rerank");
    assert_eq!(b["input"]["documents"].as_array().unwrap().len(), 2);
    assert_eq!(b["parameters"]["top_n"], 2);
    assert_eq!(b["parameters"]["return_documents"], false);
}

#[tokio::test]
async fn qwen3_rerank_compatible_shape() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(COMPAT_RERANK))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("rerank_qwen3.json"), "application/json"),
        )
        .mount(&s)
        .await;
    let p = provider_at(&s, |c| c.rerank_model = Some("qwen3-rerank".into()));
    let out = p
        .reranker()
        .unwrap()
        .rerank(RerankRequest::new("q", vec!["a".into(), "b".into()]).with_top_n(1))
        .await
        .unwrap();
    assert_eq!(out.results.len(), 1);
    assert_eq!(out.results[0].index, 0, "best first");
    let b = &bodies(&s, COMPAT_RERANK).await[0];
    assert_eq!(
        b,
        &json!({"model":"qwen3-rerank","query":"q","documents":["a","b"],"top_n":1})
    );
}
