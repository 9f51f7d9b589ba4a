//! P1 and P2 of /work/shared/reference/benchmarks.md: the in-process overhead of the full
//! merchant-ai stack (cache miss, fallback, breaker, retry, timeout, chaos switch, OpenAI
//! adapter) over raw `reqwest` + `serde_json`, both talking to the same loopback mock.
//!
//! Run: `cargo bench -p merchant-ai-openai --bench p1_p2`. Loopback only; every loop is
//! bounded in count and in time. Raw numbers go to `target/bench/p1_p2.json`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use merchant_ai::layers::observe::{ObserveConfig, Observer};
use merchant_ai::layers::{CacheConfig, LayerSettings, PrivacyPolicy, ProviderLayers};
use merchant_ai::pricing::PricingTable;
use merchant_ai::{Capability, ChatEvent, ChatModel, ChatRequest, Client, Message, Provider};
use merchant_ai_openai::{OpenAiConfig, OpenAiProvider};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MODEL: &str = "bench-model";
const PROMPT: &str = "What is the return policy?";
const REPLY: &str = "Returns are accepted within 30 days.";

// Closed loop (P1).
const ROUNDS: usize = 5;
const WARMUP: usize = 200;
const N: usize = 2_000;
// Open loop (P1).
const OPEN_RATE: u64 = 500;
const OPEN_SECS: u64 = 2;
const OPEN_ROUNDS: usize = 3;
// Streams (P2).
const STREAM_CHUNKS: u64 = 50;
const STREAM_SPACING_US: u64 = 2_000;
const STREAMS_PER_ROUND: usize = 10;
const CONC_STREAMS: usize = 1_000;
const CONC_CHUNKS: u64 = 20;
const CONC_SPACING_US: u64 = 1_000;

/// Stream shape the mock serves next: chunk count, spacing (us), timestamped content (1/0).
static CHUNKS: AtomicU64 = AtomicU64::new(STREAM_CHUNKS);
static SPACING_US: AtomicU64 = AtomicU64::new(STREAM_SPACING_US);
static STAMPED: AtomicU64 = AtomicU64::new(1);

fn epoch() -> Instant {
    static E: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------- the mock

fn completion_body() -> Vec<u8> {
    json!({"id":"chatcmpl-1","object":"chat.completion","created":1764000000,"model":MODEL,
           "choices":[{"index":0,"message":{"role":"assistant","content":REPLY},"finish_reason":"stop"}],
           "usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}})
    .to_string()
    .into_bytes()
}

fn chunk_json(content: &str, finish: Value) -> String {
    json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":MODEL,
           "choices":[{"index":0,"delta":{"content":content},"finish_reason":finish}]})
    .to_string()
}

/// The text chunk `i` of an unstamped stream.
fn word(i: u64) -> String {
    format!("w{i} ")
}

fn expected_text(chunks: u64) -> String {
    (0..chunks).map(word).collect()
}

async fn write_chunk(s: &mut TcpStream, payload: &str) -> std::io::Result<()> {
    let frame = format!("{:x}\r\n{payload}\r\n", payload.len());
    s.write_all(frame.as_bytes()).await
}

/// One keep-alive connection: reads requests (headers + Content-Length body) and answers a
/// fixed completion, or a chunked SSE stream when the body asks for `"stream":true`.
async fn serve_conn(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let body = completion_body();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: req-bench\r\n\r\n",
        body.len()
    );
    let mut fixed = head.into_bytes();
    fixed.extend_from_slice(&body);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut tmp = [0u8; 8192];
    loop {
        // Headers.
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let headers = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        let stream = std::str::from_utf8(&buf[end..end + len])
            .map(|b| b.contains("\"stream\":true"))
            .unwrap_or(false);
        buf.drain(..end + len);
        if !stream {
            s.write_all(&fixed).await?;
            continue;
        }
        let chunks = CHUNKS.load(Ordering::Relaxed);
        let spacing = Duration::from_micros(SPACING_US.load(Ordering::Relaxed));
        let stamped = STAMPED.load(Ordering::Relaxed) == 1;
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-request-id: req-bench\r\n\r\n",
        )
        .await?;
        let start = tokio::time::Instant::now();
        for i in 0..chunks {
            if i > 0 {
                tokio::time::sleep_until(start + spacing * i as u32).await;
            }
            let text = if stamped {
                format!("t{} ", now_ns())
            } else {
                word(i)
            };
            write_chunk(
                &mut s,
                &format!("data: {}\n\n", chunk_json(&text, Value::Null)),
            )
            .await?;
        }
        let tail = format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":MODEL,
                   "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
            json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":MODEL,
                   "choices":[],"usage":{"prompt_tokens":12,"completion_tokens":chunks,"total_tokens":12 + chunks}})
        );
        write_chunk(&mut s, &tail).await?;
        s.write_all(b"0\r\n\r\n").await?;
    }
}

/// Starts the mock on its own single-worker runtime (thread), returns its address.
fn start_mock() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("mock runtime");
        rt.block_on(async move {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            tx.send(l.local_addr().expect("addr")).expect("send addr");
            while let Ok((c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let _ = serve_conn(c).await;
                });
            }
        });
    });
    rx.recv().expect("mock address")
}

// ---------------------------------------------------------------- the two sides

/// Side A: raw reqwest + serde_json.
#[derive(Clone)]
struct Raw {
    http: reqwest::Client,
    url: String,
}

impl Raw {
    fn body(stream: bool) -> Value {
        let mut b = json!({"model": MODEL, "messages": [{"role":"user","content":PROMPT}]});
        if stream {
            b["stream"] = json!(true);
            b["stream_options"] = json!({"include_usage": true});
        }
        b
    }

    async fn chat(&self) -> Result<String, String> {
        let body = serde_json::to_vec(&Self::body(false)).map_err(|e| e.to_string())?;
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = r.bytes().await.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        v["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no content".to_owned())
    }

    /// Streams; calls `on_text(text, at)` for every content delta as its `data:` line completes.
    async fn stream(&self, mut on_text: impl FnMut(&str, Instant)) -> Result<usize, String> {
        let body = serde_json::to_vec(&Self::body(true)).map_err(|e| e.to_string())?;
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = r.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut finished = 0;
        while let Some(b) = bytes.next().await {
            let b = b.map_err(|e| e.to_string())?;
            let at = Instant::now();
            buf.extend_from_slice(&b);
            while let Some(p) = buf.windows(2).position(|w| w == b"\n\n") {
                let line: Vec<u8> = buf.drain(..p + 2).collect();
                let Some(data) = line.strip_prefix(b"data: ") else {
                    continue;
                };
                let data = &data[..data.len() - 2];
                if data == b"[DONE]" {
                    finished += 1;
                    continue;
                }
                let v: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
                if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                    on_text(t, at);
                }
            }
        }
        Ok(finished)
    }
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![Message::user(PROMPT)])
}

/// Side B: our stack.
async fn ours_chat(chat: &Arc<dyn ChatModel>) -> Result<String, String> {
    chat.chat(request())
        .await
        .map(|r| r.text)
        .map_err(|e| e.to_string())
}

/// Streams through our stack; `on_text(text, at)` per TextDelta. Returns the Finished count.
async fn ours_stream(
    chat: &Arc<dyn ChatModel>,
    mut on_text: impl FnMut(&str, Instant),
) -> Result<usize, String> {
    let mut s = chat
        .chat_stream(request())
        .await
        .map_err(|e| e.to_string())?;
    let mut finished = 0;
    while let Some(ev) = s.next().await {
        let at = Instant::now();
        match ev.map_err(|e| e.to_string())? {
            ChatEvent::TextDelta { text } => on_text(&text, at),
            ChatEvent::Finished { .. } => finished += 1,
            _ => {}
        }
    }
    Ok(finished)
}

// ---------------------------------------------------------------- stats

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn median(v: &[f64]) -> f64 {
    pct(&sorted(v.to_vec()), 0.5)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[derive(Default, Clone)]
struct Side {
    p50: Vec<f64>,
    p99: Vec<f64>,
}

impl Side {
    fn push(&mut self, lat: Vec<f64>) {
        let s = sorted(lat);
        self.p50.push(pct(&s, 0.5));
        self.p99.push(pct(&s, 0.99));
    }
    fn json(&self) -> Value {
        json!({"p50_us_per_round": self.p50, "p99_us_per_round": self.p99,
               "p50_us_median": median(&self.p50), "p99_us_median": median(&self.p99)})
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn fail(msg: &str) -> ! {
    eprintln!("p1_p2: FAILED: {msg}");
    std::process::exit(1)
}

// ---------------------------------------------------------------- P1

/// Open loop: one request every 1/rate s for `secs`, each timed from its scheduled send time.
/// The schedule is kept by a plain thread (`std::thread::sleep` is finer than tokio's 1 ms
/// timer wheel), which spawns each call on the client runtime at its time.
async fn open_loop<F, Fut>(rate: u64, secs: u64, call: F) -> (Vec<f64>, usize, f64)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let total = rate * secs;
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let handle = tokio::runtime::Handle::current();
    let dispatcher = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(5);
        let mut handles = Vec::with_capacity(total as usize);
        let mut late = Vec::with_capacity(total as usize);
        for i in 0..total {
            let at = start + period * i as u32;
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            late.push(us(Instant::now().saturating_duration_since(at)));
            let fut = call();
            handles.push(handle.spawn(async move {
                let ok = tokio::time::timeout(Duration::from_secs(10), fut)
                    .await
                    .unwrap_or(false);
                (us(at.elapsed()), ok)
            }));
        }
        (handles, late)
    });
    let (handles, late) = loop {
        if dispatcher.is_finished() {
            break dispatcher
                .join()
                .unwrap_or_else(|_| fail("open-loop dispatcher panicked"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut lat = Vec::with_capacity(handles.len());
    let mut errors = 0;
    for h in handles {
        match h.await {
            Ok((l, true)) => lat.push(l),
            _ => errors += 1,
        }
    }
    (lat, errors, pct(&sorted(late), 0.99))
}

// ---------------------------------------------------------------- P2

#[derive(Default)]
struct StreamStats {
    ttfe: Vec<f64>,
    gaps: Vec<f64>,
    delivery: Vec<f64>,
}

impl StreamStats {
    fn record(&mut self, sent: Instant, times: &[(Instant, u64)]) {
        if let Some((first, _)) = times.first() {
            self.ttfe.push(us(*first - sent));
        }
        for w in times.windows(2) {
            self.gaps.push(us(w[1].0 - w[0].0));
        }
        for (at, stamp) in times {
            let at_ns = (*at - epoch()).as_nanos() as u64;
            self.delivery
                .push(at_ns.saturating_sub(*stamp) as f64 / 1e3);
        }
    }
}

fn stamp_of(text: &str) -> u64 {
    text.trim()
        .strip_prefix('t')
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct StreamRounds {
    ttfe_p50: Vec<f64>,
    gap_p99: Vec<f64>,
    gap_p50: Vec<f64>,
    delivery_p50: Vec<f64>,
    delivery_p99: Vec<f64>,
}

impl StreamRounds {
    fn push(&mut self, s: StreamStats) {
        let t = sorted(s.ttfe);
        let g = sorted(s.gaps);
        let d = sorted(s.delivery);
        self.ttfe_p50.push(pct(&t, 0.5));
        self.gap_p50.push(pct(&g, 0.5));
        self.gap_p99.push(pct(&g, 0.99));
        self.delivery_p50.push(pct(&d, 0.5));
        self.delivery_p99.push(pct(&d, 0.99));
    }
    fn json(&self) -> Value {
        json!({
            "ttfe_p50_us_per_round": self.ttfe_p50, "ttfe_p50_us_median": median(&self.ttfe_p50),
            "gap_p50_us_per_round": self.gap_p50, "gap_p50_us_median": median(&self.gap_p50),
            "gap_p99_us_per_round": self.gap_p99, "gap_p99_us_median": median(&self.gap_p99),
            "delivery_p50_us_per_round": self.delivery_p50, "delivery_p50_us_median": median(&self.delivery_p50),
            "delivery_p99_us_per_round": self.delivery_p99, "delivery_p99_us_median": median(&self.delivery_p99),
        })
    }
}

async fn stream_round_raw(raw: &Raw, n: usize) -> StreamStats {
    let mut st = StreamStats::default();
    for _ in 0..n {
        let mut times = Vec::with_capacity(STREAM_CHUNKS as usize);
        let sent = Instant::now();
        let r = raw.stream(|t, at| times.push((at, stamp_of(t)))).await;
        match r {
            Ok(1) if times.len() == STREAM_CHUNKS as usize => {}
            Ok(_) => fail("raw stream: wrong event count"),
            Err(e) => fail(&format!("raw stream: {e}")),
        }
        st.record(sent, &times);
    }
    st
}

async fn stream_round_ours(chat: &Arc<dyn ChatModel>, n: usize) -> StreamStats {
    let mut st = StreamStats::default();
    for _ in 0..n {
        let mut times = Vec::with_capacity(STREAM_CHUNKS as usize);
        let sent = Instant::now();
        let r = ours_stream(chat, |t, at| times.push((at, stamp_of(t)))).await;
        match r {
            Ok(1) if times.len() == STREAM_CHUNKS as usize => {}
            Ok(_) => fail("our stream: wrong event count"),
            Err(e) => fail(&format!("our stream: {e}")),
        }
        st.record(sent, &times);
    }
    st
}

// ---------------------------------------------------------------- main

fn lock_version(name: &str) -> String {
    let lock = include_str!("../../../Cargo.lock");
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|i| {
            let rest = &lock[i + needle.len()..];
            rest.find('"').map(|j| rest[..j].to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

const CLIENT_WORKERS: usize = 2;

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let _ = epoch();
    let addr = start_mock();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENT_WORKERS)
        .enable_all()
        .build()
        .expect("client runtime");
    let started = Instant::now();
    let report = rt.block_on(run(addr));
    let mut report = report;
    report["wall_s"] = json!(started.elapsed().as_secs_f64());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("p1_p2.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    ) {
        Ok(()) => println!("raw numbers: {}", path.display()),
        Err(e) => fail(&format!("cannot write {}: {e}", path.display())),
    }
    let p1 = &report["p1"]["closed"];
    let p2 = &report["p2"];
    println!(
        "P1 chat: merchant-ai stack p50 {:.0} us vs raw reqwest {:.0} us: {:+.0} us (p99 {:+.0} us), median of {ROUNDS}",
        p1["ours"]["p50_us_median"].as_f64().unwrap_or(f64::NAN),
        p1["raw"]["p50_us_median"].as_f64().unwrap_or(f64::NAN),
        p1["added_p50_us"].as_f64().unwrap_or(f64::NAN),
        p1["added_p99_us"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "P2 streams: {:+.0} us TTFE, {:+.0} us p99 inter-event; {} concurrent streams, {} lost, {} duplicated",
        p2["added_ttfe_p50_us"].as_f64().unwrap_or(f64::NAN),
        p2["added_gap_p99_us"].as_f64().unwrap_or(f64::NAN),
        p2["concurrent"]["streams"],
        p2["concurrent"]["lost"],
        p2["concurrent"]["duplicated"],
    );
}

async fn run(addr: std::net::SocketAddr) -> Value {
    let base = format!("http://{addr}/v1");
    let cfg = OpenAiConfig {
        base_url: base.clone(),
        chat_model: Some(MODEL.into()),
        local: true,
        ..Default::default()
    };
    // Built first: it installs the rustls crypto provider reqwest needs.
    let provider: Arc<dyn Provider> = match OpenAiProvider::new("mock", cfg.clone(), None) {
        Ok(p) => Arc::new(p),
        Err(e) => fail(&format!("adapter: {e}")),
    };
    // Each side gets its own adapter (its own reqwest client and connection), like the raw
    // side, so no side rides on a connection another side just warmed.
    let bare_provider: Arc<dyn Provider> = match OpenAiProvider::new("mock", cfg.clone(), None) {
        Ok(p) => Arc::new(p),
        Err(e) => fail(&format!("adapter: {e}")),
    };
    let nocache_provider: Arc<dyn Provider> = match OpenAiProvider::new("mock", cfg, None) {
        Ok(p) => Arc::new(p),
        Err(e) => fail(&format!("adapter: {e}")),
    };
    // The full stack as a profile built from config gets it by default: the privacy gate
    // (redaction for a provider outside the process) and the observe layer (spans, cost).
    let observer = match Observer::from_config(
        &ObserveConfig::default(),
        PricingTable::default(),
        None,
        None,
    ) {
        Ok(o) => Arc::new(o),
        Err(e) => fail(&format!("observer: {e}")),
    };
    let client = match Client::builder("bench")
        .layers(ProviderLayers::new("mock", &LayerSettings::default()))
        .cache(CacheConfig::default())
        .privacy(PrivacyPolicy::default())
        .observe(observer)
        .route(Capability::Chat, vec![("mock".into(), provider)])
    {
        Ok(b) => b.build(),
        Err(e) => fail(&format!("client: {e}")),
    };
    let chat = match client.chat_model() {
        Ok(c) => c,
        Err(e) => fail(&format!("chat route: {e}")),
    };
    // Same reqwest version and features as the adapter (plain http on loopback), same
    // timeouts.
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
    {
        Ok(h) => h,
        Err(e) => fail(&format!("raw reqwest client: {e}")),
    };
    let raw = Raw {
        http,
        url: format!("{base}/chat/completions"),
    };

    // Two breakdown sides, to see where the added time goes: the adapter alone (no layer,
    // no fallback, no cache) and the layered stack without the cache wrapper.
    let bare: Arc<dyn ChatModel> = match bare_provider.chat_model() {
        Some(c) => c,
        None => fail("adapter offers no chat"),
    };
    let no_cache = match Client::builder("bench-nocache")
        .layers(ProviderLayers::new("mock", &LayerSettings::default()))
        .route(Capability::Chat, vec![("mock".into(), nocache_provider)])
    {
        Ok(b) => b.build(),
        Err(e) => fail(&format!("client: {e}")),
    };
    let no_cache = match no_cache.chat_model() {
        Ok(c) => c,
        Err(e) => fail(&format!("chat route: {e}")),
    };

    // ---- P1 closed loop, interleaved rounds.
    println!(
        "== P1: chat to a loopback mock, concurrency 1, {ROUNDS} rounds x {N} (+{WARMUP} warm-up) per side, sides interleaved request by request"
    );
    let (mut a, mut b) = (Side::default(), Side::default());
    let (mut c_bare, mut c_nocache) = (Side::default(), Side::default());
    let (mut d50, mut d99) = (Vec::new(), Vec::new());
    let sides: [&Arc<dyn ChatModel>; 3] = [&chat, &bare, &no_cache];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for r in 0..ROUNDS {
        // One request per side in turn, in a seeded random order each time, so slow drift on
        // this shared machine and cache warmth from the previous call hit every side alike.
        let mut lat: [Vec<f64>; 4] = Default::default();
        let mut order = [0usize, 1, 2, 3];
        for i in 0..WARMUP + N {
            for k in (1..4).rev() {
                order.swap(k, (xorshift(&mut seed) % (k as u64 + 1)) as usize);
            }
            for side in order {
                let t = Instant::now();
                let out = match side {
                    0 => raw.chat().await,
                    s => ours_chat(sides[s - 1]).await,
                };
                let l = us(t.elapsed());
                match out {
                    Ok(text) if text == REPLY => {}
                    Ok(_) => fail("wrong reply"),
                    Err(e) => fail(&format!("side {side}: {e}")),
                }
                if i >= WARMUP {
                    lat[side].push(l);
                }
            }
        }
        let [l0, l1, l2, l3] = lat;
        a.push(l0);
        b.push(l1);
        c_bare.push(l2);
        c_nocache.push(l3);
        d50.push(b.p50[r] - a.p50[r]);
        d99.push(b.p99[r] - a.p99[r]);
        println!(
            "  round {}: raw p50 {:.1} p99 {:.1} | full stack p50 {:.1} p99 {:.1} | adapter alone p50 {:.1} p99 {:.1} | layers w/o cache p50 {:.1} p99 {:.1} (us)",
            r + 1,
            a.p50[r],
            a.p99[r],
            b.p50[r],
            b.p99[r],
            c_bare.p50[r],
            c_bare.p99[r],
            c_nocache.p50[r],
            c_nocache.p99[r]
        );
    }
    let added_p50 = median(&b.p50) - median(&a.p50);
    let added_p99 = median(&b.p99) - median(&a.p99);
    println!(
        "  median: raw p50 {:.1} p99 {:.1} us | full stack p50 {:.1} p99 {:.1} us | added p50 {added_p50:+.1} us (target <= 30), p99 {added_p99:+.1} us (target <= 150)",
        median(&a.p50),
        median(&a.p99),
        median(&b.p50),
        median(&b.p99)
    );
    println!(
        "  median of per-round differences: p50 {:+.1} us, p99 {:+.1} us",
        median(&d50),
        median(&d99)
    );
    println!(
        "  breakdown (p50 medians): adapter over raw {:+.1} us; layers+fallback over adapter {:+.1} us; cache wrapper (miss) {:+.1} us",
        median(&c_bare.p50) - median(&a.p50),
        median(&c_nocache.p50) - median(&c_bare.p50),
        median(&b.p50) - median(&c_nocache.p50),
    );

    // What the cache wrapper does on every chat call even when chat caching is off: it builds
    // its key from the whole request (serde_json::to_value, then to_vec; SHA-256 not counted).
    let key_ns = {
        let req = request();
        let n = 20_000u32;
        let t = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            let v = serde_json::to_value(std::hint::black_box(&req)).unwrap_or(Value::Null);
            bytes += serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
        }
        std::hint::black_box(bytes);
        t.elapsed().as_nanos() as f64 / f64::from(n)
    };
    println!(
        "  cache-key serialization of this request (to_value + to_vec, no hash): {:.2} us per call",
        key_ns / 1e3
    );

    // ---- P1 open loop.
    println!(
        "== P1 open loop: {OPEN_RATE} req/s for {OPEN_SECS} s per side, {OPEN_ROUNDS} rounds, latency from the scheduled send time"
    );
    let (mut oa, mut ob) = (Side::default(), Side::default());
    let (mut err_a, mut err_b) = (0, 0);
    let mut late99: Vec<f64> = Vec::new();
    for r in 0..OPEN_ROUNDS {
        let rr = raw.clone();
        let (l, e, late) = open_loop(OPEN_RATE, OPEN_SECS, move || {
            let rr = rr.clone();
            async move { rr.chat().await.map(|s| s == REPLY).unwrap_or(false) }
        })
        .await;
        err_a += e;
        late99.push(late);
        oa.push(l);
        let c = chat.clone();
        let (l, e, late) = open_loop(OPEN_RATE, OPEN_SECS, move || {
            let c = c.clone();
            async move { ours_chat(&c).await.map(|s| s == REPLY).unwrap_or(false) }
        })
        .await;
        err_b += e;
        late99.push(late);
        ob.push(l);
        println!(
            "  round {}: raw p50 {:.1} p99 {:.1} us | ours p50 {:.1} p99 {:.1} us",
            r + 1,
            oa.p50[r],
            oa.p99[r],
            ob.p50[r],
            ob.p99[r]
        );
    }
    println!(
        "  median: raw p50 {:.1} p99 {:.1} us | ours p50 {:.1} p99 {:.1} us | added p50 {:+.1} p99 {:+.1} us; errors raw {err_a} ours {err_b}; dispatcher lateness p99 {:.1} us (included)",
        median(&oa.p50),
        median(&oa.p99),
        median(&ob.p50),
        median(&ob.p99),
        median(&ob.p50) - median(&oa.p50),
        median(&ob.p99) - median(&oa.p99),
        median(&late99),
    );

    // ---- P2 stream latency.
    CHUNKS.store(STREAM_CHUNKS, Ordering::Relaxed);
    SPACING_US.store(STREAM_SPACING_US, Ordering::Relaxed);
    STAMPED.store(1, Ordering::Relaxed);
    println!(
        "== P2: streams of {STREAM_CHUNKS} chunks every {STREAM_SPACING_US} us, {ROUNDS} rounds x {STREAMS_PER_ROUND} streams per side, sequential"
    );
    stream_round_raw(&raw, 2).await;
    stream_round_ours(&chat, 2).await;
    let (mut sa, mut sb) = (StreamRounds::default(), StreamRounds::default());
    for r in 0..ROUNDS {
        sa.push(stream_round_raw(&raw, STREAMS_PER_ROUND).await);
        sb.push(stream_round_ours(&chat, STREAMS_PER_ROUND).await);
        println!(
            "  round {}: TTFE raw {:.1} ours {:.1} us | gap p99 raw {:.1} ours {:.1} us | delivery p99 raw {:.1} ours {:.1} us",
            r + 1,
            sa.ttfe_p50[r],
            sb.ttfe_p50[r],
            sa.gap_p99[r],
            sb.gap_p99[r],
            sa.delivery_p99[r],
            sb.delivery_p99[r]
        );
    }
    let added_ttfe = median(&sb.ttfe_p50) - median(&sa.ttfe_p50);
    let added_gap99 = median(&sb.gap_p99) - median(&sa.gap_p99);
    let added_del50 = median(&sb.delivery_p50) - median(&sa.delivery_p50);
    let added_del99 = median(&sb.delivery_p99) - median(&sa.delivery_p99);
    println!(
        "  median: added TTFE p50 {added_ttfe:+.1} us (target <= 200); added inter-event gap p99 {added_gap99:+.1} us (target <= 50); added per-event delivery latency p50 {added_del50:+.1} p99 {added_del99:+.1} us"
    );

    // ---- P2 concurrent streams.
    CHUNKS.store(CONC_CHUNKS, Ordering::Relaxed);
    SPACING_US.store(CONC_SPACING_US, Ordering::Relaxed);
    STAMPED.store(0, Ordering::Relaxed);
    println!(
        "== P2: {CONC_STREAMS} concurrent streams through our stack, {CONC_CHUNKS} chunks every {CONC_SPACING_US} us"
    );
    let expected = Arc::new(expected_text(CONC_CHUNKS));
    let t = Instant::now();
    let mut hs = Vec::with_capacity(CONC_STREAMS);
    for _ in 0..CONC_STREAMS {
        let c = chat.clone();
        let exp = expected.clone();
        hs.push(tokio::spawn(async move {
            let mut text = String::new();
            let mut events = 0u64;
            let r = tokio::time::timeout(
                Duration::from_secs(60),
                ours_stream(&c, |t, _| {
                    text.push_str(t);
                    events += 1;
                }),
            )
            .await;
            match r {
                Ok(Ok(fin)) => (text == *exp, events, fin, None),
                Ok(Err(e)) => (false, events, 0, Some(e)),
                Err(_) => (false, events, 0, Some("timed out".to_owned())),
            }
        }));
    }
    let (mut exact, mut lost, mut dup, mut bad_finish, mut errors) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut first_error: Option<String> = None;
    for h in hs {
        match h.await {
            Ok((ok, events, fin, err)) => {
                if ok {
                    exact += 1;
                }
                if events < CONC_CHUNKS {
                    lost += CONC_CHUNKS - events;
                }
                if events > CONC_CHUNKS {
                    dup += events - CONC_CHUNKS;
                }
                if fin != 1 {
                    bad_finish += 1;
                }
                if let Some(e) = err {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            Err(_) => errors += 1,
        }
    }
    let wall = t.elapsed();
    println!(
        "  {CONC_STREAMS} streams in {:.3} s: {exact} exact text, {lost} lost events, {dup} duplicated, {bad_finish} without exactly one Finished, {errors} errors{}",
        wall.as_secs_f64(),
        first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );

    json!({
        "benchmark": "P1/P2",
        "versions": {
            "merchant-ai": env!("CARGO_PKG_VERSION"),
            "merchant-ai-openai": env!("CARGO_PKG_VERSION"),
            "reqwest": lock_version("reqwest"),
            "hyper": lock_version("hyper"),
            "tokio": lock_version("tokio"),
            "serde_json": lock_version("serde_json"),
        },
        "peer": "raw reqwest + serde_json in the same binary",
        "threads": {"client_tokio_workers": CLIENT_WORKERS, "mock_tokio_workers": 1,
                    "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "stack": "Client: CachedChat (default CacheConfig, chat_ttl_ms 0: every call a miss) -> FallbackChat -> breaker -> retry -> timeout -> chaos (off) -> OpenAI adapter",
        "p1": {
            "closed": {"rounds": ROUNDS, "n": N, "warmup": WARMUP,
                       "raw": a.json(), "ours": b.json(),
                       "added_p50_us": added_p50, "added_p99_us": added_p99,
                       "added_p50_us_median_of_round_diffs": median(&d50),
                       "added_p99_us_median_of_round_diffs": median(&d99),
                       "target_p50_us": 30, "target_p99_us": 150,
                       "cache_key_serialization_us": key_ns / 1e3,
                       "breakdown": {"adapter_alone": c_bare.json(), "layers_without_cache": c_nocache.json()}},
            "open": {"rate_per_s": OPEN_RATE, "secs": OPEN_SECS, "rounds": OPEN_ROUNDS,
                     "raw": oa.json(), "ours": ob.json(), "errors_raw": err_a, "errors_ours": err_b,
                     "dispatcher_lateness_p99_us_median": median(&late99),
                     "added_p50_us": median(&ob.p50) - median(&oa.p50),
                     "added_p99_us": median(&ob.p99) - median(&oa.p99)},
        },
        "p2": {
            "chunks": STREAM_CHUNKS, "spacing_us": STREAM_SPACING_US, "streams_per_round": STREAMS_PER_ROUND, "rounds": ROUNDS,
            "raw": sa.json(), "ours": sb.json(),
            "added_ttfe_p50_us": added_ttfe, "added_gap_p99_us": added_gap99,
            "added_delivery_p50_us": added_del50, "added_delivery_p99_us": added_del99,
            "target_ttfe_us": 200, "target_gap_p99_us": 50,
            "concurrent": {"streams": CONC_STREAMS, "chunks": CONC_CHUNKS, "spacing_us": CONC_SPACING_US,
                           "exact": exact, "lost": lost, "duplicated": dup,
                           "without_one_finished": bad_finish, "errors": errors,
                           "wall_s": wall.as_secs_f64()},
        },
    })
}
