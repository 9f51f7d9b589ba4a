//! The audit log: one [`AuditRecord`] per call, written by an [`AuditSink`] off the call path.
//!
//! A record says who served a call and how: time, capability, provider and model, route
//! position and the providers skipped, policy outcomes and redaction counts (from
//! [`ResponseMeta::governance`](crate::ResponseMeta::governance)), the threshold decision, usage and cost, latency, and the
//! error kind of a failed call. It holds names, counts and numbers only: never a query, a
//! message, a reply, an error message or a secret. The subject appears only as a short SHA-256
//! digest of its pseudonymous id, so records about one subject can be found without the id.
//!
//! Records go through a bounded queue to a background task that writes them in batches. A
//! sink that fails, panics or is slow never fails or slows a call: its failures are counted
//! ([`AuditStats::failed`], metric [`crate::metrics::AUDIT_FAILED`]), and when the
//! queue is full new records are dropped and counted ([`AuditStats::dropped`]), so memory stays
//! bounded whatever the sink does. The task ends when the client is dropped.
//!
//! ```toml
//! [profiles.prod.observe]
//! audit_path = "/var/log/merchant-ai/audit.jsonl"   # JSON lines, appended
//! audit_queue = 4096                                # records waiting at most
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::api::Capability;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{AUDIT_DROPPED, AUDIT_FAILED, Metrics};
use crate::types::{Decision, FallbackNote, PolicyNote, RequestContext, Usage};

/// Why a call was made.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallRole {
    /// The caller's call, served by its route.
    #[default]
    Primary,
    /// A mirrored call to a candidate provider; its answer was not used.
    Shadow,
    /// A call routed to a candidate provider instead of the route.
    Canary,
    /// An operation on stored data (e.g. erasure), not a model call.
    Admin,
}

/// How a call ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An answer.
    #[default]
    Ok,
    /// An error.
    Error,
    /// The caller dropped a stream before it finished.
    Cancelled,
}

/// How far a candidate's answer agreed with the served one (shadow and canary calls).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The provider compared against the candidate (the route's server).
    pub baseline: String,
    /// The measure: `top_k_overlap`, `text_similarity` or `forecast_agreement`.
    pub measure: String,
    /// Agreement in [0, 1] (1 = the same answer).
    pub value: f64,
    /// For forecasts: the mean absolute difference of the point forecasts, relative to the
    /// served forecast's mean level (the error one would make by using the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_difference: Option<f64>,
}

/// One audited call. Names, counts and numbers only.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call ended.
    pub time: DateTime<Utc>,
    /// Why the call was made.
    pub role: CallRole,
    /// The capability.
    pub capability: Capability,
    /// The operation (`search`, `chat`, `chat_stream`, `forget`, ...).
    pub operation: String,
    /// The request's trace id.
    pub trace_id: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// The first 16 hex digits of the SHA-256 of the pseudonymous subject id.
    pub subject_digest: Option<String>,
    /// The configured provider that served (or failed last).
    pub provider: Option<String>,
    /// Its adapter kind.
    pub provider_kind: Option<String>,
    /// The model that served.
    pub model: Option<String>,
    /// Position in the route (0 = primary).
    pub route_position: Option<usize>,
    /// Providers skipped before it, and why.
    pub fallbacks: Vec<FallbackNote>,
    /// Policy outcomes (consent, residency, redaction), in order.
    pub policy: Vec<PolicyNote>,
    /// Values redacted before the request left the process, by type.
    pub redactions: BTreeMap<String, u32>,
    /// The threshold decision.
    pub decision: Decision,
    /// Tokens, units and cost.
    pub usage: Usage,
    /// Wall time as the caller saw it, in milliseconds.
    pub latency_ms: f64,
    /// Whether a cache answered.
    pub cached: bool,
    /// How the call ended.
    pub outcome: Outcome,
    /// The error kind of a failed call.
    pub error_kind: Option<ErrorKind>,
    /// Agreement with the served answer (shadow and canary calls).
    pub agreement: Option<Agreement>,
}

impl AuditRecord {
    /// A record of `operation` on `capability`, now, with nothing else filled.
    pub fn new(capability: Capability, operation: impl Into<String>) -> Self {
        AuditRecord {
            time: Utc::now(),
            role: CallRole::Primary,
            capability,
            operation: operation.into(),
            trace_id: None,
            tenant: None,
            subject_digest: None,
            provider: None,
            provider_kind: None,
            model: None,
            route_position: None,
            fallbacks: Vec::new(),
            policy: Vec::new(),
            redactions: BTreeMap::new(),
            decision: Decision::Automatic,
            usage: Usage::default(),
            latency_ms: 0.0,
            cached: false,
            outcome: Outcome::Ok,
            error_kind: None,
            agreement: None,
        }
    }

    /// Sets the role.
    #[must_use]
    pub fn with_role(mut self, role: CallRole) -> Self {
        self.role = role;
        self
    }

    /// Copies trace id, tenant and the subject's digest from a request context.
    #[must_use]
    pub fn with_context(mut self, ctx: &RequestContext) -> Self {
        self.trace_id = ctx.trace_id.clone();
        self.tenant = ctx.tenant.clone();
        self.subject_digest = ctx.subject.as_ref().map(|s| subject_digest(s.as_str()));
        self
    }

    /// Sets the provider.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Marks the record as an error of `kind`.
    #[must_use]
    pub fn with_error(mut self, kind: ErrorKind) -> Self {
        self.outcome = Outcome::Error;
        self.error_kind = Some(kind);
        self
    }
}

/// The digest the audit log uses for a subject id (16 hex digits of its SHA-256).
pub fn subject_digest(subject: &str) -> String {
    let d = Sha256::digest(subject.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Where audit records go. Called from a background task with batches of records; an error or
/// a panic is counted, never propagated to a call.
#[async_trait]
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// Stores the records (in order).
    async fn write(&self, records: &[AuditRecord]) -> Result<()>;
}

/// Appends records as JSON lines to a file (created if missing).
#[derive(Debug)]
pub struct JsonLinesAuditSink {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl JsonLinesAuditSink {
    /// Opens (or creates) `path` for appending. The error names the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                Error::config(format!(
                    "cannot open audit log {} for appending: {e}",
                    path.display()
                ))
            })?;
        Ok(JsonLinesAuditSink {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serializes records as JSON lines.
pub fn to_json_lines<T: Serialize>(records: &[T]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(records.len() * 512);
    for r in records {
        serde_json::to_writer(&mut buf, r).map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot encode a record: {e}"),
            )
        })?;
        buf.push(b'\n');
    }
    Ok(buf)
}

pub(crate) async fn append_lines(
    file: Arc<Mutex<std::fs::File>>,
    buf: Vec<u8>,
    what: &'static str,
) -> Result<()> {
    let io = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = file
            .lock()
            .map_err(|_| std::io::Error::other("file lock poisoned"))?;
        f.write_all(&buf)?;
        f.flush()
    });
    match io.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("cannot append to the {what}: {e}"),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::Unexpected,
            format!("the {what} writer stopped"),
        )),
    }
}

#[async_trait]
impl AuditSink for JsonLinesAuditSink {
    async fn write(&self, records: &[AuditRecord]) -> Result<()> {
        let buf = to_json_lines(records)?;
        append_lines(self.file.clone(), buf, "audit log").await
    }
}

/// Keeps the last `capacity` records in memory (for tests and status pages).
#[derive(Debug)]
pub struct MemoryAuditSink {
    records: Mutex<std::collections::VecDeque<AuditRecord>>,
    capacity: usize,
}

impl Default for MemoryAuditSink {
    fn default() -> Self {
        MemoryAuditSink::with_capacity(100_000)
    }
}

impl MemoryAuditSink {
    /// Keeps up to 100,000 records.
    pub fn new() -> Self {
        Self::default()
    }
    /// Keeps up to `capacity` records (older ones are dropped).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryAuditSink {
            records: Mutex::new(Default::default()),
            capacity: capacity.max(1),
        }
    }
    /// The records kept, oldest first.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditSink {
    async fn write(&self, records: &[AuditRecord]) -> Result<()> {
        let mut q = self
            .records
            .lock()
            .map_err(|_| Error::new(ErrorKind::Unexpected, "audit memory lock poisoned"))?;
        for r in records {
            if q.len() == self.capacity {
                q.pop_front();
            }
            q.push_back(r.clone());
        }
        Ok(())
    }
}

/// Counts of what happened to audit records.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// Records handed to the log.
    pub submitted: u64,
    /// Records the sink stored.
    pub written: u64,
    /// Records dropped because the queue was full (the sink is slower than the calls).
    pub dropped: u64,
    /// Records the sink failed to store (an error or a panic).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

enum Msg {
    Record(Box<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// The receiving end and the sink, until the writer task starts.
type Pending = (mpsc::Receiver<Msg>, Arc<dyn AuditSink>);

/// The queue in front of an [`AuditSink`], and the task that drains it.
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    rx: Mutex<Option<Pending>>,
    counters: Arc<Counters>,
    metrics: Option<Arc<dyn Metrics>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("stats", &self.stats())
            .finish()
    }
}

const BATCH: usize = 256;

impl AuditLog {
    /// A log writing to `sink` with at most `queue` records waiting. The writer task starts
    /// with the first record (inside the caller's tokio runtime).
    pub fn new(sink: Arc<dyn AuditSink>, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        AuditLog {
            tx,
            rx: Mutex::new(Some((rx, sink))),
            counters: Arc::new(Counters::default()),
            metrics: None,
        }
    }

    /// Also reports drops and failures to `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Option<Arc<dyn Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    fn ensure_worker(&self) {
        let Ok(mut slot) = self.rx.lock() else {
            return;
        };
        if slot.is_none() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some((rx, sink)) = slot.take() else {
            return;
        };
        let counters = self.counters.clone();
        let metrics = self.metrics.clone();
        handle.spawn(drain(rx, sink, counters, metrics));
    }

    /// Queues a record; never waits. A full queue drops it (counted).
    pub fn submit(&self, record: AuditRecord) {
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        self.ensure_worker();
        if self.tx.try_send(Msg::Record(Box::new(record))).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                guarded(|| m.counter(AUDIT_DROPPED, &[], 1));
            }
        }
    }

    /// Waits until every record queued before this call was handed to the sink.
    pub async fn flush(&self) {
        self.ensure_worker();
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// What happened to the records so far.
    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        AuditStats {
            submitted: c.submitted.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }
}

/// Runs `f`, swallowing a panic (returns whether it completed).
pub(crate) fn guarded(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok()
}

async fn drain(
    mut rx: mpsc::Receiver<Msg>,
    sink: Arc<dyn AuditSink>,
    counters: Arc<Counters>,
    metrics: Option<Arc<dyn Metrics>>,
) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(BATCH);
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Record(r) => batch.push(*r),
                Msg::Flush(f) => flushes.push(f),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let res = std::panic::AssertUnwindSafe(sink.write(&batch))
                .catch_unwind()
                .await;
            match res {
                Ok(Ok(())) => {
                    counters.written.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    counters.failed.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(kind = %e.kind(), records = n, "audit sink failed; records counted as failed");
                    if let Some(m) = &metrics {
                        guarded(|| {
                            m.counter(AUDIT_FAILED, &[("error.type", e.kind().as_str())], n)
                        });
                    }
                }
                Err(_) => {
                    counters.failed.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        records = n,
                        "audit sink panicked; records counted as failed"
                    );
                    if let Some(m) = &metrics {
                        guarded(|| m.counter(AUDIT_FAILED, &[("error.type", "panic")], n));
                    }
                }
            }
            batch.clear();
            if batch.capacity() > BATCH * 4 {
                batch.shrink_to(BATCH);
            }
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Failing;
    #[async_trait]
    impl AuditSink for Failing {
        async fn write(&self, _: &[AuditRecord]) -> Result<()> {
            Err(Error::new(ErrorKind::Unavailable, "disk full"))
        }
    }

    #[derive(Debug)]
    struct Panicking;
    #[async_trait]
    impl AuditSink for Panicking {
        async fn write(&self, _: &[AuditRecord]) -> Result<()> {
            panic!("sink bug")
        }
    }

    #[tokio::test]
    async fn records_are_written_failures_and_drops_counted() {
        let mem = Arc::new(MemoryAuditSink::new());
        let log = AuditLog::new(mem.clone(), 16);
        for _ in 0..10 {
            log.submit(AuditRecord::new(Capability::Search, "search"));
        }
        log.flush().await;
        assert_eq!(mem.records().len(), 10);
        assert_eq!(log.stats().written, 10);

        let log = AuditLog::new(Arc::new(Failing), 4);
        for _ in 0..3 {
            log.submit(AuditRecord::new(Capability::Chat, "chat"));
        }
        log.flush().await;
        assert_eq!(log.stats().failed, 3);

        let log = AuditLog::new(Arc::new(Panicking), 4);
        log.submit(AuditRecord::new(Capability::Chat, "chat"));
        log.flush().await;
        log.submit(AuditRecord::new(Capability::Chat, "chat"));
        log.flush().await;
        assert_eq!(
            log.stats().failed,
            2,
            "the worker survives a panicking sink"
        );
    }

    #[test]
    fn a_full_queue_drops_without_waiting() {
        // No runtime: the worker cannot start, so the queue fills up.
        let log = AuditLog::new(Arc::new(MemoryAuditSink::new()), 2);
        for _ in 0..5 {
            log.submit(AuditRecord::new(Capability::Chat, "chat"));
        }
        let s = log.stats();
        assert_eq!((s.submitted, s.dropped), (5, 3));
    }

    #[tokio::test]
    async fn json_lines_file() {
        let dir = std::env::temp_dir().join(format!("mai-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = AuditLog::new(Arc::new(JsonLinesAuditSink::open(&path).unwrap()), 8);
        let ctx = RequestContext::new()
            .with_subject("u_1")
            .with_trace_id("t-1");
        log.submit(
            AuditRecord::new(Capability::Chat, "chat")
                .with_context(&ctx)
                .with_provider("qwen")
                .with_error(ErrorKind::Timeout),
        );
        log.flush().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let r: AuditRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(r.error_kind, Some(ErrorKind::Timeout));
        assert_eq!(
            r.subject_digest.as_deref(),
            Some(subject_digest("u_1").as_str())
        );
        assert!(!text.contains("u_1"));
        let e = JsonLinesAuditSink::open(dir.join("no/such/dir/a.jsonl")).unwrap_err();
        assert!(e.message().contains("no/such/dir"), "{e}");
    }
}
