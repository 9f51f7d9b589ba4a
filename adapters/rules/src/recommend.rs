//! The rules recommend capability.

use std::sync::Arc;

use async_trait::async_trait;
use merchant_ai::*;
use serde::Deserialize;

use crate::Catalog;

/// `[providers.NAME.recommend]` options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendConfig {}

/// The rules recommend capability.
#[derive(Debug)]
pub struct RulesRecommender {
    name: String,
}

impl RulesRecommender {
    /// A recommender over `catalog`.
    pub fn new(name: &str, _cfg: RecommendConfig, _catalog: Arc<Catalog>) -> Result<Self> {
        Ok(Self { name: name.into() })
    }
}

#[async_trait]
impl Recommender for RulesRecommender {
    async fn record(&self, _events: Vec<Event>) -> Result<()> {
        Ok(())
    }
    async fn recommend(&self, _req: RecommendRequest) -> Result<RecommendResponse> {
        Err(Error::unsupported(format!(
            "{}: recommend is being built",
            self.name
        )))
    }
}
