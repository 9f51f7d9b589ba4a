//! Naive and seasonal naive forecasts (random walk / seasonal random walk).

use super::ModelFit;
use super::intervals::random_walk_sigma_h;

/// Repeats the last value. Sigma is the RMS of the one-step changes and
/// grows like `sqrt(h)`; a single observation gives zero-width intervals.
pub(crate) fn naive(y: &[f64], h: usize) -> ModelFit {
    let n = y.len();
    let last = y[n - 1];
    let mut fitted = vec![f64::NAN; n];
    let mut ss = 0.0;
    for t in 1..n {
        fitted[t] = y[t - 1];
        let d = y[t] - y[t - 1];
        ss += d * d;
    }
    let sigma = if n > 1 {
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    ModelFit {
        name: "naive",
        point: vec![last; h],
        sigma_h: random_walk_sigma_h(sigma, h),
        sigma,
        fitted,
        k: 1,
    }
}

/// Repeats the last full season: `yhat(n + h) = y(n + h - m * ceil(h / m))`.
/// Sigma is the RMS of the lag-`m` changes and grows with the number of
/// seasons ahead. Falls back to [`naive`] when `m <= 1` or `n < m`.
pub(crate) fn seasonal_naive(y: &[f64], m: usize, h: usize) -> ModelFit {
    let n = y.len();
    if m <= 1 || n < m {
        return naive(y, h);
    }
    let point = (0..h).map(|i| y[n - m + i % m]).collect();
    let mut fitted = vec![f64::NAN; n];
    let mut ss = 0.0;
    for t in m..n {
        fitted[t] = y[t - m];
        let d = y[t] - y[t - m];
        ss += d * d;
    }
    let sigma = if n > m {
        (ss / (n - m) as f64).sqrt()
    } else {
        0.0
    };
    ModelFit {
        name: "seasonal_naive",
        point,
        sigma_h: (0..h)
            .map(|i| sigma * ((i / m + 1) as f64).sqrt())
            .collect(),
        sigma,
        fitted,
        k: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_repeats_last_value() {
        let f = naive(&[1.0, 3.0, 2.0], 3);
        assert_eq!(f.point, vec![2.0; 3]);
        // changes: +2, -1 -> sigma = sqrt(5/2)
        assert!((f.sigma - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((f.sigma_h[3 - 1] - 2.5f64.sqrt() * 3f64.sqrt()).abs() < 1e-12);
        let one = naive(&[7.0], 2);
        assert_eq!(one.point, vec![7.0, 7.0]);
        assert_eq!(one.sigma_h, vec![0.0, 0.0]);
    }

    #[test]
    fn seasonal_naive_repeats_last_season() {
        let y = [1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0];
        let f = seasonal_naive(&y, 4, 6);
        assert_eq!(f.point, vec![11.0, 12.0, 13.0, 14.0, 11.0, 12.0]);
        assert!((f.sigma - 10.0).abs() < 1e-12);
        assert!((f.sigma_h[4] - 10.0 * 2f64.sqrt()).abs() < 1e-12);
        // too short for a season: naive
        assert_eq!(seasonal_naive(&y[..3], 4, 2).point, vec![3.0, 3.0]);
    }
}
