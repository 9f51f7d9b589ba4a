//! The embedding model's loading code and packed forward pass, on a tiny random BERT built by
//! the test: equal to candle-transformers' `BertModel` with an attention mask and masked mean
//! pooling, whatever the batch; fixed padding off; truncation; clear errors.

mod common;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use common::tiny;
use merchant_ai::ErrorKind;
use merchant_ai::embedding::{EmbedPurpose, EmbedRequest, Embedder};
use merchant_ai_candle::embed::{BertEmbedder, EmbedConfig};

const TEXTS: &[&str] = &[
    "red running shoes",
    "porcelain tea pot with bamboo handle",
    "a",
    "the green cup, size 1.",
    "trail running shoe, waterproof, men's size 42",
    "",
    "blue cup",
    "red red red red red red red red red red red red red red red red red red red red",
];

fn model_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tiny::write(dir.path(), prefix);
    dir
}

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// candle-transformers' BertModel on the padded batch, then masked mean pooling and L2.
fn reference(dir: &std::path::Path, texts: &[&str]) -> Vec<Vec<f32>> {
    let cfg: Config = serde_json::from_value(tiny::config_json()).unwrap();
    let vb = VarBuilder::from_tensors(tiny::tensors(), DType::F32, &Device::Cpu);
    let model = BertModel::load(vb, &cfg).unwrap();
    let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tok.with_padding(Some(tokenizers::PaddingParams::default()));
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: 32,
        ..Default::default()
    }))
    .unwrap();
    let enc = tok.encode_batch(texts.to_vec(), true).unwrap();
    let (b, s) = (enc.len(), enc[0].get_ids().len());
    let ids: Vec<u32> = enc.iter().flat_map(|e| e.get_ids().to_vec()).collect();
    let mask: Vec<u32> = enc
        .iter()
        .flat_map(|e| e.get_attention_mask().to_vec())
        .collect();
    let ids = Tensor::from_vec(ids, (b, s), &Device::Cpu).unwrap();
    let mask_t = Tensor::from_vec(mask.clone(), (b, s), &Device::Cpu).unwrap();
    let out = model
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask_t))
        .unwrap();
    let out: Vec<Vec<Vec<f32>>> = out.to_vec3().unwrap();
    out.iter()
        .enumerate()
        .map(|(i, rows)| {
            let mut v = [0f32; tiny::HIDDEN];
            let mut n = 0f32;
            for (t, row) in rows.iter().enumerate() {
                if mask[i * s + t] == 1 {
                    n += 1.0;
                    v.iter_mut().zip(row).for_each(|(a, x)| *a += x);
                }
            }
            v.iter_mut().for_each(|a| *a /= n);
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.iter().map(|a| a / norm).collect()
        })
        .collect()
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst < 2e-5, "text {i}: max difference {worst}");
    }
}

#[tokio::test]
async fn packed_forward_equals_bert_model_with_attention_mask() {
    let dir = model_dir("");
    let model = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    let got = model.embed(EmbedRequest::new(texts(TEXTS))).await.unwrap();
    assert_eq!(got.vectors.len(), TEXTS.len());
    assert_close(&got.vectors, &reference(dir.path(), TEXTS));
    // One text at a time gives the same vectors as the batch.
    for (i, t) in TEXTS.iter().enumerate() {
        let one = model.embed(EmbedRequest::new(texts(&[t]))).await.unwrap();
        assert_close(&one.vectors, &got.vectors[i..=i]);
    }
}

#[tokio::test]
async fn small_forward_passes_give_the_same_vectors() {
    let dir = model_dir("");
    let whole = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    // Two texts per pass, and a token budget that forces one text per pass for long ones.
    let cut = BertEmbedder::load(
        dir.path(),
        EmbedConfig::default()
            .with_max_batch(2)
            .with_max_batch_tokens(8)
            .with_threads(1),
    )
    .unwrap();
    let a = whole.embed(EmbedRequest::new(texts(TEXTS))).await.unwrap();
    let b = cut.embed(EmbedRequest::new(texts(TEXTS))).await.unwrap();
    assert_close(&a.vectors, &b.vectors);
}

#[tokio::test]
async fn tensor_names_with_the_bert_prefix_load_the_same() {
    let plain = model_dir("");
    let prefixed = model_dir("bert.");
    let a = BertEmbedder::load(plain.path(), EmbedConfig::default()).unwrap();
    let b = BertEmbedder::load(prefixed.path(), EmbedConfig::default()).unwrap();
    let req = || EmbedRequest::new(texts(TEXTS));
    assert_close(
        &a.embed(req()).await.unwrap().vectors,
        &b.embed(req()).await.unwrap().vectors,
    );
}

#[tokio::test]
async fn fixed_padding_of_the_tokenizer_file_is_off_and_truncation_follows_the_model() {
    let dir = model_dir("");
    let model = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    assert_eq!(model.max_seq_length(), 32, "sentence_bert_config.json");
    // [CLS] red shoe [SEP]: 4 tokens, not the file's 128.
    let r = model
        .embed(EmbedRequest::new(texts(&["red shoe"])))
        .await
        .unwrap();
    assert_eq!(r.usage.input_tokens, Some(4));
    let long = vec!["red"; 100].join(" ");
    let r = model.embed(EmbedRequest::new(vec![long])).await.unwrap();
    assert_eq!(r.usage.input_tokens, Some(32));
    let shorter =
        BertEmbedder::load(dir.path(), EmbedConfig::default().with_max_seq_length(10)).unwrap();
    let r = shorter
        .embed(EmbedRequest::new(vec![vec!["red"; 100].join(" ")]))
        .await
        .unwrap();
    assert_eq!(r.usage.input_tokens, Some(10));
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_vectors() {
    let dir = model_dir("");
    let model = Arc::new(BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap());
    let solo = model.embed(EmbedRequest::new(texts(TEXTS))).await.unwrap();
    let mut tasks = Vec::new();
    for round in 0..16 {
        let model = model.clone();
        // Each task asks for a rotation of the texts, so a mix-up between requests shows.
        let mut mine = texts(TEXTS);
        mine.rotate_left(round % TEXTS.len());
        tasks.push(tokio::spawn(async move {
            (round, model.embed(EmbedRequest::new(mine)).await.unwrap())
        }));
    }
    for t in tasks {
        let (round, got) = t.await.unwrap();
        let mut want = solo.vectors.clone();
        want.rotate_left(round % TEXTS.len());
        assert_close(&got.vectors, &want);
    }
}

#[tokio::test]
async fn a_dropped_request_does_not_stop_the_worker() {
    let dir = model_dir("");
    let model = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    let fut = model.embed(EmbedRequest::new(texts(TEXTS)));
    drop(fut);
    let many: Vec<String> = (0..200).map(|i| format!("red shoe {i}")).collect();
    let pending = model.embed(EmbedRequest::new(many));
    // Poll once so the job is queued, then drop it.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1), pending).await;
    let r = model
        .embed(EmbedRequest::new(texts(&["tea pot"])))
        .await
        .unwrap();
    assert_eq!(r.vectors.len(), 1);
}

#[tokio::test]
async fn empty_requests_and_texts() {
    let dir = model_dir("");
    let model = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    assert_eq!(model.dimension(), Some(tiny::HIDDEN));
    let none = model.embed(EmbedRequest::new(Vec::new())).await.unwrap();
    assert!(none.vectors.is_empty());
    let empty = model
        .embed(EmbedRequest::new(vec![String::new()]))
        .await
        .unwrap();
    assert_eq!(empty.vectors[0].len(), tiny::HIDDEN);
    assert_eq!(empty.usage.input_tokens, Some(2));
    let norm: f32 = empty.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[tokio::test]
async fn query_and_document_prefixes() {
    let dir = model_dir("");
    let plain = BertEmbedder::load(dir.path(), EmbedConfig::default()).unwrap();
    let prefixed = BertEmbedder::load(
        dir.path(),
        EmbedConfig::default().with_prefixes("the ", "a "),
    )
    .unwrap();
    let q = |p| EmbedRequest::new(texts(&["red shoe"])).with_purpose(p);
    let want_q = plain
        .embed(EmbedRequest::new(texts(&["the red shoe"])))
        .await
        .unwrap();
    let want_d = plain
        .embed(EmbedRequest::new(texts(&["a red shoe"])))
        .await
        .unwrap();
    assert_close(
        &prefixed
            .embed(q(EmbedPurpose::Query))
            .await
            .unwrap()
            .vectors,
        &want_q.vectors,
    );
    assert_close(
        &prefixed
            .embed(q(EmbedPurpose::Document))
            .await
            .unwrap()
            .vectors,
        &want_d.vectors,
    );
}

#[test]
fn loading_errors_name_what_is_wrong() {
    let err = |dir: &std::path::Path| {
        BertEmbedder::load(dir, EmbedConfig::default())
            .map(|_| ())
            .unwrap_err()
    };
    let missing = std::path::Path::new("/nonexistent/merchant-ai/model");
    let e = err(missing);
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("does not exist"), "{e}");

    let dir = model_dir("");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = err(dir.path());
    assert!(e.message().contains("tokenizer.json"), "{e}");

    let dir = model_dir("");
    let mut cfg = tiny::config_json();
    cfg["hidden_act"] = "relu".into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = err(dir.path());
    assert!(e.message().contains("hidden_act"), "{e}");

    let dir = model_dir("");
    let mut cfg = tiny::config_json();
    cfg["intermediate_size"] = 48.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let e = err(dir.path());
    assert!(
        e.message()
            .contains("encoder.layer.0.intermediate.dense.weight"),
        "{e}"
    );

    let dir = model_dir("roberta.");
    let e = err(dir.path());
    assert!(
        e.message().contains("embeddings.word_embeddings.weight"),
        "{e}"
    );

    let dir = model_dir("");
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let e = err(dir.path());
    assert!(e.message().contains("model.safetensors"), "{e}");

    let dir = model_dir("");
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    let e = err(dir.path());
    assert!(e.message().contains("mean pooling"), "{e}");

    let dir = model_dir("");
    let e = BertEmbedder::load(dir.path(), EmbedConfig::default().with_max_batch(0))
        .map(|_| ())
        .unwrap_err();
    assert!(e.message().contains("max_batch"), "{e}");
}

#[test]
fn debug_output_names_the_model_only() {
    let dir = model_dir("");
    let model = BertEmbedder::load(
        dir.path(),
        EmbedConfig::default().with_model_name("tiny-bert"),
    )
    .unwrap();
    let s = format!("{model:?}");
    assert!(s.contains("tiny-bert") && s.contains("dimension"), "{s}");
    assert_eq!(model.model(), "tiny-bert");
}
