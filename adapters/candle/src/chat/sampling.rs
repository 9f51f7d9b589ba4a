//! Choosing the next token from the logits: repetition penalty, an optional allowed-token mask,
//! then greedy (temperature 0) or temperature / top-k / top-p sampling with a seeded generator.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sampling settings for one generation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SamplingParams {
    /// 0 means greedy.
    pub(crate) temperature: f32,
    /// Nucleus mass in (0, 1].
    pub(crate) top_p: f32,
    /// Keep this many best tokens (0: all).
    pub(crate) top_k: usize,
    /// CTRL-style penalty on tokens seen in the last `repeat_last_n` tokens (1: off).
    pub(crate) repetition_penalty: f32,
    /// How far back the penalty looks.
    pub(crate) repeat_last_n: usize,
    /// Seed of the generator.
    pub(crate) seed: u64,
}

/// Draws tokens.
pub(crate) struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    pub(crate) fn new(params: SamplingParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        Sampler {
            params,
            rng,
            scratch: Vec::new(),
        }
    }

    /// Whether sampling is greedy.
    pub(crate) fn greedy(&self) -> bool {
        self.params.temperature <= 0.0
    }

    /// Applies the repetition penalty to `logits` for the tokens in `history`.
    pub(crate) fn penalise(&self, logits: &mut [f32], history: &[u32]) {
        let p = self.params.repetition_penalty;
        if p == 1.0 || self.params.repeat_last_n == 0 {
            return;
        }
        let start = history.len().saturating_sub(self.params.repeat_last_n);
        let mut seen = std::collections::HashSet::new();
        for &t in &history[start..] {
            if !seen.insert(t) {
                continue;
            }
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / p } else { *l * p };
            }
        }
    }

    /// Chooses among the tokens for which `allowed` returns true (all when `None`).
    /// Returns `None` when no token is allowed.
    pub(crate) fn choose(
        &mut self,
        logits: &[f32],
        allowed: Option<&dyn Fn(u32) -> bool>,
    ) -> Option<u32> {
        let ok = |i: u32, l: f32| l.is_finite() && allowed.is_none_or(|f| f(i));
        if self.greedy() {
            let mut best: Option<(u32, f32)> = None;
            for (i, &l) in logits.iter().enumerate() {
                if best.is_none_or(|b| l > b.1) && ok(i as u32, l) {
                    best = Some((i as u32, l));
                }
            }
            return best.map(|b| b.0);
        }
        let t = self.params.temperature;
        self.scratch.clear();
        self.scratch.extend(
            logits
                .iter()
                .enumerate()
                .filter(|&(i, &l)| ok(i as u32, l))
                .map(|(i, &l)| (i as u32, l / t)),
        );
        if self.scratch.is_empty() {
            return None;
        }
        self.scratch
            .sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.params.top_k > 0 && self.scratch.len() > self.params.top_k {
            self.scratch.truncate(self.params.top_k);
        }
        let max = self.scratch[0].1;
        let mut sum = 0f32;
        for c in self.scratch.iter_mut() {
            c.1 = (c.1 - max).exp();
            sum += c.1;
        }
        let mut cum = 0f32;
        let n = self.scratch.len();
        let mut keep = n;
        for (k, c) in self.scratch.iter_mut().enumerate() {
            c.1 /= sum;
            cum += c.1;
            if cum >= self.params.top_p && keep == n {
                keep = k + 1;
            }
        }
        self.scratch.truncate(keep);
        let total: f32 = self.scratch.iter().map(|c| c.1).sum();
        let mut r = self.rng.random::<f32>() * total;
        for c in &self.scratch {
            r -= c.1;
            if r <= 0.0 {
                return Some(c.0);
            }
        }
        self.scratch.last().map(|c| c.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature: t,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed,
        }
    }

    #[test]
    fn greedy_takes_the_best_allowed_token() {
        let mut s = Sampler::new(params(0.0, 1));
        let logits = [0.1, 3.0, 2.0, f32::NAN];
        assert_eq!(s.choose(&logits, None), Some(1));
        assert_eq!(s.choose(&logits, Some(&|i| i != 1)), Some(2));
        assert_eq!(s.choose(&logits, Some(&|_| false)), None);
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_k() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32) * 0.1).collect();
        let draw = |seed| {
            let mut s = Sampler::new(SamplingParams {
                top_k: 3,
                ..params(1.0, seed)
            });
            (0..20)
                .map(|_| s.choose(&logits, None).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert!(draw(7).iter().all(|&t| t >= 47));
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let mut s = Sampler::new(SamplingParams {
            top_p: 0.5,
            ..params(1.0, 3)
        });
        let logits = [10.0, 0.0, 0.0, 0.0];
        for _ in 0..20 {
            assert_eq!(s.choose(&logits, None), Some(0));
        }
    }

    #[test]
    fn repetition_penalty_lowers_seen_tokens() {
        let s = Sampler::new(SamplingParams {
            repetition_penalty: 2.0,
            ..params(0.0, 0)
        });
        let mut l = [4.0, -1.0, 4.0];
        s.penalise(&mut l, &[0, 1, 0]);
        assert_eq!(l, [2.0, -2.0, 4.0]);
    }
}
