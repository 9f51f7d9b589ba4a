//! From the command line's global options to a ready [`Client`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use merchant_ai::{Client, Config, Event, Product, ProductId, Registry};
use merchant_ai_rules::sample;

use crate::GlobalArgs;
use crate::fail::{CliError, CliResult};

/// The config used without `--config`: the offline rules provider serves everything.
pub const DEFAULT_CONFIG: &str = r#"
default_profile = "default"

[providers.rules]
kind = "rules"

[providers.rules.chat.shop]
shop_name = "the merchant-ai demo store"
currency = "CNY"
return_window_days = 30

[profiles.default]
description = "built in: everything served in process by the offline rules provider"

[profiles.default.routes]
search = ["rules"]
recommend = ["rules"]
chat = ["rules"]
forecast = ["rules"]
"#;

/// Where the catalog came from.
#[derive(Debug, Clone)]
pub enum CatalogSource {
    /// Not loaded (the command does not need it).
    None,
    /// The `[catalog]` files of the config, loaded by the providers.
    Config,
    /// The built-in sample storefront, upserted by the CLI.
    Sample,
}

/// A built client and what was loaded into it.
#[derive(Debug)]
pub struct Session {
    /// The config in use.
    pub config: Config,
    /// The client of the chosen profile.
    pub client: Client,
    /// The catalog by id, for display.
    pub products: BTreeMap<ProductId, Product>,
    /// Number of events recorded.
    pub events: usize,
    /// Where the catalog came from.
    pub source: CatalogSource,
    /// How long building and loading took.
    pub startup: Duration,
}

/// The adapters this binary links.
pub fn registry() -> Registry {
    let registry = Registry::new()
        .with(merchant_ai_rules::factory())
        .with(merchant_ai_openai::factory())
        .with(merchant_ai_alibaba::dashscope_factory())
        .with(merchant_ai_alibaba::opensearch_factory())
        .with(merchant_ai_alibaba::airec_factory())
        .with(merchant_ai_alibaba::pairec_factory())
        .with(merchant_ai_alibaba::eas_factory());
    #[cfg(feature = "candle")]
    let registry = registry.with(merchant_ai_candle::factory());
    registry
}

impl Session {
    /// Loads the config, checks the profile and the catalog files, builds the client and, when
    /// `load_catalog` and the config names no catalog, loads the sample storefront.
    pub async fn start(g: &GlobalArgs, load_catalog: bool) -> CliResult<Session> {
        let t0 = Instant::now();
        let config = match &g.config {
            Some(path) => {
                if !path.exists() {
                    return Err(CliError::usage(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                Config::from_file(path)?
            }
            None => Config::parse(DEFAULT_CONFIG)?,
        };
        let registry = registry();
        registry.validate(&config, g.profile.as_deref())?;

        // Read the catalog files first, so a bad line is reported as a data error (exit 3)
        // naming the file and line, before any provider loads them.
        let mut products = BTreeMap::new();
        let mut events = 0;
        let cat = config.catalog().clone();
        if let Some(p) = &cat.products {
            for prod in read_data::<Product>("catalog.products", p)? {
                products.insert(prod.id.clone(), prod);
            }
        }
        if let Some(p) = &cat.events {
            events = read_data::<Event>("catalog.events", p)?.len();
        }

        let client = registry.build(&config, g.profile.as_deref()).await?;
        let mut source = if cat.products.is_some() || cat.events.is_some() {
            CatalogSource::Config
        } else {
            CatalogSource::None
        };
        if load_catalog && cat.products.is_none() {
            let ps = sample::products(sample::DEFAULT_PRODUCTS, sample::DEFAULT_SEED);
            if let Ok(searcher) = client.searcher() {
                searcher.upsert(ps.clone()).await?;
            }
            if cat.events.is_none()
                && let Ok(rec) = client.recommender()
            {
                let evs = sample::events(&ps, sample::DEFAULT_SEED);
                events = evs.len();
                rec.record(evs).await?;
            }
            products = ps.into_iter().map(|p| (p.id.clone(), p)).collect();
            source = CatalogSource::Sample;
        }
        Ok(Session {
            config,
            client,
            products,
            events,
            source,
            startup: t0.elapsed(),
        })
    }

    /// A product's title for display (in `lang` when known).
    pub fn title(&self, id: &ProductId, lang: Option<&str>) -> String {
        match self.products.get(id) {
            Some(p) => lang.map_or(p.title.as_str(), |l| p.title_in(l)).to_owned(),
            None => String::new(),
        }
    }
}

/// Reads a JSON lines data file; a missing file or a bad line is an input data error.
fn read_data<T: serde::de::DeserializeOwned>(key: &str, path: &Path) -> CliResult<Vec<T>> {
    if !path.exists() {
        return Err(CliError::data(format!(
            "{key}: file {} does not exist",
            path.display()
        )));
    }
    merchant_ai_rules::read_jsonl(path)
        .map_err(|e| CliError::data(format!("{key}: {}", e.message())))
}
