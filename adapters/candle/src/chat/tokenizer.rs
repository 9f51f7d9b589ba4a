//! The chat model's tokenizer: loaded from `tokenizer.json`, or rebuilt from the GGUF metadata
//! (`tokenizer.ggml.*`) for byte-level BPE vocabularies.
//!
//! Besides encoding, it keeps the exact bytes of every token, which the generation loop uses
//! for streaming (text is emitted as complete UTF-8 only) and for the JSON constraint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use merchant_ai::{Error, Result};
use serde_json::{Value, json};

/// Splits like Qwen2's tokenizer (digits one by one).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Splits like Llama-3's tokenizer (digits in groups of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the byte string of each token id.
#[derive(Clone)]
pub(crate) struct ChatTokenizer {
    inner: tokenizers::Tokenizer,
    /// Bytes of each id; empty for special (control) tokens.
    bytes: Vec<Vec<u8>>,
    /// Special tokens by content.
    special: HashMap<String, u32>,
}

impl std::fmt::Debug for ChatTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokenizer")
            .field("vocab", &self.bytes.len())
            .field("special", &self.special.len())
            .finish()
    }
}

/// GPT-2's byte-to-character table, inverted: the byte each printable character stands for.
fn byte_level_inverse() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut n = 0u32;
    for b in 0u32..256 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        if let Some(ch) = char::from_u32(c) {
            map.insert(ch, b as u8);
        }
    }
    map
}

fn byte_level_bytes(token: &str, inv: &HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for ch in token.chars() {
        match inv.get(&ch) {
            Some(&b) => out.push(b),
            // Not in the byte alphabet: keep the character's own bytes.
            None => out.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    out
}

fn sentencepiece_bytes(token: &str) -> Vec<u8> {
    if token.len() == 6
        && token.starts_with("<0x")
        && token.ends_with('>')
        && let Ok(b) = u8::from_str_radix(&token[3..5], 16)
    {
        return vec![b];
    }
    token.replace('\u{2581}', " ").into_bytes()
}

fn md_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

fn md_strings(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>> {
    let v = ct
        .metadata
        .get(key)
        .ok_or_else(|| Error::config(format!("the GGUF file has no {key}")))?;
    let arr = v
        .to_vec()
        .map_err(|_| Error::config(format!("GGUF {key} is not an array")))?;
    arr.iter()
        .map(|x| {
            x.to_string()
                .cloned()
                .map_err(|_| Error::config(format!("GGUF {key} holds a non-string")))
        })
        .collect()
}

impl ChatTokenizer {
    /// Rebuilds a byte-level BPE tokenizer from the GGUF metadata.
    pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let model = md_str(ct, "tokenizer.ggml.model").unwrap_or("");
        if model != "gpt2" {
            return Err(Error::config(format!(
                "chat.tokenizer: the GGUF tokenizer model {model:?} cannot be rebuilt from metadata \
                 (only byte-level BPE, \"gpt2\"); give a tokenizer.json"
            )));
        }
        let tokens = md_strings(ct, "tokenizer.ggml.tokens")?;
        let merges = md_strings(ct, "tokenizer.ggml.merges")?;
        let types: Vec<i64> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map(|a| {
                    a.iter()
                        .map(|x| x.to_i32().map(i64::from).unwrap_or(1))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let pre = md_str(ct, "tokenizer.ggml.pre").unwrap_or("default");
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                "trim_offsets": false, "use_regex": false});
        let split = |pattern: &str| {
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
                byte_level.clone()
            ]})
        };
        let (pre_tokenizer, normalizer) = match pre {
            "smollm" => (
                json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Digits", "individual_digits": true},
                    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
                ]}),
                Value::Null,
            ),
            "qwen2" => (split(QWEN2_SPLIT), json!({"type": "NFC"})),
            "llama-bpe" | "llama3" | "smaug-bpe" => (split(LLAMA3_SPLIT), Value::Null),
            "gpt2" | "default" => (
                json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
                Value::Null,
            ),
            other => {
                return Err(Error::config(format!(
                    "chat.tokenizer: the GGUF pre-tokenizer {other:?} is not known; give a tokenizer.json"
                )));
            }
        };
        let is_special = |i: usize, t: &str| {
            matches!(types.get(i), Some(3) | Some(4)) || (t.starts_with("<|") && t.ends_with("|>"))
        };
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            vocab.insert(t.clone(), json!(i));
            if is_special(i, t) {
                added.push(
                    json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                                  "rstrip": false, "normalized": false, "special": true}),
                );
            }
        }
        let merges: Vec<Value> = merges
            .iter()
            .filter_map(|m| m.split_once(' ').map(|(a, b)| json!([a, b])))
            .collect();
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges}
        });
        let text =
            serde_json::to_vec(&spec).map_err(|e| Error::config(format!("chat.tokenizer: {e}")))?;
        let inner = tokenizers::Tokenizer::from_bytes(&text).map_err(|e| {
            Error::config(format!(
                "chat.tokenizer: rebuilding from GGUF metadata failed: {e}"
            ))
        })?;
        let inv = byte_level_inverse();
        let mut bytes = Vec::with_capacity(tokens.len());
        let mut special = HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if is_special(i, t) {
                special.insert(t.clone(), i as u32);
                bytes.push(Vec::new());
            } else {
                bytes.push(byte_level_bytes(t, &inv));
            }
        }
        Ok(ChatTokenizer {
            inner,
            bytes,
            special,
        })
    }

    /// Loads a `tokenizer.json`.
    pub(crate) fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| {
            Error::config(format!(
                "chat.tokenizer: cannot read {}: {e}",
                path.display()
            ))
        })?;
        let spec: Value = serde_json::from_slice(&text).map_err(|e| {
            Error::config(format!(
                "chat.tokenizer: {} is not JSON: {e}",
                path.display()
            ))
        })?;
        let inner = tokenizers::Tokenizer::from_bytes(&text).map_err(|e| {
            Error::config(format!(
                "chat.tokenizer: {} does not load: {e}",
                path.display()
            ))
        })?;
        let byte_level = spec["decoder"].to_string().contains("ByteLevel");
        let mut special = HashMap::new();
        if let Some(added) = spec["added_tokens"].as_array() {
            for a in added {
                if a["special"].as_bool() == Some(true)
                    && let (Some(c), Some(id)) = (a["content"].as_str(), a["id"].as_u64())
                {
                    special.insert(c.to_owned(), id as u32);
                }
            }
        }
        let vocab = inner.get_vocab(true);
        let size = vocab.values().map(|&i| i as usize + 1).max().unwrap_or(0);
        let inv = byte_level_inverse();
        let mut bytes = vec![Vec::new(); size];
        for (t, &id) in &vocab {
            if special.contains_key(t) {
                continue;
            }
            bytes[id as usize] = if byte_level {
                byte_level_bytes(t, &inv)
            } else {
                sentencepiece_bytes(t)
            };
        }
        Ok(ChatTokenizer {
            inner,
            bytes,
            special,
        })
    }

    /// Encodes a rendered prompt; special tokens written in it (`<|im_start|>`) are recognised.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| {
                Error::new(
                    merchant_ai::ErrorKind::Unexpected,
                    format!("tokenizing the prompt failed: {e}"),
                )
            })
    }

    /// The bytes of every token (empty for special tokens), indexed by id.
    pub(crate) fn token_bytes(&self) -> &[Vec<u8>] {
        &self.bytes
    }

    /// The id of a special token, by its text.
    pub(crate) fn special_id(&self, content: &str) -> Option<u32> {
        self.special.get(content).copied()
    }

    /// All special tokens' texts.
    pub(crate) fn special_texts(&self) -> impl Iterator<Item = &str> {
        self.special.keys().map(String::as_str)
    }

    /// The text of a token id (special tokens by their name), for diagnostics and tests.
    pub(crate) fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_round_trips() {
        let inv = byte_level_inverse();
        assert_eq!(inv.len(), 256);
        assert_eq!(byte_level_bytes("\u{120}the", &inv), b" the");
        assert_eq!(byte_level_bytes("\u{10a}", &inv), b"\n");
        assert_eq!(byte_level_bytes("\u{c3}\u{a9}", &inv), "é".as_bytes());
    }

    #[test]
    fn sentencepiece_pieces_map_to_bytes() {
        assert_eq!(sentencepiece_bytes("<0x0A>"), b"\n");
        assert_eq!(sentencepiece_bytes("\u{2581}hello"), b" hello");
    }
}
