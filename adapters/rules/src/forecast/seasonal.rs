//! Classical seasonal adjustment used by the M3/M4 benchmark recipe: test
//! for seasonality (90% ACF test at lag m), divide by (or subtract) the
//! classical decomposition's seasonal indices, forecast the adjusted series
//! with a non-seasonal method and put the indices back.

use super::ModelFit;
use super::stats::{seasonal_figure, seasonality_test};

/// Seasonal indices (by position `t % m`) or nothing.
#[derive(Debug, Clone)]
pub(crate) struct Deseason {
    m: usize,
    /// `(indices, multiplicative)`
    fig: Option<(Vec<f64>, bool)>,
}

impl Deseason {
    /// No adjustment.
    pub(crate) fn none() -> Deseason {
        Deseason { m: 1, fig: None }
    }

    /// Adjusts when `m > 1`, there are at least three seasons of data and
    /// the ACF test says seasonal. Multiplicative indices for strictly
    /// positive data, additive otherwise.
    pub(crate) fn detect(y: &[f64], m: usize) -> Deseason {
        if !seasonality_test(y, m) {
            return Deseason::none();
        }
        Deseason::forced(y, m)
    }

    /// Adjusts whenever the indices can be estimated (`n >= 2m`).
    pub(crate) fn forced(y: &[f64], m: usize) -> Deseason {
        let mult = y.iter().all(|&v| v > 0.0);
        match seasonal_figure(y, m, mult) {
            Some(fig) => Deseason {
                m,
                fig: Some((fig, mult)),
            },
            None => Deseason::none(),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_seasonal(&self) -> bool {
        self.fig.is_some()
    }

    /// The seasonally adjusted series.
    pub(crate) fn adjust(&self, y: &[f64]) -> Vec<f64> {
        match &self.fig {
            None => y.to_vec(),
            Some((fig, mult)) => y
                .iter()
                .enumerate()
                .map(|(t, &v)| {
                    if *mult {
                        v / fig[t % self.m]
                    } else {
                        v - fig[t % self.m]
                    }
                })
                .collect(),
        }
    }

    /// Puts the seasonality back into a model fitted on the adjusted series;
    /// `y` is the original (unadjusted) history. The names of SES / Holt /
    /// damped Holt get a `+decomp` suffix (Theta includes the adjustment by
    /// definition and keeps its name). Point, fitted values and
    /// (for multiplicative indices) the forecast sigma are rescaled; the
    /// `m - 1` estimated indices are added to the parameter count and the
    /// one-step sigma is recomputed on the original scale.
    pub(crate) fn restore(&self, mut fit: ModelFit, y: &[f64]) -> ModelFit {
        let Some((fig, mult)) = &self.fig else {
            return fit;
        };
        let n = y.len();
        let m = self.m;
        fit.name = match fit.name {
            "ses" => "ses+decomp",
            "holt" => "holt+decomp",
            "holt_damped" => "holt_damped+decomp",
            other => other,
        };
        let apply = |t: usize, v: f64| {
            if *mult {
                v * fig[t % m]
            } else {
                v + fig[t % m]
            }
        };
        for (i, p) in fit.point.iter_mut().enumerate() {
            *p = apply(n + i, *p);
        }
        if *mult {
            for (i, s) in fit.sigma_h.iter_mut().enumerate() {
                *s *= fig[(n + i) % m];
            }
        }
        for (t, f) in fit.fitted.iter_mut().enumerate() {
            *f = apply(t, *f);
        }
        fit.k += m - 1;
        let (mut sse, mut cnt) = (0.0, 0usize);
        for (a, f) in y.iter().zip(&fit.fitted) {
            if f.is_finite() {
                sse += (a - f) * (a - f);
                cnt += 1;
            }
        }
        if cnt > 0 {
            let dof = if cnt > fit.k { cnt - fit.k } else { cnt };
            let sigma = (sse / dof as f64).sqrt();
            if sigma.is_finite() {
                fit.sigma = sigma;
            }
        }
        fit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pat = [0.5, 1.5, 1.0];
        let y: Vec<f64> = (0..30)
            .map(|t| 10.0 * pat[t % 3] + (t as f64) * 0.01)
            .collect();
        let ds = Deseason::detect(&y, 3);
        assert!(ds.is_seasonal());
        let adj = ds.adjust(&y);
        // the adjusted series has (almost) no seasonal pattern left
        let spread = adj.iter().cloned().fold(f64::MIN, f64::max)
            - adj.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread < 1.0, "{adj:?}");
        let fit = ModelFit {
            name: "x",
            point: vec![1.0; 3],
            sigma_h: vec![0.0; 3],
            sigma: 0.0,
            fitted: adj.clone(),
            k: 1,
        };
        let back = ds.restore(fit, &y);
        for (a, b) in back.fitted.iter().zip(&y) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!(!Deseason::detect(&y[..8], 3).is_seasonal());
    }
}
