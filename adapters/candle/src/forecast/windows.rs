//! Training windows cut from the request's series, normalised per window, and the seeded
//! random generator that samples them.

/// Normalised values are clamped to this magnitude, so that a window that starts near zero
/// and then takes off cannot blow up the training.
const CLAMP: f64 = 50.0;

/// A small seeded generator (SplitMix64): the same seed gives the same draws everywhere.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// The scale of a lookback window: its mean absolute value (1 when that is 0).
pub(crate) fn window_scale(input: &[f64]) -> f64 {
    let s = input.iter().map(|v| v.abs()).sum::<f64>() / input.len().max(1) as f64;
    if s > 0.0 && s.is_finite() { s } else { 1.0 }
}

fn norm(v: f64, scale: f64) -> f32 {
    (v / scale).clamp(-CLAMP, CLAMP) as f32
}

/// Appends the normalised window ending (exclusive) at `t` of `y`: `lookback` inputs, the
/// last input, and `horizon` targets when `with_target`.
fn push_window(
    y: &[f64],
    t: usize,
    lookback: usize,
    horizon: usize,
    x: &mut Vec<f32>,
    l: &mut Vec<f32>,
    target: Option<&mut Vec<f32>>,
) {
    let input = &y[t - lookback..t];
    let scale = window_scale(input);
    x.extend(input.iter().map(|&v| norm(v, scale)));
    l.push(norm(input[lookback - 1], scale));
    if let Some(out) = target {
        out.extend(y[t..t + horizon].iter().map(|&v| norm(v, scale)));
    }
}

/// The normalised lookback window at the end of `y` (`y.len() >= lookback`) and its scale.
pub(crate) fn last_window(y: &[f64], lookback: usize) -> (Vec<f32>, f32, f64) {
    let mut x = Vec::with_capacity(lookback);
    let mut l = Vec::with_capacity(1);
    push_window(y, y.len(), lookback, 0, &mut x, &mut l, None);
    (x, l[0], window_scale(&y[y.len() - lookback..]))
}

/// The windows of one group of series.
#[derive(Debug)]
pub(crate) struct WindowSet {
    pub lookback: usize,
    pub horizon: usize,
    /// Number of quantile heads.
    pub levels: usize,
    series: Vec<Vec<f64>>,
    /// `(series, first cut, last cut)` of the training windows, inclusive.
    train: Vec<(usize, usize, usize)>,
    /// `(series, cut)` of the validation windows: the last `horizon` values of each series.
    val: Vec<(usize, usize)>,
}

impl WindowSet {
    /// Cuts windows from `series`: each series of at least `lookback + horizon` values gives
    /// one validation window (its last `horizon` values as targets), and, when long enough,
    /// training windows whose targets end before that held-out tail, at most
    /// `history_limit` of them per series (the most recent; 0 = all); at most `max_val`
    /// validation windows are kept, evenly spread.
    pub(crate) fn new(
        series: Vec<Vec<f64>>,
        lookback: usize,
        horizon: usize,
        levels: usize,
        history_limit: usize,
        max_val: usize,
    ) -> Self {
        let mut train = Vec::new();
        let mut val = Vec::new();
        let mut kept = Vec::new();
        for y in series {
            let n = y.len();
            if n < lookback + horizon {
                continue;
            }
            let i = kept.len();
            val.push((i, n - horizon));
            // targets y[t..t+h] must end at or before n - horizon
            if n >= lookback + 2 * horizon {
                let hi = n - 2 * horizon;
                let lo = if history_limit == 0 {
                    lookback
                } else {
                    lookback.max(hi.saturating_sub(history_limit - 1))
                };
                train.push((i, lo, hi));
            }
            kept.push(y);
        }
        if val.len() > max_val.max(1) {
            // keep an evenly spread subset, deterministically
            let keep = max_val.max(1);
            let n = val.len();
            val = (0..keep).map(|j| val[j * n / keep]).collect();
        }
        WindowSet {
            lookback,
            horizon,
            levels,
            series: kept,
            train,
            val,
        }
    }

    /// The same windows with the held-out tail added to training: every series' training
    /// cuts run up to its validation cut (used to refit once early stopping has chosen the
    /// number of steps).
    pub(crate) fn with_tail(&self, history_limit: usize) -> WindowSet {
        let train = self
            .val
            .iter()
            .map(|&(i, hi)| {
                let lo = if history_limit == 0 {
                    self.lookback
                } else {
                    self.lookback.max(hi.saturating_sub(history_limit - 1))
                };
                (i, lo, hi)
            })
            .collect();
        WindowSet {
            lookback: self.lookback,
            horizon: self.horizon,
            levels: self.levels,
            series: self.series.clone(),
            train,
            val: self.val.clone(),
        }
    }

    /// Number of distinct training windows.
    pub(crate) fn train_windows(&self) -> usize {
        self.train.iter().map(|(_, lo, hi)| hi - lo + 1).sum()
    }

    /// Number of validation windows.
    pub(crate) fn val_windows(&self) -> usize {
        self.val.len()
    }

    /// All validation windows: inputs, last values, targets.
    pub(crate) fn validation(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(self.val.len() * self.lookback);
        let mut l = Vec::with_capacity(self.val.len());
        let mut y = Vec::with_capacity(self.val.len() * self.horizon);
        for &(i, t) in &self.val {
            push_window(
                &self.series[i],
                t,
                self.lookback,
                self.horizon,
                &mut x,
                &mut l,
                Some(&mut y),
            );
        }
        (x, l, y)
    }

    /// A random batch of training windows: a series drawn uniformly, then one of its
    /// windows uniformly (so long series do not dominate).
    pub(crate) fn sample(&self, rng: &mut Rng, batch: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(batch * self.lookback);
        let mut l = Vec::with_capacity(batch);
        let mut y = Vec::with_capacity(batch * self.horizon);
        if self.train.is_empty() {
            return (x, l, y);
        }
        for _ in 0..batch {
            let (i, lo, hi) = self.train[rng.below(self.train.len())];
            let t = lo + rng.below(hi - lo + 1);
            push_window(
                &self.series[i],
                t,
                self.lookback,
                self.horizon,
                &mut x,
                &mut l,
                Some(&mut y),
            );
        }
        (x, l, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_hold_out_the_tail_and_respect_the_history_limit() {
        let y: Vec<f64> = (1..=30).map(f64::from).collect();
        let w = WindowSet::new(vec![y.clone(), vec![1.0; 5]], 6, 4, 3, 0, 10);
        // the 5-value series is too short for any window
        assert_eq!(w.val_windows(), 1);
        // cuts 6..=22 (targets end at 26 = 30 - 4 at the latest)
        assert_eq!(w.train_windows(), 17);
        let (x, l, t) = w.validation();
        assert_eq!((x.len(), l.len(), t.len()), (6, 1, 4));
        // input 21..=26, scale 23.5, targets 27..=30
        assert!((t[0] - (27.0 / 23.5) as f32).abs() < 1e-6);
        assert!((l[0] - (26.0 / 23.5) as f32).abs() < 1e-6);
        let tail = w.with_tail(0);
        // cuts 6..=26: the held-out targets 27..=30 are now trained on
        assert_eq!(tail.train_windows(), 21);
        let limited = WindowSet::new(vec![y], 6, 4, 3, 5, 10);
        assert_eq!(limited.train_windows(), 5);
        let mut rng = Rng::new(7);
        let (bx, bl, by) = limited.sample(&mut rng, 16);
        assert_eq!((bx.len(), bl.len(), by.len()), (96, 16, 64));
        // cuts t in 18..=22: the last input is the value t and the last target t + 4, so
        // their ratio (t + 4) / t lies in [26/22, 22/18]: no target reaches the held-out tail
        for (row, last) in by.chunks(4).zip(&bl) {
            let r = row[3] / last;
            assert!(
                (26.0 / 22.0 - 1e-5..=22.0 / 18.0 + 1e-5).contains(&r),
                "{r}"
            );
        }
    }

    #[test]
    fn zero_windows_use_unit_scale() {
        assert_eq!(window_scale(&[0.0, 0.0]), 1.0);
        let (x, l, s) = last_window(&[5.0, 0.0, 0.0], 2);
        assert_eq!((x, l, s), (vec![0.0, 0.0], 0.0, 1.0));
    }

    #[test]
    fn rng_is_seeded() {
        let a: Vec<u64> = {
            let mut r = Rng::new(1);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(1);
        assert!(a.iter().all(|&v| v == r.next_u64()));
        assert!((0..1000).all(|_| r.below(3) < 3));
    }
}
