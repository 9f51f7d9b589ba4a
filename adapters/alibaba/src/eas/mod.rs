//! Forecasting through a model deployed on PAI-EAS: kind `pai-eas`.
//!
//! No Alibaba service offers hosted time-series forecasting; the route is a model the merchant
//! deploys on PAI-EAS (a processor or custom image) that speaks the JSON contract below. The
//! adapter `POST`s to the service URL,
//! `https://{uid}.{region}.pai-eas.aliyuncs.com/api/predict/{service}`, with the service token
//! raw in `Authorization` (`api_key_env`) and `Content-Type: application/json`.
//!
//! ## Request (this crate's contract)
//!
//! ```json
//! {"horizon": 7,
//!  "quantiles": [0.1, 0.5, 0.9],
//!  "method": "auto",
//!  "series": [{"id": "sku-1",
//!              "values": [10.0, 12.0, 9.0],
//!              "timestamps": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"],
//!              "frequency": "daily",
//!              "season_length": 7,
//!              "regressors": {"promo": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]}}]}
//! ```
//!
//! - `series[].values` are the observations, oldest first; `timestamps` (RFC 3339) are given
//!   when known (explicit, or derived from the series' start and frequency); `frequency` is
//!   one of `hourly`, `daily`, `weekly`, `monthly`, `quarterly`, `yearly`; `season_length` and
//!   `regressors` (history **and** horizon values) are sent when set. Absent fields are left
//!   out. `method` is sent only when the request names one.
//! - Series that fail local validation (a `NaN`, mismatched lengths) are not sent: they get
//!   their own `InvalidRequest` error in the response.
//!
//! ## Response
//!
//! ```json
//! {"model": "deepar-v3",
//!  "forecasts": [{"id": "sku-1",
//!                 "mean": [12.4, 12.9, 13.1, 12.0, 11.8, 12.2, 12.5],
//!                 "quantiles": {"0.1": [9.8, ...], "0.5": [12.3, ...], "0.9": [15.1, ...]},
//!                 "timestamps": ["2026-01-04T00:00:00Z", ...],
//!                 "model": "deepar-v3"}]}
//! ```
//!
//! - One entry per sent series, matched by `id` (order does not matter). `mean` has exactly
//!   `horizon` finite numbers. `quantiles` maps each requested level, written as a decimal
//!   (`"0.1"`, `"0.5"`), to `horizon` finite numbers; a missing level fails that series.
//!   Levels that cross at a step are put back in order (a monotone rearrangement).
//! - An entry may instead carry `"error": "message"`: that series fails with `Unexpected` and
//!   the message; the others are unaffected. A series missing from the answer fails with
//!   `Decode`.
//! - `timestamps` are optional; when absent they are derived from the series when it has a
//!   start or timestamps and a frequency. `model` (per entry, else top level, else
//!   `pai-eas`) names the model in [`SeriesForecast::model`].
//!
//! ## Errors
//!
//! EAS answers errors as plain text or JSON: 401 `Unauthenticated` (bad token), 404
//! `NotFound` (wrong service or path), 429 `RateLimited`, 5xx and timeouts `Unavailable` /
//! `Timeout` (retried by the core's retry layer); see [`crate::service`].
//!
//! ```toml
//! [providers.demand]
//! kind = "pai-eas"
//! region = "cn-shanghai"
//! endpoint = "https://123456789.cn-shanghai.pai-eas.aliyuncs.com/api/predict/demand_forecast"
//! api_key_env = "EAS_TOKEN"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Error, ErrorKind, ForecastRequest,
    ForecastResponse, Forecaster, Frequency, Provider, ProviderConfig, ProviderInfo,
    QuantileForecast, Recommender, ResponseMeta, Result, Searcher, Series, SeriesForecast, Usage,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::{self, Endpoint};

/// The `kind` of the PAI-EAS forecaster.
pub const KIND: &str = "pai-eas";

/// Options of a `[providers.NAME]` section of kind `pai-eas`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EasConfig {
    /// The service URL (required).
    pub endpoint: String,
    /// Series per request; larger requests are split. Default 100.
    pub max_series_per_request: usize,
    /// Where the data is processed, overriding the region's jurisdiction.
    pub jurisdiction: Option<String>,
    /// Whole-request timeout in milliseconds. Default 30 000.
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds. Default 5 000.
    pub connect_timeout_ms: u64,
}

impl Default for EasConfig {
    fn default() -> Self {
        EasConfig {
            endpoint: String::new(),
            max_series_per_request: 100,
            jurisdiction: None,
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
        }
    }
}

impl EasConfig {
    /// Checks the options; the error names the key.
    pub fn validate(&self, cfg: &ProviderConfig) -> Result<()> {
        if self.endpoint.trim().is_empty() {
            return Err(Error::config(format!(
                "{}: the EAS service URL is required",
                cfg.key_path("endpoint")
            )));
        }
        Endpoint::parse(&self.endpoint, &cfg.key_path("endpoint"))?;
        if self.max_series_per_request == 0 {
            return Err(Error::config(format!(
                "{}: must be at least 1",
                cfg.key_path("max_series_per_request")
            )));
        }
        Ok(())
    }
}

fn frequency_name(f: Frequency) -> &'static str {
    match f {
        Frequency::Hourly => "hourly",
        Frequency::Daily => "daily",
        Frequency::Weekly => "weekly",
        Frequency::Monthly => "monthly",
        Frequency::Quarterly => "quarterly",
        _ => "yearly",
    }
}

/// A quantile level as written in the contract (`0.1`, `0.25`, `0.5`).
pub fn level_key(q: f64) -> String {
    let s = format!("{q:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The JSON of one series in the request.
pub fn series_json(s: &Series) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert("values".into(), json!(s.values));
    let ts = match (&s.timestamps, s.start, s.frequency) {
        (Some(ts), _, _) => Some(ts.clone()),
        (None, Some(start), Some(f)) => {
            Some((0..s.values.len()).map(|k| f.step(start, k)).collect())
        }
        _ => None,
    };
    if let Some(ts) = ts {
        m.insert(
            "timestamps".into(),
            json!(
                ts.iter()
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(f) = s.frequency {
        m.insert("frequency".into(), json!(frequency_name(f)));
    }
    if let Some(n) = s.season_length {
        m.insert("season_length".into(), json!(n));
    }
    if !s.regressors.is_empty() {
        m.insert("regressors".into(), json!(s.regressors));
    }
    Value::Object(m)
}

/// The request body for `series` (already validated).
pub fn request_json(req: &ForecastRequest, series: &[&Series]) -> Value {
    let mut body = json!({
        "horizon": req.horizon,
        "quantiles": req.quantiles,
        "series": series.iter().map(|s| series_json(s)).collect::<Vec<_>>(),
    });
    if let Some(m) = &req.method {
        body["method"] = json!(m);
    }
    body
}

fn numbers(v: Option<&Value>, horizon: usize, what: &str) -> std::result::Result<Vec<f64>, String> {
    let a = v
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{what} is missing or not a list"))?;
    if a.len() != horizon {
        return Err(format!("{what} has {} values, expected {horizon}", a.len()));
    }
    a.iter()
        .map(|x| x.as_f64().filter(|f| f.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| format!("{what} holds a value that is not a finite number"))
}

/// Reads one forecast entry against the request: point values, each requested quantile
/// (rearranged to be non-decreasing in the level), timestamps and model.
pub fn parse_entry(
    entry: &Value,
    s: &Series,
    req: &ForecastRequest,
    default_model: &str,
) -> SeriesForecast {
    let h = req.horizon;
    if let Some(msg) = service::field(entry, &["error"]) {
        return SeriesForecast::failed(
            &s.id,
            Error::new(
                ErrorKind::Unexpected,
                format!(
                    "{KIND}: the model failed series {:?}: {}",
                    s.id,
                    service::cut(&msg)
                ),
            ),
        );
    }
    let decode = |m: String| {
        SeriesForecast::failed(
            &s.id,
            Error::decode(format!("{KIND}: series {:?}: {m}", s.id)),
        )
    };
    let point = match numbers(entry.get("mean"), h, "mean") {
        Ok(p) => p,
        Err(m) => return decode(m),
    };
    let qs = entry.get("quantiles").and_then(Value::as_object);
    let mut levels: Vec<(f64, Vec<f64>)> = Vec::new();
    for &q in &req.quantiles {
        let found = qs.and_then(|m| {
            m.get(&level_key(q)).or_else(|| {
                m.iter()
                    .find(|(k, _)| k.parse::<f64>().is_ok_and(|x| (x - q).abs() < 1e-9))
                    .map(|(_, v)| v)
            })
        });
        match numbers(found, h, &format!("quantile {}", level_key(q))) {
            Ok(v) => levels.push((q, v)),
            Err(m) => return decode(m),
        }
    }
    // Monotone rearrangement: at each step, sort the values across levels in level order.
    let mut order: Vec<usize> = (0..levels.len()).collect();
    order.sort_by(|&a, &b| levels[a].0.total_cmp(&levels[b].0));
    for t in 0..h {
        let mut col: Vec<f64> = order.iter().map(|&i| levels[i].1[t]).collect();
        col.sort_by(f64::total_cmp);
        for (k, &i) in order.iter().enumerate() {
            levels[i].1[t] = col[k];
        }
    }
    let timestamps = entry
        .get("timestamps")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|x| {
                    chrono::DateTime::parse_from_rfc3339(x.as_str()?)
                        .ok()
                        .map(|d| d.with_timezone(&chrono::Utc))
                })
                .collect::<Option<Vec<_>>>()
        })
        .filter(|v| v.len() == h)
        .or_else(|| s.future_timestamps(h));
    let model = service::field(entry, &["model"]).unwrap_or_else(|| default_model.to_owned());
    SeriesForecast::new(&s.id, point, model)
        .with_quantiles(
            levels
                .into_iter()
                .map(|(q, v)| QuantileForecast::new(q, v))
                .collect(),
        )
        .with_timestamps(timestamps)
}

struct Inner {
    name: String,
    http: reqwest::Client,
    url: String,
    cfg: EasConfig,
    token: Option<SecretString>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EasForecaster")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// The PAI-EAS forecaster.
#[derive(Debug, Clone)]
pub struct EasForecaster(Arc<Inner>);

impl EasForecaster {
    fn tag(&self, e: Error) -> Error {
        e.with_provider(self.0.name.clone())
            .with_operation("forecast")
    }

    async fn call(&self, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let mut rb = self
            .0
            .http
            .post(&self.0.url)
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(t) = &self.0.token {
            let mut v = reqwest::header::HeaderValue::from_str(t.expose_secret())
                .map_err(|_| Error::config("the EAS token is not a valid header value"))?;
            v.set_sensitive(true);
            rb = rb.header("authorization", v);
        }
        let (_, _, resp) = service::exchange(KIND, rb).await?;
        let v = service::json_body(KIND, &resp)?;
        if !v.get("forecasts").is_some_and(Value::is_array) {
            return Err(Error::decode(format!(
                "{KIND}: the answer has no forecasts list (see the crate's EAS contract)"
            )));
        }
        Ok(v)
    }
}

#[async_trait]
impl Forecaster for EasForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        let started = Instant::now();
        req.validate().map_err(|e| self.tag(e))?;
        let mut results: Vec<Option<SeriesForecast>> = vec![None; req.series.len()];
        let mut good: Vec<(usize, &Series)> = Vec::new();
        for (i, s) in req.series.iter().enumerate() {
            match s.validate(req.horizon) {
                Ok(()) => good.push((i, s)),
                Err(e) => results[i] = Some(SeriesForecast::failed(&s.id, e)),
            }
        }
        let mut model_used: Option<String> = None;
        for chunk in good.chunks(self.0.cfg.max_series_per_request) {
            let series: Vec<&Series> = chunk.iter().map(|(_, s)| *s).collect();
            let body = request_json(&req, &series);
            tracing::debug!(provider = %self.0.name, series = series.len(), horizon = req.horizon, "eas forecast");
            let v = self.call(&body).await.map_err(|e| self.tag(e))?;
            let top = service::field(&v, &["model"]).unwrap_or_else(|| KIND.to_owned());
            model_used.get_or_insert(top.clone());
            let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
            for e in v["forecasts"].as_array().into_iter().flatten() {
                if let Some(id) = service::field(e, &["id"]) {
                    by_id.entry(id).or_insert(e);
                }
            }
            for (i, s) in chunk {
                results[*i] = Some(match by_id.get(&s.id) {
                    Some(e) => parse_entry(e, s, &req, &top),
                    None => SeriesForecast::failed(
                        &s.id,
                        Error::decode(format!(
                            "{KIND}: the answer has no forecast for series {:?}",
                            s.id
                        )),
                    ),
                });
            }
        }
        let series: Vec<SeriesForecast> = results
            .into_iter()
            .zip(&req.series)
            .map(|(r, s)| {
                r.unwrap_or_else(|| {
                    SeriesForecast::failed(&s.id, Error::new(ErrorKind::Unexpected, "not forecast"))
                })
            })
            .collect();
        let mut meta = ResponseMeta::new(self.0.name.clone())
            .with_usage(Usage::new().with_units(good.len() as u64))
            .with_latency(started.elapsed());
        meta.model = model_used;
        Ok(ForecastResponse::new(series, meta))
    }
}

/// A provider offering a PAI-EAS model as its forecaster.
#[derive(Debug)]
pub struct EasProvider {
    info: ProviderInfo,
    forecaster: Arc<EasForecaster>,
}

impl EasProvider {
    /// Builds the provider; `token` goes raw into `Authorization` and nowhere else.
    pub fn new(cfg: &ProviderConfig, c: EasConfig, token: Option<SecretString>) -> Result<Self> {
        c.validate(cfg)?;
        let (region, j) = service::residency(cfg, c.jurisdiction.as_deref())?;
        let http = service::client(cfg.name(), c.timeout_ms, c.connect_timeout_ms)?;
        let url = c.endpoint.trim().trim_end_matches('/').to_owned();
        let info = ProviderInfo::remote(
            cfg.name(),
            KIND,
            region,
            Some(j),
            Capabilities::none().with_forecast(),
        );
        Ok(EasProvider {
            info,
            forecaster: Arc::new(EasForecaster(Arc::new(Inner {
                name: cfg.name().to_owned(),
                http,
                url,
                cfg: c,
                token,
            }))),
        })
    }
}

impl Provider for EasProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        None
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        None
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        None
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        Some(self.forecaster.clone())
    }
}

/// The factory to register: `Registry::new().with(merchant_ai_alibaba::eas_factory())`.
pub fn factory() -> EasFactory {
    EasFactory
}

/// Builds [`EasProvider`]s from `kind = "pai-eas"` sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct EasFactory;

#[async_trait]
impl AdapterFactory for EasFactory {
    fn kind(&self) -> &str {
        KIND
    }
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let c: EasConfig = cfg.options_as()?;
        c.validate(cfg)?;
        service::residency(cfg, c.jurisdiction.as_deref())?;
        Ok(Capabilities::none().with_forecast())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let c: EasConfig = ctx.provider.options_as()?;
        let token = ctx.provider.api_key()?;
        Ok(Arc::new(EasProvider::new(ctx.provider, c, token)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn req() -> ForecastRequest {
        ForecastRequest::new(
            vec![Series::new("sku-1", vec![10.0, 12.0]).with_start(
                chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
                Frequency::Daily,
            )],
            2,
        )
        .with_quantiles(vec![0.1, 0.5, 0.9])
    }

    #[test]
    fn request_shape() {
        let r = req();
        let v = request_json(&r, &[&r.series[0]]);
        assert_eq!(
            v,
            json!({"horizon":2,"quantiles":[0.1,0.5,0.9],"series":[{"id":"sku-1","values":[10.0,12.0],
                   "timestamps":["2024-01-01T00:00:00Z","2024-01-02T00:00:00Z"],"frequency":"daily"}]})
        );
        assert_eq!(level_key(0.1), "0.1");
        assert_eq!(level_key(0.25), "0.25");
        assert_eq!(level_key(0.5), "0.5");
    }

    #[test]
    fn response_fixture() {
        let r = req();
        let e = json!({"id":"sku-1","mean":[12.4,12.9],"quantiles":{"0.1":[9.8,10.0],"0.5":[12.3,12.8],"0.9":[15.1,11.0]}});
        let f = parse_entry(&e, &r.series[0], &r, "m");
        assert!(f.error.is_none(), "{:?}", f.error);
        assert_eq!(f.point, [12.4, 12.9]);
        assert_eq!(f.model, "m");
        // Crossing quantiles at step 1 are put back in order.
        assert_eq!(f.quantile(0.9).unwrap(), [15.1, 12.8]);
        assert_eq!(f.quantile(0.5).unwrap(), [12.3, 11.0]);
        let ts = f.timestamps.unwrap();
        assert_eq!(
            ts[0],
            chrono::Utc.with_ymd_and_hms(2024, 1, 3, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_entries_fail_their_series_only() {
        let r = req();
        let missing_level = json!({"id":"sku-1","mean":[1.0,2.0],"quantiles":{"0.1":[0.0,1.0]}});
        let f = parse_entry(&missing_level, &r.series[0], &r, "m");
        assert_eq!(f.error.as_ref().unwrap().kind, ErrorKind::Decode);
        assert!(f.error.unwrap().message.contains("quantile 0.5"));
        let short = json!({"id":"sku-1","mean":[1.0]});
        assert_eq!(
            parse_entry(&short, &r.series[0], &r, "m")
                .error
                .unwrap()
                .kind,
            ErrorKind::Decode
        );
        let failed = json!({"id":"sku-1","error":"too short"});
        let f = parse_entry(&failed, &r.series[0], &r, "m");
        assert_eq!(f.error.as_ref().unwrap().kind, ErrorKind::Unexpected);
        assert!(f.error.unwrap().message.contains("too short"));
    }
}
