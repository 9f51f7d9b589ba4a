//! Statistical demand forecasting for the offline rules adapter.
//!
//! Pure `std`, deterministic (no randomness anywhere), no allocation in the
//! optimiser inner loop. Entry point: [`forecast`]. Replenishment on top of
//! a forecast is in the core: `merchant_ai::replenish`.
//!
//! Methods (see [`Method`]):
//! * `naive`, `seasonal_naive`;
//! * exponential smoothing in state-space form with additive errors: SES,
//!   Holt, damped Holt and Holt-Winters / ETS with additive or multiplicative
//!   seasonality (`ets` module), fitted by a bounded Nelder-Mead;
//! * the standard Theta method (Hyndman & Billah 2003 form: SES with drift
//!   equal to half the OLS slope) on the classically deseasonalised series
//!   when the 90% autocorrelation test says the series is seasonal;
//! * Croston, SBA and TSB for intermittent demand;
//! * `Auto`: fewer than 4 points -> naive; intermittent series (ADI > 1.32)
//!   -> the best of Croston / SBA / TSB by in-sample MSE; otherwise the
//!   equal-weight combination of the AICc-best exponential smoothing model
//!   and Theta (see the `select` module for the recipe and the M3 evidence
//!   behind it).
//!
//! Prediction intervals: `point + z(q) * sigma_h`, with `sigma_h` from the
//! analytic variance of the model where known and a `sigma * sqrt(h)` style
//! growth otherwise, then calibrated per series on holdouts: the same
//! method is refitted from two origins `min(horizon, n / 3)` steps before
//! (the end of) the history and
//! `sigma_h` is widened when its standardised errors there are larger than
//! the model claims (never narrowed; see `intervals::holdout_scale`). Lower
//! values (and the point) are clamped at 0 when the history has no negative
//! value.
//!
//! Optional regressors (e.g. promotions) are handled by an OLS of the series
//! on intercept, trend, Fourier seasonal terms and the regressors; the
//! regressor effects are removed from the history, the adjusted series is
//! forecast, and the effects of the future regressor values are added back.

mod ets;
mod intermittent;
mod intervals;
mod naive;
mod optim;
mod regress;
mod seasonal;
mod select;
mod stats;
mod theta;

pub use intervals::normal_quantile;

use std::fmt;

/// Which method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Per-series automatic choice (see the module docs).
    Auto,
    /// Repeat the last value.
    Naive,
    /// Repeat the last season.
    SeasonalNaive,
    /// Simple exponential smoothing, ETS(A,N,N). With `season_length > 1`
    /// and a significant seasonal ACF the series is classically
    /// deseasonalised first (reported as `ses+decomp`), as in the M3/M4
    /// benchmarks; the same holds for `Holt` and `HoltDamped`.
    Ses,
    /// Holt's linear trend, ETS(A,A,N).
    Holt,
    /// Damped trend, ETS(A,Ad,N).
    HoltDamped,
    /// Exponential smoothing family selected by AICc: Holt-Winters
    /// ETS(A,{N,Ad},{A,M}) fitted on the series (when `season_length > 1`
    /// and there are two full seasons) and SES / Holt / damped Holt on the
    /// classically seasonally adjusted series (adjusted when the 90% ACF
    /// test finds seasonality). The chosen model is reported, e.g.
    /// `ets(A,Ad,M)` or `holt_damped+decomp`.
    HoltWinters,
    /// Standard Theta method (with classical seasonal adjustment).
    Theta,
    /// Croston's method (alpha = 0.1).
    Croston,
    /// Syntetos-Boylan approximation: Croston debiased by `1 - alpha / 2`.
    Sba,
    /// Teunter-Syntetos-Babai.
    Tsb,
}

impl Method {
    /// All methods, in declaration order.
    pub const ALL: [Method; 11] = [
        Method::Auto,
        Method::Naive,
        Method::SeasonalNaive,
        Method::Ses,
        Method::Holt,
        Method::HoltDamped,
        Method::HoltWinters,
        Method::Theta,
        Method::Croston,
        Method::Sba,
        Method::Tsb,
    ];

    /// Stable snake_case name (also accepted by [`Method::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Naive => "naive",
            Method::SeasonalNaive => "seasonal_naive",
            Method::Ses => "ses",
            Method::Holt => "holt",
            Method::HoltDamped => "holt_damped",
            Method::HoltWinters => "holt_winters",
            Method::Theta => "theta",
            Method::Croston => "croston",
            Method::Sba => "croston_sba",
            Method::Tsb => "tsb",
        }
    }

    /// Parses a method name, case-insensitively; `-`, ` ` and `_` are
    /// interchangeable. Accepts the [`Method::name`] values and a few common
    /// aliases (`snaive`, `damped`, `hw`, `ets`, `sba`).
    pub fn parse(s: &str) -> Option<Method> {
        let key: String = s
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Some(match key.as_str() {
            "auto" => Method::Auto,
            "naive" => Method::Naive,
            "seasonal_naive" | "snaive" => Method::SeasonalNaive,
            "ses" | "simple_exponential_smoothing" => Method::Ses,
            "holt" => Method::Holt,
            "holt_damped" | "damped" | "damped_trend" => Method::HoltDamped,
            "holt_winters" | "hw" | "ets" => Method::HoltWinters,
            "theta" => Method::Theta,
            "croston" => Method::Croston,
            "croston_sba" | "sba" => Method::Sba,
            "tsb" => Method::Tsb,
            _ => return None,
        })
    }

    /// Minimum history length accepted when the method is requested
    /// explicitly (`Auto` accepts any non-empty series).
    fn min_len(self, season_length: usize) -> usize {
        match self {
            Method::Auto | Method::Naive | Method::Croston | Method::Sba | Method::Tsb => 1,
            Method::SeasonalNaive => season_length.max(1),
            Method::Ses | Method::Theta => 2,
            Method::Holt | Method::HoltWinters => 3,
            Method::HoltDamped => 4,
        }
    }
}

/// Forecasting options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Season length in periods (12 for monthly data with a yearly cycle,
    /// 7 for daily data with a weekly cycle, ...); 1 = no seasonality.
    pub season_length: usize,
    /// Number of periods to forecast (>= 1).
    pub horizon: usize,
    /// Requested quantile levels, each in (0, 1), e.g. `[0.1, 0.5, 0.9]`.
    pub quantiles: Vec<f64>,
    /// Method to use.
    pub method: Method,
    /// Optional external regressors (promotions, price changes, ...).
    pub regressors: Option<Regressors>,
}

impl Options {
    /// `Auto`, no seasonality, quantiles 0.1 / 0.5 / 0.9.
    pub fn new(horizon: usize) -> Options {
        Options {
            season_length: 1,
            horizon,
            quantiles: vec![0.1, 0.5, 0.9],
            method: Method::Auto,
            regressors: None,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::new(1)
    }
}

/// External regressors, one `Vec` per regressor.
#[derive(Debug, Clone, PartialEq)]
pub struct Regressors {
    /// Values aligned with the history (`len == y.len()` each).
    pub history: Vec<Vec<f64>>,
    /// Values for the forecast periods (`len == horizon` each).
    pub future: Vec<Vec<f64>>,
}

/// A forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Point forecast (mean) per period.
    pub point: Vec<f64>,
    /// `(level, values per period)`, in the requested order.
    pub quantiles: Vec<(f64, Vec<f64>)>,
    /// Method actually used, e.g. `"holt_damped"`, `"ets(A,Ad,M)"`,
    /// `"croston_sba"`, `"comb(holt_damped+decomp,theta)"`.
    pub method: &'static str,
    /// Standard deviation of the one-step in-sample errors.
    pub fitted_sigma: f64,
}

/// Why a forecast could not be produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ForecastError {
    /// The history is empty.
    Empty,
    /// The history is too short for the requested method.
    TooShort {
        /// Observations given.
        len: usize,
        /// Observations needed.
        min: usize,
    },
    /// The history contains NaN or an infinity at `index`.
    NonFinite {
        /// Position of the bad value.
        index: usize,
    },
    /// An option is invalid; the message names the offending value.
    InvalidOption(String),
}

impl fmt::Display for ForecastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForecastError::Empty => {
                write!(
                    f,
                    "the sales history is empty: provide at least one observation"
                )
            }
            ForecastError::TooShort { len, min } => write!(
                f,
                "the history has {len} observation(s) but this method needs at least {min}: \
                 supply more history or use the automatic method"
            ),
            ForecastError::NonFinite { index } => write!(
                f,
                "the history value at index {index} is NaN or infinite: replace or remove it \
                 before forecasting"
            ),
            ForecastError::InvalidOption(msg) => write!(f, "invalid forecast option: {msg}"),
        }
    }
}

impl std::error::Error for ForecastError {}

/// Result of fitting one model, on the internal (scaled) data.
#[derive(Debug, Clone)]
pub(crate) struct ModelFit {
    pub name: &'static str,
    pub point: Vec<f64>,
    pub sigma_h: Vec<f64>,
    /// One-step standard deviation of the in-sample errors.
    pub sigma: f64,
    /// One-step in-sample predictions (NaN where undefined).
    pub fitted: Vec<f64>,
    /// Number of estimated parameters (for the AICc).
    pub k: usize,
}

impl ModelFit {
    /// AICc of the model from its in-sample one-step errors (Gaussian
    /// likelihood); `+inf` when undefined.
    pub(crate) fn aicc(&self, y: &[f64]) -> f64 {
        let mut sse = 0.0;
        let mut n = 0usize;
        for (&a, &f) in y.iter().zip(&self.fitted) {
            if f.is_finite() {
                sse += (a - f) * (a - f);
                n += 1;
            }
        }
        let k = self.k as f64;
        let nf = n as f64;
        if n <= self.k + 1 || !sse.is_finite() {
            return f64::INFINITY;
        }
        nf * (sse.max(1e-300) / nf).ln() + 2.0 * k + 2.0 * k * (k + 1.0) / (nf - k - 1.0)
    }
}

/// Forecasts `y` (oldest first) `opts.horizon` periods ahead.
///
/// Errors: [`ForecastError::Empty`], [`ForecastError::NonFinite`],
/// [`ForecastError::InvalidOption`] (horizon 0 or above [`MAX_HORIZON`],
/// season length 0, a quantile outside (0, 1), inconsistent regressors) and
/// [`ForecastError::TooShort`]
/// (only for explicitly requested methods; `Auto` degrades gracefully down to
/// a single observation). Never panics.
pub fn forecast(y: &[f64], opts: &Options) -> Result<Forecast, ForecastError> {
    validate(y, opts)?;
    let n = y.len();
    let h = opts.horizon;
    let m = opts.season_length;
    let min = opts.method.min_len(m);
    if n < min {
        return Err(ForecastError::TooShort { len: n, min });
    }
    // a season longer than the history cannot be estimated by any method
    let m = m.min(n);
    let non_negative = y.iter().all(|&v| v >= 0.0);
    // Work on a scaled copy (max |y| = 1): makes the optimiser tolerances
    // scale-free and keeps huge magnitudes away from overflow.
    let scale = y.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    let scale = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    let ys: Vec<f64> = y.iter().map(|&v| v / scale).collect();
    let (work, future_effect) = match &opts.regressors {
        Some(reg) => {
            let eff = regress::effects(&ys, m, reg, h);
            let adj: Vec<f64> = ys.iter().zip(&eff.history).map(|(a, e)| a - e).collect();
            (adj, eff.future)
        }
        None => (ys, vec![0.0; h]),
    };
    let mut fit = if stats::is_constant(&work) {
        flat(&work, h, opts.method)
    } else {
        run_method(opts.method, &work, m, h)
    };
    if fit.point.len() != h || fit.point.iter().any(|v| !v.is_finite()) {
        fit = naive::naive(&work, h);
    }
    let widen = intervals::holdout_scale(&work, h, |train, hv| {
        if train.len() < opts.method.min_len(m).max(4) || stats::is_constant(train) {
            return None;
        }
        Some(run_method(opts.method, train, m.min(train.len()), hv))
    });
    for s in &mut fit.sigma_h {
        *s *= widen;
    }
    let mut point: Vec<f64> = fit
        .point
        .iter()
        .zip(&future_effect)
        .map(|(p, e)| {
            let v = (p + e) * scale;
            // an absurd regressor effect (inf - inf) must not poison the point
            let v = if v.is_nan() { p * scale } else { v };
            v.clamp(-f64::MAX, f64::MAX)
        })
        .collect();
    if non_negative {
        for p in &mut point {
            *p = p.max(0.0);
        }
    }
    let sigma_h: Vec<f64> = fit
        .sigma_h
        .iter()
        .map(|s| {
            if s.is_finite() {
                (s * scale).min(f64::MAX)
            } else {
                0.0
            }
        })
        .collect();
    let quantiles = intervals::build_quantiles(&point, &sigma_h, &opts.quantiles, non_negative);
    let fitted_sigma = if fit.sigma.is_finite() {
        (fit.sigma * scale).min(f64::MAX)
    } else {
        0.0
    };
    Ok(Forecast {
        point,
        quantiles,
        method: fit.name,
        fitted_sigma,
    })
}

/// Largest accepted horizon (protects against absurd allocations).
pub const MAX_HORIZON: usize = 1_000_000;

fn validate(y: &[f64], opts: &Options) -> Result<(), ForecastError> {
    if y.is_empty() {
        return Err(ForecastError::Empty);
    }
    if let Some(index) = y.iter().position(|v| !v.is_finite()) {
        return Err(ForecastError::NonFinite { index });
    }
    let bad = |msg: String| Err(ForecastError::InvalidOption(msg));
    if opts.horizon == 0 {
        return bad("horizon is 0; it must be at least 1 period".into());
    }
    if opts.horizon > MAX_HORIZON {
        return bad(format!(
            "horizon {} is larger than the supported maximum of {MAX_HORIZON} periods",
            opts.horizon
        ));
    }
    if opts.season_length == 0 {
        return bad("season_length is 0; use 1 for a series without seasonality".into());
    }
    for &q in &opts.quantiles {
        if !(q > 0.0 && q < 1.0) {
            return bad(format!("quantile {q} is outside the open interval (0, 1)"));
        }
    }
    if let Some(reg) = &opts.regressors {
        if reg.history.len() != reg.future.len() {
            return bad(format!(
                "regressors: {} history column(s) but {} future column(s)",
                reg.history.len(),
                reg.future.len()
            ));
        }
        for (i, (hist, fut)) in reg.history.iter().zip(&reg.future).enumerate() {
            if hist.len() != y.len() {
                return bad(format!(
                    "regressor {i} has {} history value(s) but the series has {}",
                    hist.len(),
                    y.len()
                ));
            }
            if fut.len() != opts.horizon {
                return bad(format!(
                    "regressor {i} has {} future value(s) but the horizon is {}",
                    fut.len(),
                    opts.horizon
                ));
            }
            if let Some(j) = hist.iter().position(|v| !v.is_finite()) {
                return bad(format!(
                    "regressor {i} history value at index {j} is not finite"
                ));
            }
            if let Some(j) = fut.iter().position(|v| !v.is_finite()) {
                return bad(format!(
                    "regressor {i} future value at index {j} is not finite"
                ));
            }
        }
    }
    Ok(())
}

/// Flat forecast with zero-width intervals for a constant series.
fn flat(y: &[f64], h: usize, method: Method) -> ModelFit {
    let last = y[y.len() - 1];
    let name = match method {
        Method::Auto => "naive",
        other => other.name(),
    };
    ModelFit {
        name,
        point: vec![last; h],
        sigma_h: vec![0.0; h],
        sigma: 0.0,
        fitted: vec![last; y.len()],
        k: 1,
    }
}

/// Dispatches a (non-constant, scaled, regressor-adjusted) series.
fn run_method(method: Method, y: &[f64], m: usize, h: usize) -> ModelFit {
    use ets::{Season, Spec, Trend};
    let smoothing = |spec: Spec, name: &'static str| {
        let ds = seasonal::Deseason::detect(y, m);
        let ya = ds.adjust(y);
        match ets::fit(&ya, 1, spec) {
            Some(f) => ds.restore(f.into_model(name, ya.len(), h), y),
            None => naive::naive(y, h),
        }
    };
    match method {
        Method::Auto => select::auto(y, m, h),
        Method::Naive => naive::naive(y, h),
        Method::SeasonalNaive => naive::seasonal_naive(y, m, h),
        Method::Ses => smoothing(Spec::new(Trend::None, Season::None), "ses"),
        Method::Holt => smoothing(Spec::new(Trend::Additive, Season::None), "holt"),
        Method::HoltDamped => smoothing(Spec::new(Trend::Damped, Season::None), "holt_damped"),
        Method::HoltWinters => select::holt_winters(y, m, h),
        Method::Theta => theta::theta(y, m, h),
        Method::Croston => intermittent::croston(y, intermittent::CROSTON_ALPHA, false, h),
        Method::Sba => intermittent::croston(y, intermittent::CROSTON_ALPHA, true, h),
        Method::Tsb => intermittent::tsb_auto(y, h),
    }
}

#[cfg(test)]
mod tests;
