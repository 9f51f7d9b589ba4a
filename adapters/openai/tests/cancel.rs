//! Dropping a stream cancels the request: the server sees its connection closed while it
//! still had more to send.

use std::time::Duration;

use futures::StreamExt;
use merchant_ai::{ChatEvent, ChatRequest, Message, Provider};
use merchant_ai_openai::{OpenAiConfig, OpenAiProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(chunk.as_bytes()).await.unwrap();
        // Never finish; report whether the client hangs up.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        })
        .await
        .unwrap_or(false);
        let _ = tx.send(closed);
    });
    let p = OpenAiProvider::new(
        "gpt",
        OpenAiConfig {
            base_url: format!("http://{addr}/v1"),
            chat_model: Some("m".into()),
            timeout_ms: 30_000,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let mut s = p
        .chat_model()
        .unwrap()
        .chat_stream(ChatRequest::new(vec![Message::user("hi")]))
        .await
        .unwrap();
    let first = s.next().await.unwrap().unwrap();
    assert!(matches!(first, ChatEvent::TextDelta { .. }));
    drop(s);
    assert!(
        rx.await.unwrap(),
        "the connection stayed open after the stream was dropped"
    );
}
