//! Recorded streams in the shapes of OpenAI, vLLM, llama.cpp's server, Ollama, DeepSeek,
//! DashScope's compatible mode, Azure and a TGI-like server: what they decode to, and that any
//! re-chunking of their bytes (every single split offset, plus 100 000 seeded random
//! multi-way splits) decodes to identical events.

use merchant_ai::{ChatEvent, ErrorKind, FinishReason, Result, StreamCollector, ToolCall, Usage};
use merchant_ai_openai::{DEFAULT_MAX_EVENT_BYTES, decode_recorded};

const FIXTURES: &[&str] = &[
    "openai_text",
    "openai_parallel_tools",
    "vllm_tools_out_of_order",
    "llamacpp_text",
    "ollama_tool_whole",
    "deepseek_reasoning",
    "dashscope_crlf",
    "dashscope_error_event",
    "azure_content_filter",
    "tgi_unknown_finish",
];

fn load(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/streams/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(p).unwrap()
}

/// Events in a comparable form (errors by kind and message).
fn norm(evs: Vec<Result<ChatEvent>>) -> Vec<std::result::Result<ChatEvent, (ErrorKind, String)>> {
    evs.into_iter()
        .map(|e| e.map_err(|e| (e.kind(), e.message().to_owned())))
        .collect()
}

fn decode(bytes: &[u8]) -> Vec<Result<ChatEvent>> {
    decode_recorded([bytes], "p", DEFAULT_MAX_EVENT_BYTES)
}

struct Outcome {
    text: String,
    reasoning: Option<String>,
    calls: Vec<ToolCall>,
    finish: FinishReason,
    usage: Usage,
    model: Option<String>,
    finished: usize,
    error: Option<ErrorKind>,
}

fn outcome(name: &str) -> Outcome {
    let evs = decode(&load(name));
    let finished = evs
        .iter()
        .filter(|e| matches!(e, Ok(ChatEvent::Finished { .. })))
        .count();
    let mut c = StreamCollector::new();
    let mut error = None;
    let mut resp = None;
    for e in evs {
        match e {
            Ok(ev) => {
                if let Some(r) = c.push(ev) {
                    resp = Some(r);
                }
            }
            Err(e) => error = Some(e.kind()),
        }
    }
    match resp {
        Some(r) => Outcome {
            text: r.text,
            reasoning: r.reasoning,
            calls: r.tool_calls,
            finish: r.finish_reason,
            usage: r.meta.usage,
            model: r.meta.model,
            finished,
            error,
        },
        None => Outcome {
            text: c.text().to_owned(),
            reasoning: None,
            calls: Vec::new(),
            finish: FinishReason::Other("none".into()),
            usage: Usage::default(),
            model: None,
            finished,
            error,
        },
    }
}

#[test]
fn openai_text_with_usage_only_final_chunk() {
    let o = outcome("openai_text");
    assert_eq!(o.text, "Our café teapots ship in 2–3 days 🍵.");
    assert_eq!(o.finish, FinishReason::Stop);
    assert_eq!(o.usage.input_tokens, Some(19));
    assert_eq!(o.usage.output_tokens, Some(11));
    assert_eq!(o.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(o.finished, 1);
}

#[test]
fn openai_parallel_tool_calls_stay_apart() {
    let o = outcome("openai_parallel_tools");
    assert_eq!(o.calls.len(), 2);
    assert_eq!(o.calls[0].id, "call_Q1");
    assert_eq!(o.calls[0].name, "order_status");
    assert_eq!(o.calls[0].arguments, r#"{"order_id": "12345"}"#);
    assert_eq!(o.calls[1].name, "stock_level");
    assert_eq!(o.calls[1].arguments_json().unwrap()["sku"], "TEA-01");
    assert_eq!(o.finish, FinishReason::ToolCalls);
    assert_eq!(o.usage.output_tokens, Some(42));
}

#[test]
fn vllm_name_after_arguments_and_interleaved_calls() {
    let o = outcome("vllm_tools_out_of_order");
    assert_eq!(o.calls.len(), 2);
    assert_eq!(o.calls[0].id, "chatcmpl-tool-a1");
    assert_eq!(o.calls[0].arguments_json().unwrap()["order_id"], "12345");
    assert_eq!(o.calls[1].id, "chatcmpl-tool-b2");
    assert_eq!(o.calls[1].name, "stock_level");
    assert_eq!(o.calls[1].arguments, r#"{"sku": "TEA-01"}"#);
    assert_eq!(o.text, "");
    assert_eq!(o.usage.input_tokens, Some(210));
}

#[test]
fn llamacpp_usage_on_the_finish_chunk() {
    let o = outcome("llamacpp_text");
    assert_eq!(o.text, "Hello! How can I help?");
    assert_eq!(o.usage.output_tokens, Some(8));
    assert_eq!(o.finish, FinishReason::Stop);
}

#[test]
fn ollama_whole_tool_call_in_one_delta() {
    let o = outcome("ollama_tool_whole");
    assert_eq!(o.calls.len(), 1);
    assert_eq!(o.calls[0].id, "call_h3k9");
    assert_eq!(o.calls[0].arguments_json().unwrap()["order_id"], "12345");
    assert_eq!(o.finish, FinishReason::ToolCalls);
}

#[test]
fn deepseek_reasoning_kept_apart_and_comments_ignored() {
    let o = outcome("deepseek_reasoning");
    assert_eq!(o.text, "You can return items within 30 days.");
    assert_eq!(
        o.reasoning.as_deref(),
        Some("The shopper asks about returns; policy is 30 days.")
    );
    assert_eq!(o.usage.reasoning_tokens, Some(31));
}

#[test]
fn dashscope_crlf_and_no_space_after_data() {
    let o = outcome("dashscope_crlf");
    assert_eq!(o.text, "我们的退货期是30天。");
    assert_eq!(o.usage.input_tokens, Some(22));
    assert_eq!(o.finished, 1);
}

#[test]
fn dashscope_error_event_ends_the_stream_with_one_error() {
    let evs = decode(&load("dashscope_error_event"));
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = evs.into_iter().next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ContentRejected);
    assert_eq!(e.request_id(), Some("e31-req"));
}

#[test]
fn azure_prompt_filter_chunk_and_content_filter_finish() {
    let o = outcome("azure_content_filter");
    assert_eq!(o.text, "Partial");
    assert_eq!(o.finish, FinishReason::ContentFilter);
    assert_eq!(o.model.as_deref(), Some("gpt-4o-2024-11-20"));
}

#[test]
fn nulls_and_unknown_finish_reason_are_tolerated() {
    let o = outcome("tgi_unknown_finish");
    assert_eq!(o.text, "Tea time");
    assert_eq!(o.finish, FinishReason::Other("eos_token".into()));
    assert!(o.error.is_none());
}

#[test]
fn every_fixture_ends_in_exactly_one_finished_or_one_error() {
    for name in FIXTURES {
        let evs = decode(&load(name));
        let errors = evs.iter().filter(|e| e.is_err()).count();
        let finished = evs
            .iter()
            .filter(|e| matches!(e, Ok(ChatEvent::Finished { .. })))
            .count();
        assert_eq!(errors + finished, 1, "{name}");
        assert!(
            matches!(
                evs.last(),
                Some(Err(_)) | Some(Ok(ChatEvent::Finished { .. }))
            ),
            "{name}"
        );
    }
}

#[test]
fn a_stream_cut_anywhere_is_one_unavailable_error_at_the_end() {
    for name in FIXTURES {
        let bytes = load(name);
        let whole = norm(decode(&bytes));
        if whole.iter().any(|e| e.is_err()) {
            continue;
        }
        let text = |evs: &[std::result::Result<ChatEvent, (ErrorKind, String)>]| -> String {
            evs.iter()
                .filter_map(|e| match e {
                    Ok(ChatEvent::TextDelta { text }) => Some(text.as_str()),
                    _ => None,
                })
                .collect()
        };
        let whole_text = text(&whole);
        for cut in 1..bytes.len() {
            let evs = norm(decode(&bytes[..cut]));
            let errs = evs.iter().filter(|e| e.is_err()).count();
            assert!(errs <= 1, "{name} cut at {cut}");
            match evs.last().unwrap() {
                Err((k, _)) => assert_eq!(*k, ErrorKind::Unavailable, "{name} cut at {cut}"),
                // A cut that still finishes (after the finish reason) lost none of the answer.
                Ok(ChatEvent::Finished { .. }) => {
                    assert_eq!(text(&evs), whole_text, "{name} cut at {cut}")
                }
                Ok(other) => panic!("{name} cut at {cut}: ended with {other:?}"),
            }
        }
    }
}

#[test]
fn an_oversized_event_is_a_decode_error_not_growth() {
    let mut big = b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4096));
    let evs = decode_recorded([&big[..]], "p", 1024);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].as_ref().unwrap_err().kind(), ErrorKind::Decode);
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_single_split_offset_decodes_identically() {
    let mut cases = 0;
    for name in FIXTURES {
        let bytes = load(name);
        let want = norm(decode(&bytes));
        for cut in 0..=bytes.len() {
            let got = norm(decode_recorded(
                [&bytes[..cut], &bytes[cut..]],
                "p",
                DEFAULT_MAX_EVENT_BYTES,
            ));
            assert_eq!(got, want, "{name} split at {cut}");
            cases += 1;
        }
    }
    assert!(cases > 5_000);
}

#[test]
fn random_rechunking_decodes_identically_100k_cases() {
    const TOTAL: usize = 100_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let fixtures: Vec<(String, Vec<u8>, _)> = FIXTURES
        .iter()
        .map(|n| {
            let b = load(n);
            let w = norm(decode(&b));
            (n.to_string(), b, w)
        })
        .collect();
    for case in 0..TOTAL {
        let (name, bytes, want) = &fixtures[case % fixtures.len()];
        // Between 2 and 40 pieces, some of them empty, many a few bytes long.
        let pieces = 2 + rng.below(39);
        let mut cuts: Vec<usize> = (0..pieces - 1)
            .map(|_| rng.below(bytes.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::with_capacity(pieces);
        let mut at = 0;
        for c in cuts {
            chunks.push(&bytes[at..c]);
            at = c;
        }
        chunks.push(&bytes[at..]);
        let got = norm(decode_recorded(chunks, "p", DEFAULT_MAX_EVENT_BYTES));
        assert_eq!(&got, want, "{name}, case {case}");
    }
}
