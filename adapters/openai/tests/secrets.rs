//! The API key is sent in the Authorization header and appears nowhere else: not in captured
//! tracing output (every level, every crate), not in errors (Display or Debug), not in the
//! Debug of the provider, its config or the provider section.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use merchant_ai::contract::{Fault, FaultHarness, RetryAfterForm};
use merchant_ai::{Capability, ChatRequest, Message, Provider};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_leaks() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let h = common::Harness::start().await;
    let p = h.provider("gpt");
    let chat = p.chat_model().unwrap();
    let mut seen = Vec::new();

    let r = chat
        .chat(ChatRequest::new(vec![Message::user("hello")]))
        .await
        .unwrap();
    seen.push(format!("{r:?}"));
    let mut s = chat
        .chat_stream(ChatRequest::new(vec![Message::user("hello")]).with_seed(1))
        .await
        .unwrap();
    while let Some(ev) = s.next().await {
        seen.push(format!("{ev:?}"));
    }
    // The key did go out, in the header.
    let reqs = h.server.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].headers.get("authorization").unwrap(),
        &format!("Bearer {}", common::KEY)
    );
    for fault in [
        Fault::RateLimited(RetryAfterForm::Seconds(1)),
        Fault::QuotaExhausted,
        Fault::ServerError(503),
        Fault::MalformedBody,
        Fault::StreamCut,
        Fault::ConnectionReset,
        Fault::Timeout,
    ] {
        h.inject(Capability::Chat, fault).await;
        let e = chat
            .chat(ChatRequest::new(vec![Message::user("hello")]))
            .await
            .unwrap_err();
        seen.push(format!("{e} {e:?}"));
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            seen.push(format!("{s} {s:?}"));
            src = s.source();
        }
        if let Ok(mut st) = chat
            .chat_stream(ChatRequest::new(vec![Message::user("hello")]))
            .await
        {
            while let Some(ev) = st.next().await {
                seen.push(format!("{ev:?}"));
                if let Err(e) = ev {
                    seen.push(format!("{e}"));
                }
            }
        }
    }
    seen.push(format!("{p:?}"));
    seen.push(format!("{:?}", p.info()));
    seen.push(format!("{:?}", h.config()));
    let section = common::provider_config(&h.base_url());
    seen.push(format!("{section:?}"));
    assert_eq!(
        merchant_ai::ProviderConfig::api_key(&section)
            .unwrap()
            .map(|k| secrecy::ExposeSecret::expose_secret(&k).len()),
        Some(common::KEY.len())
    );

    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the subscriber captured nothing");
    assert!(
        logs.contains("openai chat request"),
        "adapter logs were not captured"
    );
    for (i, s) in seen.iter().chain(std::iter::once(&logs)).enumerate() {
        assert!(!s.contains(common::KEY), "the key leaked in item {i}");
        assert!(
            !s.contains("SECRET-4242"),
            "part of the key leaked in item {i}"
        );
        assert!(!s.contains("hello"), "customer text leaked in item {i}");
    }
}
