//! The rules forecaster through the `Forecaster` trait: shapes, quantiles, per-series errors,
//! regressors, methods by name, timestamps and replenishment on top of a forecast.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use merchant_ai::{
    ErrorKind, ForecastRequest, Forecaster, Frequency, ReplenishmentPolicy, Series, StockPosition,
    replenish,
};
use merchant_ai_rules::{ForecastConfig, RulesForecaster};

fn forecaster() -> Arc<dyn Forecaster> {
    Arc::new(RulesForecaster::new("rules", ForecastConfig::default()).expect("default config"))
}

/// Deterministic weekly-seasonal daily sales with a mild trend and noise.
fn daily_sales(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|t| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s % 1000) as f64 / 1000.0 - 0.5;
            let weekly = [0.8, 0.9, 1.0, 1.0, 1.1, 1.4, 1.3][t % 7];
            (20.0 + 0.05 * t as f64) * weekly + 3.0 * noise
        })
        .collect()
}

fn run(req: ForecastRequest) -> merchant_ai::ForecastResponse {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(forecaster().forecast(req)).expect("forecast")
}

#[test]
fn shapes_and_monotone_quantiles() {
    let series = vec![
        Series::new("a", daily_sales(120, 1)).with_frequency(Frequency::Daily),
        Series::new("b", daily_sales(40, 2)),
        Series::new("c", vec![5.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0, 0.0, 2.0]),
        Series::new("d", vec![7.0]),
    ];
    let levels = vec![0.05, 0.1, 0.5, 0.9, 0.95];
    let resp = run(ForecastRequest::new(series, 14).with_quantiles(levels.clone()));
    assert_eq!(resp.series.len(), 4);
    for s in &resp.series {
        assert!(s.error.is_none(), "{}: {:?}", s.id, s.error);
        assert_eq!(s.point.len(), 14, "{}", s.id);
        assert!(!s.model.is_empty());
        assert_eq!(s.quantiles.len(), levels.len(), "{}", s.id);
        for (q, want) in s.quantiles.iter().zip(&levels) {
            assert_eq!(q.level, *want);
            assert_eq!(q.values.len(), 14);
            assert!(q.values.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
        for step in 0..14 {
            for w in s.quantiles.windows(2) {
                assert!(
                    w[0].values[step] <= w[1].values[step],
                    "{} step {step}",
                    s.id
                );
            }
            let lo = s.quantile(0.05).expect("q0.05")[step];
            let hi = s.quantile(0.95).expect("q0.95")[step];
            assert!(
                lo <= s.point[step] && s.point[step] <= hi,
                "{} step {step}",
                s.id
            );
        }
    }
    // the intermittent series goes to a Croston-family method, the long one is seasonal
    assert!(
        ["croston", "croston_sba", "tsb"].contains(&resp.get("c").expect("c").model.as_str()),
        "{}",
        resp.get("c").expect("c").model
    );
    let a = resp.get("a").expect("a");
    assert!(a.point[5] > a.point[0], "weekend peak kept: {:?}", a.point);
    // the usage counts series, the model names the method
    assert_eq!(resp.meta.model.as_deref(), Some("rules-stats:auto"));
}

#[test]
fn errors_are_isolated_per_series_and_name_it() {
    let good = daily_sales(60, 3);
    let series = vec![
        Series::new("ok-1", good.clone()),
        Series::new("has-nan", vec![1.0, f64::NAN, 3.0]),
        Series::new("empty", vec![]),
        Series::new("bad-regressor", good.clone()).with_regressor("promo", vec![0.0; 10]),
        Series::new("ok-2", good),
    ];
    let resp = run(ForecastRequest::new(series, 7));
    for id in ["ok-1", "ok-2"] {
        let s = resp.get(id).expect(id);
        assert!(s.error.is_none(), "{id}: {:?}", s.error);
        assert_eq!(s.point.len(), 7);
    }
    for (id, what) in [
        ("has-nan", "value 1"),
        ("empty", "empty"),
        ("bad-regressor", "promo"),
    ] {
        let s = resp.get(id).expect(id);
        let e = s
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{id} should fail"));
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{id}");
        assert!(e.message.contains(id), "{id}: {}", e.message);
        assert!(e.message.contains(what), "{id}: {}", e.message);
        assert!(s.point.is_empty());
    }
}

#[test]
fn promotion_weeks_are_forecast_higher() {
    let n = 112;
    let h = 14;
    // promo every 4th week (whole week), +60% lift
    let promo: Vec<f64> = (0..n + h)
        .map(|t| if (t / 7) % 4 == 1 { 1.0 } else { 0.0 })
        .collect();
    let base = daily_sales(n, 4);
    let values: Vec<f64> = base
        .iter()
        .zip(&promo)
        .map(|(v, p)| v * (1.0 + 0.6 * p))
        .collect();
    let series = Series::new("sku", values)
        .with_frequency(Frequency::Daily)
        .with_regressor("promo", promo.clone());
    let resp = run(ForecastRequest::new(vec![series], h));
    let s = resp.get("sku").expect("sku");
    assert!(s.error.is_none(), "{:?}", s.error);
    let fut = &promo[n..];
    let mean = |on: f64| {
        let v: Vec<f64> = (0..h)
            .filter(|&i| fut[i] == on)
            .map(|i| s.point[i])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(fut.contains(&1.0) && fut.contains(&0.0));
    assert!(
        mean(1.0) > 1.3 * mean(0.0),
        "promo {} vs normal {}",
        mean(1.0),
        mean(0.0)
    );
}

#[test]
fn method_by_name_and_unknown_method_named() {
    let y = daily_sales(50, 5);
    let resp = run(ForecastRequest::new(vec![Series::new("x", y.clone())], 3).with_method("Naive"));
    let s = resp.get("x").expect("x");
    assert_eq!(s.model, "naive");
    assert!(s.point.iter().all(|&p| p == y[y.len() - 1]));
    assert_eq!(resp.meta.model.as_deref(), Some("rules-stats:naive"));

    let resp = run(ForecastRequest::new(
        vec![Series::new("x", y.clone()).with_season_length(7)],
        7,
    )
    .with_method("seasonal-naive"));
    assert_eq!(resp.get("x").expect("x").point, y[y.len() - 7..].to_vec());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let err = rt
        .block_on(
            forecaster().forecast(
                ForecastRequest::new(vec![Series::new("x", y)], 3).with_method("prophet"),
            ),
        )
        .expect_err("unknown method");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("prophet"), "{}", err.message());
    assert!(err.message().contains("holt_winters"), "{}", err.message());

    let cfg = ForecastConfig {
        method: "arima".into(),
    };
    let err = RulesForecaster::new("rules", cfg).expect_err("bad config");
    assert!(
        err.message().contains("arima")
            && err.message().contains("providers.rules.forecast.method")
    );
}

#[test]
fn future_timestamps_follow_start_and_frequency() {
    let start = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
    let monthly = Series::new("m", vec![10.0, 12.0, 11.0, 13.0, 12.0, 14.0])
        .with_start(start, Frequency::Monthly);
    let daily = Series::new("d", daily_sales(10, 6)).with_start(start, Frequency::Daily);
    let bare = Series::new("n", daily_sales(10, 7));
    let resp = run(ForecastRequest::new(vec![monthly, daily, bare], 3));
    let ts = resp
        .get("m")
        .and_then(|s| s.timestamps.clone())
        .expect("monthly timestamps");
    // last observation: 2026-07-31 (month ends clamp to the shorter months' last day)
    let last = Frequency::Monthly.step(start, 5);
    assert_eq!(
        ts,
        (1..=3)
            .map(|k| Frequency::Monthly.step(last, k))
            .collect::<Vec<_>>()
    );
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
    let ts = resp
        .get("d")
        .and_then(|s| s.timestamps.clone())
        .expect("daily timestamps");
    assert_eq!(ts[0], Utc.with_ymd_and_hms(2026, 2, 10, 0, 0, 0).unwrap());
    assert_eq!(ts[2], Utc.with_ymd_and_hms(2026, 2, 12, 0, 0, 0).unwrap());
    assert!(resp.get("n").expect("n").timestamps.is_none());
}

#[test]
fn replenish_on_a_rules_forecast() {
    // steady demand around 20 a day
    let y = daily_sales(84, 8);
    let resp = run(ForecastRequest::new(
        vec![Series::new("sku", y).with_frequency(Frequency::Daily)],
        14,
    )
    .with_quantiles(vec![0.1, 0.5, 0.9]));
    let f = resp.get("sku").expect("sku");
    let policy = ReplenishmentPolicy::new(5)
        .with_review_period(2)
        .with_service_level(0.95);
    let expected: f64 = f.point[..7].iter().sum();
    let r = replenish(f, &StockPosition::new(40.0), &policy).expect("replenish");
    assert!((r.protection_demand - expected).abs() < 1e-6 * expected.max(1.0));
    assert!(r.safety_stock > 0.0 && r.safety_stock < r.protection_demand);
    assert!(r.reorder_point > r.protection_demand);
    // 7 days at about 20-30 a day: the reorder point is in a sensible range
    assert!(r.reorder_point > 100.0 && r.reorder_point < 300.0, "{r:?}");
    assert!(r.reorder_now && r.order_quantity > 0.0);
    let r = replenish(f, &StockPosition::new(1000.0), &policy).expect("replenish");
    assert!(!r.reorder_now && r.order_quantity == 0.0);
    // a failed series cannot be replenished; the error names it
    let resp = run(ForecastRequest::new(vec![Series::new("gone", vec![])], 14));
    let err = replenish(
        resp.get("gone").expect("gone"),
        &StockPosition::new(0.0),
        &policy,
    )
    .expect_err("failed series");
    assert!(err.message().contains("gone"));
}
