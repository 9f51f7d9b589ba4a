//! A tiny random BERT model written to a temporary folder, in the layout of a
//! sentence-transformers export (config.json, tokenizer.json with fixed padding to 128,
//! model.safetensors, sentence_bert_config.json, 1_Pooling/config.json).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

pub const HIDDEN: usize = 16;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const INTERMEDIATE: usize = 32;
pub const MAX_POS: usize = 64;

pub const VOCAB: &[&str] = &[
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "red",
    "blue",
    "running",
    "shoe",
    "shoes",
    "tea",
    "pot",
    "##s",
    "porcelain",
    "green",
    "cup",
    "a",
    "the",
    "with",
    "handle",
    "bamboo",
    "trail",
    "water",
    "##proof",
    "size",
    "men",
    "'",
    "s",
    ",",
    ".",
    "1",
    "2",
    "4",
    "0",
];

/// Deterministic pseudo-random values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

pub fn config_json() -> serde_json::Value {
    json!({
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": MAX_POS,
        "model_type": "bert",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "vocab_size": VOCAB.len()
    })
}

pub fn tokenizer_json(max_len: usize) -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "special": true, "content": content, "single_word": false,
               "lstrip": false, "rstrip": false, "normalized": false})
    };
    json!({
        "version": "1.0",
        "truncation": {"max_length": max_len, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"),
                         special(3, "[SEP]"), special(4, "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// The tensors of the tiny model, named as in a sentence-transformers export (no prefix).
pub fn tensors() -> HashMap<String, Tensor> {
    let mut m = HashMap::new();
    let mut seed = 7u64;
    let mut put = |name: String, shape: &[usize], scale: f32, offset: f32| {
        seed += 1;
        let n: usize = shape.iter().product();
        let v: Vec<f32> = values(n, seed, scale)
            .into_iter()
            .map(|x| x + offset)
            .collect();
        m.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    };
    let (h, i) = (HIDDEN, INTERMEDIATE);
    put(
        "embeddings.word_embeddings.weight".into(),
        &[VOCAB.len(), h],
        1.0,
        0.0,
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        &[MAX_POS, h],
        0.5,
        0.0,
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        &[2, h],
        0.5,
        0.0,
    );
    put("embeddings.LayerNorm.weight".into(), &[h], 0.2, 1.0);
    put("embeddings.LayerNorm.bias".into(), &[h], 0.2, 0.0);
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for w in ["query", "key", "value"] {
            put(format!("{p}.attention.self.{w}.weight"), &[h, h], 0.5, 0.0);
            put(format!("{p}.attention.self.{w}.bias"), &[h], 0.2, 0.0);
        }
        put(
            format!("{p}.attention.output.dense.weight"),
            &[h, h],
            0.4,
            0.0,
        );
        put(format!("{p}.attention.output.dense.bias"), &[h], 0.2, 0.0);
        put(
            format!("{p}.attention.output.LayerNorm.weight"),
            &[h],
            0.2,
            1.0,
        );
        put(
            format!("{p}.attention.output.LayerNorm.bias"),
            &[h],
            0.2,
            0.0,
        );
        put(format!("{p}.intermediate.dense.weight"), &[i, h], 0.4, 0.0);
        put(format!("{p}.intermediate.dense.bias"), &[i], 0.2, 0.0);
        put(format!("{p}.output.dense.weight"), &[h, i], 0.3, 0.0);
        put(format!("{p}.output.dense.bias"), &[h], 0.2, 0.0);
        put(format!("{p}.output.LayerNorm.weight"), &[h], 0.2, 1.0);
        put(format!("{p}.output.LayerNorm.bias"), &[h], 0.2, 0.0);
    }
    m
}

/// Writes the tiny model to `dir`; `prefix` is prepended to every tensor name ("" or "bert.").
pub fn write(dir: &Path, prefix: &str) {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::write(dir.join("config.json"), config_json().to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json(128).to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        json!({"max_seq_length": 32, "do_lower_case": false}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        json!({"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": false,
               "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
               "pooling_mode_mean_sqrt_len_tokens": false})
        .to_string(),
    )
    .unwrap();
    let named: HashMap<String, Tensor> = tensors()
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect();
    candle_core::safetensors::save(&named, dir.join("model.safetensors")).unwrap();
}
