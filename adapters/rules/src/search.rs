//! Keyword search on tantivy.

use std::sync::Arc;

use async_trait::async_trait;
use merchant_ai::*;
use serde::Deserialize;

use crate::Catalog;

/// `[providers.NAME.search]` options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {}

/// The rules searcher.
#[derive(Debug)]
pub struct RulesSearcher {
    name: String,
    catalog: Arc<Catalog>,
}

impl RulesSearcher {
    /// A searcher over `catalog` (indexes what it already holds).
    pub fn new(name: &str, _cfg: SearchConfig, catalog: Arc<Catalog>) -> Result<Self> {
        Ok(RulesSearcher {
            name: name.into(),
            catalog,
        })
    }
}

#[async_trait]
impl Searcher for RulesSearcher {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        let n = products.len();
        self.catalog.upsert(products);
        Ok(IndexReport::new(n))
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        Ok(IndexReport::new(self.catalog.remove(&ids)))
    }
    async fn search(&self, _req: SearchRequest) -> Result<SearchResponse> {
        Err(Error::unsupported(format!(
            "{}: search is being built",
            self.name
        )))
    }
}
