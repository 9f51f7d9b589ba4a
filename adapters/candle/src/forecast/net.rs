//! The network and its training loop: an MLP from the normalised lookback window to one
//! forecast per horizon step and quantile level, added to the last observed (normalised)
//! value, trained with the pinball loss by AdamW on seeded random batches, with early
//! stopping on held-out windows and bounded steps and wall time.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::windows::{Rng, WindowSet};

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The validation loss did not improve for `patience` evaluations.
    EarlyStopped,
    /// `max_steps` were done.
    MaxSteps,
    /// The time budget ran out (the result then depends on the machine's speed).
    TimeBudget,
}

impl StopReason {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::EarlyStopped => "early_stopped",
            StopReason::MaxSteps => "max_steps",
            StopReason::TimeBudget => "time_budget",
        }
    }
}

/// Training settings derived from the config and the request.
#[derive(Debug, Clone)]
pub(crate) struct TrainSettings {
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub max_steps: usize,
    pub eval_every: usize,
    pub patience: usize,
    pub budget: Duration,
    pub seed: u64,
    /// Early-stop on the validation windows and keep the best weights; otherwise run
    /// `max_steps` and keep the last weights.
    pub early_stopping: bool,
}

/// What training did.
#[derive(Debug, Clone)]
pub(crate) struct TrainOutcome {
    pub steps: usize,
    pub best_step: usize,
    pub best_val_loss: f64,
    pub stop: StopReason,
}

/// A multilayer perceptron with ReLU activations.
pub(crate) struct Mlp {
    /// `(weight [in, out], bias [1, out])` per layer.
    layers: Vec<(Var, Var)>,
    /// `[1, outputs]`, the quantile level of each output column.
    levels: Tensor,
    lookback: usize,
    outputs: usize,
}

fn uniform_var(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    bound: f64,
    dev: &Device,
) -> candle_core::Result<Var> {
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
        .collect();
    Var::from_tensor(&Tensor::from_vec(data, (rows, cols), dev)?)
}

impl Mlp {
    /// A network from `lookback` inputs to `horizon * levels.len()` outputs (level-major),
    /// initialised from `seed`; the last layer starts near zero so the untrained network
    /// forecasts the last value.
    pub(crate) fn new(
        lookback: usize,
        horizon: usize,
        levels: &[f64],
        hidden: usize,
        layers: usize,
        seed: u64,
    ) -> candle_core::Result<Self> {
        let dev = Device::Cpu;
        let mut rng = Rng::new(seed ^ 0x6e65_7572_616c);
        let outputs = horizon * levels.len();
        let mut dims = vec![lookback];
        dims.extend(std::iter::repeat_n(hidden, layers.max(1)));
        dims.push(outputs);
        let mut ls = Vec::with_capacity(dims.len() - 1);
        for (i, w) in dims.windows(2).enumerate() {
            let last = i + 2 == dims.len();
            // PyTorch's default for linear layers, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
            // shrunk for the output layer.
            let bound = 1.0 / (w[0] as f64).sqrt() * if last { 0.01 } else { 1.0 };
            let weight = uniform_var(&mut rng, w[0], w[1], bound, &dev)?;
            let bias = uniform_var(&mut rng, 1, w[1], if last { 0.0 } else { bound }, &dev)?;
            ls.push((weight, bias));
        }
        let lv: Vec<f32> = levels
            .iter()
            .flat_map(|&q| std::iter::repeat_n(q as f32, horizon))
            .collect();
        Ok(Mlp {
            layers: ls,
            levels: Tensor::from_vec(lv, (1, outputs), &dev)?,
            lookback,
            outputs,
        })
    }

    fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// Forecasts `[batch, outputs]` from inputs `[batch, lookback]` and last values `[batch, 1]`.
    pub(crate) fn forward(&self, x: &Tensor, last: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        let n = self.layers.len();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
            if i + 1 < n {
                h = h.relu()?;
            }
        }
        h.broadcast_add(last)
    }

    /// Mean pinball loss of `pred` against `target`, both `[batch, outputs]`.
    fn pinball(&self, pred: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        let d = (target - pred)?;
        let over = d.relu()?.broadcast_mul(&self.levels)?;
        let under = d
            .neg()?
            .relu()?
            .broadcast_mul(&self.levels.affine(-1.0, 1.0)?)?;
        (over + under)?.mean_all()
    }

    /// Runs the network on normalised inputs; returns one row of `outputs` per input.
    pub(crate) fn predict(
        &self,
        inputs: &[f32],
        lasts: &[f32],
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let b = lasts.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let dev = Device::Cpu;
        let x = Tensor::from_slice(inputs, (b, self.lookback), &dev)?;
        let l = Tensor::from_slice(lasts, (b, 1), &dev)?;
        let out = self.forward(&x, &l)?.detach();
        debug_assert_eq!(out.dims2()?.1, self.outputs);
        out.to_dtype(DType::F32)?.to_vec2::<f32>()
    }

    fn snapshot(&self) -> candle_core::Result<Vec<Tensor>> {
        self.vars().iter().map(|v| v.as_tensor().copy()).collect()
    }

    fn restore(&self, snap: &[Tensor]) -> candle_core::Result<()> {
        for (v, t) in self.vars().iter().zip(snap) {
            v.set(t)?;
        }
        Ok(())
    }

    /// Trains on `data`'s training windows, early-stopping on its validation windows, and
    /// leaves the best weights seen in place.
    pub(crate) fn train(
        &self,
        data: &WindowSet,
        s: &TrainSettings,
    ) -> candle_core::Result<TrainOutcome> {
        let dev = Device::Cpu;
        let started = Instant::now();
        let mut opt = AdamW::new(
            self.vars(),
            ParamsAdamW {
                lr: s.learning_rate,
                weight_decay: s.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let mut rng = Rng::new(s.seed);
        let (vx, vl, vy) = data.validation();
        let nv = vl.len();
        let val_x = Tensor::from_vec(vx, (nv, data.lookback), &dev)?;
        let val_l = Tensor::from_vec(vl, (nv, 1), &dev)?;
        let val_y = Tensor::from_vec(vy, (nv, self.outputs / data.levels), &dev)?;
        // every quantile head is compared with the same target
        let val_y = Tensor::cat(&vec![&val_y; data.levels], 1)?;
        let eval = |m: &Mlp| -> candle_core::Result<f64> {
            let p = m.forward(&val_x, &val_l)?.detach();
            Ok(m.pinball(&p, &val_y)?.to_scalar::<f32>()? as f64)
        };
        let mut best = if s.early_stopping {
            eval(self)?
        } else {
            f64::NAN
        };
        let mut best_step = 0;
        let mut snap = if s.early_stopping {
            self.snapshot()?
        } else {
            Vec::new()
        };
        let mut bad_evals = 0;
        let eval_every = s.eval_every.max(1);
        let mut step = 0;
        let stop = loop {
            if step >= s.max_steps {
                break StopReason::MaxSteps;
            }
            if started.elapsed() >= s.budget {
                break StopReason::TimeBudget;
            }
            let (bx, bl, by) = data.sample(&mut rng, s.batch_size);
            let b = bl.len();
            let x = Tensor::from_vec(bx, (b, data.lookback), &dev)?;
            let l = Tensor::from_vec(bl, (b, 1), &dev)?;
            let y = Tensor::from_vec(by, (b, self.outputs / data.levels), &dev)?;
            let y = Tensor::cat(&vec![&y; data.levels], 1)?;
            let loss = self.pinball(&self.forward(&x, &l)?, &y)?;
            opt.backward_step(&loss)?;
            step += 1;
            if !s.early_stopping {
                best_step = step;
                continue;
            }
            if step % eval_every == 0 {
                let v = eval(self)?;
                if v.is_finite() && v < best {
                    best = v;
                    best_step = step;
                    snap = self.snapshot()?;
                    bad_evals = 0;
                } else {
                    bad_evals += 1;
                    if bad_evals >= s.patience.max(1) {
                        break StopReason::EarlyStopped;
                    }
                }
            }
        };
        if s.early_stopping {
            self.restore(&snap)?;
        }
        Ok(TrainOutcome {
            steps: step,
            best_step,
            best_val_loss: best,
            stop,
        })
    }
}
