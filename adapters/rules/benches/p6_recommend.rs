//! P6: recommendation quality and speed on MovieLens-100K, leave-last-out per user.
//!
//! Every rating is an interaction. Per user, the interactions are ordered by (timestamp, line
//! number); the last one is the test item, the others are training events. Ours goes through
//! the public API: `record(training events)` then `recommend(Home, subject, limit 10,
//! exclude = the user's training items)`. HR@10 and NDCG@10 over all users; a popularity
//! baseline (training interaction counts) under the same protocol.
//!
//! Input: `$MERCHANT_AI_ASSETS/recbole/dataset_example/ml-100k/` (default assets folder
//! `~/.cache/merchant-ai/assets`). Output: a summary on stdout and JSON to the path in
//! `P6_OUT` (default `target/p6_recommend_ours.json`). Run through `bench/p6_recommend/run.sh`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use merchant_ai::chrono::{TimeZone, Utc};
use merchant_ai::*;
use merchant_ai_rules::{Catalog, RecommendConfig, RulesRecommender};

const K: usize = 10;
const ROUNDS: usize = 5;

struct Data {
    train: Vec<(u32, u32, i64)>,
    test: BTreeMap<u32, u32>,
    seen: HashMap<u32, HashSet<u32>>,
    titles: BTreeMap<u32, (String, Vec<String>)>,
}

fn assets() -> PathBuf {
    std::env::var_os("MERCHANT_AI_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/merchant-ai/assets")
        })
}

fn load() -> Result<Data, String> {
    let dir = assets().join("recbole/dataset_example/ml-100k");
    let inter = std::fs::read_to_string(dir.join("ml-100k.inter"))
        .map_err(|e| format!("cannot read ml-100k.inter in {}: {e}", dir.display()))?;
    let mut per_user: BTreeMap<u32, Vec<(i64, usize, u32)>> = BTreeMap::new();
    for (n, line) in inter.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 {
            continue;
        }
        let (Ok(u), Ok(i), Ok(t)) = (
            f[0].parse::<u32>(),
            f[1].parse::<u32>(),
            f[3].parse::<f64>(),
        ) else {
            return Err(format!("bad line {}", n + 1));
        };
        per_user.entry(u).or_default().push((t as i64, n, i));
    }
    let mut train = Vec::new();
    let mut test = BTreeMap::new();
    let mut seen: HashMap<u32, HashSet<u32>> = HashMap::new();
    // `P6_VALIDATE=1`: drop each user's last interaction and hold out the one before, to tune
    // settings without looking at the test items.
    let validate = std::env::var_os("P6_VALIDATE").is_some();
    for (u, mut evs) in per_user {
        evs.sort();
        if validate {
            evs.pop();
        }
        let Some(&(_, _, last)) = evs.last() else {
            continue;
        };
        test.insert(u, last);
        for &(t, _, i) in &evs[..evs.len() - 1] {
            train.push((u, i, t));
            seen.entry(u).or_default().insert(i);
        }
    }
    let items = std::fs::read_to_string(dir.join("ml-100k.item")).unwrap_or_default();
    let mut titles = BTreeMap::new();
    for line in items.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if let (Some(id), Some(title)) = (f.first().and_then(|x| x.parse().ok()), f.get(1)) {
            let genres = f
                .get(3)
                .map(|g| g.split(' ').map(str::to_owned).collect())
                .unwrap_or_default();
            titles.insert(id, (title.to_string(), genres));
        }
    }
    Ok(Data {
        train,
        test,
        seen,
        titles,
    })
}

fn metrics(ranked: &BTreeMap<u32, Vec<u32>>, test: &BTreeMap<u32, u32>) -> (f64, f64) {
    let (mut hr, mut ndcg) = (0.0, 0.0);
    for (u, t) in test {
        if let Some(pos) = ranked.get(u).and_then(|r| r.iter().position(|i| i == t)) {
            hr += 1.0;
            ndcg += 1.0 / ((pos + 2) as f64).log2();
        }
    }
    let n = test.len() as f64;
    (hr / n, ndcg / n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let data = match load() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("P6: MovieLens-100K not found ({e}); run bench/p6_recommend/run.sh");
            return ExitCode::FAILURE;
        }
    };
    let catalog = Arc::new(Catalog::new());
    let mut all_items: HashSet<u32> = data.train.iter().map(|x| x.1).collect();
    all_items.extend(data.test.values());
    all_items.extend(data.titles.keys());
    let mut ids: Vec<u32> = all_items.into_iter().collect();
    ids.sort_unstable();
    catalog.upsert(ids.iter().map(|i| {
        let (title, genres) = data
            .titles
            .get(i)
            .cloned()
            .unwrap_or_else(|| (format!("item {i}"), Vec::new()));
        Product::new(i.to_string(), title, Money::new(1000, Currency::USD))
            .with_category(genres.into_iter().take(1))
    }));
    let events: Vec<Event> = data
        .train
        .iter()
        .map(|&(u, i, t)| {
            let ts = Utc.timestamp_opt(t, 0).single().unwrap_or_default();
            Event::new(u.to_string(), i.to_string(), EventKind::Rating, ts).with_value(1.0)
        })
        .collect();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    // `P6_CONFIG` may hold a `[providers.NAME.recommend]` table body (TOML) to try settings.
    let cfg: RecommendConfig = match std::env::var("P6_CONFIG") {
        Ok(t) => match toml::from_str(&t) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("P6: bad P6_CONFIG: {e}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => RecommendConfig::default(),
    };

    // Popularity baseline: training counts, ties by item id.
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for &(_, i, _) in &data.train {
        *counts.entry(i).or_default() += 1;
    }
    let mut pop: Vec<(u32, u64)> = counts.into_iter().collect();
    pop.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let empty = HashSet::new();
    let pop_ranked: BTreeMap<u32, Vec<u32>> = data
        .test
        .keys()
        .map(|u| {
            let seen = data.seen.get(u).unwrap_or(&empty);
            let r = pop
                .iter()
                .map(|x| x.0)
                .filter(|i| !seen.contains(i))
                .take(K)
                .collect();
            (*u, r)
        })
        .collect();
    let (pop_hr, pop_ndcg) = metrics(&pop_ranked, &data.test);

    let mut fit_s = Vec::new();
    let mut req_us_median = Vec::new();
    let mut req_us_p99 = Vec::new();
    let mut result = None;
    for round in 0..ROUNDS + 1 {
        let rec = RulesRecommender::new("rules", cfg.clone(), catalog.clone()).expect("config");
        let batch = events.clone();
        let t0 = Instant::now();
        rt.block_on(rec.record(batch)).expect("record");
        let fit = t0.elapsed().as_secs_f64();
        let mut lat = Vec::with_capacity(data.test.len());
        let mut ranked = BTreeMap::new();
        for u in data.test.keys() {
            let mut req = RecommendRequest::new(Scene::Home)
                .with_subject(u.to_string())
                .with_limit(K);
            let mut seen: Vec<&u32> = data.seen.get(u).unwrap_or(&empty).iter().collect();
            seen.sort_unstable();
            for i in seen {
                req = req.with_exclude(i.to_string());
            }
            let t = Instant::now();
            let out = rt.block_on(rec.recommend(req)).expect("recommend");
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            let r: Vec<u32> = out
                .items
                .iter()
                .filter_map(|x| x.product_id.as_str().parse().ok())
                .collect();
            ranked.insert(*u, r);
        }
        if round == 0 {
            // Warm-up round: accuracy only (deterministic), timings discarded.
            result = Some(metrics(&ranked, &data.test));
            continue;
        }
        fit_s.push(fit);
        lat.sort_by(f64::total_cmp);
        req_us_p99.push(lat[(lat.len() * 99 / 100).min(lat.len() - 1)]);
        req_us_median.push(median(lat));
    }
    let (hr, ndcg) = result.unwrap_or_default();
    let fit = median(fit_s);
    let p50 = median(req_us_median);
    let p99 = median(req_us_p99);
    println!(
        "P6 data: {} users, {} items, {} training events",
        data.test.len(),
        ids.len(),
        events.len()
    );
    println!("P6 popularity baseline: HR@10 {pop_hr:.4} NDCG@10 {pop_ndcg:.4}");
    println!(
        "P6 merchant-ai-rules: HR@10 {hr:.4} NDCG@10 {ndcg:.4} fit {:.3} s, request p50 {p50:.0} us p99 {p99:.0} us (median of {ROUNDS})",
        fit
    );
    let json = serde_json::json!({
        "benchmark": "P6",
        "dataset": "MovieLens-100K (recbole 1.2.1 ml-100k.inter)",
        "protocol": "leave-last-out by (timestamp, line), all ratings implicit, training items excluded, K=10",
        "ours": {
            "name": "merchant-ai-rules",
            "version": env!("CARGO_PKG_VERSION"),
            "hr10": hr, "ndcg10": ndcg,
            "fit_s": fit, "request_us_p50": p50, "request_us_p99": p99,
            "rounds": ROUNDS, "threads": 1,
            "config": serde_json::to_value(&cfg).unwrap_or_default(),
        },
        "popularity": {"hr10": pop_hr, "ndcg10": pop_ndcg},
        "users": data.test.len(),
        "items": ids.len(),
        "train_events": events.len(),
    });
    let out = std::env::var("P6_OUT").unwrap_or_else(|_| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/bench");
        let _ = std::fs::create_dir_all(dir);
        format!("{dir}/p6_recommend_ours.json")
    });
    if let Err(e) = std::fs::write(
        &out,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    ) {
        eprintln!("P6: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
