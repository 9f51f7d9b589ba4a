//! Vector index benchmark: exact top-10 over 100k x 384 seeded random unit vectors, single
//! thread, against numpy brute force (`bench/vector/numpy_peer.py`) on the same data.
//!
//! Run with `bench/vector/run.sh` (installs the peer). Env: `VECTOR_PEER_PYTHON` (the peer's
//! python), `VECTOR_N`, `VECTOR_DIM`, `VECTOR_QUERIES`, `VECTOR_ROUNDS`, `VECTOR_OUT` (raw JSON,
//! default `target/vector_search.json`). Without a peer it measures ours, says so in its last
//! line and exits non-zero.

use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

use merchant_ai::ProductId;
use merchant_ai::vector::VectorIndex;

const K: usize = 10;

/// splitmix64: a tiny seeded generator, so both sides see the same data on every run.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Roughly normal (sum of four uniforms), enough for random directions.
    fn gauss(&mut self) -> f32 {
        let mut s = 0.0;
        for _ in 0..4 {
            s += (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        }
        s - 2.0
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((s.len() - 1) as f64 * p).round() as usize;
    s[i]
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

fn write_f32(path: &std::path::Path, rows: &[f32]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create data file"));
    for x in rows {
        f.write_all(&x.to_le_bytes()).expect("write data file");
    }
    f.flush().expect("flush data file");
}

fn main() {
    let n = env_usize("VECTOR_N", 100_000);
    let dim = env_usize("VECTOR_DIM", 384);
    let nq = env_usize("VECTOR_QUERIES", 200);
    let rounds = env_usize("VECTOR_ROUNDS", 5);
    let mut rng = Rng(42);
    let raw: Vec<f32> = (0..n * dim).map(|_| rng.gauss()).collect();
    let queries: Vec<f32> = (0..nq * dim).map(|_| rng.gauss()).collect();
    let ids: Vec<ProductId> = (0..n).map(|i| ProductId::new(format!("p{i:07}"))).collect();

    let build = |raw: &[f32]| {
        let mut idx = VectorIndex::with_dimension(dim).expect("dimension");
        idx.reserve(n);
        let t = Instant::now();
        for (id, v) in ids.iter().zip(raw.chunks_exact(dim)) {
            idx.upsert(id.clone(), v).expect("valid vector");
        }
        (idx, t.elapsed().as_secs_f64() * 1000.0)
    };
    let (index, _) = build(&raw);

    // The peer searches exactly what we store: normalized rows and normalized queries.
    let dir = std::env::temp_dir().join(format!("merchant-ai-vector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data_path = dir.join("data.f32");
    let query_path = dir.join("queries.f32");
    let mut stored = Vec::with_capacity(n * dim);
    for id in &ids {
        stored.extend_from_slice(index.get(id).expect("stored"));
    }
    write_f32(&data_path, &stored);
    drop(stored);
    let mut qn = queries.clone();
    for q in qn.chunks_exact_mut(dim) {
        merchant_ai::vector::normalize(q).expect("query");
    }
    write_f32(&query_path, &qn);

    let peer = std::env::var("VECTOR_PEER_PYTHON").ok();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/vector/numpy_peer.py");
    let threads = [
        ("OPENBLAS_NUM_THREADS", "1"),
        ("OMP_NUM_THREADS", "1"),
        ("MKL_NUM_THREADS", "1"),
    ];

    // Warm-up, discarded.
    for q in queries.chunks_exact(dim).take(5) {
        black_box(index.search(q, K).expect("search"));
    }

    let mut ours_p50 = Vec::new();
    let mut ours_p99 = Vec::new();
    let mut insert_ms = Vec::new();
    let mut peer_p50 = Vec::new();
    let mut peer_p99 = Vec::new();
    let mut peer_meta = serde_json::Value::Null;
    let mut peer_error: Option<String> = None;
    let mut agree = 0usize;
    let mut compared = 0usize;
    let mut ours_first: Vec<Vec<usize>> = Vec::new();

    for round in 0..rounds {
        let (idx2, ins) = build(&raw);
        insert_ms.push(ins);
        drop(idx2);
        let mut lat = Vec::with_capacity(nq);
        let mut tops = Vec::with_capacity(nq);
        for q in queries.chunks_exact(dim) {
            let t = Instant::now();
            let hits = black_box(index.search(q, K).expect("search"));
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            if round == 0 {
                tops.push(
                    hits.iter()
                        .map(|h| h.id.as_str()[1..].parse::<usize>().unwrap_or(usize::MAX))
                        .collect::<Vec<_>>(),
                );
            }
        }
        if round == 0 {
            ours_first = tops;
        }
        ours_p50.push(median(&lat));
        ours_p99.push(percentile(&lat, 0.99));
        eprintln!(
            "round {round}: ours p50 {:.3} ms p99 {:.3} ms, insert {:.1} ms",
            median(&lat),
            percentile(&lat, 0.99),
            ins
        );

        let Some(py) = &peer else { continue };
        let out = Command::new(py)
            .arg(script)
            .arg(&data_path)
            .arg(&query_path)
            .args([n, dim, nq, K].map(|v| v.to_string()))
            .envs(threads)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = match serde_json::from_slice(&o.stdout) {
                    Ok(v) => v,
                    Err(e) => {
                        peer_error = Some(format!("peer output is not JSON: {e}"));
                        break;
                    }
                };
                let lat: Vec<f64> = v["latency_ms"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                    .unwrap_or_default();
                peer_p50.push(median(&lat));
                peer_p99.push(percentile(&lat, 0.99));
                eprintln!(
                    "round {round}: numpy p50 {:.3} ms p99 {:.3} ms",
                    median(&lat),
                    percentile(&lat, 0.99)
                );
                if round == 0 {
                    if let Some(all) = v["ids"].as_array() {
                        for (ours, theirs) in ours_first.iter().zip(all) {
                            let theirs: Vec<usize> = theirs
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_u64())
                                        .map(|x| x as usize)
                                        .collect()
                                })
                                .unwrap_or_default();
                            compared += 1;
                            if *ours == theirs {
                                agree += 1;
                            }
                        }
                    }
                    peer_meta = serde_json::json!({"numpy": v["numpy"], "blas": v["blas"]});
                }
            }
            Ok(o) => {
                peer_error = Some(format!(
                    "peer exited with {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ));
                break;
            }
            Err(e) => {
                peer_error = Some(format!("peer could not start: {e}"));
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let report = serde_json::json!({
        "bench": "vector_search",
        "n": n, "dim": dim, "queries": nq, "k": K, "rounds": rounds,
        "threads": 1,
        "ours": {
            "crate": "merchant-ai", "version": env!("CARGO_PKG_VERSION"),
            "p50_ms_per_round": ours_p50, "p99_ms_per_round": ours_p99,
            "insert_ms_per_round": insert_ms,
            "p50_ms": median(&ours_p50), "p99_ms": median(&ours_p99),
            "insert_ms": median(&insert_ms),
        },
        "peer": {
            "name": "numpy brute force (matvec + argpartition)",
            "meta": peer_meta,
            "p50_ms_per_round": peer_p50, "p99_ms_per_round": peer_p99,
            "p50_ms": if peer_p50.is_empty() { serde_json::Value::Null } else { median(&peer_p50).into() },
            "p99_ms": if peer_p99.is_empty() { serde_json::Value::Null } else { median(&peer_p99).into() },
            "error": peer_error,
        },
        "top10_agreement": {"compared": compared, "identical": agree},
        "env": {
            "OPENBLAS_CORETYPE": std::env::var("OPENBLAS_CORETYPE").ok(),
            "OPENBLAS_L2_SIZE": std::env::var("OPENBLAS_L2_SIZE").ok(),
        },
    });
    let out = std::env::var("VECTOR_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/vector_search.json").to_owned()
    });
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    println!(
        "ours: top-{K} over {n} x {dim}: p50 {:.3} ms, p99 {:.3} ms; insert {n} vectors {:.1} ms",
        median(&ours_p50),
        median(&ours_p99),
        median(&insert_ms)
    );
    if peer.is_none() || peer_error.is_some() || peer_p50.is_empty() {
        println!(
            "vector_search: NO PEER ({}); run bench/vector/run.sh",
            peer_error.unwrap_or_else(|| "VECTOR_PEER_PYTHON not set".into())
        );
        std::process::exit(1);
    }
    println!(
        "numpy: p50 {:.3} ms, p99 {:.3} ms; top-{K} identical on {agree}/{compared} queries",
        median(&peer_p50),
        median(&peer_p99)
    );
    println!(
        "vector_search: ours p50 {:.3} ms vs numpy p50 {:.3} ms, ratio numpy/ours = {:.2} (>1: ours faster)",
        median(&ours_p50),
        median(&peer_p50),
        median(&peer_p50) / median(&ours_p50)
    );
}
