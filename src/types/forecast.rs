use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{ProviderOptions, RequestContext, ResponseMeta};
use crate::error::{Error, ErrorKind, Result};

/// The spacing of a series' observations.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// One value per hour.
    Hourly,
    /// One value per day.
    Daily,
    /// One value per week.
    Weekly,
    /// One value per month.
    Monthly,
    /// One value per quarter.
    Quarterly,
    /// One value per year.
    Yearly,
}

impl Frequency {
    /// The usual season length (hourly 24, daily 7, weekly 52, monthly 12, quarterly 4,
    /// yearly 1).
    pub fn season_length(self) -> usize {
        match self {
            Frequency::Hourly => 24,
            Frequency::Daily => 7,
            Frequency::Weekly => 52,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
            Frequency::Yearly => 1,
        }
    }

    /// The timestamp `steps` periods after `start`.
    pub fn step(self, start: DateTime<Utc>, steps: usize) -> DateTime<Utc> {
        use chrono::{Duration, Months};
        let n = steps as i64;
        match self {
            Frequency::Hourly => start + Duration::hours(n),
            Frequency::Daily => start + Duration::days(n),
            Frequency::Weekly => start + Duration::weeks(n),
            Frequency::Monthly => start
                .checked_add_months(Months::new(steps as u32))
                .unwrap_or(start),
            Frequency::Quarterly => start
                .checked_add_months(Months::new(3 * steps as u32))
                .unwrap_or(start),
            Frequency::Yearly => start
                .checked_add_months(Months::new(12 * steps as u32))
                .unwrap_or(start),
        }
    }
}

/// One time series to forecast (e.g. daily unit sales of one SKU).
///
/// ```
/// use merchant_ai::{Series, Frequency};
/// use chrono::{TimeZone, Utc};
/// let s = Series::new("sku-1", vec![3.0, 4.0, 0.0, 5.0])
///     .with_start(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), Frequency::Daily)
///     .with_regressor("promo", vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
/// assert_eq!(s.season_length(), 7);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The series id (e.g. the SKU).
    pub id: String,
    /// Observed values, oldest first. Missing observations: `NaN` is an error; send 0 for no
    /// sales.
    pub values: Vec<f64>,
    /// A timestamp per value, when the spacing is irregular or for the record.
    #[serde(default)]
    pub timestamps: Option<Vec<DateTime<Utc>>>,
    /// The time of the first value.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// The spacing of values.
    #[serde(default)]
    pub frequency: Option<Frequency>,
    /// Season length in periods, overriding the frequency's default (1 = no season).
    #[serde(default)]
    pub season_length: Option<usize>,
    /// Known drivers such as promotion flags: each covers the history **and** the horizon
    /// (`values.len() + horizon` entries).
    #[serde(default)]
    pub regressors: BTreeMap<String, Vec<f64>>,
}

impl Series {
    /// A series of values.
    pub fn new(id: impl Into<String>, values: Vec<f64>) -> Self {
        Series {
            id: id.into(),
            values,
            timestamps: None,
            start: None,
            frequency: None,
            season_length: None,
            regressors: BTreeMap::new(),
        }
    }
    /// Sets the start and frequency.
    #[must_use]
    pub fn with_start(mut self, start: DateTime<Utc>, frequency: Frequency) -> Self {
        self.start = Some(start);
        self.frequency = Some(frequency);
        self
    }
    /// Sets the frequency only.
    #[must_use]
    pub fn with_frequency(mut self, frequency: Frequency) -> Self {
        self.frequency = Some(frequency);
        self
    }
    /// Sets per-value timestamps.
    #[must_use]
    pub fn with_timestamps(mut self, ts: Vec<DateTime<Utc>>) -> Self {
        self.timestamps = Some(ts);
        self
    }
    /// Overrides the season length.
    #[must_use]
    pub fn with_season_length(mut self, m: usize) -> Self {
        self.season_length = Some(m);
        self
    }
    /// Adds a regressor covering history and horizon.
    #[must_use]
    pub fn with_regressor(mut self, name: impl Into<String>, values: Vec<f64>) -> Self {
        self.regressors.insert(name.into(), values);
        self
    }
    /// The season length: the explicit one, else the frequency's, else 1.
    pub fn season_length(&self) -> usize {
        self.season_length
            .or(self.frequency.map(Frequency::season_length))
            .unwrap_or(1)
            .max(1)
    }
    /// The timestamps of the `horizon` future steps, when start/timestamps and frequency are known.
    pub fn future_timestamps(&self, horizon: usize) -> Option<Vec<DateTime<Utc>>> {
        let f = self.frequency?;
        let last = match (&self.timestamps, self.start) {
            (Some(ts), _) => *ts.last()?,
            (None, Some(s)) => f.step(s, self.values.len().checked_sub(1)?),
            _ => return None,
        };
        Some((1..=horizon).map(|k| f.step(last, k)).collect())
    }
    /// Checks this series for a forecast of `horizon` steps; the error names the series and
    /// what is wrong.
    pub fn validate(&self, horizon: usize) -> Result<()> {
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid_request(format!(
                "series {:?}: value {i} is not a finite number",
                self.id
            )));
        }
        if let Some(ts) = &self.timestamps
            && ts.len() != self.values.len()
        {
            return Err(Error::invalid_request(format!(
                "series {:?}: {} timestamps for {} values",
                self.id,
                ts.len(),
                self.values.len()
            )));
        }
        for (name, r) in &self.regressors {
            if r.len() != self.values.len() + horizon {
                return Err(Error::invalid_request(format!(
                    "series {:?}: regressor {name:?} has {} values, needs {} (history {} + horizon {horizon})",
                    self.id,
                    r.len(),
                    self.values.len() + horizon,
                    self.values.len()
                )));
            }
        }
        Ok(())
    }
}

/// A forecast request: many series at once.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastRequest {
    /// Who asks.
    #[serde(default)]
    pub ctx: RequestContext,
    /// The series.
    pub series: Vec<Series>,
    /// Steps to forecast (1 to 1000).
    pub horizon: usize,
    /// Quantile levels in (0, 1), e.g. `[0.1, 0.5, 0.9]`.
    #[serde(default)]
    pub quantiles: Vec<f64>,
    /// A method name the provider understands (`auto` when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Vendor-specific options.
    #[serde(default)]
    pub provider_options: ProviderOptions,
}

impl ForecastRequest {
    /// Highest accepted horizon.
    pub const MAX_HORIZON: usize = 1000;

    /// A forecast of `horizon` steps for `series`, with the 10% and 90% quantiles.
    pub fn new(series: Vec<Series>, horizon: usize) -> Self {
        ForecastRequest {
            ctx: RequestContext::default(),
            series,
            horizon,
            quantiles: vec![0.1, 0.9],
            method: None,
            provider_options: ProviderOptions::new(),
        }
    }
    /// Sets the context.
    #[must_use]
    pub fn with_ctx(mut self, ctx: RequestContext) -> Self {
        self.ctx = ctx;
        self
    }
    /// Sets the quantile levels.
    #[must_use]
    pub fn with_quantiles(mut self, q: Vec<f64>) -> Self {
        self.quantiles = q;
        self
    }
    /// Asks for a method by name.
    #[must_use]
    pub fn with_method(mut self, m: impl Into<String>) -> Self {
        self.method = Some(m.into());
        self
    }
    /// Checks the request-level fields (not each series: a bad series gets its own error in
    /// the response). The error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.series.is_empty() {
            return Err(Error::invalid_request("series is empty"));
        }
        if self.horizon == 0 || self.horizon > Self::MAX_HORIZON {
            return Err(Error::invalid_request(format!(
                "horizon must be between 1 and {}, got {}",
                Self::MAX_HORIZON,
                self.horizon
            )));
        }
        for (i, q) in self.quantiles.iter().enumerate() {
            if !(*q > 0.0 && *q < 1.0) {
                return Err(Error::invalid_request(format!(
                    "quantiles[{i}] must be in (0, 1), got {q}"
                )));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for s in &self.series {
            if !ids.insert(s.id.as_str()) {
                return Err(Error::invalid_request(format!(
                    "series id {:?} appears twice",
                    s.id
                )));
            }
        }
        Ok(())
    }
}

/// The forecast values at one quantile level.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileForecast {
    /// The level in (0, 1).
    pub level: f64,
    /// One value per step.
    pub values: Vec<f64>,
}

impl QuantileForecast {
    /// Values at `level`.
    pub fn new(level: f64, values: Vec<f64>) -> Self {
        QuantileForecast { level, values }
    }
}

/// Why one series could not be forecast.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// What is wrong, naming the series.
    pub message: String,
}

impl From<Error> for SeriesError {
    fn from(e: Error) -> Self {
        SeriesError {
            kind: e.kind(),
            message: e.message().to_owned(),
        }
    }
}

/// The forecast of one series, or its error.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    /// The series id.
    pub id: String,
    /// Point forecast, one value per step (empty on error).
    pub point: Vec<f64>,
    /// Quantile forecasts, in the requested order.
    pub quantiles: Vec<QuantileForecast>,
    /// Timestamps of the forecast steps, when the series had them.
    pub timestamps: Option<Vec<DateTime<Utc>>>,
    /// The model that produced it (`ets(A,Ad,N)`, `croston_sba`, ...).
    pub model: String,
    /// Set when this series failed; the others are unaffected.
    pub error: Option<SeriesError>,
}

impl SeriesForecast {
    /// A successful forecast.
    pub fn new(id: impl Into<String>, point: Vec<f64>, model: impl Into<String>) -> Self {
        SeriesForecast {
            id: id.into(),
            point,
            quantiles: Vec::new(),
            timestamps: None,
            model: model.into(),
            error: None,
        }
    }
    /// A failed series.
    pub fn failed(id: impl Into<String>, error: Error) -> Self {
        SeriesForecast {
            id: id.into(),
            point: Vec::new(),
            quantiles: Vec::new(),
            timestamps: None,
            model: String::new(),
            error: Some(error.into()),
        }
    }
    /// Sets the quantiles.
    #[must_use]
    pub fn with_quantiles(mut self, q: Vec<QuantileForecast>) -> Self {
        self.quantiles = q;
        self
    }
    /// Sets the timestamps.
    #[must_use]
    pub fn with_timestamps(mut self, ts: Option<Vec<DateTime<Utc>>>) -> Self {
        self.timestamps = ts;
        self
    }
    /// The values at `level`, if it was requested.
    pub fn quantile(&self, level: f64) -> Option<&[f64]> {
        self.quantiles
            .iter()
            .find(|q| (q.level - level).abs() < 1e-9)
            .map(|q| q.values.as_slice())
    }
}

/// The answer to a [`ForecastRequest`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastResponse {
    /// One entry per requested series, in request order.
    pub series: Vec<SeriesForecast>,
    /// Who served it.
    pub meta: ResponseMeta,
}

impl ForecastResponse {
    /// A response.
    pub fn new(series: Vec<SeriesForecast>, meta: ResponseMeta) -> Self {
        ForecastResponse { series, meta }
    }
    /// The forecast of series `id`.
    pub fn get(&self, id: &str) -> Option<&SeriesForecast> {
        self.series.iter().find(|s| s.id == id)
    }
}
