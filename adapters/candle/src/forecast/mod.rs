//! A neural forecaster: one global model trained by candle on the request's own series.
//!
//! For every group of series with the same season length, [`NeuralForecaster`]:
//!
//! 1. cuts windows of `lookback` inputs and `horizon` targets from each series, each window
//!    divided by the mean absolute value of its inputs (so series of any scale share one
//!    model), holding out the last `horizon` values of every series for validation;
//! 2. trains a multilayer perceptron (ReLU, `layers` x `hidden`) whose outputs are added to
//!    the last observed value, one output per horizon step and quantile level (the median
//!    and every requested level), with the pinball (quantile) loss, AdamW, seeded
//!    initialisation and seeded batches of windows drawn series-first;
//! 3. stops early when the validation loss stops improving, after `max_steps`, or when the
//!    time budget runs out, and keeps the best weights seen; then (with `refit`, the
//!    default) trains a fresh network with the same seed for the chosen number of steps on
//!    all windows, the held-out tail included, so the most recent values are learnt from;
//! 4. forecasts each series from its last `lookback` values: the median head is the point
//!    forecast, the heads of the requested levels are the quantiles (sorted per step, so they
//!    never cross), and lower values are clamped at 0 when the history has no negative value.
//!
//! A series is served by the statistical engine of `merchant-ai-rules` instead (method
//! `fallback_method`, `auto` by default) when it is shorter than the lookback window, has
//! regressors (the network does not use them; the statistical engine does), is intermittent
//! (when `intermittent_fallback` is on), or when its group has too few windows to train on or
//! the trained network does not beat its naive starting point. [`SeriesForecast::model`] says
//! which served each series: `neural_mlp`, or `fallback(REASON):METHOD` (e.g.
//! `fallback(short_history):comb(ses,theta)`). A request may also name a statistical method
//! (`theta`, `holt_winters`, ...), which then serves every series; `neural` and `auto` mean
//! the network.
//!
//! Given the same request and config the answer is the same (the seed fixes the weights and
//! the batches), unless the time budget cuts training short, which the
//! [`ForecastReport`] of [`NeuralForecaster::forecast_with_report`] tells.

mod net;
mod windows;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use merchant_ai::{
    Error, ErrorKind, ForecastRequest, ForecastResponse, Forecaster, QuantileForecast,
    ResponseMeta, Result, Series, SeriesForecast, Usage,
};
use merchant_ai_rules::forecast::{self as stats, Method};
use serde::{Deserialize, Serialize};

pub use net::StopReason;

/// Model name of the series the network serves.
pub const NEURAL_MODEL: &str = "neural_mlp";

/// `[providers.NAME.forecast]` options of the neural forecaster.
///
/// ```toml
/// [providers.local.forecast]
/// lookback_multiple = 2.0     # lookback window = 2 x horizon (at least the season, and 4)
/// hidden = 256                # units per hidden layer
/// layers = 2                  # hidden layers
/// batch_size = 256
/// learning_rate = 0.001
/// weight_decay = 0.0001
/// max_steps = 2000            # optimiser steps at most
/// eval_every = 50             # steps between validation checks
/// patience = 8                # checks without improvement before stopping
/// max_train_seconds = 60.0    # wall-time budget of one request's training
/// history_limit = 0           # most recent training windows per series (0 = all)
/// min_train_windows = 16      # fewer windows in a group: statistical fallback
/// seed = 42
/// fallback_method = "auto"    # statistical method of merchant-ai-rules for fallbacks
/// intermittent_fallback = true
/// refit = true                # retrain on all windows, tail included, for the chosen steps
/// ensemble = 1                # networks (seeds) combined by their median
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralForecastConfig {
    /// Lookback window length as a multiple of the horizon (rounded up; at least the season
    /// length and 4).
    pub lookback_multiple: f64,
    /// Units per hidden layer.
    pub hidden: usize,
    /// Number of hidden layers.
    pub layers: usize,
    /// Windows per optimiser step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Optimiser steps at most.
    pub max_steps: usize,
    /// Steps between validation checks.
    pub eval_every: usize,
    /// Validation checks without improvement before training stops.
    pub patience: usize,
    /// Wall-time budget for the training of one request, all groups together, in seconds
    /// (a request deadline shortens it).
    pub max_train_seconds: f64,
    /// The most recent training windows used per series (0 = all).
    pub history_limit: usize,
    /// A group with fewer training windows is served by the statistical fallback.
    pub min_train_windows: usize,
    /// Validation windows used at most per group (evenly spread over the series).
    pub max_val_windows: usize,
    /// Seed of the initial weights and the batches.
    pub seed: u64,
    /// Statistical method (of `merchant-ai-rules`) for the series the network does not serve.
    pub fallback_method: String,
    /// Serve intermittent series (many zero periods) by the statistical fallback, whose
    /// Croston-type methods are built for them.
    pub intermittent_fallback: bool,
    /// Once early stopping has chosen the number of steps, train a fresh network (same seed)
    /// for that many steps on all windows, the held-out tail included, and forecast with it
    /// (the most recent values matter most). Doubles training time at most.
    pub refit: bool,
    /// Networks trained with different seeds (derived from `seed`) whose outputs are
    /// combined by their median; each costs one more training.
    pub ensemble: usize,
}

impl Default for NeuralForecastConfig {
    fn default() -> Self {
        NeuralForecastConfig {
            lookback_multiple: 2.0,
            hidden: 256,
            layers: 2,
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            max_steps: 2000,
            eval_every: 50,
            patience: 8,
            max_train_seconds: 60.0,
            history_limit: 0,
            min_train_windows: 16,
            max_val_windows: 4096,
            seed: 42,
            fallback_method: "auto".into(),
            intermittent_fallback: true,
            refit: true,
            ensemble: 1,
        }
    }
}

impl NeuralForecastConfig {
    fn check(&self) -> Result<Method> {
        let bad = |key: &str, want: &str, got: String| {
            Err(Error::config(format!(
                "neural forecast config: {key} must be {want}, got {got}"
            )))
        };
        if !(self.lookback_multiple.is_finite()
            && self.lookback_multiple > 0.0
            && self.lookback_multiple <= 100.0)
        {
            return bad(
                "lookback_multiple",
                "in (0, 100]",
                self.lookback_multiple.to_string(),
            );
        }
        let ranges: [(&str, usize, usize, usize); 8] = [
            ("hidden", self.hidden, 1, 8192),
            ("layers", self.layers, 1, 16),
            ("batch_size", self.batch_size, 1, 65_536),
            ("max_steps", self.max_steps, 1, 10_000_000),
            ("eval_every", self.eval_every, 1, 10_000_000),
            ("patience", self.patience, 1, 1_000_000),
            ("max_val_windows", self.max_val_windows, 1, 10_000_000),
            ("ensemble", self.ensemble, 1, 64),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return bad(key, &format!("between {lo} and {hi}"), v.to_string());
            }
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate < 10.0)
        {
            return bad(
                "learning_rate",
                "in (0, 10)",
                self.learning_rate.to_string(),
            );
        }
        if !(self.weight_decay.is_finite() && (0.0..1.0).contains(&self.weight_decay)) {
            return bad("weight_decay", "in [0, 1)", self.weight_decay.to_string());
        }
        if !(self.max_train_seconds.is_finite()
            && self.max_train_seconds > 0.0
            && self.max_train_seconds <= 86_400.0)
        {
            return bad(
                "max_train_seconds",
                "in (0, 86400]",
                self.max_train_seconds.to_string(),
            );
        }
        Method::parse(&self.fallback_method).ok_or_else(|| {
            Error::config(format!(
                "neural forecast config: fallback_method: unknown forecast method {:?} (expected one of: {})",
                self.fallback_method,
                method_names()
            ))
        })
    }

    /// The lookback window for `horizon` steps and season length `m`.
    pub fn lookback(&self, horizon: usize, m: usize) -> usize {
        let l = (self.lookback_multiple * horizon as f64).ceil() as usize;
        l.max(m).max(4)
    }
}

fn method_names() -> String {
    let mut v = vec!["neural"];
    v.extend(Method::ALL.iter().map(|m| m.name()));
    v.join(", ")
}

/// Why a series was served by the statistical fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The history is shorter than the lookback window.
    ShortHistory,
    /// The series has regressors, which only the statistical engine uses.
    Regressors,
    /// The series is intermittent.
    Intermittent,
    /// Its group had too few windows to train on.
    TooFewWindows,
    /// The trained network did not beat its naive starting point on the held-out tail.
    Untrained,
    /// Training failed or the network's forecast was not finite.
    NetworkFailed,
}

impl FallbackReason {
    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            FallbackReason::ShortHistory => "short_history",
            FallbackReason::Regressors => "regressors",
            FallbackReason::Intermittent => "intermittent",
            FallbackReason::TooFewWindows => "too_few_windows",
            FallbackReason::Untrained => "untrained",
            FallbackReason::NetworkFailed => "network_failed",
        }
    }
}

/// What training did for one group of series (same season length).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// The group's season length.
    pub season_length: usize,
    /// The lookback window.
    pub lookback: usize,
    /// Series in the group that were candidates for the network.
    pub candidates: usize,
    /// Series the network served.
    pub neural_series: usize,
    /// Distinct training windows.
    pub train_windows: usize,
    /// Validation windows.
    pub val_windows: usize,
    /// Optimiser steps done (all members, before refits).
    pub steps: usize,
    /// The step of the kept weights (first member).
    pub best_step: usize,
    /// Validation pinball loss of the kept weights (first member, normalised units).
    pub best_val_loss: f64,
    /// Why training stopped (`None` when there was no training).
    pub stop: Option<StopReason>,
    /// Networks in the ensemble that served (those that beat their naive start).
    pub members: usize,
    /// Steps of the refit on all windows (0 when there was none, or when the time budget
    /// ran out before it finished and the early-stopped network served).
    pub refit_steps: usize,
    /// Wall time of training and prediction.
    pub train_time: Duration,
}

/// How a request was served: one entry per group, and the fallbacks by reason.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastReport {
    /// One entry per season-length group the network was tried on.
    pub groups: Vec<GroupReport>,
    /// Series served by the statistical fallback, per reason.
    pub fallbacks: Vec<(FallbackReason, usize)>,
    /// Series the network served.
    pub neural_series: usize,
}

/// The neural forecaster (see the [module docs](self)).
#[derive(Debug)]
pub struct NeuralForecaster {
    name: String,
    cfg: NeuralForecastConfig,
    fallback: Method,
}

/// How one series is to be served.
enum Plan {
    Failed(Error),
    Stat(Method, Option<FallbackReason>),
    Neural,
}

impl NeuralForecaster {
    /// A forecaster with `config`, reporting itself as provider `candle` (see
    /// [`NeuralForecaster::with_name`]). Errors name the bad config key.
    pub fn new(config: NeuralForecastConfig) -> Result<Self> {
        let fallback = config.check()?;
        Ok(NeuralForecaster {
            name: "candle".into(),
            cfg: config,
            fallback,
        })
    }

    /// Sets the provider name reported in [`ResponseMeta`].
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The config.
    pub fn config(&self) -> &NeuralForecastConfig {
        &self.cfg
    }

    /// Forecasts like [`Forecaster::forecast`] and also reports how training went.
    pub async fn forecast_with_report(
        &self,
        req: ForecastRequest,
    ) -> Result<(ForecastResponse, ForecastReport)> {
        let start = Instant::now();
        req.validate()?;
        req.ctx.check_deadline()?;
        let requested = match req.method.as_deref().map(str::trim) {
            None => None,
            Some(m)
                if ["neural", "auto", "mlp", "neural_mlp"]
                    .iter()
                    .any(|n| m.eq_ignore_ascii_case(n)) =>
            {
                None
            }
            Some(m) => Some(Method::parse(m).ok_or_else(|| {
                Error::invalid_request(format!(
                    "method: unknown forecast method {m:?} (expected one of: {})",
                    method_names()
                ))
            })?),
        };
        let mut budget = Duration::from_secs_f64(self.cfg.max_train_seconds);
        if let Some(left) = req.ctx.remaining() {
            budget = budget.min(left.mul_f64(0.8));
        }
        let n = req.series.len();
        let cfg = self.cfg.clone();
        let fallback = self.fallback;
        let (series, report) = tokio::task::spawn_blocking(move || {
            run(&req, &cfg, fallback, requested, start + budget)
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("neural forecast worker failed: {e}"),
            )
        })?;
        let model = match requested {
            Some(m) => format!("rules-stats:{}", m.name()),
            None => NEURAL_MODEL.to_owned(),
        };
        let meta = ResponseMeta::new(self.name.clone())
            .with_model(model)
            .with_usage(Usage::new().with_units(n as u64))
            .with_latency(start.elapsed());
        Ok((ForecastResponse::new(series, meta), report))
    }
}

#[async_trait]
impl Forecaster for NeuralForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        Ok(self.forecast_with_report(req).await?.0)
    }
}

fn is_intermittent(y: &[f64]) -> bool {
    let nz = y.iter().filter(|&&v| v != 0.0).count();
    // average demand interval above 1.32 (Syntetos-Boylan), as the rules engine decides
    y.iter().all(|&v| v >= 0.0) && nz >= 2 && y.len() as f64 / nz as f64 > 1.32
}

fn plan(
    s: &Series,
    horizon: usize,
    cfg: &NeuralForecastConfig,
    fallback: Method,
    requested: Option<Method>,
) -> Plan {
    if let Err(e) = s.validate(horizon) {
        return Plan::Failed(e);
    }
    if let Some(m) = requested {
        return Plan::Stat(m, None);
    }
    if !s.regressors.is_empty() {
        return Plan::Stat(fallback, Some(FallbackReason::Regressors));
    }
    if cfg.intermittent_fallback && is_intermittent(&s.values) {
        return Plan::Stat(fallback, Some(FallbackReason::Intermittent));
    }
    if s.values.len() < cfg.lookback(horizon, s.season_length()) {
        return Plan::Stat(fallback, Some(FallbackReason::ShortHistory));
    }
    Plan::Neural
}

/// Forecasts `s` with the statistical engine.
fn statistical(
    s: &Series,
    horizon: usize,
    quantiles: &[f64],
    method: Method,
    reason: Option<FallbackReason>,
) -> SeriesForecast {
    let n = s.values.len();
    let regressors = (!s.regressors.is_empty()).then(|| stats::Regressors {
        history: s.regressors.values().map(|r| r[..n].to_vec()).collect(),
        future: s.regressors.values().map(|r| r[n..].to_vec()).collect(),
    });
    let mut opts = stats::Options::new(horizon);
    opts.season_length = s.season_length();
    opts.quantiles = quantiles.to_vec();
    opts.method = method;
    opts.regressors = regressors;
    match stats::forecast(&s.values, &opts) {
        Ok(f) => {
            let model = match reason {
                Some(r) => format!("fallback({}):{}", r.name(), f.method),
                None => f.method.to_owned(),
            };
            SeriesForecast::new(s.id.clone(), f.point, model)
                .with_quantiles(
                    f.quantiles
                        .into_iter()
                        .map(|(q, v)| QuantileForecast::new(q, v))
                        .collect(),
                )
                .with_timestamps(s.future_timestamps(horizon))
        }
        Err(e) => SeriesForecast::failed(
            s.id.clone(),
            Error::invalid_request(format!("series {:?}: {e}", s.id)),
        ),
    }
}

/// The quantile levels of the heads: the median and every requested level, sorted.
fn head_levels(quantiles: &[f64]) -> Vec<f64> {
    let mut v = vec![0.5];
    v.extend_from_slice(quantiles);
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
    v
}

/// The blocking part of a request.
fn run(
    req: &ForecastRequest,
    cfg: &NeuralForecastConfig,
    fallback: Method,
    requested: Option<Method>,
    deadline: Instant,
) -> (Vec<SeriesForecast>, ForecastReport) {
    let h = req.horizon;
    let mut out: Vec<Option<SeriesForecast>> = vec![None; req.series.len()];
    let mut report = ForecastReport::default();
    let mut reasons: Vec<(FallbackReason, usize)> = Vec::new();
    let mut note = |r: Option<FallbackReason>| {
        if let Some(r) = r {
            match reasons.iter_mut().find(|(x, _)| *x == r) {
                Some((_, c)) => *c += 1,
                None => reasons.push((r, 1)),
            }
        }
    };
    // season length -> indices of the series the network may serve
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, s) in req.series.iter().enumerate() {
        match plan(s, h, cfg, fallback, requested) {
            Plan::Failed(e) => out[i] = Some(SeriesForecast::failed(s.id.clone(), e)),
            Plan::Stat(m, r) => {
                note(r);
                out[i] = Some(statistical(s, h, &req.quantiles, m, r));
            }
            Plan::Neural => groups.entry(s.season_length()).or_default().push(i),
        }
    }
    let levels = head_levels(&req.quantiles);
    for (m, idx) in groups {
        let t0 = Instant::now();
        let lookback = cfg.lookback(h, m);
        let values: Vec<Vec<f64>> = idx.iter().map(|&i| req.series[i].values.clone()).collect();
        let data = windows::WindowSet::new(
            values,
            lookback,
            h,
            levels.len(),
            cfg.history_limit,
            cfg.max_val_windows,
        );
        let mut g = GroupReport {
            season_length: m,
            lookback,
            candidates: idx.len(),
            neural_series: 0,
            train_windows: data.train_windows(),
            val_windows: data.val_windows(),
            steps: 0,
            best_step: 0,
            best_val_loss: f64::NAN,
            stop: None,
            refit_steps: 0,
            members: 0,
            train_time: Duration::ZERO,
        };
        let served = if g.train_windows < cfg.min_train_windows.max(1) || g.val_windows == 0 {
            Err(FallbackReason::TooFewWindows)
        } else {
            train_and_predict(req, &idx, &data, cfg, &levels, deadline, &mut g)
        };
        match served {
            Ok(forecasts) => {
                for (&i, f) in idx.iter().zip(forecasts) {
                    let s = &req.series[i];
                    out[i] = Some(match f {
                        Some(f) => {
                            g.neural_series += 1;
                            f
                        }
                        None => {
                            note(Some(FallbackReason::NetworkFailed));
                            statistical(
                                s,
                                h,
                                &req.quantiles,
                                fallback,
                                Some(FallbackReason::NetworkFailed),
                            )
                        }
                    });
                }
            }
            Err(r) => {
                for &i in &idx {
                    note(Some(r));
                    out[i] = Some(statistical(
                        &req.series[i],
                        h,
                        &req.quantiles,
                        fallback,
                        Some(r),
                    ));
                }
            }
        }
        g.train_time = t0.elapsed();
        report.neural_series += g.neural_series;
        report.groups.push(g);
    }
    report.fallbacks = reasons;
    let series = out
        .into_iter()
        .zip(&req.series)
        .map(|(f, s)| {
            f.unwrap_or_else(|| {
                SeriesForecast::failed(
                    s.id.clone(),
                    Error::new(
                        ErrorKind::Unexpected,
                        format!("series {:?}: not forecast", s.id),
                    ),
                )
            })
        })
        .collect();
    (series, report)
}

/// Trains the group's network and forecasts its series (`None` for a series whose forecast
/// was not finite); `Err` when the whole group must fall back.
fn train_and_predict(
    req: &ForecastRequest,
    idx: &[usize],
    data: &windows::WindowSet,
    cfg: &NeuralForecastConfig,
    levels: &[f64],
    deadline: Instant,
    g: &mut GroupReport,
) -> std::result::Result<Vec<Option<SeriesForecast>>, FallbackReason> {
    let h = req.horizon;
    let fail = |e: candle_core::Error| {
        tracing::warn!(error = %e, "neural forecast: training failed, statistical fallback");
        FallbackReason::NetworkFailed
    };
    let mut members = Vec::with_capacity(cfg.ensemble);
    for k in 0..cfg.ensemble.max(1) {
        // member seeds: the configured seed, then well-separated others
        let seed = cfg
            .seed
            .wrapping_add((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if let Some(m) = train_member(data, cfg, levels, deadline, seed, g).map_err(fail)? {
            members.push(m);
        }
        if k == 0 && members.is_empty() {
            // the first member could not beat its naive start: the others would not either
            break;
        }
    }
    if members.is_empty() {
        return Err(FallbackReason::Untrained);
    }
    g.members = members.len();
    let median = levels
        .iter()
        .position(|&q| (q - 0.5).abs() < 1e-12)
        .unwrap_or(0);
    let mut result = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(4096) {
        let mut xs = Vec::with_capacity(chunk.len() * g.lookback);
        let mut lasts = Vec::with_capacity(chunk.len());
        let mut scales = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let (x, l, s) = windows::last_window(&req.series[i].values, g.lookback);
            xs.extend(x);
            lasts.push(l);
            scales.push(s);
        }
        let mut outs = Vec::with_capacity(members.len());
        for m in &members {
            outs.push(m.predict(&xs, &lasts).map_err(fail)?);
        }
        let rows = combine(outs);
        for ((&i, row), scale) in chunk.iter().zip(rows).zip(scales) {
            let s = &req.series[i];
            result.push(to_forecast(
                s,
                &row,
                scale,
                h,
                levels,
                median,
                &req.quantiles,
            ));
        }
    }
    Ok(result)
}

/// Trains one network: early stopping, then (with `refit`) a fresh network with the same
/// seed for the chosen number of steps on all windows. `None` when the network never beat
/// its naive starting point.
fn train_member(
    data: &windows::WindowSet,
    cfg: &NeuralForecastConfig,
    levels: &[f64],
    deadline: Instant,
    seed: u64,
    g: &mut GroupReport,
) -> candle_core::Result<Option<net::Mlp>> {
    let h = data.horizon;
    let mlp = net::Mlp::new(g.lookback, h, levels, cfg.hidden, cfg.layers, seed)?;
    let settings = net::TrainSettings {
        batch_size: cfg.batch_size,
        learning_rate: cfg.learning_rate,
        weight_decay: cfg.weight_decay,
        max_steps: cfg.max_steps,
        eval_every: cfg.eval_every,
        patience: cfg.patience,
        budget: deadline.saturating_duration_since(Instant::now()),
        seed,
        early_stopping: true,
    };
    let outcome = mlp.train(data, &settings)?;
    g.steps += outcome.steps;
    if g.stop.is_none() {
        g.best_step = outcome.best_step;
        g.best_val_loss = outcome.best_val_loss;
    }
    if g.stop != Some(StopReason::TimeBudget) {
        g.stop = Some(outcome.stop);
    }
    if outcome.best_step == 0 {
        return Ok(None);
    }
    if !cfg.refit {
        return Ok(Some(mlp));
    }
    let all = data.with_tail(cfg.history_limit);
    let fresh = net::Mlp::new(g.lookback, h, levels, cfg.hidden, cfg.layers, seed)?;
    let again = net::TrainSettings {
        max_steps: outcome.best_step,
        budget: deadline.saturating_duration_since(Instant::now()),
        early_stopping: false,
        ..settings
    };
    let done = fresh.train(&all, &again)?;
    // a refit cut short by the time budget is not used
    if done.steps == outcome.best_step {
        g.refit_steps += done.steps;
        Ok(Some(fresh))
    } else {
        Ok(Some(mlp))
    }
}

/// The element-wise median of the members' output rows.
fn combine(mut outs: Vec<Vec<Vec<f32>>>) -> Vec<Vec<f32>> {
    if outs.len() == 1 {
        return outs.pop().unwrap_or_default();
    }
    let rows = outs.first().map_or(0, Vec::len);
    let mut buf = Vec::with_capacity(outs.len());
    (0..rows)
        .map(|r| {
            let width = outs[0][r].len();
            (0..width)
                .map(|c| {
                    buf.clear();
                    buf.extend(outs.iter().map(|o| o[r][c]));
                    buf.sort_by(f32::total_cmp);
                    let n = buf.len();
                    if n % 2 == 1 {
                        buf[n / 2]
                    } else {
                        0.5 * (buf[n / 2 - 1] + buf[n / 2])
                    }
                })
                .collect()
        })
        .collect()
}

/// Turns one output row of the network into a forecast (`None` when not finite).
fn to_forecast(
    s: &Series,
    row: &[f32],
    scale: f64,
    h: usize,
    levels: &[f64],
    median: usize,
    quantiles: &[f64],
) -> Option<SeriesForecast> {
    let non_negative = s.values.iter().all(|&v| v >= 0.0);
    // per level, per step, denormalised
    let mut heads: Vec<Vec<f64>> = (0..levels.len())
        .map(|k| {
            row[k * h..(k + 1) * h]
                .iter()
                .map(|&v| f64::from(v) * scale)
                .collect()
        })
        .collect();
    if heads.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    // sort per step so that the quantiles never cross
    let mut col = vec![0.0; levels.len()];
    for t in 0..h {
        for (k, head) in heads.iter().enumerate() {
            col[k] = head[t];
        }
        col.sort_by(f64::total_cmp);
        for (k, head) in heads.iter_mut().enumerate() {
            head[t] = if non_negative {
                col[k].max(0.0)
            } else {
                col[k]
            };
        }
    }
    let q = quantiles
        .iter()
        .map(|&lv| {
            let k = levels
                .iter()
                .position(|&x| (x - lv).abs() < 1e-12)
                .unwrap_or(median);
            QuantileForecast::new(lv, heads[k].clone())
        })
        .collect();
    Some(
        SeriesForecast::new(s.id.clone(), heads[median].clone(), NEURAL_MODEL)
            .with_quantiles(q)
            .with_timestamps(s.future_timestamps(h)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_combined_by_their_median() {
        let outs = vec![
            vec![vec![1.0, 10.0]],
            vec![vec![3.0, 20.0]],
            vec![vec![2.0, -5.0]],
        ];
        assert_eq!(combine(outs), vec![vec![2.0, 10.0]]);
        let two = vec![vec![vec![1.0]], vec![vec![2.0]]];
        assert_eq!(combine(two), vec![vec![1.5]]);
    }

    #[test]
    fn heads_cover_the_median_and_the_requested_levels() {
        assert_eq!(head_levels(&[0.9, 0.1, 0.5]), vec![0.1, 0.5, 0.9]);
        assert_eq!(head_levels(&[]), vec![0.5]);
        let cfg = NeuralForecastConfig::default();
        assert_eq!(cfg.lookback(18, 12), 36);
        assert_eq!(cfg.lookback(1, 1), 4);
        assert_eq!(cfg.lookback(3, 12), 12);
    }
}
