//! Recorded DashScope streams (the documented shapes: `:HTTP_STATUS` comment lines, the
//! string "null" as a mid-stream finish reason, no `[DONE]`, CRLF and `status:` variants,
//! tool-call fragments, reasoning, errors inside a 200) decode to the same events however
//! their bytes are chunked: every single split offset, plus thousands of seeded random
//! multi-way splits per fixture.

use merchant_ai::{ChatEvent, ErrorKind, Result};
use merchant_ai_alibaba::dashscope::{DEFAULT_MAX_FRAME_BYTES, decode_recorded};

const FIXTURES: &[&str] = &[
    "stream_text",
    "stream_error",
    "stream_error_throttled",
    "stream_tools",
    "stream_reasoning",
];

/// Random splits per fixture.
const CASES: usize = 4_000;

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/dashscope/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

type Norm = Vec<std::result::Result<ChatEvent, (ErrorKind, String, Option<String>)>>;

/// Events in a comparable form (errors by kind, message and vendor code).
fn norm(evs: Vec<Result<ChatEvent>>) -> Norm {
    evs.into_iter()
        .map(|e| {
            e.map_err(|e| {
                (
                    e.kind(),
                    e.message().to_owned(),
                    e.vendor_code().map(str::to_owned),
                )
            })
        })
        .collect()
}

fn decode_chunks(chunks: &[&[u8]]) -> Norm {
    norm(decode_recorded(
        chunks.iter().copied(),
        "p",
        DEFAULT_MAX_FRAME_BYTES,
    ))
}

/// splitmix64: a seeded, reproducible generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn whole_streams_decode_as_documented() {
    let text = decode_chunks(&[&load("stream_text")]);
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(matches!(text.last(), Some(Ok(ChatEvent::Finished { .. }))));
    let err = decode_chunks(&[&load("stream_error")]);
    assert!(matches!(
        err.last(),
        Some(Err((ErrorKind::ContentRejected, _, _)))
    ));
    let tools = decode_chunks(&[&load("stream_tools")]);
    assert!(
        tools
            .iter()
            .any(|e| matches!(e, Ok(ChatEvent::ToolCall { .. })))
    );
}

#[test]
fn every_single_split_offset_decodes_identically() {
    for name in FIXTURES {
        let bytes = load(name);
        let whole = decode_chunks(&[&bytes]);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(decode_chunks(&[a, b]), whole, "{name} split at {cut}");
        }
    }
}

#[test]
fn random_rechunking_decodes_identically() {
    let mut rng = Rng(0xDA5C_5C0E_2026);
    for name in FIXTURES {
        let bytes = load(name);
        let whole = decode_chunks(&[&bytes]);
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_chunks(&one_by_one), whole, "{name} byte by byte");
        for case in 0..CASES {
            let mut cuts: Vec<usize> = (0..1 + rng.below(12))
                .map(|_| rng.below(bytes.len() + 1))
                .collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::with_capacity(cuts.len() + 1);
            let mut at = 0;
            for c in cuts {
                chunks.push(&bytes[at..c]);
                at = c;
            }
            chunks.push(&bytes[at..]);
            assert_eq!(decode_chunks(&chunks), whole, "{name} case {case}");
        }
    }
}

#[test]
fn truncated_streams_never_finish() {
    for name in ["stream_text", "stream_tools", "stream_reasoning"] {
        let bytes = load(name);
        // Every proper prefix ends in an error (cut mid-frame, or before the finishing frame),
        // never in a Finished event.
        for cut in 0..bytes.len() - 2 {
            let evs = decode_chunks(&[&bytes[..cut]]);
            assert!(
                matches!(evs.last(), Some(Err((ErrorKind::Unavailable, _, _)))),
                "{name} cut at {cut}: {:?}",
                evs.last()
            );
        }
    }
}
