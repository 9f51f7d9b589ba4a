//! External regressors (promotions, price changes, holidays, ...).
//!
//! Effects are estimated by one OLS of the series on an intercept, a linear
//! trend, Fourier seasonal terms (when there are two full seasons) and the
//! regressors. Trend and seasonality are in the design so that regressor
//! effects are not confounded with them. Only the regressor part of the fit
//! is used: it is subtracted from the history (the base series is then
//! forecast by the chosen method) and the effects of the future regressor
//! values are added to the forecast.

use super::Regressors;
use super::stats::solve;

/// Regressor contributions on the history and on the horizon.
#[derive(Debug, Clone)]
pub(crate) struct Effects {
    pub history: Vec<f64>,
    pub future: Vec<f64>,
    /// One coefficient per regressor (0 for those not estimable).
    #[allow(dead_code)]
    pub coef: Vec<f64>,
}

/// Number of Fourier pairs for season length `m`.
fn fourier_pairs(m: usize, n: usize) -> usize {
    if m < 2 || n < 2 * m {
        0
    } else {
        (m / 2).min(6)
    }
}

/// Estimates regressor effects for `y` (already scaled).
pub(crate) fn effects(y: &[f64], m: usize, reg: &Regressors, h: usize) -> Effects {
    let n = y.len();
    let r = reg.history.len();
    let zero = || Effects {
        history: vec![0.0; n],
        future: vec![0.0; h],
        coef: vec![0.0; r],
    };
    // regressors that vary in the history; constant ones carry no
    // information separable from the intercept
    let usable: Vec<usize> = (0..r)
        .filter(|&i| {
            let c = &reg.history[i];
            c.iter()
                .any(|&v| (v - c[0]).abs() > 1e-12 * c[0].abs().max(1e-300))
        })
        .collect();
    if usable.is_empty() {
        return zero();
    }
    let k_f = fourier_pairs(m, n);
    let mut cols: Vec<Vec<f64>> = Vec::new();
    cols.push(vec![1.0; n]);
    if n >= 3 {
        let nf = n as f64;
        cols.push((0..n).map(|t| t as f64 / nf).collect());
    }
    for k in 1..=k_f {
        let w = 2.0 * std::f64::consts::PI * k as f64 / m as f64;
        cols.push((0..n).map(|t| (w * t as f64).cos()).collect());
        if 2 * k != m {
            cols.push((0..n).map(|t| (w * t as f64).sin()).collect());
        }
    }
    let base = cols.len();
    // standardise regressors for conditioning
    let mut scales = Vec::with_capacity(usable.len());
    for &i in &usable {
        let c = &reg.history[i];
        let s = c.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
        scales.push(s);
        cols.push(c.iter().map(|v| v / s).collect());
    }
    let k = cols.len();
    if n <= k {
        // not enough data for the full design: regressors only + intercept
        if n <= usable.len() + 1 {
            return zero();
        }
        cols.truncate(1);
        for (j, &i) in usable.iter().enumerate() {
            cols.push(reg.history[i].iter().map(|v| v / scales[j]).collect());
        }
        return solve_effects(y, &cols, 1, &usable, &scales, reg, h, r);
    }
    solve_effects(y, &cols, base, &usable, &scales, reg, h, r)
}

#[allow(clippy::too_many_arguments)]
fn solve_effects(
    y: &[f64],
    cols: &[Vec<f64>],
    base: usize,
    usable: &[usize],
    scales: &[f64],
    reg: &Regressors,
    h: usize,
    r: usize,
) -> Effects {
    let n = y.len();
    let k = cols.len();
    let mut xtx = vec![0.0; k * k];
    let mut xty = vec![0.0; k];
    for a in 0..k {
        for b in a..k {
            let s: f64 = cols[a].iter().zip(&cols[b]).map(|(u, v)| u * v).sum();
            xtx[a * k + b] = s;
            xtx[b * k + a] = s;
        }
        xty[a] = cols[a].iter().zip(y).map(|(u, v)| u * v).sum();
    }
    // tiny ridge for numerical safety (collinear promotions, ...)
    for a in 1..k {
        xtx[a * k + a] += 1e-9 * (xtx[a * k + a] + 1.0);
    }
    let mut coef = vec![0.0; r];
    let Some(beta) = solve(xtx, xty, k) else {
        return Effects {
            history: vec![0.0; n],
            future: vec![0.0; h],
            coef,
        };
    };
    let mut history = vec![0.0; n];
    let mut future = vec![0.0; h];
    for (j, &i) in usable.iter().enumerate() {
        let b = beta[base + j] / scales[j];
        coef[i] = b;
        for (t, v) in reg.history[i].iter().enumerate() {
            history[t] += b * v;
        }
        for (t, v) in reg.future[i].iter().enumerate() {
            future[t] += b * v;
        }
    }
    Effects {
        history,
        future,
        coef,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_additive_effect() {
        let n = 60;
        let promo: Vec<f64> = (0..n).map(|t| if t % 7 == 3 { 1.0 } else { 0.0 }).collect();
        let y: Vec<f64> = (0..n)
            .map(|t| 10.0 + 0.1 * t as f64 + [1.0, -1.0, 0.5, -0.5][t % 4] + 5.0 * promo[t])
            .collect();
        let reg = Regressors {
            history: vec![promo.clone()],
            future: vec![vec![1.0, 0.0]],
        };
        let e = effects(&y, 4, &reg, 2);
        assert!((e.coef[0] - 5.0).abs() < 0.05, "{:?}", e.coef);
        assert!((e.future[0] - 5.0).abs() < 0.05 && e.future[1].abs() < 1e-12);
    }

    #[test]
    fn constant_regressor_is_ignored() {
        let reg = Regressors {
            history: vec![vec![1.0; 5]],
            future: vec![vec![0.0]],
        };
        let e = effects(&[1.0, 2.0, 3.0, 4.0, 5.0], 1, &reg, 1);
        assert_eq!(e.coef, vec![0.0]);
    }
}
