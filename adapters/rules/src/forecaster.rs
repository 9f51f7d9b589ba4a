//! The rules forecast capability: the statistical engine of [`crate::forecast`] behind the
//! [`Forecaster`] trait.
//!
//! Each series is forecast on its own, with its season length (explicit, or from its
//! frequency), its regressors (history and horizon), and the method the request names (or the
//! configured default, `auto`). A series that cannot be forecast gets its own error naming the
//! series and the reason; the others are unaffected. The work runs off the async runtime.

use async_trait::async_trait;
use merchant_ai::*;
use serde::Deserialize;

use crate::forecast::{self, Method, Options, Regressors};

/// `[providers.NAME.forecast]` options.
///
/// ```toml
/// [providers.rules.forecast]
/// method = "auto"     # or naive, seasonal_naive, ses, holt, holt_damped, holt_winters,
///                     # theta, croston, sba, tsb
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// The method when the request names none.
    pub method: String,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            method: "auto".into(),
        }
    }
}

/// The rules forecaster.
#[derive(Debug)]
pub struct RulesForecaster {
    name: String,
    method: Method,
}

fn parse_method(s: &str, what: &str) -> Result<Method> {
    Method::parse(s).ok_or_else(|| {
        Error::invalid_request(format!(
            "{what}: unknown forecast method {s:?} (expected one of: {})",
            Method::ALL
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

impl RulesForecaster {
    /// A forecaster; the configured default method must be known.
    pub fn new(name: &str, cfg: ForecastConfig) -> Result<Self> {
        let method = parse_method(&cfg.method, &format!("providers.{name}.forecast.method"))
            .map_err(|e| Error::config(e.message()))?;
        Ok(RulesForecaster {
            name: name.into(),
            method,
        })
    }

    fn one(series: &Series, horizon: usize, quantiles: &[f64], method: Method) -> SeriesForecast {
        if let Err(e) = series.validate(horizon) {
            return SeriesForecast::failed(series.id.clone(), e);
        }
        let n = series.values.len();
        let regressors = (!series.regressors.is_empty()).then(|| Regressors {
            history: series
                .regressors
                .values()
                .map(|r| r[..n].to_vec())
                .collect(),
            future: series
                .regressors
                .values()
                .map(|r| r[n..].to_vec())
                .collect(),
        });
        let opts = Options {
            season_length: series.season_length(),
            horizon,
            quantiles: quantiles.to_vec(),
            method,
            regressors,
        };
        match forecast::forecast(&series.values, &opts) {
            Ok(f) => SeriesForecast::new(series.id.clone(), f.point, f.method)
                .with_quantiles(
                    f.quantiles
                        .into_iter()
                        .map(|(q, v)| QuantileForecast::new(q, v))
                        .collect(),
                )
                .with_timestamps(series.future_timestamps(horizon)),
            // Every engine error is about this series' data or options.
            Err(e) => SeriesForecast::failed(
                series.id.clone(),
                Error::invalid_request(format!("series {:?}: {e}", series.id)),
            ),
        }
    }
}

#[async_trait]
impl Forecaster for RulesForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let start = std::time::Instant::now();
        req.validate()?;
        let method = match &req.method {
            Some(m) => parse_method(m, "method")?,
            None => self.method,
        };
        let n = req.series.len();
        let horizon = req.horizon;
        let quantiles = req.quantiles.clone();
        let series = req.series;
        let out = tokio::task::spawn_blocking(move || {
            series
                .iter()
                .map(|s| Self::one(s, horizon, &quantiles, method))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("forecast worker failed: {e}"),
            )
        })?;
        let meta = ResponseMeta::new(self.name.clone())
            .with_model(format!("rules-stats:{}", method.name()))
            .with_usage(Usage::new().with_units(n as u64))
            .with_latency(start.elapsed());
        Ok(ForecastResponse::new(out, meta))
    }
}
