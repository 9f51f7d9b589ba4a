//! A third party writes its own provider, registers it, routes to it from config, and proves
//! it keeps the contract by running the shared conformance suite on it.
//!
//! Here: an in-house forecaster (a seasonal moving average) that a merchant's data team
//! already trusts, offered as the `forecast` capability of a provider of kind `in_house`.
//!
//! Run: `cargo run --example custom_adapter --features contract`

use std::sync::Arc;

use merchant_ai::contract::Suite;
use merchant_ai::replenish::normal_quantile;
use merchant_ai::{
    AdapterFactory, BuildContext, Capabilities, ChatModel, Config, Error, ForecastRequest,
    ForecastResponse, Forecaster, Provider, ProviderConfig, ProviderInfo, QuantileForecast,
    Recommender, Registry, ResponseMeta, Result, Searcher, SeriesForecast, Usage, async_trait,
};

/// The adapter's own options, read from `[providers.NAME]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InHouseOptions {
    /// How many past seasons to average.
    #[serde(default = "default_seasons")]
    seasons: usize,
}

fn default_seasons() -> usize {
    3
}

#[derive(Debug)]
struct InHouseForecaster {
    name: String,
    seasons: usize,
}

impl InHouseForecaster {
    fn one(&self, s: &merchant_ai::Series, horizon: usize, levels: &[f64]) -> SeriesForecast {
        if let Err(e) = s.validate(horizon) {
            return SeriesForecast::failed(s.id.clone(), e);
        }
        if s.values.is_empty() {
            return SeriesForecast::failed(
                s.id.clone(),
                Error::invalid_request(format!("series {:?} has no values", s.id)),
            );
        }
        let m = s.season_length();
        let n = s.values.len();
        // Each future step is the mean of the same position in the last `seasons` seasons.
        let point: Vec<f64> = (0..horizon)
            .map(|h| {
                let past: Vec<f64> = (1..=self.seasons)
                    .filter_map(|k| {
                        let back = k * m;
                        let idx = n as isize - back as isize + (h % m) as isize;
                        (idx >= 0 && (idx as usize) < n).then(|| s.values[idx as usize])
                    })
                    .collect();
                if past.is_empty() {
                    s.values[n - 1]
                } else {
                    past.iter().sum::<f64>() / past.len() as f64
                }
            })
            .collect();
        let mean = s.values.iter().sum::<f64>() / n as f64;
        let sd = (s.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let quantiles = levels
            .iter()
            .map(|&q| {
                let z = normal_quantile(q);
                QuantileForecast::new(q, point.iter().map(|p| p + z * sd).collect())
            })
            .collect();
        SeriesForecast::new(
            s.id.clone(),
            point,
            format!("seasonal_mean({})", self.seasons),
        )
        .with_quantiles(quantiles)
        .with_timestamps(s.future_timestamps(horizon))
    }
}

#[async_trait]
impl Forecaster for InHouseForecaster {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        req.validate()?;
        let series = req
            .series
            .iter()
            .map(|s| self.one(s, req.horizon, &req.quantiles))
            .collect();
        let meta = ResponseMeta::new(self.name.clone())
            .with_model("seasonal-mean")
            .with_usage(Usage::new().with_units(req.series.len() as u64));
        Ok(ForecastResponse::new(series, meta))
    }
}

/// The provider: identity plus one capability handle.
#[derive(Debug)]
struct InHouseProvider {
    info: ProviderInfo,
    forecaster: Arc<InHouseForecaster>,
}

impl Provider for InHouseProvider {
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

/// The factory the application registers.
struct InHouseFactory;

#[async_trait]
impl AdapterFactory for InHouseFactory {
    fn kind(&self) -> &str {
        "in_house"
    }
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities> {
        let _: InHouseOptions = cfg.options_as()?;
        Ok(Capabilities::none().with_forecast())
    }
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>> {
        let opts: InHouseOptions = ctx.provider.options_as()?;
        if opts.seasons == 0 {
            return Err(Error::config(format!(
                "{}: must be at least 1",
                ctx.provider.key_path("seasons")
            )));
        }
        let name = ctx.provider.name().to_owned();
        Ok(Arc::new(InHouseProvider {
            info: ProviderInfo::local(&name, "in_house", Capabilities::none().with_forecast()),
            forecaster: Arc::new(InHouseForecaster {
                name,
                seasons: opts.seasons,
            }),
        }))
    }
}

const CONFIG: &str = r#"
[providers.data_team]
kind = "in_house"
seasons = 4

[profiles.default.routes]
forecast = ["data_team"]
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let registry = Registry::new().with(InHouseFactory);
    let config = Config::parse(CONFIG)?;
    let client = registry.build(&config, Some("default")).await?;
    println!("{}", client.routes());

    let series = merchant_ai::contract::fixtures::series();
    let out = client
        .forecaster()?
        .forecast(ForecastRequest::new(series, 7).with_quantiles(vec![0.1, 0.9]))
        .await?;
    for s in &out.series {
        let first: Vec<String> = s.point.iter().take(7).map(|v| format!("{v:.1}")).collect();
        println!("{:<18} {:<18} {}", s.id, s.model, first.join(" "));
    }
    println!(
        "served by {} in {:.2} ms",
        out.meta.provider,
        out.meta.latency.as_secs_f64() * 1e3
    );

    // The same conformance suite every built-in adapter passes.
    let provider = InHouseFactory
        .build(BuildContext::new(
            config.provider("data_team").unwrap(),
            &config,
        ))
        .await?;
    let report = Suite::new(provider).run().await;
    report.print();
    report.assert_passed();
    Ok(())
}
