//! The generation loop: one batched prefill, then token by token with the KV cache, emitting
//! text deltas as complete UTF-8, holding back what could still become a stop sequence.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use merchant_ai::{FinishReason, Result};

use super::json::{ByteMachine, JsonState, TokenTrie, close_document};
use super::schema::{Guide, Schema};

/// The constraint on a JSON answer: the syntax alone, or the syntax and a schema.
// Copied per candidate token on purpose (testing a token must not disturb the state); the
// token-trie walk copies the variant itself, not the enum.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum Constraint<'a> {
    Json(JsonState),
    Schema(Guide<'a>),
}

impl ByteMachine for Constraint<'_> {
    fn step(&mut self, b: u8) -> bool {
        match self {
            Constraint::Json(j) => j.step(b),
            Constraint::Schema(g) => g.step(b),
        }
    }
}

impl Constraint<'_> {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.step(b))
    }

    fn is_done(&self) -> bool {
        match self {
            Constraint::Json(j) => j.is_done(),
            Constraint::Schema(g) => g.is_done(),
        }
    }
}
use super::model::Weights;
use super::sampling::{Sampler, SamplingParams};

/// One generation's inputs.
pub(crate) struct Job {
    pub(crate) prompt: Vec<u32>,
    pub(crate) max_tokens: usize,
    pub(crate) sampling: SamplingParams,
    pub(crate) stop: Vec<String>,
    /// Constrain the output to a JSON object.
    pub(crate) json: bool,
    /// ...valid against this schema too.
    pub(crate) schema: Option<Arc<Schema>>,
    /// Generate exactly `max_tokens` tokens, ignoring end-of-turn tokens (benchmarks).
    pub(crate) ignore_eos: bool,
}

/// What a generation produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) text: String,
    pub(crate) finish: FinishReason,
    pub(crate) output_tokens: usize,
    pub(crate) tokens: Vec<u32>,
    pub(crate) prefill: Duration,
    pub(crate) decode: Duration,
    /// The caller went away; generation stopped early.
    pub(crate) cancelled: bool,
}

/// The vocabulary-level data the loop needs.
pub(crate) struct Vocab<'a> {
    pub(crate) bytes: &'a [Vec<u8>],
    /// Tokens that end the turn.
    pub(crate) end: &'a HashSet<u32>,
    pub(crate) trie: Option<&'a TokenTrie>,
}

/// Text accumulated from token bytes, emitted in safe pieces.
struct TextOut {
    bytes: Vec<u8>,
    emitted: usize,
    text: String,
}

impl TextOut {
    /// Emits everything up to `end` that forms complete UTF-8.
    fn take(&mut self, end: usize, flush: bool) -> Option<String> {
        let end = end.max(self.emitted);
        let chunk = &self.bytes[self.emitted..end];
        let upto = if flush {
            chunk.len()
        } else {
            match std::str::from_utf8(chunk) {
                Ok(_) => chunk.len(),
                Err(e) => match e.error_len() {
                    Some(n) => e.valid_up_to() + n,
                    None => e.valid_up_to(),
                },
            }
        };
        if upto == 0 {
            return None;
        }
        let piece = String::from_utf8_lossy(&chunk[..upto]).into_owned();
        self.emitted += upto;
        self.text.push_str(&piece);
        Some(piece)
    }
}

/// Length of the longest suffix of `out` that is a proper prefix of a stop sequence.
fn holdback(out: &[u8], stops: &[String]) -> usize {
    let mut best = 0;
    for s in stops {
        let s = s.as_bytes();
        for k in (1..s.len()).rev() {
            if k <= best {
                break;
            }
            if out.len() >= k && out[out.len() - k..] == s[..k] {
                best = k;
                break;
            }
        }
    }
    best
}

/// Runs one generation. `emit` receives each text delta and returns `false` when the caller has
/// gone (generation then stops); `cancelled` is polled before each forward pass.
pub(crate) fn run(
    model: &mut Weights,
    vocab: &Vocab<'_>,
    job: Job,
    emit: &mut dyn FnMut(String) -> bool,
    cancelled: &dyn Fn() -> bool,
) -> Result<Outcome> {
    let stops: Vec<String> = job.stop.into_iter().filter(|s| !s.is_empty()).collect();
    let max_stop = stops.iter().map(String::len).max().unwrap_or(0);
    let mut sampler = Sampler::new(job.sampling);
    let mut history = job.prompt.clone();
    let mut out = TextOut {
        bytes: Vec::new(),
        emitted: 0,
        text: String::new(),
    };
    let mut json = match job.schema.as_deref() {
        Some(schema) => Constraint::Schema(Guide::new(schema)),
        None => Constraint::Json(JsonState::new()),
    };
    let mut mask: Vec<bool> = Vec::new();
    let mut tokens = Vec::new();
    let mut finish = FinishReason::Length;
    let mut was_cancelled = false;

    let t0 = Instant::now();
    if cancelled() {
        return Ok(Outcome {
            text: String::new(),
            finish: FinishReason::Stop,
            output_tokens: 0,
            tokens,
            prefill: Duration::ZERO,
            decode: Duration::ZERO,
            cancelled: true,
        });
    }
    let mut logits = model.forward(&job.prompt, 0)?;
    let prefill = t0.elapsed();
    let t1 = Instant::now();
    let mut pos = job.prompt.len();

    'decode: while tokens.len() < job.max_tokens {
        sampler.penalise(&mut logits, &history);
        let next = if job.json {
            if !sampler.greedy()
                && let Some(trie) = vocab.trie
            {
                mask.resize(logits.len(), false);
                match json {
                    Constraint::Json(j) => trie.allowed(j, &mut mask),
                    Constraint::Schema(g) => trie.allowed(g, &mut mask),
                }
                let m = &mask;
                sampler.choose(&logits, Some(&|t| m[t as usize]))
            } else {
                let state = json;
                let check = |t: u32| {
                    let b = vocab
                        .bytes
                        .get(t as usize)
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    let mut s = state;
                    !b.is_empty() && s.feed(b)
                };
                sampler.choose(&logits, Some(&check))
            }
        } else if job.ignore_eos {
            let bytes = vocab.bytes;
            let usable = |t: u32| bytes.get(t as usize).is_some_and(|b| !b.is_empty());
            sampler.choose(&logits, Some(&usable))
        } else {
            let n = vocab.bytes.len() as u32;
            sampler.choose(&logits, Some(&|t| t < n))
        };
        let Some(next) = next else {
            // Nothing can follow (cannot happen with a sane vocabulary): end here.
            finish = FinishReason::Stop;
            break;
        };
        let bytes = vocab
            .bytes
            .get(next as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if !job.ignore_eos && (vocab.end.contains(&next) || bytes.is_empty()) {
            finish = FinishReason::Stop;
            break;
        }
        tokens.push(next);
        history.push(next);
        if job.json {
            json.feed(bytes);
        }
        out.bytes.extend_from_slice(bytes);

        // Stop sequences, searched only where a new match can start.
        if !stops.is_empty() {
            let from = out
                .emitted
                .min(out.bytes.len().saturating_sub(bytes.len() + max_stop));
            let hay = &out.bytes[from..];
            let hit = stops
                .iter()
                .filter_map(|s| {
                    hay.windows(s.len())
                        .position(|w| w == s.as_bytes())
                        .map(|p| from + p)
                })
                .min();
            if let Some(at) = hit {
                out.bytes.truncate(at.max(out.emitted));
                finish = FinishReason::Stop;
                break 'decode;
            }
        }
        if job.json && json.is_done() {
            finish = FinishReason::Stop;
            break;
        }
        let safe = out.bytes.len() - holdback(&out.bytes, &stops);
        if let Some(piece) = out.take(safe, false)
            && !emit(piece)
        {
            was_cancelled = true;
            break;
        }
        if tokens.len() >= job.max_tokens {
            break;
        }
        if cancelled() {
            was_cancelled = true;
            break;
        }
        logits = model.forward(&[next], pos)?;
        pos += 1;
    }
    let decode = t1.elapsed();
    if !was_cancelled {
        let end = out.bytes.len();
        if let Some(piece) = out.take(end, true) {
            was_cancelled = !emit(piece);
        }
        if job.json && !was_cancelled {
            let closed = close_document(&out.text);
            if closed.len() > out.text.len() && closed.starts_with(&out.text) {
                let suffix = closed[out.text.len()..].to_owned();
                out.text.push_str(&suffix);
                was_cancelled = !emit(suffix);
            }
        }
    }
    Ok(Outcome {
        text: out.text,
        finish,
        output_tokens: tokens.len(),
        tokens,
        prefill,
        decode,
        cancelled: was_cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdback_keeps_possible_stop_prefixes() {
        let stops = vec!["END".to_owned(), "\n\n".to_owned()];
        assert_eq!(holdback(b"abc E", &stops), 1);
        assert_eq!(holdback(b"abc EN", &stops), 2);
        assert_eq!(holdback(b"abc\n", &stops), 1);
        assert_eq!(holdback(b"abc", &stops), 0);
    }

    #[test]
    fn text_is_emitted_as_complete_utf8() {
        let mut t = TextOut {
            bytes: Vec::new(),
            emitted: 0,
            text: String::new(),
        };
        let e = "é".as_bytes();
        t.bytes.extend_from_slice(b"a");
        t.bytes.push(e[0]);
        assert_eq!(t.take(t.bytes.len(), false).as_deref(), Some("a"));
        t.bytes.push(e[1]);
        assert_eq!(t.take(t.bytes.len(), false).as_deref(), Some("é"));
        assert_eq!(t.text, "aé");
    }
}
