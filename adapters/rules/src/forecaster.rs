//! The rules forecaster capability.

use async_trait::async_trait;
use merchant_ai::*;
use serde::Deserialize;

/// `[providers.NAME.forecaster]` options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {}

/// The rules forecaster capability.
#[derive(Debug)]
pub struct RulesForecaster {
    name: String,
}

impl RulesForecaster {
    /// A forecaster.
    pub fn new(name: &str, _cfg: ForecastConfig) -> Result<Self> {
        Ok(Self { name: name.into() })
    }
}

#[async_trait]
impl Forecaster for RulesForecaster {
    async fn forecast(&self, _req: ForecastRequest) -> Result<ForecastResponse> {
        Err(Error::unsupported(format!(
            "{}: forecast is being built",
            self.name
        )))
    }
}
