//! Intermittent demand: Croston (1972), the Syntetos-Boylan approximation
//! (2005) and Teunter-Syntetos-Babai (2011), plus the Syntetos-Boylan
//! classification used by `Auto`.
//!
//! Conventions (as in statsforecast / tsintermittent):
//! * Croston: demand size `z` and inter-demand interval `p` are smoothed
//!   with the same `alpha` only in periods with demand; the first demand
//!   initialises `z`, its position (1-based) initialises `p`.
//!   Forecast `z / p`; SBA multiplies by `1 - alpha / 2`.
//! * TSB: the demand probability `d` is updated every period
//!   (`d += beta * (1[y > 0] - d)`), the size `z` only with demand
//!   (`z += alpha * (y - z)`); forecast `d * z`. Initial `d` = share of
//!   non-zero periods, initial `z` = mean non-zero size; `alpha` and `beta`
//!   are chosen on a small grid by in-sample MSE.

use super::ModelFit;
use super::intervals::ets_sigma_h;

/// Smoothing constant of classic Croston / SBA.
pub(crate) const CROSTON_ALPHA: f64 = 0.1;

/// Average inter-demand interval threshold of Syntetos & Boylan (2005).
pub(crate) const ADI_CUTOFF: f64 = 1.32;

/// Average demand interval `n / #non-zero` (`inf` without demand).
pub(crate) fn adi(y: &[f64]) -> f64 {
    let nz = y.iter().filter(|&&v| v != 0.0).count();
    if nz == 0 {
        f64::INFINITY
    } else {
        y.len() as f64 / nz as f64
    }
}

/// Intermittent ("intermittent" or "lumpy" in the Syntetos-Boylan scheme):
/// non-negative, at least two demands, ADI above 1.32.
pub(crate) fn is_intermittent(y: &[f64]) -> bool {
    let nz = y.iter().filter(|&&v| v != 0.0).count();
    y.iter().all(|&v| v >= 0.0) && nz >= 2 && adi(y) > ADI_CUTOFF
}

fn finish(
    name: &'static str,
    y: &[f64],
    fitted: Vec<f64>,
    last: f64,
    alpha: f64,
    h: usize,
    k: usize,
) -> ModelFit {
    let (mut sse, mut cnt) = (0.0, 0usize);
    for (a, f) in y.iter().zip(&fitted) {
        if f.is_finite() {
            sse += (a - f) * (a - f);
            cnt += 1;
        }
    }
    let sigma = if cnt > 0 {
        (sse / cnt as f64).sqrt()
    } else {
        0.0
    };
    ModelFit {
        name,
        point: vec![last; h],
        sigma_h: ets_sigma_h(sigma, h, alpha, None, None),
        sigma,
        fitted,
        k,
    }
}

/// Croston state after the series: `(z, p, fitted)`; `None` without demand.
fn croston_states(y: &[f64], alpha: f64) -> Option<(f64, f64, Vec<f64>)> {
    let first = y.iter().position(|&v| v != 0.0)?;
    let mut fitted = vec![f64::NAN; y.len()];
    let mut z = y[first];
    let mut p = (first + 1) as f64;
    let mut last = first;
    for t in first + 1..y.len() {
        fitted[t] = z / p;
        if y[t] != 0.0 {
            z += alpha * (y[t] - z);
            p += alpha * ((t - last) as f64 - p);
            last = t;
        }
    }
    Some((z, p, fitted))
}

/// Croston's method (`sba = false`) or SBA (`sba = true`).
pub(crate) fn croston(y: &[f64], alpha: f64, sba: bool, h: usize) -> ModelFit {
    let factor = if sba { 1.0 - alpha / 2.0 } else { 1.0 };
    let name = if sba { "croston_sba" } else { "croston" };
    match croston_states(y, alpha) {
        Some((z, p, mut fitted)) => {
            for f in &mut fitted {
                *f *= factor;
            }
            finish(name, y, fitted, factor * z / p, alpha, h, 3)
        }
        None => finish(name, y, vec![0.0; y.len()], 0.0, alpha, h, 3),
    }
}

/// TSB with fixed parameters: `(forecast, fitted)`.
fn tsb_run(y: &[f64], alpha: f64, beta: f64) -> (f64, Vec<f64>) {
    let n = y.len();
    let nz: Vec<f64> = y.iter().copied().filter(|&v| v != 0.0).collect();
    if nz.is_empty() {
        return (0.0, vec![0.0; n]);
    }
    let mut d = nz.len() as f64 / n as f64;
    let mut z = nz.iter().sum::<f64>() / nz.len() as f64;
    let mut fitted = Vec::with_capacity(n);
    for &v in y {
        fitted.push(d * z);
        if v != 0.0 {
            d += beta * (1.0 - d);
            z += alpha * (v - z);
        } else {
            d -= beta * d;
        }
    }
    (d * z, fitted)
}

/// TSB with fixed parameters.
pub(crate) fn tsb(y: &[f64], alpha: f64, beta: f64, h: usize) -> ModelFit {
    let (last, fitted) = tsb_run(y, alpha, beta);
    finish("tsb", y, fitted, last, alpha.max(beta), h, 5)
}

/// TSB with `alpha` and `beta` picked on a grid by in-sample MSE.
pub(crate) fn tsb_auto(y: &[f64], h: usize) -> ModelFit {
    const GRID_A: [f64; 4] = [0.05, 0.1, 0.2, 0.3];
    const GRID_B: [f64; 4] = [0.02, 0.05, 0.1, 0.2];
    let mut best = (f64::INFINITY, 0.1, 0.1);
    for &a in &GRID_A {
        for &b in &GRID_B {
            let (_, fitted) = tsb_run(y, a, b);
            let mse: f64 = y.iter().zip(&fitted).map(|(v, f)| (v - f) * (v - f)).sum();
            if mse < best.0 {
                best = (mse, a, b);
            }
        }
    }
    tsb(y, best.1, best.2, h)
}

/// In-sample MSE over the periods where every candidate is defined.
fn mse_from(y: &[f64], fitted: &[f64], start: usize) -> f64 {
    let mut s = 0.0;
    let mut c = 0usize;
    for t in start..y.len() {
        if fitted[t].is_finite() {
            s += (y[t] - fitted[t]) * (y[t] - fitted[t]);
            c += 1;
        }
    }
    if c == 0 { f64::INFINITY } else { s / c as f64 }
}

/// Best of Croston, SBA and TSB by in-sample one-step MSE (computed after
/// the first demand, where all three are defined). Ties go to the simpler
/// (earlier) method.
pub(crate) fn auto(y: &[f64], h: usize) -> ModelFit {
    let start = y.iter().position(|&v| v != 0.0).map_or(y.len(), |i| i + 1);
    let cands = [
        croston(y, CROSTON_ALPHA, false, h),
        croston(y, CROSTON_ALPHA, true, h),
        tsb_auto(y, h),
    ];
    let mut best = 0;
    let mut best_mse = f64::INFINITY;
    for (i, c) in cands.iter().enumerate() {
        let mse = mse_from(y, &c.fitted, start);
        if mse < best_mse {
            best_mse = mse;
            best = i;
        }
    }
    cands
        .into_iter()
        .nth(best)
        .unwrap_or_else(|| croston(y, CROSTON_ALPHA, true, h))
}

/// Tiny deterministic generator for test data. No public intermittent
/// retail demand panel ships with this crate (or with any registry package
/// we could use offline), so intermittent behaviour is tested on seeded
/// synthetic series.
#[cfg(test)]
pub(crate) struct XorShift(pub u64);

#[cfg(test)]
impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Bernoulli(p) occurrence times a size in {1, ..., max_size}.
    pub(crate) fn intermittent(&mut self, n: usize, p: f64, max_size: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                if self.uniform() < p {
                    (1 + self.next_u64() % max_size) as f64
                } else {
                    0.0
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn croston_by_hand() {
        // demands 3 at t=2 (interval 3 from the start) and 4 at t=5 (interval 3)
        // z = 3 -> 3 + 0.1 * (4 - 3) = 3.1 ; p = 3 -> 3 + 0.1 * (3 - 3) = 3
        // then 5 at t=9 (interval 4): z = 3.1 + 0.1 * 1.9 = 3.29, p = 3 + 0.1 = 3.1
        let y = [0.0, 0.0, 3.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 5.0, 0.0];
        let (z, p, fitted) = croston_states(&y, 0.1).unwrap();
        assert!((z - 3.29).abs() < 1e-12 && (p - 3.1).abs() < 1e-12);
        assert!(fitted[2].is_nan() && (fitted[3] - 1.0).abs() < 1e-12);
        assert!((fitted[6] - 3.1 / 3.0).abs() < 1e-12);
        let c = croston(&y, 0.1, false, 3);
        assert!((c.point[0] - 3.29 / 3.1).abs() < 1e-12);
        let s = croston(&y, 0.1, true, 3);
        assert!((s.point[2] - 0.95 * 3.29 / 3.1).abs() < 1e-12);
        assert_eq!(s.name, "croston_sba");
    }

    #[test]
    fn tsb_by_hand() {
        // d0 = 2/4 = 0.5, z0 = 3; alpha = 0.5, beta = 0.5
        // y=2: fit 1.5 ; d = 0.75, z = 2.5
        // y=0: fit 1.875 ; d = 0.375
        // y=4: fit 0.9375; d = 0.6875, z = 3.25
        // y=0: fit 2.234375; d = 0.34375 -> forecast 0.34375 * 3.25
        let y = [2.0, 0.0, 4.0, 0.0];
        let (f, fitted) = tsb_run(&y, 0.5, 0.5);
        assert_eq!(fitted, vec![1.5, 1.875, 0.9375, 2.234375]);
        assert!((f - 0.34375 * 3.25).abs() < 1e-12);
    }

    #[test]
    fn seeded_intermittent_series() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20 {
            let y = rng.intermittent(120, 0.25, 6);
            if y.iter().filter(|&&v| v > 0.0).count() < 2 {
                continue;
            }
            assert!(is_intermittent(&y));
            // true mean demand = 0.25 * 3.5 = 0.875
            let mean_y = y.iter().sum::<f64>() / y.len() as f64;
            for fit in [
                croston(&y, 0.1, false, 4),
                croston(&y, 0.1, true, 4),
                tsb_auto(&y, 4),
                auto(&y, 4),
            ] {
                assert!(fit.point.iter().all(|&v| v > 0.0 && v.is_finite()));
                assert!(
                    (fit.point[0] - mean_y).abs() < 0.8,
                    "{} {} vs {}",
                    fit.name,
                    fit.point[0],
                    mean_y
                );
            }
            // SBA is Croston scaled down
            let c = croston(&y, 0.1, false, 1).point[0];
            let s = croston(&y, 0.1, true, 1).point[0];
            assert!((s - 0.95 * c).abs() < 1e-12);
        }
    }

    #[test]
    fn classification() {
        assert!(!is_intermittent(&[1.0, 2.0, 3.0, 0.0, 5.0]));
        assert!(is_intermittent(&[0.0, 0.0, 1.0, 0.0, 2.0]));
        assert!(!is_intermittent(&[0.0, 0.0, -1.0, 0.0, 2.0]));
        assert!(!is_intermittent(&[0.0, 0.0, 0.0, 0.0, 2.0]));
    }
}
