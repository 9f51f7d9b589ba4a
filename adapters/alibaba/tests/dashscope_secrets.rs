//! The API key and customer text never appear in `Debug` output, errors or logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use futures::StreamExt;
use merchant_ai::{ChatRequest, Message, ProviderConfig, ResponseFormat};
use merchant_ai_alibaba::dashscope::{DashScopeConfig, DashScopeProvider};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PII: &str = "Alice Wonderland, 221B Baker Street, card 4111-1111-1111-1111";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);
impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn assert_clean(what: &str, s: &str) {
    assert!(!s.contains(KEY), "{what} shows the key: {s}");
    assert!(
        !s.contains("SECRET-7777"),
        "{what} shows part of the key: {s}"
    );
    assert!(
        !s.contains("Baker Street"),
        "{what} shows customer text: {s}"
    );
}

#[tokio::test]
async fn no_key_or_customer_text_in_debug_errors_or_logs() {
    let logs = Captured::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);

    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CHAT))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"b1f0c1de"}),
        ))
        .mount(&s)
        .await;
    let cfg = DashScopeConfig {
        region: Some("ap-southeast-1".into()),
        base_url: Some(s.uri()),
        embedding_model: Some("text-embedding-v4".into()),
        rerank_model: Some("gte-rerank-v2".into()),
        ..Default::default()
    };
    assert_clean("config Debug", &format!("{cfg:?}"));
    let p = DashScopeProvider::new("qwen", cfg, Some(SecretString::from(KEY))).unwrap();
    assert_clean("provider Debug", &format!("{p:?}"));
    assert_clean("provider Debug (alternate)", &format!("{p:#?}"));
    let chat = merchant_ai::Provider::chat_model(&p).unwrap();
    assert_clean("chat Debug", &format!("{chat:?}"));
    assert_clean("embedder Debug", &format!("{:?}", p.embedder().unwrap()));

    let req = ChatRequest::new(vec![Message::user(PII)]);
    assert_clean("request Debug", &format!("{req:?}"));
    let e = chat.chat(req.clone()).await.unwrap_err();
    assert_eq!(e.kind(), merchant_ai::ErrorKind::Unauthenticated);
    assert_clean("error Display", &e.to_string());
    assert_clean("error Debug", &format!("{e:?}"));
    let e = match chat.chat_stream(req).await {
        Err(e) => e,
        Ok(mut st) => st.next().await.unwrap().unwrap_err(),
    };
    assert_clean("stream error", &format!("{e} {e:?}"));

    // A local refusal does not quote the prompt either.
    let e = chat
        .chat(
            ChatRequest::new(vec![Message::user(PII)])
                .with_response_format(ResponseFormat::JsonObject),
        )
        .await
        .unwrap_err();
    assert_clean("local refusal", &format!("{e} {e:?}"));

    // A malformed answer: the decode error names a position, not the payload.
    s.reset().await;
    Mock::given(method("POST"))
        .and(path(CHAT))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!("{{\"output\":{{\"choices\":[{{\"message\":{{\"content\":\"{PII}\"}}"),
            "application/json",
        ))
        .mount(&s)
        .await;
    let e = chat
        .chat(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), merchant_ai::ErrorKind::Decode);
    assert_clean("decode error", &format!("{e} {e:?}"));

    // The request did carry the key, as a header.
    let reqs = s.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].headers.get("authorization").unwrap(),
        format!("Bearer {KEY}").as_str()
    );

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_clean("logs", &logged);
}

#[test]
fn provider_section_debug_hides_the_key() {
    let pc = ProviderConfig::new("qwen", "dashscope")
        .with_region("ap-southeast-1")
        .with_api_key_env("DASHSCOPE_API_KEY")
        .with_env(merchant_ai::EnvSource::from_map([(
            "DASHSCOPE_API_KEY",
            KEY,
        )]));
    assert_clean("ProviderConfig Debug", &format!("{pc:?}"));
    let key = pc.api_key().unwrap().unwrap();
    assert_clean("SecretString Debug", &format!("{key:?}"));
}
