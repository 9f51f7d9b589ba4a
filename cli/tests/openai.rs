//! The CLI against a local OpenAI-compatible server (wiremock on loopback): search, recommend
//! and a hybrid search profile routed to the openai adapter's embeddings.

use std::process::{Command, Output};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// `/v1/embeddings` with deterministic vectors computed from each input text.
struct Embeddings;

impl Respond for Embeddings {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let e = merchant_ai::semantic::HashEmbedder::new(128).unwrap();
        let data: Vec<Value> = v["input"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"index": i, "embedding": e.vector(t.as_str().unwrap_or(""))}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": data, "model": v["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}
        }))
    }
}

fn config(base: &str) -> String {
    format!(
        r#"
default_profile = "semantic"

[providers.rules]
kind = "rules"

[providers.local]
kind = "openai"
base_url = "{base}/v1"
local = true
embedding_model = "test-embed"
embedding_batch = 100

[profiles.semantic.routes]
search = ["local"]
recommend = ["local", "rules"]

[profiles.hybrid.routes]
recommend = ["rules"]

[profiles.hybrid.hybrid.search]
semantic = "local"
keyword = "rules"
"#
    )
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_merchant-ai"))
            .env_remove("MERCHANT_AI_PROFILE")
            .args(args)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_recommend_through_a_local_openai_compatible_server() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(Embeddings)
        .mount(&server)
        .await;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-openai");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("merchant-ai.toml");
    std::fs::write(&cfg, config(&server.uri())).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let args = |rest: &[&str]| -> Vec<String> {
        ["--config", cfg.as_str()]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };

    let o = run(args(&["search", "green tea", "--limit", "3", "--json"])).await;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["meta"]["provider"], "local", "{v}");
    assert_eq!(v["meta"]["model"], "test-embed", "{v}");
    assert_eq!(v["mode"], "semantic", "{v}");
    let hits = v["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 3, "{v}");
    let first = hits[0]["product"]["title"].as_str().unwrap().to_lowercase();
    assert!(first.contains("tea"), "{first}");
    // The sample catalog (600 products) went in batches of 100 inputs, then one query.
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 7, "6 batches and the query");

    let o = run(args(&[
        "recommend",
        "--product",
        "sku-00001",
        "--limit",
        "4",
        "--json",
    ]))
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["meta"]["provider"], "local", "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{v}");
    assert!(items.iter().all(|i| i["product_id"] != "sku-00001"));
    assert!(
        items
            .iter()
            .all(|i| !i["reason"]["detail"].as_str().unwrap().is_empty())
    );

    let o = run(args(&[
        "--profile",
        "hybrid",
        "search",
        "green tea",
        "--json",
    ]))
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["meta"]["provider"], "hybrid", "{v}");
    assert_eq!(v["mode"], "hybrid", "{v}");

    let o = run(args(&["--profile", "hybrid", "check"])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(
            "hybrid: semantic [local (openai, in-process)] + keyword [rules (rules, in-process)]"
        ),
        "{out}"
    );
}
