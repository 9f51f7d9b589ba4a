//! The standard Theta method of Assimakopoulos & Nikolopoulos (2000) in the
//! form shown by Hyndman & Billah (2003) and implemented by
//! `forecast::thetaf`: simple exponential smoothing with a drift equal to
//! half the slope of the OLS trend line,
//!
//! `yhat(n + h) = l_n + b/2 * ((h - 1) + (1 - (1 - alpha)^n) / alpha)`,
//!
//! applied to the classically (multiplicatively) deseasonalised series when
//! the 90% ACF test at lag `m` finds seasonality (M3/M4 benchmark protocol).
//! Because the theta = 0 line carries the full slope and the theta = 2 line
//! is extrapolated flat by SES, the long-run slope of the forecast is `b/2`
//! by design.

use super::ModelFit;
use super::ets::{self, EtsFit, Season, Spec, Trend};
use super::intervals::ets_sigma_h;
use super::naive;
use super::seasonal::Deseason;
use super::stats::linear_trend;

/// Full Theta method on the raw series (seasonal adjustment included).
pub(crate) fn theta(y: &[f64], m: usize, h: usize) -> ModelFit {
    let ds = Deseason::detect(y, m);
    let ya = ds.adjust(y);
    match ets::fit(&ya, 1, Spec::new(Trend::None, Season::None)) {
        Some(ses) => ds.restore(theta_from_ses(&ya, &ses, h), y),
        None => naive::naive(y, h),
    }
}

/// Theta forecast from an SES fit `ses` on the (adjusted) series `y`.
pub(crate) fn theta_from_ses(y: &[f64], ses: &EtsFit, h: usize) -> ModelFit {
    let n = y.len();
    let (_, slope) = linear_trend(y);
    let drift = slope / 2.0;
    let a = ses.params.alpha;
    let tail = |t: usize| (1.0 - (1.0 - a).powf(t as f64)) / a;
    let tn = tail(n);
    let point: Vec<f64> = (0..h)
        .map(|i| ses.level + drift * (i as f64 + tn))
        .collect();
    // one-step in-sample predictions of SES with drift, drift term computed
    // with the number of observations seen so far
    let fitted: Vec<f64> = ses
        .fitted
        .iter()
        .enumerate()
        .map(|(t, f)| f + drift * tail(t))
        .collect();
    let k = 4; // alpha, l0, drift, sigma
    let sse: f64 = y.iter().zip(&fitted).map(|(a, f)| (a - f) * (a - f)).sum();
    let dof = if n > k { n - k } else { n };
    let sigma = (sse / dof as f64).sqrt();
    ModelFit {
        name: "theta",
        point,
        sigma_h: ets_sigma_h(sigma, h, a, None, None),
        sigma,
        fitted,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ets::{Params, fit_fixed};
    use super::*;

    #[test]
    fn theta_by_hand_with_fixed_alpha() {
        // SES(alpha 0.5, l0 1) on 1,2,3,4: levels 1, 1.5, 2.25, 3.125
        // OLS slope 1 -> drift 0.5; (1 - 0.5^4) / 0.5 = 1.875
        let y = [1.0, 2.0, 3.0, 4.0];
        let params = Params {
            alpha: 0.5,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
            l0: 1.0,
            b0: 0.0,
        };
        let ses = fit_fixed(&y, 1, Spec::new(Trend::None, Season::None), params, &[]);
        let f = theta_from_ses(&y, &ses, 2);
        assert!((f.point[0] - 4.0625).abs() < 1e-12, "{:?}", f.point);
        assert!((f.point[1] - 4.5625).abs() < 1e-12);
    }

    #[test]
    fn theta_on_linear_series_extrapolates_the_trend() {
        let y: Vec<f64> = (0..30).map(|t| 5.0 + 2.0 * t as f64).collect();
        let f = theta(&y, 1, 6);
        // SES tracks the line (alpha -> 1), so the forecast starts just above
        // the last value and rises with slope b/2 = 1 per period
        let last = y[29];
        assert!((f.point[0] - (last + 1.0)).abs() < 0.05, "{:?}", f.point);
        for w in f.point.windows(2) {
            assert!((w[1] - w[0] - 1.0).abs() < 1e-9);
        }
        // noisy line: still increasing with roughly half the slope
        let y: Vec<f64> = (0..60)
            .map(|t| 100.0 + 2.0 * t as f64 + if t % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        let f = theta(&y, 1, 12);
        assert!(f.point[0] > 210.0 && f.point[0] < 230.0, "{:?}", f.point);
        assert!((f.point[11] - f.point[0] - 11.0).abs() < 0.5);
    }

    #[test]
    fn theta_deseasonalises_seasonal_series() {
        let pat = [0.7, 1.3, 1.1, 0.9];
        let y: Vec<f64> = (0..40)
            .map(|t| (50.0 + 0.5 * t as f64) * pat[t % 4])
            .collect();
        let f = theta(&y, 4, 4);
        // the forecast carries the seasonal shape
        assert!(f.point[1] > f.point[0] * 1.5, "{:?}", f.point);
        assert!(f.point[3] < f.point[2]);
    }
}
