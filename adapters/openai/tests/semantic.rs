//! Embeddings-backed search and recommendations through wiremock: the contract suite with the
//! fault matrix (bare and behind the retry layer), batching, `dimensions`, float and base64
//! encodings, rerank, and fixture answers in the shapes of OpenAI, vLLM, llama.cpp, Ollama,
//! Jina, Cohere and TEI.

mod common;

use std::sync::Arc;

use merchant_ai::contract::{Suite, fixtures};
use merchant_ai::embedding::{EmbedPurpose, EmbedRequest, RerankRequest};
use merchant_ai::layers::*;
use merchant_ai::{
    ErrorKind, Provider, ProviderConfig, RecommendRequest, Scene, SearchMode, SearchRequest,
};
use merchant_ai_openai::{EncodingFormat, OpenAiConfig, OpenAiProvider};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn assert_no_recommend_fault_ran(report: &merchant_ai::contract::SuiteReport) {
    for s in report.skipped() {
        assert!(
            s.name.starts_with("fault.recommend.")
                || s.name == "fault.search.stream_cut"
                || s.name.starts_with("fault.forecast")
                || s.name.starts_with("forecast."),
            "unexpected skip: {} ({:?})",
            s.name,
            s.outcome
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_with_embeddings_on_the_bare_adapter() {
    let h = Arc::new(common::Harness::start().await);
    let p: Arc<dyn Provider> = Arc::new(h.semantic_provider("gpt", false));
    assert!(p.info().capabilities.search && p.info().capabilities.recommend);
    let report = Suite::new(p).with_fault_harness(h.clone()).run().await;
    report.print();
    report.assert_passed();
    assert_no_recommend_fault_ran(&report);
    let search_faults = report
        .passed()
        .iter()
        .filter(|s| s.name.starts_with("fault.search."))
        .count();
    assert_eq!(
        search_faults,
        merchant_ai::contract::Fault::MATRIX.len() - 1,
        "every search fault but stream_cut ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_with_rerank_behind_the_retry_layer() {
    let h = Arc::new(common::Harness::start().await);
    let inner: Arc<dyn Provider> = Arc::new(h.semantic_provider("gpt", true));
    let settings = LayerSettings {
        retry: Some(RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            ..Default::default()
        }),
        timeout: Some(TimeoutConfig {
            enabled: false,
            ..Default::default()
        }),
        breaker: Some(BreakerConfig {
            enabled: false,
            ..Default::default()
        }),
        chaos: None,
        limits: None,
    };
    let layered = LayeredProvider::new(inner, ProviderLayers::new("gpt", &settings));
    let report = Suite::new(Arc::new(layered))
        .with_fault_harness(h.clone())
        .with_expected_attempts(3)
        .run()
        .await;
    report.print();
    report.assert_passed();
    assert_no_recommend_fault_ran(&report);
}

#[tokio::test]
async fn search_batches_embeddings_and_reranks() {
    let h = common::Harness::start().await;
    let cfg = OpenAiConfig {
        embedding_batch: 5,
        ..h.semantic_config(true)
    };
    let p = OpenAiProvider::new("gpt", cfg, Some(SecretString::from(common::KEY))).unwrap();
    let s = p.searcher().unwrap();
    let rep = s.upsert(fixtures::catalog()).await.unwrap();
    assert_eq!(rep.applied, 12);
    let reqs = h.server.received_requests().await.unwrap();
    let sizes: Vec<usize> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v1/embeddings")
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["model"], "test-embed");
            assert_eq!(v["encoding_format"], "float");
            assert!(v.get("dimensions").is_none());
            v["input"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, vec![5, 5, 2]);
    // Authorization went to the embeddings endpoint too.
    assert!(
        reqs[0]
            .headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().ends_with(common::KEY))
    );
    let r = s.search(SearchRequest::new("teapot")).await.unwrap();
    assert_eq!(r.hits[0].product_id.as_str(), "ct-005");
    assert_eq!(r.mode, SearchMode::Semantic);
    assert_eq!(r.meta.model.as_deref(), Some("test-embed + test-rerank"));
    assert_eq!(r.meta.usage.input_tokens, Some(1 + 42));
    let reqs = h.server.received_requests().await.unwrap();
    let rr: Vec<Value> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v1/rerank")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0]["model"], "test-rerank");
    assert_eq!(rr[0]["query"], "teapot");
    let n = rr[0]["documents"].as_array().unwrap().len();
    assert_eq!(rr[0]["top_n"], json!(n));
}

#[tokio::test]
async fn base64_and_dimensions_round_trip() {
    let h = common::Harness::start().await;
    let cfg = OpenAiConfig {
        embedding_encoding: EncodingFormat::Base64,
        embedding_dimensions: Some(64),
        query_prefix: "query: ".into(),
        document_prefix: "passage: ".into(),
        ..h.semantic_config(false)
    };
    let p = OpenAiProvider::new("gpt", cfg, None).unwrap();
    let stack = p.semantic().unwrap();
    let e = stack.store.embedder();
    assert_eq!(e.dimension(), Some(64));
    let out = e
        .embed(
            EmbedRequest::new(vec!["teapot".into(), "green tea".into()])
                .with_purpose(EmbedPurpose::Query),
        )
        .await
        .unwrap();
    assert_eq!(out.vectors.len(), 2);
    assert!(out.vectors.iter().all(|v| v.len() == 64));
    let expect = merchant_ai::semantic::HashEmbedder::new(64)
        .unwrap()
        .vector("query: teapot");
    assert_eq!(out.vectors[0], expect, "base64 decodes bit-exact");
    assert_eq!(out.usage.input_tokens, Some(5)); // words of "query: teapot", "query: green tea"
    assert_eq!(out.request_id.as_deref(), Some("req-embed"));
    let reqs = h.server.received_requests().await.unwrap();
    let v: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(v["encoding_format"], "base64");
    assert_eq!(v["dimensions"], 64);
    assert_eq!(v["input"][0], "query: teapot");
    // An empty request makes no call.
    let none = e.embed(EmbedRequest::new(vec![])).await.unwrap();
    assert!(none.vectors.is_empty());
    assert_eq!(h.server.received_requests().await.unwrap().len(), 1);
}

/// A server answering every embeddings request with `body`.
async fn fixed(at: &str, body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    server
}

fn provider_at(server: &MockServer, f: impl FnOnce(&mut OpenAiConfig)) -> OpenAiProvider {
    let mut cfg = OpenAiConfig {
        base_url: format!("{}/v1", server.uri()),
        embedding_model: Some("m".into()),
        rerank_model: Some("r".into()),
        jurisdiction: Some("US".into()),
        ..Default::default()
    };
    f(&mut cfg);
    OpenAiProvider::new("fx", cfg, None).unwrap()
}

#[tokio::test]
async fn embeddings_fixtures_of_several_servers() {
    use base64::Engine;
    let b64 = |v: &[f32]| {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let cases = vec![
        // OpenAI, float, out of order.
        (
            "openai-float",
            json!({"object":"list","data":[
                {"object":"embedding","index":1,"embedding":[0.0,1.0,0.0]},
                {"object":"embedding","index":0,"embedding":[0.6,0.8,0.0]}],
              "model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}),
            Some("text-embedding-3-small"),
            Some(5),
        ),
        // OpenAI, base64.
        (
            "openai-base64",
            json!({"object":"list","data":[
                {"object":"embedding","index":0,"embedding":b64(&[0.6,0.8,0.0])},
                {"object":"embedding","index":1,"embedding":b64(&[0.0,1.0,0.0])}],
              "model":"text-embedding-3-large","usage":{"prompt_tokens":5,"total_tokens":5}}),
            Some("text-embedding-3-large"),
            Some(5),
        ),
        // vLLM: ids and created, usage with total only.
        (
            "vllm",
            json!({"id":"embd-1","object":"list","created":1764000000,"model":"BAAI/bge-m3",
              "data":[{"index":0,"object":"embedding","embedding":[0.6,0.8,0.0]},
                      {"index":1,"object":"embedding","embedding":[0.0,1.0,0.0]}],
              "usage":{"prompt_tokens":6,"total_tokens":6,"completion_tokens":0}}),
            Some("BAAI/bge-m3"),
            Some(6),
        ),
        // llama.cpp server: no usage details beyond tokens, model as given.
        (
            "llama.cpp",
            json!({"model":"nomic-embed","object":"list",
              "usage":{"prompt_tokens":4,"total_tokens":4},
              "data":[{"embedding":[0.6,0.8,0.0],"index":0,"object":"embedding"},
                      {"embedding":[0.0,1.0,0.0],"index":1,"object":"embedding"}]}),
            Some("nomic-embed"),
            Some(4),
        ),
        // Ollama's OpenAI endpoint: no index fields (order is input order).
        (
            "ollama",
            json!({"object":"list","data":[{"object":"embedding","embedding":[0.6,0.8,0.0]},
                                            {"object":"embedding","embedding":[0.0,1.0,0.0]}],
              "model":"all-minilm"}),
            Some("all-minilm"),
            None,
        ),
    ];
    for (name, body, model, tokens) in cases {
        let server = fixed("/v1/embeddings", body).await;
        let p = provider_at(&server, |_| {});
        let e = p.semantic().unwrap().store.embedder().clone();
        let out = e
            .embed(EmbedRequest::new(vec!["a".into(), "b".into()]))
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(out.vectors[0], vec![0.6, 0.8, 0.0], "{name}");
        assert_eq!(out.vectors[1], vec![0.0, 1.0, 0.0], "{name}");
        assert_eq!(out.model.as_str(), model.unwrap(), "{name}");
        assert_eq!(out.usage.input_tokens, tokens, "{name}");
    }
}

#[tokio::test]
async fn bad_embeddings_answers_are_decode_errors() {
    let cases = vec![
        (
            json!({"data":[{"index":0,"embedding":[1.0]}]}),
            "1 vectors for 2",
        ),
        (json!({"object":"list"}), "no `data`"),
        (
            json!({"data":[{"index":0,"embedding":[1.0]},{"index":7,"embedding":[1.0]}]}),
            "index",
        ),
        (
            json!({"data":[{"index":0,"embedding":"@@"},{"index":1,"embedding":"@@"}]}),
            "base64",
        ),
        (
            json!({"data":[{"index":0,"embedding":[1.0]},{"index":1,"embedding":[null]}]}),
            "finite",
        ),
    ];
    for (body, needle) in cases {
        let server = fixed("/v1/embeddings", body).await;
        let p = provider_at(&server, |_| {});
        let e = p.semantic().unwrap().store.embedder().clone();
        let err = e
            .embed(EmbedRequest::new(vec!["a".into(), "b".into()]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
        assert!(err.message().contains(needle), "{needle}: {err}");
        assert_eq!(err.provider(), Some("fx"));
        assert!(!err.to_string().contains("\"a\""));
    }
    // An error object in a 200 body.
    let server = fixed(
        "/v1/embeddings",
        json!({"error":{"message":"model not found","type":"invalid_request_error","code":404}}),
    )
    .await;
    let p = provider_at(&server, |_| {});
    let e = p.semantic().unwrap().store.embedder().clone();
    let err = e
        .embed(EmbedRequest::new(vec!["a".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn rerank_fixtures_of_several_servers() {
    let cases = vec![
        // Jina.
        (
            "jina",
            json!({"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":38},
              "results":[{"index":2,"relevance_score":0.91,"document":{"text":"x"}},
                         {"index":0,"relevance_score":0.33},{"index":1,"relevance_score":0.02}]}),
            Some(38),
            None,
        ),
        // Cohere v2.
        (
            "cohere",
            json!({"id":"r-1","results":[{"index":2,"relevance_score":0.9},{"index":0,"relevance_score":0.3},
                                          {"index":1,"relevance_score":0.1}],
              "meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1}}}),
            None,
            Some(1),
        ),
        // vLLM /v1/rerank (scores unsorted on purpose).
        (
            "vllm",
            json!({"id":"rerank-1","model":"BAAI/bge-reranker-v2-m3","usage":{"total_tokens":20},
              "results":[{"index":0,"document":{"text":"a"},"relevance_score":0.3},
                         {"index":1,"document":{"text":"b"},"relevance_score":0.1},
                         {"index":2,"document":{"text":"c"},"relevance_score":0.9}]}),
            Some(20),
            None,
        ),
        // llama.cpp server: logits, negative allowed.
        (
            "llama.cpp",
            json!({"model":"bge-reranker","object":"list","usage":{"prompt_tokens":12,"total_tokens":12},
              "results":[{"index":0,"relevance_score":-2.5},{"index":1,"relevance_score":-8.0},
                         {"index":2,"relevance_score":4.25}]}),
            Some(12),
            None,
        ),
        // TEI: a bare array with `score`.
        (
            "tei",
            json!([{"index":2,"score":0.99},{"index":0,"score":0.5},{"index":1,"score":0.01}]),
            None,
            None,
        ),
    ];
    for (name, body, tokens, units) in cases {
        let server = fixed("/v1/rerank", body).await;
        let p = provider_at(&server, |_| {});
        let rr = merchant_ai_openai::OpenAiProvider::reranker(&p).unwrap();
        let out = rr
            .rerank(RerankRequest::new("q", vec!["a".into(), "b".into(), "c".into()]).with_top_n(2))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.results.len(), 2, "{name}");
        assert_eq!(out.results[0].index, 2, "{name}");
        assert_eq!(out.results[1].index, 0, "{name}");
        assert_eq!(out.usage.input_tokens, tokens, "{name}");
        assert_eq!(out.usage.units, units, "{name}");
        let reqs = server.received_requests().await.unwrap();
        let v: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(v["top_n"], 2, "{name}");
        assert_eq!(v["documents"], json!(["a", "b", "c"]), "{name}");
    }
}

#[tokio::test]
async fn recommend_uses_item_vectors_with_reasons() {
    let h = common::Harness::start().await;
    let p = h.semantic_provider("gpt", false);
    p.searcher()
        .unwrap()
        .upsert(fixtures::catalog())
        .await
        .unwrap();
    let rec = p.recommender().unwrap();
    rec.record(fixtures::events()).await.unwrap();
    let before = h.server.received_requests().await.unwrap().len();
    let r = rec
        .recommend(
            RecommendRequest::new(Scene::ProductPage)
                .with_anchor("ct-001")
                .with_limit(3),
        )
        .await
        .unwrap();
    assert!(!r.items.is_empty());
    assert!(r.items.iter().all(|i| !i.reason.detail.is_empty()));
    assert_eq!(r.meta.model.as_deref(), Some("test-embed"));
    assert_eq!(
        h.server.received_requests().await.unwrap().len(),
        before,
        "recommend reads stored vectors: no upstream call"
    );
}

#[test]
fn config_keys_and_validation() {
    let pc = |opts: &[(&str, toml::Value)]| {
        let mut c = ProviderConfig::new("emb", "openai");
        for (k, v) in opts {
            c = c.with_option(*k, v.clone());
        }
        c
    };
    let f = merchant_ai_openai::factory();
    use merchant_ai::AdapterFactory;
    // Embeddings alone: search and recommend, no chat.
    let caps = f
        .capabilities(&pc(&[("embedding_model", "bge-m3".into())]))
        .unwrap();
    assert!(caps.search && caps.recommend && !caps.chat);
    // Neither: an error naming chat_model.
    let e = f.capabilities(&pc(&[])).unwrap_err();
    assert!(e.message().contains("providers.emb.chat_model"), "{e}");
    // A bad semantic key is named.
    let mut t = toml::Table::new();
    t.insert("min_scor".into(), 0.1.into());
    let mut sem = toml::Table::new();
    sem.insert("search".into(), t.into());
    let e = f
        .capabilities(&pc(&[
            ("embedding_model", "m".into()),
            ("semantic", sem.into()),
        ]))
        .unwrap_err();
    assert!(e.message().contains("min_scor"), "{e}");
    // A bad value is named with its path.
    let mut t = toml::Table::new();
    t.insert("half_life_days".into(), (-1.0).into());
    let mut sem = toml::Table::new();
    sem.insert("recommend".into(), t.into());
    let e = f
        .capabilities(&pc(&[
            ("embedding_model", "m".into()),
            ("semantic", sem.into()),
        ]))
        .unwrap_err();
    assert!(
        e.message()
            .contains("providers.emb.semantic.recommend.half_life_days"),
        "{e}"
    );
    let e = f
        .capabilities(&pc(&[
            ("embedding_model", "m".into()),
            ("embedding_batch", 0.into()),
        ]))
        .unwrap_err();
    assert!(e.message().contains("embedding_batch"), "{e}");
    let e = f
        .capabilities(&pc(&[
            ("chat_model", "c".into()),
            ("rerank_model", "r".into()),
        ]))
        .unwrap_err();
    assert!(e.message().contains("rerank_model"), "{e}");
    let e = f
        .capabilities(&pc(&[
            ("embedding_model", "m".into()),
            ("embedding_encoding", "hex".into()),
        ]))
        .unwrap_err();
    assert!(e.message().contains("hex"), "{e}");
}

#[tokio::test]
async fn the_key_never_shows_in_debug_of_the_semantic_parts() {
    let h = common::Harness::start().await;
    let p = h.semantic_provider("gpt", true);
    let d = format!("{p:?} {:?}", p.semantic().unwrap());
    assert!(!d.contains(common::KEY), "{d}");
    assert!(
        d.contains("test-embed") && d.contains("OpenAiReranker"),
        "{d}"
    );
    let e = format!("{:?}", p.semantic().unwrap().store.embedder());
    assert!(
        e.contains("OpenAiEmbedder") && !e.contains(common::KEY),
        "{e}"
    );
}
