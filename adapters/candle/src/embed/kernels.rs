//! The element-wise and attention kernels of the packed BERT forward pass.
//!
//! The matrix products run in candle (gemm); these kernels do the rest on plain slices, fused
//! so that each activation is read and written once: bias + GELU, bias + residual + LayerNorm,
//! and self-attention over packed sequences (no padding, so no mask). Rows are split over the
//! current rayon pool.

use rayon::prelude::*;

/// Rows handed to one rayon task by the element-wise kernels.
const ROWS_PER_TASK: usize = 16;

/// `erf` to within about 1e-7 (a rational approximation that the compiler vectorises),
/// accurate enough that GELU matches the exact one to float rounding.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024_1e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// `x[r][c] = gelu(x[r][c] + bias[c])` with the exact (erf) GELU BERT uses.
pub(crate) fn bias_gelu(x: &mut [f32], bias: &[f32]) {
    let cols = bias.len();
    x.par_chunks_mut(cols * ROWS_PER_TASK).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(cols) {
            for (v, b) in row.iter_mut().zip(bias) {
                let y = *v + b;
                *v = 0.5 * y * (1.0 + erf(y * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    });
}

/// The weights of one LayerNorm.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    /// Normalises one row in place.
    #[inline]
    fn row(&self, row: &mut [f32]) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }

    /// `out[r] = LayerNorm(y[r] + bias + residual[r])`, written over `residual`.
    pub(crate) fn add_bias_residual(&self, y: &[f32], bias: &[f32], residual: &mut [f32]) {
        let cols = bias.len();
        residual
            .par_chunks_mut(cols * ROWS_PER_TASK)
            .zip(y.par_chunks(cols * ROWS_PER_TASK))
            .for_each(|(res, y)| {
                for (r, y) in res.chunks_exact_mut(cols).zip(y.chunks_exact(cols)) {
                    for ((r, y), b) in r.iter_mut().zip(y).zip(bias) {
                        *r += y + b;
                    }
                    self.row(r);
                }
            });
    }

    /// Normalises every row of `x` (width `gamma.len()`) in place.
    pub(crate) fn rows(&self, x: &mut [f32]) {
        let cols = self.gamma.len();
        x.par_chunks_mut(cols * ROWS_PER_TASK).for_each(|chunk| {
            for r in chunk.chunks_exact_mut(cols) {
                self.row(r);
            }
        });
    }
}

/// Dot product with independent partial sums, so that it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (a8, b8) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += a8[l] * b8[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// The shape of multi-head self-attention.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub heads: usize,
    pub head_dim: usize,
}

/// Self-attention over packed sequences.
///
/// `qkv` holds one row of `3 * hidden` values per token (query, key and value projections
/// without their bias), the tokens of each sequence consecutive; `lens` gives the sequence
/// lengths in order. Returns the attention output, `hidden` values per token. Each token
/// attends to the tokens of its own sequence only.
pub(crate) fn attention(qkv: &[f32], bias: &[f32], lens: &[usize], shape: Heads) -> Vec<f32> {
    let hidden = shape.heads * shape.head_dim;
    let width = 3 * hidden;
    let total: usize = lens.iter().sum();
    debug_assert_eq!(qkv.len(), total * width);
    let mut out = vec![0f32; total * hidden];
    // Split the output into one mutable slice per sequence.
    let mut parts = Vec::with_capacity(lens.len());
    let mut rest = out.as_mut_slice();
    let mut start = 0;
    for &len in lens {
        let (head, tail) = rest.split_at_mut(len * hidden);
        parts.push((start, len, head));
        rest = tail;
        start += len;
    }
    let scale = 1.0 / (shape.head_dim as f32).sqrt();
    parts.into_par_iter().for_each(|(start, len, out)| {
        let d = shape.head_dim;
        let rows = &qkv[start * width..(start + len) * width];
        let mut q = vec![0f32; len * d];
        let mut k = vec![0f32; len * d];
        let mut v = vec![0f32; len * d];
        let mut p = vec![0f32; len];
        let mut acc = vec![0f32; d];
        for h in 0..shape.heads {
            let (qo, ko, vo) = (h * d, hidden + h * d, 2 * hidden + h * d);
            for t in 0..len {
                let row = &rows[t * width..(t + 1) * width];
                for i in 0..d {
                    q[t * d + i] = (row[qo + i] + bias[qo + i]) * scale;
                    k[t * d + i] = row[ko + i] + bias[ko + i];
                    v[t * d + i] = row[vo + i] + bias[vo + i];
                }
            }
            for i in 0..len {
                let qi = &q[i * d..(i + 1) * d];
                let mut max = f32::NEG_INFINITY;
                for (j, pj) in p.iter_mut().enumerate() {
                    *pj = dot(qi, &k[j * d..(j + 1) * d]);
                    max = max.max(*pj);
                }
                let mut sum = 0f32;
                for pj in p.iter_mut() {
                    *pj = (*pj - max).exp();
                    sum += *pj;
                }
                let inv = 1.0 / sum;
                acc.iter_mut().for_each(|a| *a = 0.0);
                for (j, pj) in p.iter().enumerate() {
                    let w = pj * inv;
                    for (a, vj) in acc.iter_mut().zip(&v[j * d..(j + 1) * d]) {
                        *a += w * vj;
                    }
                }
                out[i * hidden + h * d..i * hidden + (h + 1) * d].copy_from_slice(&acc);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        for i in -3000..=3000 {
            let x = i as f32 / 1000.0;
            let exact = series_erf(x as f64);
            worst = worst.max((erf(x) as f64 - exact).abs());
        }
        assert!(worst < 1e-6, "erf error {worst}");
        // erfc(3) is 2.2e-5: beyond 3 the value is 1 to that precision, and stays monotone.
        let mut last = erf(3.0);
        for i in 3000..=9000 {
            let x = i as f32 / 1000.0;
            assert!(
                (erf(x) - 1.0).abs() < 2.3e-5 && erf(x) >= last - 1e-6,
                "erf({x})"
            );
            assert_eq!(erf(-x), -erf(x));
            last = erf(x);
        }
    }

    /// erf by its Taylor series in f64 (exact enough for |x| <= 3), for the test only.
    fn series_erf(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0f64;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
            if n > 400.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn layer_norm_of_a_row() {
        let norm = Norm {
            gamma: vec![1.0; 4],
            beta: vec![0.5; 4],
            eps: 0.0,
        };
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        norm.rows(&mut x);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        let var: f32 = x.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-5);
    }

    #[test]
    fn attention_of_a_single_token_is_its_value() {
        let shape = Heads {
            heads: 2,
            head_dim: 2,
        };
        // One token: q = [1,2,3,4], k = [5,6,7,8], v = [9,10,11,12]
        let qkv: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let bias = vec![0.0; 12];
        let out = attention(&qkv, &bias, &[1], shape);
        assert_eq!(out, vec![9.0, 10.0, 11.0, 12.0]);
    }
}
