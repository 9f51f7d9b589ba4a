//! A short, bounded soak of the full layered stack while the audit sink and the metrics
//! backend misbehave (issue 3: "memory stays flat while the metrics or audit sink is failing").
//!
//! Stack per call: observe (metrics, cost, audit) -> thresholds -> fallback[breaker -> retry ->
//! timeout -> chaos -> scripted] over two providers; the primary's chaos layer fails 10% of
//! calls (stream starts included), so retries and fallbacks run all the time. Calls are a mix
//! of chat, chat streams and searches from 64 concurrent tasks on a 2-thread runtime.
//!
//! Phases, each `CALLS` calls: healthy sinks, audit sink failing + metrics panicking, audit
//! sink slow (50 ms per batch, so its queue fills and records are dropped), healthy again. After
//! each phase it prints resident memory, live tokio tasks, calls served, and the audit log's
//! counts; at the end the client is dropped and the live tasks must return to the baseline.
//!
//! Run: `cargo bench --features contract --bench soak` (SOAK_CALLS to change the phase size).
//! Writes `target/soak.json`. The last line compares memory growth in the failing phases
//! with the healthy one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use merchant_ai::audit::{AuditRecord, AuditSink};
use merchant_ai::contract::ScriptedProvider;
use merchant_ai::layers::observe::Observer;
use merchant_ai::layers::*;
use merchant_ai::metrics::{InMemoryMetrics, Label, Metrics};
use merchant_ai::pricing::{Price, PricingTable};
use merchant_ai::thresholds::{ChatRule, Thresholds, ThresholdsConfig};
use merchant_ai::*;

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const SLOW: u8 = 2;

#[derive(Debug)]
struct SwitchSink {
    mode: Arc<AtomicU8>,
    written: AtomicU64,
}

#[async_trait]
impl AuditSink for SwitchSink {
    async fn write(&self, records: &[AuditRecord]) -> Result<()> {
        match self.mode.load(Ordering::Relaxed) {
            FAILING => Err(Error::new(ErrorKind::Unavailable, "audit backend down")),
            SLOW => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.written
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            _ => {
                // Serialize as the file sink would, then discard.
                let n: usize = records
                    .iter()
                    .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
                    .sum();
                std::hint::black_box(n);
                self.written
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

#[derive(Debug)]
struct SwitchMetrics {
    mode: Arc<AtomicU8>,
    inner: InMemoryMetrics,
}

impl Metrics for SwitchMetrics {
    fn counter(&self, name: &'static str, labels: &[Label<'_>], value: u64) {
        if self.mode.load(Ordering::Relaxed) == FAILING {
            panic!("metrics backend down");
        }
        self.inner.counter(name, labels, value);
    }
    fn histogram(&self, name: &'static str, labels: &[Label<'_>], value: f64) {
        if self.mode.load(Ordering::Relaxed) == FAILING {
            panic!("metrics backend down");
        }
        self.inner.histogram(name, labels, value);
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn build(mode: Arc<AtomicU8>) -> (Client, Arc<Observer>, Arc<SwitchSink>) {
    let primary = ScriptedProvider::from_info(ProviderInfo::remote(
        "vendor",
        "scripted",
        None,
        None,
        Capabilities::all(),
    ));
    let backup = ScriptedProvider::new("local");
    let chaos = ChaosConfig {
        error_rate: 0.1,
        stream_cut_after: None,
        ..Default::default()
    };
    let settings = LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 2,
            initial_backoff_ms: 1,
            ..Default::default()
        }),
        timeout: Some(TimeoutConfig::default()),
        breaker: Some(BreakerConfig {
            enabled: false,
            ..Default::default()
        }),
        chaos: Some(chaos),
        limits: None,
    };
    let sink = Arc::new(SwitchSink {
        mode: mode.clone(),
        written: AtomicU64::new(0),
    });
    let metrics = Arc::new(SwitchMetrics {
        mode,
        inner: InMemoryMetrics::new(),
    });
    let pricing = PricingTable::new()
        .with_provider("vendor", Price::new(Currency::CNY).with_tokens(2.0, 6.0))
        .expect("prices");
    let obs = Arc::new(
        Observer::new()
            .with_metrics(metrics.clone())
            .with_audit_sink(sink.clone(), 4096)
            .with_pricing(pricing),
    );
    let rules = Arc::new(
        Thresholds::new(
            ThresholdsConfig {
                chat: Some(ChatRule {
                    max_discount_pct: Some(10.0),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None,
        )
        .expect("rules")
        .with_metrics(Some(metrics)),
    );
    let mut b = Client::builder("soak")
        .layers(ProviderLayers::new("vendor", &settings))
        .observe(obs.clone())
        .thresholds(rules);
    for cap in [Capability::Chat, Capability::Search] {
        let chain: Vec<(String, Arc<dyn Provider>)> = vec![
            ("vendor".to_owned(), Arc::new(primary.clone())),
            ("local".to_owned(), Arc::new(backup.clone())),
        ];
        b = b.route(cap, chain).expect("route");
    }
    (b.build(), obs, sink)
}

struct Phase {
    name: &'static str,
    calls: u64,
    served: u64,
    failed: u64,
    secs: f64,
    rss_before: u64,
    rss_after: u64,
    tasks_after: usize,
}

async fn run_phase(client: &Client, name: &'static str, calls: u64, conc: u64) -> Phase {
    let rss_before = rss_kib();
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..conc {
        let chat = client.chat_model().expect("chat");
        let search = client.searcher().expect("search");
        let (served, failed) = (served.clone(), failed.clone());
        let n = calls / conc;
        handles.push(tokio::spawn(async move {
            for i in 0..n {
                let k = (t * 7919 + i) % 20;
                let ok = if k < 14 {
                    let req = ChatRequest::new(vec![Message::user(
                        "hi, my email is shopper@example.com, where is order 12345?",
                    )]);
                    chat.chat(req).await.is_ok()
                } else if k < 18 {
                    let req = ChatRequest::new(vec![Message::user("tell me about shoes")]);
                    match chat.chat_stream(req).await {
                        Ok(s) => collect_stream(s).await.is_ok(),
                        Err(_) => false,
                    }
                } else {
                    search
                        .search(SearchRequest::new("running shoes"))
                        .await
                        .is_ok()
                };
                if ok {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    Phase {
        name,
        calls: (calls / conc) * conc,
        served: served.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        secs,
        rss_before,
        rss_after: rss_kib(),
        tasks_after: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    }
}

fn main() {
    // Panics in the misbehaving metrics backend are caught and counted; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let calls: u64 = std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let baseline_tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let (client, obs, sink) = build(mode.clone());
        run_phase(&client, "warm-up", calls / 4, 64).await;
        let mut phases = Vec::new();
        let mut audit_rows = Vec::new();
        for (name, m) in [
            ("healthy", HEALTHY),
            ("audit failing + metrics panicking", FAILING),
            ("audit slow (50 ms/batch)", SLOW),
            ("healthy again", HEALTHY),
        ] {
            mode.store(m, Ordering::Relaxed);
            let before = obs.audit().expect("audit").stats();
            let p = run_phase(&client, name, calls, 64).await;
            let after = obs.audit().expect("audit").stats();
            audit_rows.push((
                after.submitted - before.submitted,
                after.written - before.written,
                after.failed - before.failed,
                after.dropped - before.dropped,
            ));
            phases.push(p);
        }
        mode.store(HEALTHY, Ordering::Relaxed);
        obs.audit().expect("audit").flush().await;
        let written = sink.written.load(Ordering::Relaxed);
        drop(client);
        drop(obs);
        drop(sink);
        // The audit writer ends when the last sender is gone.
        let mut tasks_end = usize::MAX;
        for _ in 0..200 {
            tasks_end = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            if tasks_end <= baseline_tasks {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        println!(
            "{:<36} {:>8} {:>8} {:>6} {:>9} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "phase", "calls", "served", "failed", "calls/s", "rss0 KiB", "rss1 KiB", "tasks",
            "audit in", "written", "failed", "dropped"
        );
        let mut rows = Vec::new();
        for (p, a) in phases.iter().zip(&audit_rows) {
            println!(
                "{:<36} {:>8} {:>8} {:>6} {:>9.0} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}",
                p.name,
                p.calls,
                p.served,
                p.failed,
                p.calls as f64 / p.secs,
                p.rss_before,
                p.rss_after,
                p.tasks_after,
                a.0,
                a.1,
                a.2,
                a.3
            );
            rows.push(serde_json::json!({
                "phase": p.name, "calls": p.calls, "served": p.served, "failed": p.failed,
                "seconds": p.secs, "rss_before_kib": p.rss_before, "rss_after_kib": p.rss_after,
                "alive_tasks_after": p.tasks_after, "audit_submitted": a.0, "audit_written": a.1,
                "audit_failed": a.2, "audit_dropped": a.3,
            }));
        }
        println!(
            "live tokio tasks: baseline {baseline_tasks}, after the client was dropped {tasks_end}; audit records written in total {written}"
        );
        let growth = |p: &Phase| p.rss_after as i64 - p.rss_before as i64;
        let healthy = growth(&phases[0]).max(0);
        let bad = growth(&phases[1]).max(0) + growth(&phases[2]).max(0);
        let json = serde_json::json!({
            "bench": "soak",
            "merchant_ai": env!("CARGO_PKG_VERSION"),
            "calls_per_phase": calls,
            "concurrency": 64,
            "worker_threads": 2,
            "phases": rows,
            "baseline_tasks": baseline_tasks,
            "tasks_after_drop": tasks_end,
        });
        let _ = std::fs::create_dir_all("target");
        let _ = std::fs::write("target/soak.json", serde_json::to_vec_pretty(&json).unwrap_or_default());
        let all_served = phases.iter().all(|p| p.served == p.calls);
        println!(
            "soak: rss growth while sinks failed or stalled {bad} KiB vs healthy {healthy} KiB over {} calls; every call served: {all_served}; tasks leaked: {}",
            calls * 2,
            tasks_end.saturating_sub(baseline_tasks)
        );
        if !all_served || tasks_end > baseline_tasks {
            std::process::exit(1);
        }
    });
}
