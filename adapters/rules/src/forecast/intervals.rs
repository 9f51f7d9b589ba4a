//! The construction of forecast quantiles from a point forecast and a
//! horizon-dependent sigma (normal quantiles come from the core).

pub use merchant_ai::replenish::normal_quantile;

/// Builds the requested quantiles: `point + z(q) * sigma_h`, clamped below
/// at 0 when `non_negative`. Quantiles are monotone in `q` at every step
/// because `sigma_h >= 0` and clamping is monotone.
pub(crate) fn build_quantiles(
    point: &[f64],
    sigma_h: &[f64],
    quantiles: &[f64],
    non_negative: bool,
) -> Vec<(f64, Vec<f64>)> {
    quantiles
        .iter()
        .map(|&q| {
            let z = normal_quantile(q);
            let values = point
                .iter()
                .zip(sigma_h)
                .map(|(&p, &s)| {
                    let s = if s.is_finite() && s > 0.0 { s } else { 0.0 };
                    let v = if s == 0.0 { p } else { p + z * s };
                    let v = v.clamp(-f64::MAX, f64::MAX);
                    if non_negative { v.max(0.0) } else { v }
                })
                .collect();
            (q, values)
        })
        .collect()
}

/// Weight, in pseudo-observations, of the model's own sigma_h in
/// [`holdout_scale`] (the holdout errors count one each).
pub(crate) const HOLDOUT_PRIOR: f64 = 2.0;
/// Largest widening [`holdout_scale`] applies.
const HOLDOUT_MAX: f64 = 4.0;
/// Smallest factor [`holdout_scale`] applies.
const HOLDOUT_MIN: f64 = 1.0;

/// Empirical calibration of the interval width on rolling-origin
/// holdouts: the method is refitted (`refit(train, hv)`) on `y` without its
/// last `hv = min(h, n / 3)` points and, when the series is long enough, a
/// second time from an origin `ceil(hv / 2)` points earlier (still `hv`
/// steps ahead); its standardised errors `z = (y - point) / sigma_h` on the
/// held-out points are pooled over steps and origins, and the returned
/// factor is `sqrt((w + sum z^2) / (w + count))` with `w =`
/// [`HOLDOUT_PRIOR`]: the model's analytic `sigma_h` is kept when its
/// holdout errors agree with it, and widened towards what they show
/// otherwise. The factor is clamped to `[1, 4]` (a few held-out points are
/// too little evidence to narrow an interval); 1 when no holdout is
/// possible.
///
/// On the 3003 M3 series (`Auto`) this moved the share of test actuals
/// inside the 10-90% band from 74.6% to 82.8% (yearly 66.5% -> 77.8%,
/// quarterly 72.2% -> 80.5%, monthly 75.9% -> 83.9%, other 83.4% -> 86.8%)
/// and below q0.9 from 84.5% to 89.1%; the point forecast is unchanged.
/// One origin instead of two gave 81.7% overall but only 75.7% on yearly
/// series (a noisier factor widens less on average where it matters).
pub(crate) fn holdout_scale(
    y: &[f64],
    h: usize,
    refit: impl Fn(&[f64], usize) -> Option<super::ModelFit>,
) -> f64 {
    let n = y.len();
    let hv = h.min(n / 3);
    if hv == 0 {
        return 1.0;
    }
    let mut ss = 0.0;
    let mut cnt = 0usize;
    let back = hv.div_ceil(2);
    let origins = if n >= hv + back + 2 { ORIGINS } else { 1 };
    for o in 0..origins {
        let end = n - o * back;
        let Some(fit) = refit(&y[..end - hv], hv) else {
            continue;
        };
        for ((a, p), s) in y[end - hv..end].iter().zip(&fit.point).zip(&fit.sigma_h) {
            if s.is_finite() && *s > 0.0 && p.is_finite() {
                let z = (a - p) / s;
                ss += z * z;
                cnt += 1;
            }
        }
    }
    if cnt == 0 || ss.is_nan() {
        return 1.0;
    }
    let f = ((HOLDOUT_PRIOR + ss) / (HOLDOUT_PRIOR + cnt as f64)).sqrt();
    if !f.is_nan() {
        f.clamp(HOLDOUT_MIN, HOLDOUT_MAX)
    } else {
        1.0
    }
}

/// Number of holdout origins of [`holdout_scale`].
const ORIGINS: usize = 2;

/// Forecast-variance multipliers of the linear exponential smoothing models
/// with additive errors ("class 1" of Hyndman et al. 2008, table 6.1):
/// `sigma_h = sigma * sqrt(1 + sum_{j=1}^{h-1} c_j^2)` with
/// `c_j = alpha + beta * phi_j + gamma * [j mod m == 0]`,
/// `phi_j = phi + ... + phi^j` (`= j` without damping, 0 without trend).
pub(crate) fn ets_sigma_h(
    sigma: f64,
    horizon: usize,
    alpha: f64,
    beta: Option<(f64, f64)>,
    gamma: Option<(f64, usize)>,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(horizon);
    let mut acc = 1.0f64;
    let mut phi_j = 0.0;
    let mut phi_pow = 1.0;
    for h in 1..=horizon {
        out.push(sigma * acc.sqrt());
        // add c_h^2 for the next step
        let j = h;
        let mut c = alpha;
        if let Some((beta, phi)) = beta {
            phi_pow *= phi;
            phi_j += phi_pow;
            c += beta * phi_j;
        }
        if let Some((gamma, m)) = gamma
            && m > 0
            && j % m == 0
        {
            c += gamma;
        }
        acc += c * c;
    }
    out
}

/// `sigma * sqrt(h)` growth, for models without analytic variance.
pub(crate) fn random_walk_sigma_h(sigma: f64, horizon: usize) -> Vec<f64> {
    (1..=horizon).map(|h| sigma * (h as f64).sqrt()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_normal_quantiles() {
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!((normal_quantile(0.95) - 1.644_853_626_951_472_2).abs() < 1e-12);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.025) + 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.9) - 1.281_551_565_544_600_4).abs() < 1e-12);
        assert!((normal_quantile(0.999) - 3.090_232_306_167_813_5).abs() < 1e-11);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-9);
        assert!((normal_quantile(1e-300) + 37.047_096_299_361_2).abs() < 1e-9);
        assert!(normal_quantile(1.5).is_nan() && normal_quantile(f64::NAN).is_nan());
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        // symmetry and monotonicity on a grid
        let mut prev = f64::NEG_INFINITY;
        for i in 1..1000 {
            let p = i as f64 / 1000.0;
            let z = normal_quantile(p);
            assert!(z > prev);
            assert!((z + normal_quantile(1.0 - p)).abs() < 1e-12);
            prev = z;
        }
    }

    #[test]
    fn ses_variance_multiplier() {
        // SES: v_h = sigma^2 (1 + (h-1) alpha^2)
        let s = ets_sigma_h(2.0, 4, 0.5, None, None);
        for (h, v) in s.iter().enumerate() {
            let want = 2.0 * (1.0 + h as f64 * 0.25).sqrt();
            assert!((v - want).abs() < 1e-12);
        }
        // Holt: c_j = alpha + beta j
        let s = ets_sigma_h(1.0, 3, 0.5, Some((0.1, 1.0)), None);
        let want3 = (1.0f64 + 0.6 * 0.6 + 0.7 * 0.7).sqrt();
        assert!((s[2] - want3).abs() < 1e-12);
    }

    #[test]
    fn holdout_scale_widens_only_on_evidence() {
        let fit = |point: Vec<f64>| super::super::ModelFit {
            name: "test",
            sigma_h: vec![1.0; point.len()],
            point,
            sigma: 1.0,
            fitted: Vec::new(),
            k: 1,
        };
        let y = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0];
        // no holdout possible / refit declined
        assert_eq!(holdout_scale(&y[..2], 5, |_, _| None), 1.0);
        assert_eq!(holdout_scale(&y, 3, |_, _| None), 1.0);
        // held-out errors of 3 sigma at the last origin (train 6, y[6..9]) and
        // of 0, 0, 3 at the one 2 points earlier (train 4, y[4..7]):
        // (2 + 27 + 9) / (2 + 6) -> sqrt(38 / 8)
        let seen = std::cell::RefCell::new(Vec::new());
        let f = holdout_scale(&y, 3, |train, hv| {
            seen.borrow_mut().push((train.len(), hv));
            Some(fit(vec![0.0; hv]))
        });
        assert_eq!(*seen.borrow(), vec![(6, 3), (4, 3)]);
        assert!((f - (38.0f64 / 8.0).sqrt()).abs() < 1e-12);
        // a series too short for two origins uses one: (2 + 4) / (2 + 1)
        let f = holdout_scale(&[0.0, 0.0, 2.0], 1, |train, hv| {
            assert_eq!((train.len(), hv), (2, 1));
            Some(fit(vec![0.0; hv]))
        });
        assert!((f - 2.0f64.sqrt()).abs() < 1e-12);
        // errors smaller than claimed never narrow the interval
        assert_eq!(
            holdout_scale(&[3.0; 9], 3, |_, hv| Some(fit(vec![3.0; hv]))),
            1.0
        );
        // absurd errors are capped
        let big = [0.0, 0.0, 0.0, 1e300, 1e300, 1e300];
        assert_eq!(
            holdout_scale(&big, 3, |_, hv| Some(fit(vec![0.0; hv]))),
            HOLDOUT_MAX
        );
    }

    #[test]
    fn quantiles_are_monotone_and_clamped() {
        let q = build_quantiles(&[1.0, 2.0], &[1.0, 3.0], &[0.05, 0.5, 0.95], true);
        assert_eq!(q[0].1[0], 0.0);
        assert_eq!(q[1].1, vec![1.0, 2.0]);
        for step in 0..2 {
            assert!(q[0].1[step] <= q[1].1[step] && q[1].1[step] <= q[2].1[step]);
        }
    }
}
