//! The attention, SwiGLU and RoPE arithmetic of llama.cpp's CPU backend, operation for
//! operation, so that greedy generation picks the same tokens as llama.cpp on the same GGUF.
//!
//! A quantized model amplifies rounding: every matrix product first rounds its input to 8 bits,
//! so one activation that lands on the other side of a rounding boundary changes a whole row
//! downstream, and a few such flips decide a near-tie between two tokens. Matching llama.cpp
//! therefore means matching its float operations exactly, not approximately:
//! - the KV cache and the query are rounded to f16 (llama.cpp's default cache type), and so are
//!   the attention weights before they multiply V (the cache keeps the rounded values as f32, so
//!   reading it costs no conversion);
//! - dot products accumulate in 16 lanes with fused multiply-adds and reduce in the same tree as
//!   the AVX-512 build of ggml (`_mm512_reduce_add_ps`): one accumulator for a prompt (the
//!   llamafile tinyBLAS path), four for a single token (`ggml_vec_dot_f16`);
//! - `exp` is ggml's vectorized approximation (`ggml_v_expf`), in the softmax and in SiLU;
//! - RoPE rotates with one fused multiply-add per output, as GCC contracts ggml's C.
//!
//! Everything here is plain Rust; the public entry points run it compiled with FMA when the CPU
//! has it (checked at run time), and with the same fused semantics in software otherwise.

// Loops index lanes explicitly: each index is a SIMD lane whose order the result depends on.
#![allow(clippy::needless_range_loop)]

use half::f16;

/// Lanes of one AVX-512 register.
const LANES: usize = 16;

/// `_mm512_reduce_add_ps` as GCC expands it: halves, then quarters, then pairs.
#[inline(always)]
fn reduce16(a: &[f32; LANES]) -> f32 {
    let mut t = [0f32; 8];
    for i in 0..8 {
        t[i] = a[i + 8] + a[i];
    }
    let u = [t[4] + t[0], t[5] + t[1], t[6] + t[2], t[7] + t[3]];
    (u[0] + u[2]) + (u[1] + u[3])
}

/// ggml's AVX-512 `ggml_v_expf` for one lane (ARM's optimized-routines algorithm: a degree-5
/// polynomial on the reduced argument, scaled by a power of two).
#[inline(always)]
pub(crate) fn expf(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),
        (-n).mul_add(f32::from_bits(0x3f31_7200), x),
    ); // ln 2 in two parts
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010)
        .mul_add(b, f32::from_bits(0x3d2b_9f17))
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)),
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6).mul_add(b, 1.0));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    // `_mm512_scalef_ps(j, n)`: j * 2^n, rounded once (exact in f64, then one rounding to f32).
    (f64::from(j) * 2f64.powi(n as i32)) as f32
}

/// SiLU(gate) * up, in place over `gate` (`ggml_vec_swiglu_f32`).
#[inline(always)]
fn swiglu_body(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = (x / (1.0 + expf(0.0 - x))) * u;
    }
}

/// Rotates pairs `(2i, 2i + 1)` of each `head_dim` head of `x` by position `pos` (ggml's
/// normal RoPE mode, cos/sin from libm as ggml's cache computes them).
#[inline(always)]
fn rope_body(x: &mut [f32], head_dim: usize, pos: usize, theta_scale: f32) {
    for head in x.chunks_exact_mut(head_dim) {
        let mut theta = pos as f32;
        for pair in head.chunks_exact_mut(2) {
            let (s, c) = (theta.sin(), theta.cos());
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a.mul_add(c, -(b * s));
            pair[1] = a.mul_add(s, b * c);
            theta *= theta_scale;
        }
    }
}

/// Which llama.cpp kernel a product runs through: a prompt of two or more tokens goes through
/// llamafile's tinyBLAS, a single token through `ggml_vec_dot_f16`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Path {
    /// tinyBLAS: one 16-lane accumulator over the whole dot product.
    Batch,
    /// `ggml_vec_dot_f16`: four 16-lane accumulators, one per 16 of every 64 values.
    Single,
}

/// Rounds `x` to the nearest f16 (ties to even), kept as the f32 of the same value: the cache
/// holds f16 values without paying a conversion on every read.
#[inline(always)]
pub(crate) fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// One head's K and V rows in the cache (f16 values held as f32): row `p` of K is
/// `k[p * stride + off..][..hd]`.
pub(crate) struct HeadCache<'a> {
    /// The layer's K cache, `stride` values per position.
    pub k: &'a [f32],
    /// The layer's V cache, as K.
    pub v: &'a [f32],
    /// Values per position (all KV heads).
    pub stride: usize,
    /// Offset of this head within a position.
    pub off: usize,
}

#[inline(always)]
fn dot_f16(q: &[f32], k: &[f32], path: Path) -> f32 {
    match path {
        Path::Batch => {
            let mut acc = [0f32; LANES];
            for (qc, kc) in q.chunks_exact(LANES).zip(k.chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc[l] = kc[l].mul_add(qc[l], acc[l]);
                }
            }
            reduce16(&acc)
        }
        Path::Single => {
            let mut acc = [[0f32; LANES]; 4];
            let np = q.len() / 64 * 64;
            for (qs, ks) in q[..np].chunks_exact(64).zip(k[..np].chunks_exact(64)) {
                for j in 0..4 {
                    for l in 0..LANES {
                        let i = j * LANES + l;
                        acc[j][l] = ks[i].mul_add(qs[i], acc[j][l]);
                    }
                }
            }
            let sumf = f64::from(reduce4(&mut acc));
            let rest: f64 = q[np..]
                .iter()
                .zip(&k[np..])
                .map(|(&a, &b)| f64::from(b * a))
                .sum();
            (sumf + rest) as f32
        }
    }
}

/// `GGML_F32Cx16_REDUCE` over four accumulators.
#[inline(always)]
fn reduce4(acc: &mut [[f32; LANES]; 4]) -> f32 {
    for l in 0..LANES {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for l in 0..LANES {
        acc[0][l] += acc[1][l];
    }
    reduce16(&acc[0])
}

/// Scratch space for one (token, head) attention, reused across calls.
#[derive(Default)]
pub(crate) struct Scratch {
    q: Vec<f32>,
    e: Vec<f32>,
    w: Vec<f32>,
    acc: Vec<f32>,
}

/// Causal attention of one query head over positions `0..n` of the cache, into `out` (head_dim).
#[inline(always)]
fn attend_body(
    q: &[f32],
    cache: &HeadCache<'_>,
    n: usize,
    scale: f32,
    path: Path,
    s: &mut Scratch,
    out: &mut [f32],
) {
    let hd = q.len();
    s.q.clear();
    s.q.extend(q.iter().map(|&a| round_f16(a)));
    let np = n.div_ceil(LANES) * LANES;
    s.e.clear();
    s.e.resize(np, 0.0);
    let mut max = f32::NEG_INFINITY;
    for p in 0..n {
        let base = p * cache.stride + cache.off;
        let v = dot_f16(&s.q, &cache.k[base..base + hd], path) * scale;
        s.e[p] = v;
        max = max.max(v);
    }
    // ggml_vec_soft_max_f32: exp in 16-lane chunks, each chunk reduced in f32, summed in f64.
    let mut sum = 0f64;
    for (c, chunk) in s.e.chunks_exact_mut(LANES).enumerate() {
        let mut vals = [0f32; LANES];
        for l in 0..LANES {
            if c * LANES + l < n {
                vals[l] = expf(chunk[l] - max);
            }
        }
        chunk.copy_from_slice(&vals);
        sum += f64::from(reduce16(&vals));
    }
    let inv = (1.0 / sum) as f32;
    s.w.clear();
    s.w.extend(s.e[..n].iter().map(|&x| round_f16(x * inv)));
    // Weights times V: per output dimension, lanes over positions (the zero weights of the
    // padded positions add nothing).
    let groups = match path {
        Path::Batch => 1,
        Path::Single => 4,
    };
    s.acc.clear();
    s.acc.resize(groups * LANES * hd, 0.0);
    for (p, &w) in s.w.iter().enumerate() {
        let slot = match path {
            Path::Batch => p % LANES,
            Path::Single => (p % 64) / LANES * LANES + p % LANES,
        };
        let base = p * cache.stride + cache.off;
        let vrow = &cache.v[base..base + hd];
        let acc = &mut s.acc[slot * hd..(slot + 1) * hd];
        for (a, v) in acc.iter_mut().zip(vrow) {
            *a = w.mul_add(*v, *a);
        }
    }
    for (d, o) in out.iter_mut().enumerate() {
        let lane = |slot: usize| s.acc[slot * hd + d];
        *o = match path {
            Path::Batch => reduce16(&std::array::from_fn(lane)),
            Path::Single => {
                let mut acc: [[f32; LANES]; 4] =
                    std::array::from_fn(|j| std::array::from_fn(|l| lane(j * LANES + l)));
                reduce4(&mut acc)
            }
        };
    }
}

fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::fast::has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `pub(crate) fn $name` running `$body` compiled with FMA (and AVX2) when the CPU has
/// them, checked at run time: `mul_add` is then one instruction instead of a libm call. Both
/// compute the same bits.
macro_rules! fma_dispatch {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$meta])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn with_fma($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if has_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { with_fma($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

fma_dispatch! {
    /// Attention of one query head `q` over cache positions `0..n`, written to `out`.
    fn attend(
        q: &[f32],
        cache: &HeadCache<'_>,
        n: usize,
        scale: f32,
        path: Path,
        s: &mut Scratch,
        out: &mut [f32],
    ) => attend_body
}

fma_dispatch! {
    /// SiLU(gate) * up in place over `gate`.
    fn swiglu(gate: &mut [f32], up: &[f32]) => swiglu_body
}

fma_dispatch! {
    /// RoPE (normal mode) over every head of `x` at position `pos`.
    fn rope(x: &mut [f32], head_dim: usize, pos: usize, theta_scale: f32) => rope_body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_is_close_to_libm_and_saturates() {
        // Within f32's range (e^88.7 is the largest finite value).
        for i in -1740..1770 {
            let x = i as f32 * 0.05;
            let (a, b) = (expf(x), x.exp());
            assert!(
                (a - b).abs() <= 4.0 * f32::EPSILON * b.max(f32::MIN_POSITIVE),
                "{x}"
            );
        }
        assert_eq!(expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf(-200.0), 0.0);
        assert_eq!(expf(200.0), f32::INFINITY);
        assert_eq!(expf(0.0), 1.0);
    }

    #[test]
    fn reduce_tree_is_the_avx512_one() {
        // Values whose sum depends on the order: the tree adds 1e8 and -1e8 first.
        let mut a = [1.0f32; LANES];
        a[0] = 1e8;
        a[8] = -1e8;
        assert_eq!(reduce16(&a), 14.0);
    }

    #[test]
    fn attention_weights_sum_to_one_and_pick_the_matching_key() {
        let hd = 64;
        let n = 40;
        let mut k = vec![0f32; n * hd];
        let mut v = vec![0f32; n * hd];
        for p in 0..n {
            k[p * hd + p % hd] = 8.0;
            v[p * hd] = p as f32;
        }
        let mut q = vec![0f32; hd];
        q[7] = 8.0;
        let cache = HeadCache {
            k: &k,
            v: &v,
            stride: hd,
            off: 0,
        };
        for path in [Path::Batch, Path::Single] {
            let mut out = vec![0f32; hd];
            attend(&q, &cache, n, 1.0, path, &mut Scratch::default(), &mut out);
            assert!((out[0] - 7.0).abs() < 1e-3, "{path:?}: {}", out[0]);
        }
    }
}
