//! Tests of the public API: errors, edge cases, intervals, regressors,
//! automatic selection, robustness and determinism.

use super::intermittent::XorShift;
use super::*;

fn opts(method: Method, m: usize, h: usize) -> Options {
    Options {
        season_length: m,
        horizon: h,
        quantiles: vec![0.05, 0.1, 0.5, 0.9, 0.95],
        method,
        regressors: None,
    }
}

/// Checks the structural invariants of a forecast.
fn check(f: &Forecast, o: &Options) {
    assert_eq!(f.point.len(), o.horizon);
    assert_eq!(f.quantiles.len(), o.quantiles.len());
    assert!(f.fitted_sigma.is_finite() && f.fitted_sigma >= 0.0, "{f:?}");
    for (i, (q, vals)) in f.quantiles.iter().enumerate() {
        assert_eq!(*q, o.quantiles[i]);
        assert_eq!(vals.len(), o.horizon);
        assert!(vals.iter().all(|v| v.is_finite()), "{f:?}");
    }
    assert!(f.point.iter().all(|v| v.is_finite()), "{f:?}");
    // monotone in q at every step
    let mut order: Vec<usize> = (0..o.quantiles.len()).collect();
    order.sort_by(|&a, &b| o.quantiles[a].total_cmp(&o.quantiles[b]));
    for step in 0..o.horizon {
        for w in order.windows(2) {
            assert!(
                f.quantiles[w[0]].1[step] <= f.quantiles[w[1]].1[step],
                "quantiles not monotone at step {step}: {f:?}"
            );
        }
    }
}

fn seasonal_series(n: usize, m: usize, noise: f64, seed: u64) -> Vec<f64> {
    let mut rng = XorShift(seed);
    (0..n)
        .map(|t| {
            let phase = 2.0 * std::f64::consts::PI * (t % m) as f64 / m as f64;
            (200.0 + 0.8 * t as f64) * (1.0 + 0.4 * phase.sin()) + noise * (rng.uniform() - 0.5)
        })
        .collect()
}

#[test]
fn errors_are_reported() {
    let o = opts(Method::Auto, 1, 3);
    assert_eq!(forecast(&[], &o), Err(ForecastError::Empty));
    assert_eq!(
        forecast(&[1.0, f64::NAN], &o),
        Err(ForecastError::NonFinite { index: 1 })
    );
    assert_eq!(
        forecast(&[1.0, 2.0, f64::INFINITY], &o),
        Err(ForecastError::NonFinite { index: 2 })
    );
    let mut bad = o.clone();
    bad.horizon = 0;
    match forecast(&[1.0], &bad) {
        Err(ForecastError::InvalidOption(msg)) => assert!(msg.contains("horizon is 0"), "{msg}"),
        other => panic!("{other:?}"),
    }
    for q in [1.5, 0.0, 1.0, -0.1, f64::NAN] {
        let mut bad = o.clone();
        bad.quantiles = vec![0.5, q];
        match forecast(&[1.0], &bad) {
            Err(ForecastError::InvalidOption(msg)) => {
                assert!(msg.contains(&format!("quantile {q}")), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }
    let mut bad = o.clone();
    bad.horizon = MAX_HORIZON + 1;
    assert!(
        matches!(forecast(&[1.0], &bad), Err(ForecastError::InvalidOption(m)) if m.contains("horizon 1000001"))
    );
    let mut bad = o.clone();
    bad.season_length = 0;
    assert!(
        matches!(forecast(&[1.0], &bad), Err(ForecastError::InvalidOption(m)) if m.contains("season_length"))
    );
    assert_eq!(
        forecast(&[1.0, 2.0], &opts(Method::Holt, 1, 2)),
        Err(ForecastError::TooShort { len: 2, min: 3 })
    );
    assert_eq!(
        forecast(&[1.0, 2.0, 3.0], &opts(Method::SeasonalNaive, 4, 2)),
        Err(ForecastError::TooShort { len: 3, min: 4 })
    );
    // regressor shape errors name the regressor
    let mut bad = o.clone();
    bad.regressors = Some(Regressors {
        history: vec![vec![0.0, 1.0]],
        future: vec![vec![0.0; 3]],
    });
    assert!(
        matches!(forecast(&[1.0, 2.0, 3.0], &bad), Err(ForecastError::InvalidOption(m)) if m.contains("regressor 0"))
    );
    // messages are sentences
    for e in [
        ForecastError::Empty,
        ForecastError::TooShort { len: 2, min: 3 },
        ForecastError::NonFinite { index: 4 },
        ForecastError::InvalidOption("horizon is 0".into()),
    ] {
        let s = e.to_string();
        assert!(s.len() > 20, "{s}");
    }
    assert!(
        ForecastError::NonFinite { index: 4 }
            .to_string()
            .contains("index 4")
    );
}

#[test]
fn method_names_round_trip() {
    for m in Method::ALL {
        assert_eq!(Method::parse(m.name()), Some(m));
    }
    assert_eq!(Method::parse("SBA"), Some(Method::Sba));
    assert_eq!(Method::parse("Holt-Winters"), Some(Method::HoltWinters));
    assert_eq!(Method::parse("seasonal naive"), Some(Method::SeasonalNaive));
    assert_eq!(Method::parse("arima"), None);
}

#[test]
fn single_observation_is_repeated() {
    for method in [Method::Auto, Method::Naive, Method::Croston, Method::Tsb] {
        let o = opts(method, 12, 4);
        let f = forecast(&[42.0], &o).unwrap();
        check(&f, &o);
        assert_eq!(f.point, vec![42.0; 4]);
    }
}

#[test]
fn constant_and_zero_series() {
    for method in Method::ALL {
        let o = opts(method, 4, 6);
        let f = forecast(&[5.0; 24], &o).unwrap();
        check(&f, &o);
        assert_eq!(f.point, vec![5.0; 6], "{method:?}");
        for (_, v) in &f.quantiles {
            assert_eq!(v, &vec![5.0; 6], "{method:?}");
        }
        assert_eq!(f.fitted_sigma, 0.0);
        let z = forecast(&[0.0; 24], &o).unwrap();
        check(&z, &o);
        assert_eq!(z.point, vec![0.0; 6]);
        assert!(z.quantiles.iter().all(|(_, v)| v.iter().all(|&x| x == 0.0)));
    }
}

#[test]
fn negative_values_are_not_clamped() {
    let y: Vec<f64> = (0..40)
        .map(|t| -50.0 + (t % 5) as f64 - 0.5 * t as f64)
        .collect();
    let o = opts(Method::Auto, 1, 5);
    let f = forecast(&y, &o).unwrap();
    check(&f, &o);
    assert!(f.point.iter().all(|&v| v < -50.0), "{f:?}");
    // a series crossing zero keeps negative lower quantiles
    let y: Vec<f64> = (0..30)
        .map(|t| if t % 2 == 0 { 3.0 } else { -3.0 })
        .collect();
    let f = forecast(&y, &o).unwrap();
    assert!(f.quantiles[0].1.iter().all(|&v| v < 0.0), "{f:?}");
}

#[test]
fn non_negative_history_clamps_at_zero() {
    let mut rng = XorShift(7);
    let y: Vec<f64> = (0..50).map(|_| (rng.uniform() * 4.0).floor()).collect();
    for method in [
        Method::Auto,
        Method::Ses,
        Method::Naive,
        Method::Theta,
        Method::Croston,
    ] {
        let o = opts(method, 1, 8);
        let f = forecast(&y, &o).unwrap();
        check(&f, &o);
        assert!(f.quantiles[0].1.iter().all(|&v| v >= 0.0));
        assert!(f.point.iter().all(|&v| v >= 0.0));
    }
}

#[test]
fn quantiles_keep_requested_order() {
    let y = seasonal_series(60, 12, 30.0, 3);
    let mut o = opts(Method::Auto, 12, 12);
    o.quantiles = vec![0.9, 0.1, 0.5, 0.99];
    let f = forecast(&y, &o).unwrap();
    check(&f, &o);
    assert_eq!(
        f.quantiles.iter().map(|q| q.0).collect::<Vec<_>>(),
        vec![0.9, 0.1, 0.5, 0.99]
    );
    for h in 0..12 {
        assert!(
            f.quantiles[1].1[h] < f.quantiles[2].1[h] && f.quantiles[2].1[h] < f.quantiles[0].1[h]
        );
        assert!((f.quantiles[2].1[h] - f.point[h]).abs() < 1e-9);
    }
    // intervals widen with the horizon
    let width = |h: usize| f.quantiles[0].1[h] - f.quantiles[1].1[h];
    assert!(width(11) > width(0));
    // no quantiles requested is fine
    o.quantiles.clear();
    assert!(forecast(&y, &o).unwrap().quantiles.is_empty());
}

#[test]
fn seasonal_naive_and_short_seasonal_series() {
    let y: Vec<f64> = (0..10).map(|t| (t % 4) as f64 * 10.0 + t as f64).collect();
    let f = forecast(&y, &opts(Method::SeasonalNaive, 4, 5)).unwrap();
    assert_eq!(f.point, vec![y[6], y[7], y[8], y[9], y[6]]);
    // < 2 seasons: seasonality is dropped
    let y = seasonal_series(18, 12, 5.0, 11);
    for method in [Method::HoltWinters, Method::Auto] {
        let o = opts(method, 12, 6);
        let f = forecast(&y, &o).unwrap();
        check(&f, &o);
        assert!(
            !f.method.contains("decomp") && !f.method.contains(",A)") && !f.method.contains(",M)"),
            "{}",
            f.method
        );
    }
}

#[test]
fn holt_winters_forecasts_perfect_series_almost_exactly() {
    let pat = [0.7, 0.9, 1.3, 1.1];
    let y: Vec<f64> = (0..60)
        .map(|t| (100.0 + 1.5 * t as f64) * pat[t % 4])
        .collect();
    let o = opts(Method::HoltWinters, 4, 8);
    let f = forecast(&y[..52], &o).unwrap();
    check(&f, &o);
    for h in 0..8 {
        let rel = (f.point[h] - y[52 + h]).abs() / y[52 + h];
        assert!(
            rel < 0.01,
            "{} h={h}: {} vs {}",
            f.method,
            f.point[h],
            y[52 + h]
        );
    }
    // the interval of an (almost) perfect fit is (almost) zero-width
    assert!(f.fitted_sigma < 0.01 * y[51]);
}

#[test]
fn auto_picks_intermittent_method_for_intermittent_demand() {
    let mut rng = XorShift(0xDEAD_BEEF);
    for _ in 0..10 {
        let y = rng.intermittent(104, 0.2, 8);
        let o = opts(Method::Auto, 52, 13);
        let f = forecast(&y, &o).unwrap();
        check(&f, &o);
        assert!(
            ["croston", "croston_sba", "tsb"].contains(&f.method),
            "{}",
            f.method
        );
        assert!(f.quantiles[0].1.iter().all(|&v| v >= 0.0));
    }
}

#[test]
fn auto_picks_seasonal_model_for_seasonal_series() {
    for seed in 1..6 {
        let y = seasonal_series(96, 12, 20.0, seed);
        let o = opts(Method::Auto, 12, 12);
        let f = forecast(&y[..84], &o).unwrap();
        check(&f, &o);
        assert!(
            f.method.contains("+decomp") || f.method.contains(",A)") || f.method.contains(",M)"),
            "{}",
            f.method
        );
        // follows the seasonal shape: small errors on the held-out year
        let mape: f64 = (0..12)
            .map(|h| (f.point[h] - y[84 + h]).abs() / y[84 + h])
            .sum::<f64>()
            / 12.0;
        assert!(mape < 0.05, "{} mape {mape}", f.method);
    }
}

#[test]
fn all_methods_on_a_seasonal_series() {
    let y = seasonal_series(72, 12, 10.0, 5);
    for method in Method::ALL {
        let o = opts(method, 12, 18);
        let f = forecast(&y, &o).unwrap();
        check(&f, &o);
        let last_year_mean = y[60..].iter().sum::<f64>() / 12.0;
        let fc_mean = f.point[..12].iter().sum::<f64>() / 12.0;
        assert!(
            (fc_mean / last_year_mean - 1.0).abs() < 0.25,
            "{method:?} {fc_mean} vs {last_year_mean}"
        );
    }
}

#[test]
fn promotions_lift_the_forecast() {
    // weekly sales, 4-week cycle, promotions (+50%) in seeded random weeks
    let mut rng = XorShift(42);
    let n = 104;
    let h = 8;
    let promo: Vec<f64> = (0..n + h)
        .map(|t| {
            if t >= n {
                [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0][t - n]
            } else if rng.uniform() < 0.15 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let y: Vec<f64> = (0..n)
        .map(|t| {
            let base = 100.0
                + 0.2 * t as f64
                + [8.0, -3.0, 5.0, -10.0][t % 4]
                + 6.0 * (rng.uniform() - 0.5);
            base * (1.0 + 0.5 * promo[t])
        })
        .collect();
    let mut o = opts(Method::Auto, 4, h);
    o.regressors = Some(Regressors {
        history: vec![promo[..n].to_vec()],
        future: vec![promo[n..].to_vec()],
    });
    let f = forecast(&y, &o).unwrap();
    check(&f, &o);
    let plain = forecast(&y, &opts(Method::Auto, 4, h)).unwrap();
    // promo weeks 1 and 4 are clearly above their neighbours and above the
    // forecast without regressors
    for &p in &[1usize, 4] {
        assert!(
            f.point[p] > 1.3 * f.point[p - 1].max(f.point[p + 1]),
            "{:?}",
            f.point
        );
        assert!(
            f.point[p] > 1.3 * plain.point[p],
            "{:?} vs {:?}",
            f.point,
            plain.point
        );
    }
    // non-promo weeks are close to the base level (about 120), not inflated
    for &p in &[0usize, 2, 3, 5, 6, 7] {
        assert!(f.point[p] > 100.0 && f.point[p] < 140.0, "{:?}", f.point);
    }
}

#[test]
fn deterministic() {
    let y = seasonal_series(80, 12, 25.0, 9);
    let o = opts(Method::Auto, 12, 18);
    assert_eq!(forecast(&y, &o).unwrap(), forecast(&y, &o).unwrap());
}

#[test]
fn never_panics_on_random_or_degenerate_input() {
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    type Generator = Box<dyn Fn(&mut XorShift, usize) -> Vec<f64>>;
    let generators: Vec<Generator> = vec![
        Box::new(|r, n| (0..n).map(|_| r.uniform() * 100.0).collect()),
        Box::new(|r, n| (0..n).map(|_| (r.uniform() - 0.5) * 1e300).collect()),
        Box::new(|r, n| (0..n).map(|_| (r.uniform() - 0.5) * 1e-300).collect()),
        Box::new(|_, n| {
            (0..n)
                .map(|t| if t % 2 == 0 { f64::MAX } else { -f64::MAX })
                .collect()
        }),
        Box::new(|_, n| (0..n).map(|t| if t == n / 2 { 1e9 } else { 0.0 }).collect()),
        Box::new(|r, n| r.intermittent(n, 0.1, 1000)),
        Box::new(|_, n| (0..n).map(|t| t as f64 * 1e12).collect()),
        Box::new(|_, n| (0..n).map(|t| ((t * t) % 7) as f64 - 3.0).collect()),
        Box::new(|_, n| {
            (0..n)
                .map(|t| if t < n / 2 { 1.0 } else { 1.0 + 1e-15 })
                .collect()
        }),
        Box::new(|r, n| {
            (0..n)
                .map(|t| (t as f64 * 0.3).exp().min(1e200) * r.uniform())
                .collect()
        }),
        Box::new(|_, n| (0..n).map(|t| f64::MIN_POSITIVE * t as f64).collect()),
    ];
    for case in 0..600 {
        let g = &generators[case % generators.len()];
        let n = (rng.next_u64() % 50) as usize;
        let y = g(&mut rng, n);
        let method = Method::ALL[(rng.next_u64() % Method::ALL.len() as u64) as usize];
        let m = match case % 17 {
            0 => usize::MAX,
            1 => n,
            _ => 1 + (rng.next_u64() % 13) as usize,
        };
        let h = 1 + (rng.next_u64() % 30) as usize;
        let mut o = opts(method, m, h);
        if case % 5 == 0 {
            o.regressors = Some(Regressors {
                history: vec![(0..n).map(|t| (t % 3) as f64).collect()],
                future: vec![(0..h).map(|t| (t % 2) as f64 * 1e6).collect()],
            });
        } else if case % 7 == 0 {
            // two huge, opposite regressors
            o.regressors = Some(Regressors {
                history: vec![
                    (0..n).map(|t| (t % 2) as f64).collect(),
                    (0..n).map(|t| (t % 3) as f64).collect(),
                ],
                future: vec![vec![f64::MAX; h], vec![-f64::MAX; h]],
            });
        }
        match forecast(&y, &o) {
            Ok(f) => check(&f, &o),
            Err(ForecastError::Empty) => assert_eq!(n, 0),
            Err(ForecastError::TooShort { len, min }) => {
                assert!(len < min && method != Method::Auto)
            }
            Err(e) => panic!("unexpected error {e:?} for case {case}"),
        }
    }
}
