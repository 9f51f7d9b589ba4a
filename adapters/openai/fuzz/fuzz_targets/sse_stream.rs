//! Fuzzes the SSE decoder and the tool-call accumulator together: arbitrary bytes, cut into
//! chunks chosen by the input itself, must decode without panicking, to the same events as
//! the unsplit bytes, ending in at most one error with nothing after it.
//!
//! Run: `cargo +nightly fuzz run sse_stream ../tests/fixtures/streams` from
//! `adapters/openai/fuzz` (its own workspace, so the main build never compiles it). Without
//! cargo-fuzz: build with nightly, `--target x86_64-unknown-linux-gnu` and the sancov
//! RUSTFLAGS, then run the binary on a corpus directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use merchant_ai_openai::decode_recorded;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (head, bytes) = data.split_at(1);
    let step = (head[0] as usize % 17) + 1;
    let chunks: Vec<&[u8]> = bytes.chunks(step).collect();
    let norm = |v: Vec<merchant_ai::Result<merchant_ai::ChatEvent>>| {
        v.into_iter()
            .map(|e| e.map_err(|e| (e.kind(), e.message().to_owned())))
            .collect::<Vec<_>>()
    };
    let whole = norm(decode_recorded([bytes], "fuzz", 4096));
    let split = norm(decode_recorded(chunks, "fuzz", 4096));
    assert_eq!(whole, split);
    if let Some(i) = whole.iter().position(|e| e.is_err()) {
        assert_eq!(i, whole.len() - 1, "items after an error");
    }
});
