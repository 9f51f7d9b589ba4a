//! A loopback TCP proxy that puts transport faults between an adapter and its mock server.
//!
//! wiremock answers at the HTTP level; some faults live below it: a connection dropped before
//! any answer, a body that trickles in slower than the adapter's timeout, a response delivered
//! one byte per TCP write (every chunk boundary a decoder can meet). Point the adapter at
//! [`FaultProxy::url`] instead of the mock server, and switch [`ProxyMode`] per fault:
//!
//! ```no_run
//! # async fn demo() {
//! use merchant_ai::contract::proxy::{FaultProxy, ProxyMode};
//! # let mock_addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
//! let proxy = FaultProxy::start(mock_addr).await.expect("bind loopback");
//! let base_url = format!("{}/v1", proxy.url());
//! proxy.set_mode(ProxyMode::Reset);
//! // ... a request now gets its connection dropped; proxy.resets() counts it ...
//! proxy.clear();
//! # let _ = base_url; }
//! ```
//!
//! Requests are forwarded unchanged in every mode but [`ProxyMode::Reset`], so the mock server
//! still sees (and counts) them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::harness::Fault;

/// What the proxy does to the connections it carries.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Forward bytes both ways as they come.
    #[default]
    Pass,
    /// Drop the connection as soon as a request arrives, without an answer (counted in
    /// [`FaultProxy::resets`]).
    Reset,
    /// Forward the response head at once, then the body one byte per interval: a server that
    /// answered but is stuck sending.
    SlowBody(Duration),
    /// Forward the response one byte per TCP write: a body split at every offset.
    Rechunk,
}

impl ProxyMode {
    /// The mode that produces a transport-level [`Fault`], if it is one: `ConnectionReset`,
    /// `SlowBody` (one byte per 200 ms) and `Rechunked`. Other faults are the mock server's job.
    pub fn for_fault(fault: Fault) -> Option<ProxyMode> {
        match fault {
            Fault::ConnectionReset => Some(ProxyMode::Reset),
            Fault::SlowBody => Some(ProxyMode::SlowBody(Duration::from_millis(200))),
            Fault::Rechunked => Some(ProxyMode::Rechunk),
            _ => None,
        }
    }
}

struct Shared {
    mode: Mutex<ProxyMode>,
    resets: AtomicUsize,
}

impl Shared {
    fn mode(&self) -> ProxyMode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loopback proxy in front of a mock server. See the [module docs](self).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("mode", &self.mode())
            .field("resets", &self.resets())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(ProxyMode::Pass),
            resets: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(carry(client, upstream, s.clone()));
            }
        });
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to use as the adapter's base URL (add the API's path).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the mode for connections that send a request from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.shared.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        self.shared.mode()
    }

    /// Connections dropped by [`ProxyMode::Reset`] since the last [`clear`](Self::clear).
    pub fn resets(&self) -> usize {
        self.shared.resets.load(Ordering::SeqCst)
    }

    /// Back to [`ProxyMode::Pass`], reset count zero.
    pub fn clear(&self) {
        self.set_mode(ProxyMode::Pass);
        self.shared.resets.store(0, Ordering::SeqCst);
    }

    /// Applies `fault` if it is a transport fault ([`ProxyMode::for_fault`]), else passes
    /// traffic through; returns whether the proxy took the fault on.
    pub fn inject(&self, fault: Fault) -> bool {
        match ProxyMode::for_fault(fault) {
            Some(mode) => {
                self.set_mode(mode);
                true
            }
            None => {
                self.set_mode(ProxyMode::Pass);
                false
            }
        }
    }
}

async fn carry(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    // The mode is read when the first request bytes arrive, and applies to this connection's
    // responses from then on.
    let mode = Arc::new(Mutex::new(ProxyMode::Pass));
    let response_mode = mode.clone();
    let back = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        // Bytes of the current response head seen so far, to find where the body starts.
        let mut head_end_seen = false;
        let mut tail = [0u8; 4];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mode = *response_mode.lock().unwrap_or_else(|e| e.into_inner());
            let ok = match mode {
                ProxyMode::Pass | ProxyMode::Reset => cw.write_all(&buf[..n]).await.is_ok(),
                ProxyMode::Rechunk => {
                    let mut ok = true;
                    for b in &buf[..n] {
                        if cw.write_all(std::slice::from_ref(b)).await.is_err() {
                            ok = false;
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    ok
                }
                ProxyMode::SlowBody(every) => {
                    let mut ok = true;
                    for b in &buf[..n] {
                        if head_end_seen {
                            tokio::time::sleep(every).await;
                        }
                        if cw.write_all(std::slice::from_ref(b)).await.is_err() {
                            ok = false;
                            break;
                        }
                        tail = [tail[1], tail[2], tail[3], *b];
                        if &tail == b"\r\n\r\n" {
                            head_end_seen = true;
                        }
                    }
                    ok
                }
            };
            if !ok {
                break;
            }
        }
        let _ = cw.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = shared.mode();
        if now == ProxyMode::Reset {
            // A request arrived while resets are on: drop both sides without answering.
            shared.resets.fetch_add(1, Ordering::SeqCst);
            back.abort();
            return;
        }
        *mode.lock().unwrap_or_else(|e| e.into_inner()) = now;
        if uw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // The client is done sending; let the response finish (it ends when the upstream closes
    // or the client goes away).
    let _ = back.await;
}
