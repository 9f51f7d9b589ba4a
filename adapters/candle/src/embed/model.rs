//! A BERT encoder whose forward pass packs the sequences of a batch end to end.
//!
//! Every per-token step (embeddings, the Q/K/V, output and feed-forward projections, GELU,
//! LayerNorm) runs on one `(total tokens, hidden)` matrix that holds only real tokens, so no
//! time goes to padding, and the projections are a few large matrix products (candle's gemm)
//! instead of many small ones. Only self-attention looks at sequence boundaries, and it does so
//! without padding or a mask. The result equals candle-transformers' `BertModel` with an
//! attention mask (a test checks it), followed by masked mean pooling.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Storage, Tensor};
use merchant_ai::{Error, Result};
use serde::Deserialize;

use super::kernels::{self, Heads, Norm};

/// The fields of a BERT `config.json` the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Checks what the encoder supports; the message names the field.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return Err(
                "hidden_size, num_attention_heads and num_hidden_layers must be positive".into(),
            );
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act \"{}\" is not supported (only \"gelu\")",
                self.hidden_act
            ));
        }
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => {
                return Err(format!(
                    "position_embedding_type \"{other}\" is not supported (only \"absolute\")"
                ));
            }
        }
        if self.type_vocab_size == 0 || self.vocab_size == 0 || self.max_position_embeddings < 2 {
            return Err(
                "vocab_size, type_vocab_size and max_position_embeddings must be positive".into(),
            );
        }
        Ok(())
    }
}

struct Layer {
    /// `(hidden, 3 * hidden)`: the query, key and value weights side by side, transposed.
    qkv_t: Tensor,
    qkv_b: Vec<f32>,
    out_t: Tensor,
    out_b: Vec<f32>,
    norm1: Norm,
    up_t: Tensor,
    up_b: Vec<f32>,
    down_t: Tensor,
    down_b: Vec<f32>,
    norm2: Norm,
}

/// The loaded encoder.
pub(crate) struct Encoder {
    cfg: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("hidden_size", &self.cfg.hidden_size)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

fn cerr(what: &str) -> impl FnOnce(candle_core::Error) -> Error + '_ {
    move |e| Error::config(format!("{what}: {e}"))
}

/// The tensors of a safetensors file, found with or without the `bert.` prefix.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: String,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let key = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&key)
            .ok_or_else(|| Error::config(format!("the weights have no tensor \"{key}\"")))?;
        if t.dims() != shape {
            return Err(Error::config(format!(
                "tensor \"{key}\" has shape {:?}, the config says {shape:?}",
                t.dims()
            )));
        }
        t.to_dtype(DType::F32)
            .map_err(cerr(&format!("tensor \"{key}\"")))
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.get(name, shape)?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(cerr(name))
    }

    fn norm(&self, name: &str, size: usize, eps: f64) -> Result<Norm> {
        // Old checkpoints name LayerNorm parameters gamma/beta.
        let (w, b) = if self
            .tensors
            .contains_key(&format!("{}{name}.weight", self.prefix))
        {
            ("weight", "bias")
        } else {
            ("gamma", "beta")
        };
        Ok(Norm {
            gamma: self.vec(&format!("{name}.{w}"), &[size])?,
            beta: self.vec(&format!("{name}.{b}"), &[size])?,
            eps: eps as f32,
        })
    }
}

impl Encoder {
    /// Loads `model.safetensors` from `dir` for `cfg`.
    pub(crate) fn load(weights: &Path, cfg: BertConfig) -> Result<Encoder> {
        cfg.validate()
            .map_err(|e| Error::config(format!("config.json: {e}")))?;
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)
            .map_err(|e| Error::config(format!("{}: {e}", weights.display())))?;
        let prefix = ["", "bert.", "model."]
            .into_iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .or_else(|| {
                cfg.model_type.as_deref().and_then(|m| {
                    tensors
                        .contains_key(&format!("{m}.embeddings.word_embeddings.weight"))
                        .then_some(m)
                })
            })
            .ok_or_else(|| {
                Error::config(format!(
                    "{}: no tensor \"embeddings.word_embeddings.weight\" (with or without a \"bert.\" prefix); is this a BERT model?",
                    weights.display()
                ))
            })?;
        let prefix = if prefix.is_empty() || prefix.ends_with('.') {
            prefix.to_owned()
        } else {
            format!("{prefix}.")
        };
        let w = Weights { tensors, prefix };
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let word = w.vec("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let position = w.vec(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let token_type = w.vec(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab_size, h],
        )?;
        let norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let qkv = Tensor::cat(
                &[
                    w.get(&format!("{p}.attention.self.query.weight"), &[h, h])?,
                    w.get(&format!("{p}.attention.self.key.weight"), &[h, h])?,
                    w.get(&format!("{p}.attention.self.value.weight"), &[h, h])?,
                ],
                0,
            )
            .map_err(cerr("attention weights"))?;
            let mut qkv_b = w.vec(&format!("{p}.attention.self.query.bias"), &[h])?;
            qkv_b.extend(w.vec(&format!("{p}.attention.self.key.bias"), &[h])?);
            qkv_b.extend(w.vec(&format!("{p}.attention.self.value.bias"), &[h])?);
            let t = |name: &str, shape: &[usize]| -> Result<Tensor> {
                w.get(name, shape)?.t().map_err(cerr(name))
            };
            layers.push(Layer {
                qkv_t: qkv.t().map_err(cerr("attention weights"))?,
                qkv_b,
                out_t: t(&format!("{p}.attention.output.dense.weight"), &[h, h])?,
                out_b: w.vec(&format!("{p}.attention.output.dense.bias"), &[h])?,
                norm1: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                up_t: t(
                    &format!("{p}.intermediate.dense.weight"),
                    &[cfg.intermediate_size, h],
                )?,
                up_b: w.vec(
                    &format!("{p}.intermediate.dense.bias"),
                    &[cfg.intermediate_size],
                )?,
                down_t: t(
                    &format!("{p}.output.dense.weight"),
                    &[h, cfg.intermediate_size],
                )?,
                down_b: w.vec(&format!("{p}.output.dense.bias"), &[h])?,
                norm2: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Encoder {
            token_type0: token_type[..h].to_vec(),
            cfg,
            word,
            position,
            norm,
            layers,
        })
    }

    /// The vector length.
    pub(crate) fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    /// The longest sequence the position embeddings allow.
    pub(crate) fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// Encodes the sequences (token ids, special tokens included) and returns, per sequence,
    /// the mean of its token vectors, L2-normalised.
    pub(crate) fn embed(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.cfg.hidden_size;
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        if let Some(bad) = lens
            .iter()
            .find(|&&l| l == 0 || l > self.cfg.max_position_embeddings)
        {
            return Err(Error::invalid_request(format!(
                "a sequence of {bad} tokens: must be 1 to {}",
                self.cfg.max_position_embeddings
            )));
        }
        let total: usize = lens.iter().sum();
        let mut x = vec![0f32; total * h];
        let mut row = 0;
        for seq in seqs {
            for (pos, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= self.cfg.vocab_size {
                    return Err(Error::invalid_request(format!(
                        "token id {id} is outside the model's vocabulary of {}",
                        self.cfg.vocab_size
                    )));
                }
                let dst = &mut x[row * h..(row + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                for i in 0..h {
                    dst[i] = w[i] + p[i] + self.token_type0[i];
                }
                row += 1;
            }
        }
        self.norm.rows(&mut x);
        let heads = Heads {
            heads: self.cfg.num_attention_heads,
            head_dim: h / self.cfg.num_attention_heads,
        };
        for layer in &self.layers {
            let qkv = matmul(&x, total, &layer.qkv_t)?;
            let ctx = with_slice(&qkv, |qkv| {
                kernels::attention(qkv, &layer.qkv_b, &lens, heads)
            })?;
            drop(qkv);
            let ctx = Tensor::from_vec(ctx, (total, h), &Device::Cpu).map_err(cerr("attention"))?;
            let attn = ctx.matmul(&layer.out_t).map_err(cerr("matmul"))?;
            drop(ctx);
            with_slice(&attn, |a| {
                layer.norm1.add_bias_residual(a, &layer.out_b, &mut x)
            })?;
            let up = matmul(&x, total, &layer.up_t)?;
            up.inplace_op1(&BiasGelu(&layer.up_b))
                .map_err(cerr("gelu"))?;
            let down = up.matmul(&layer.down_t).map_err(cerr("matmul"))?;
            drop(up);
            with_slice(&down, |d| {
                layer.norm2.add_bias_residual(d, &layer.down_b, &mut x)
            })?;
        }
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        for len in lens {
            let mut v = vec![0f32; h];
            for r in start..start + len {
                for (o, x) in v.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *o += x;
                }
            }
            start += len;
            // Mean pooling, then L2 normalisation: the mean's 1/len cancels out.
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            v.iter_mut().for_each(|a| *a *= scale);
            out.push(v);
        }
        Ok(out)
    }
}

/// `x (rows, k) @ w_t (k, n)` through candle's gemm.
fn matmul(x: &[f32], rows: usize, w_t: &Tensor) -> Result<Tensor> {
    let k = x.len() / rows.max(1);
    let xt = Tensor::from_slice(x, (rows, k), &Device::Cpu).map_err(cerr("matmul input"))?;
    xt.matmul(w_t).map_err(cerr("matmul"))
}

/// Runs `f` on the contiguous f32 data of a CPU tensor, without copying it.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::config("the embedding model runs on the CPU only"));
    };
    let data = cpu.as_slice::<f32>().map_err(cerr("tensor data"))?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::config("internal: a matmul result is not contiguous"))?;
    Ok(f(&data[start..end]))
}

/// `x = gelu(x + bias)` in place, on a contiguous `(rows, bias.len())` f32 tensor.
struct BiasGelu<'a>(&'a [f32]);

impl candle_core::InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("bias-gelu: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("bias-gelu: the tensor must be contiguous");
        };
        kernels::bias_gelu(&mut data[start..end], self.0);
        Ok(())
    }
}
