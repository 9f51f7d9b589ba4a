//! Privacy gates end to end: a client built from config, the OpenAI adapter against a wiremock
//! server that echoes what it received, and the offline rules provider as the local fallback.
//!
//! - With `pii = "redact"`, no planted value reaches the server (asserted on every body it
//!   received), and the user sees the original values in the answer, streamed or not, in text
//!   and in tool-call arguments.
//! - A subject who denied consent causes zero requests; the rules provider serves.
//! - A subject whose region allows no configured provider gets `PolicyDenied` naming the rule.
//! - `pii = "block"` skips the remote provider when the request holds personal data.
//! - Erasure reaches the rules recommender and reports the remote provider as having no delete.

use merchant_ai::{
    ChatRequest, Config, Consent, DataClass, EnvSource, ErrorKind, Event, EventKind, Message,
    Registry, RequestContext, Tool, collect_stream,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sk-test-PRIVACY-0001";

/// Values planted in the conversation; none may reach the server.
const PLANTED: &[&str] = &[
    "li.na88@example.cn",
    "13812345678",
    "+1 415 555 0123",
    "4111 1111 1111 1111",
    "11010519491231002X",
    "DE89 3704 0044 0532 0130 00",
    "192.168.10.77",
    "2001:db8::8a2e:370:7334",
    "Alice Smith",
];

fn user_text() -> String {
    format!(
        "Hi, I'm {}. Mail {} or call {} / {}. Card {}, ID {}, IBAN {}. My IPs: {} and {}. \
         About order #2024031512345 (SKU-4111-2233, RTX 4090, ¥1,299.00, 2024-03-15).",
        PLANTED[8],
        PLANTED[0],
        PLANTED[1],
        PLANTED[2],
        PLANTED[3],
        PLANTED[4],
        PLANTED[5],
        PLANTED[6],
        PLANTED[7]
    )
}

/// Answers like an OpenAI-compatible server, echoing the last user message: as text, as a
/// stream cut into 3-character deltas, or as tool-call arguments when tools are offered.
struct Echo;

fn completion(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764000000, "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    })
}

impl Respond for Echo {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let last_user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => String::new(),
            })
            .unwrap_or_default();
        let last_is_user = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .is_some_and(|m| m["role"] == "user");
        let reply = format!("Noted: {last_user}");
        if body["stream"] == json!(true) {
            let chunk = |delta: Value, finish: Value| {
                json!({"id":"c","object":"chat.completion.chunk","created":1764000000,"model":"m",
                       "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
            };
            let chars: Vec<char> = reply.chars().collect();
            let mut s = String::new();
            for piece in chars.chunks(3) {
                let text: String = piece.iter().collect();
                s.push_str(&format!(
                    "data: {}\n\n",
                    chunk(json!({"content": text}), Value::Null)
                ));
            }
            s.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
            s.push_str("data: [DONE]\n\n");
            return ResponseTemplate::new(200).set_body_raw(s, "text/event-stream");
        }
        if body.get("tools").is_some() && last_is_user {
            let args = json!({"contact": last_user}).to_string();
            return ResponseTemplate::new(200).set_body_json(completion(
                json!({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                       "function":{"name":"update_contact","arguments":args}}]}),
                "tool_calls",
            ));
        }
        ResponseTemplate::new(200).set_body_json(completion(
            json!({"role":"assistant","content":reply}),
            "stop",
        ))
    }
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Echo)
        .mount(&server)
        .await;
    server
}

fn config(server: &MockServer, chat_route: &str, privacy: &str) -> Config {
    let text = format!(
        r#"
[providers.remote]
kind = "openai"
base_url = "{}/v1"
api_key_env = "TEST_KEY"
chat_model = "m"
jurisdiction = "US"

[providers.rules]
kind = "rules"

[profiles.p.routes]
chat = {chat_route}
recommend = ["rules"]

[profiles.p.layers.retry]
enabled = false

[profiles.p.privacy]
names = ["Alice Smith"]
{privacy}
"#,
        server.uri()
    );
    Config::parse_with_env(&text, EnvSource::from_map([("TEST_KEY", KEY)])).unwrap()
}

async fn client(cfg: &Config) -> merchant_ai::Client {
    Registry::new()
        .with(merchant_ai_openai::factory())
        .with(merchant_ai_rules::factory())
        .build(cfg, Some("p"))
        .await
        .unwrap()
}

async fn bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn assert_no_pii(bodies: &[String]) {
    assert!(!bodies.is_empty());
    for b in bodies {
        for v in PLANTED {
            let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(!b.contains(v), "planted value {v:?} reached the server");
            assert!(
                !b.contains(&compact),
                "planted value {v:?} reached the server"
            );
        }
        assert!(!b.contains("13812345678"));
        assert!(b.contains("[EMAIL_1]"), "placeholders are sent instead");
    }
}

fn contact_tool() -> Tool {
    Tool::new(
        "update_contact",
        "Updates the shopper's contact details",
        json!({"type":"object","properties":{"contact":{"type":"string"}}}),
    )
}

#[tokio::test]
async fn redact_keeps_planted_pii_off_the_wire_and_restores_the_answer() {
    let server = server().await;
    let cfg = config(&server, r#"["remote"]"#, "");
    let chat = client(&cfg).await.chat_model().unwrap();
    let text = user_text();

    // Plain chat: the echo comes back with the original values.
    let req = ChatRequest::new(vec![
        Message::system("You are the shop's assistant."),
        Message::user(text.clone()),
    ]);
    let r = chat.chat(req.clone()).await.unwrap();
    assert_eq!(r.text, format!("Noted: {text}"));
    let g = &r.meta.governance;
    for kind in ["email", "phone", "card", "cn_id", "iban", "ip", "name"] {
        assert!(
            g.redactions.get(kind).copied().unwrap_or(0) >= 1,
            "{kind}: {g:?}"
        );
    }
    assert_eq!(g.redactions["phone"], 2);
    assert_eq!(g.redactions["ip"], 2);
    assert!(
        g.policy
            .iter()
            .any(|n| n.provider == "remote" && n.rule == "pii" && n.action == "redacted")
    );
    // Product text is sent as it is.
    let sent = bodies(&server).await;
    for keep in [
        "#2024031512345",
        "SKU-4111-2233",
        "RTX 4090",
        "¥1,299.00",
        "2024-03-15",
    ] {
        assert!(sent[0].contains(keep), "{keep} must survive");
    }

    // Streamed: 3-character deltas split the placeholders; the user still sees the values.
    let streamed = collect_stream(chat.chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(streamed.text, format!("Noted: {text}"));
    assert_eq!(
        streamed.meta.governance.redactions,
        r.meta.governance.redactions
    );

    // Tools: the call's arguments carry the values; the tool result's PII is redacted again.
    let req = ChatRequest::new(vec![Message::user(text.clone())]).with_tool(contact_tool());
    let r = chat.chat(req).await.unwrap();
    let args = r.tool_calls[0].arguments_json().unwrap();
    assert_eq!(args["contact"], json!(text));
    let mut messages = vec![Message::user(text.clone()), r.to_message()];
    messages.push(Message::tool_result(
        "call_1",
        format!("updated {} and {}", PLANTED[0], PLANTED[3]),
    ));
    messages.push(Message::user("thanks, anything else for 13812345678?"));
    let r = chat.chat(ChatRequest::new(messages)).await.unwrap();
    assert_eq!(r.text, "Noted: thanks, anything else for 13812345678?");

    assert_no_pii(&bodies(&server).await);
}

#[tokio::test]
async fn consent_denied_subject_never_reaches_the_remote_provider() {
    let server = server().await;
    let cfg = config(&server, r#"["remote", "rules"]"#, "");
    let chat = client(&cfg).await.chat_model().unwrap();
    let ctx = RequestContext::new()
        .with_subject("u_1")
        .with_consent(Consent::Denied);
    let req =
        ChatRequest::new(vec![Message::user("What is your return policy?")]).with_ctx(ctx.clone());

    let r = chat.chat(req.clone()).await.unwrap();
    assert_eq!(r.meta.provider, "rules");
    assert_eq!(r.meta.fallbacks[0].provider, "remote");
    assert_eq!(r.meta.fallbacks[0].reason, "policy");
    assert_eq!(r.meta.governance.policy[0].rule, "consent");
    assert_eq!(r.meta.governance.policy[0].action, "skipped");
    let s = collect_stream(chat.chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(s.meta.provider, "rules");
    assert_eq!(s.meta.fallbacks[0].reason, "policy");

    // Only remote providers: the call ends with PolicyDenied naming the rule.
    let cfg = config(&server, r#"["remote"]"#, "");
    let chat = client(&cfg).await.chat_model().unwrap();
    let req = ChatRequest::new(vec![Message::user("What is your return policy?")]).with_ctx(ctx);
    let e = chat.chat(req.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(e.message().contains("rule consent"), "{e}");
    let e = match chat.chat_stream(req).await {
        Err(e) => e,
        Ok(_) => panic!("the stream must be refused"),
    };
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);

    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_region_that_allows_no_provider_gets_policy_denied_naming_the_rule() {
    let server = server().await;
    let residency = r#"
[profiles.p.privacy.residency.CN]
personal = ["CN"]
public = ["*"]
"#;
    let ctx = |region: &str, class: DataClass| {
        RequestContext::new()
            .with_subject("u_2")
            .with_subject_region(region)
            .with_data_class(class)
    };
    let ask = |ctx: RequestContext| {
        ChatRequest::new(vec![Message::user("Do you ship to Shanghai?")]).with_ctx(ctx)
    };

    let cfg = config(&server, r#"["remote"]"#, residency);
    let chat = client(&cfg).await.chat_model().unwrap();
    let e = chat
        .chat(ask(ctx("CN", DataClass::Personal)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(e.message().contains("residency.CN.personal"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 0);

    // Public data of the same subject, and personal data of a subject elsewhere, may go.
    let r = chat.chat(ask(ctx("CN", DataClass::Public))).await.unwrap();
    assert_eq!(r.meta.provider, "remote");
    let r = chat
        .chat(ask(ctx("SG", DataClass::Personal)))
        .await
        .unwrap();
    assert_eq!(r.meta.provider, "remote");

    // With a local provider after it, the route goes on and records why.
    let cfg = config(&server, r#"["remote", "rules"]"#, residency);
    let chat = client(&cfg).await.chat_model().unwrap();
    let before = server.received_requests().await.unwrap().len();
    let r = chat
        .chat(ask(ctx("cn", DataClass::Personal)))
        .await
        .unwrap();
    assert_eq!(r.meta.provider, "rules");
    assert_eq!(r.meta.governance.policy[0].rule, "residency.CN.personal");
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn block_mode_skips_the_remote_provider_only_when_pii_is_present() {
    let server = server().await;
    let cfg = config(
        &server,
        r#"["remote", "rules"]"#,
        "[profiles.p.privacy.providers.remote]\npii = \"block\"\n",
    );
    let chat = client(&cfg).await.chat_model().unwrap();
    let r = chat
        .chat(ChatRequest::new(vec![Message::user(user_text())]))
        .await
        .unwrap();
    assert_eq!(r.meta.provider, "rules");
    assert_eq!(r.meta.governance.policy[0].rule, "pii");
    assert_eq!(r.meta.governance.policy[0].action, "blocked");
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
    let r = chat
        .chat(ChatRequest::new(vec![Message::user(
            "Is the RTX 4090 in stock?",
        )]))
        .await
        .unwrap();
    assert_eq!(r.meta.provider, "remote");
}

#[tokio::test]
async fn data_flow_map_and_erasure() {
    let server = server().await;
    let cfg = config(
        &server,
        r#"["remote"]"#,
        "[profiles.p.privacy.residency.CN]\npersonal = [\"CN\"]\n",
    );
    let client = client(&cfg).await;
    let map = client.data_flow();
    let text = map.to_string();
    assert!(text.contains("subjects CN"), "{text}");
    assert!(
        map.gaps
            .iter()
            .any(|v| v.contains("routes.chat") && v.contains("residency.CN.personal")),
        "{text}"
    );
    assert!(
        map.gaps
            .iter()
            .any(|v| v.contains("subjects who denied consent")),
        "{text}"
    );
    assert!(map.violations.is_empty(), "{text}");

    // Erasure: the rules recommender drops the subject's events; the remote chat model has
    // no delete operation and the report says so.
    let rec = client.recommender().unwrap();
    let now = chrono::Utc::now();
    rec.record(vec![
        Event::new("u_9", "p1", EventKind::View, now),
        Event::new("u_9", "p2", EventKind::Purchase, now),
    ])
    .await
    .unwrap();
    let report = client.forget(&"u_9".into()).await.unwrap();
    let rules = report
        .entries
        .iter()
        .find(|e| e.provider == "rules")
        .unwrap();
    assert!(matches!(
        rules.outcome,
        merchant_ai::erasure::ErasureOutcome::Erased { records } if records > 0
    ));
    assert_eq!(report.without_delete(), vec!["remote"]);
    assert!(report.complete());
    let again = client.forget(&"u_9".into()).await.unwrap();
    let rules = again
        .entries
        .iter()
        .find(|e| e.provider == "rules")
        .unwrap();
    assert_eq!(
        rules.outcome,
        merchant_ai::erasure::ErasureOutcome::Erased { records: 0 }
    );
}
