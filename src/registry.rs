//! Adapter factories and the [`Registry`] that builds a [`Client`] from a [`Config`] profile.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::api::*;
use crate::config::{Config, Profile, ProviderConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::layers::cache::{CachedChat, CachedForecaster, CachedRecommender, CachedSearcher};
use crate::layers::fallback::{
    FallbackChat, FallbackForecaster, FallbackRecommender, FallbackSearcher,
};
use crate::layers::{CacheConfig, ProviderLayers};

/// What a factory gets to build one provider.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The provider's own section.
    pub provider: &'a ProviderConfig,
    /// The whole config (e.g. for the `[catalog]` section).
    pub config: &'a Config,
}

impl<'a> BuildContext<'a> {
    /// A context for building `provider` within `config`.
    pub fn new(provider: &'a ProviderConfig, config: &'a Config) -> Self {
        BuildContext { provider, config }
    }
}

/// Builds providers of one kind (`rules`, `openai`, ...) from their config section.
///
/// Adapter crates export one; applications register it in a [`Registry`].
#[async_trait]
pub trait AdapterFactory: Send + Sync + 'static {
    /// The `kind` value this factory handles.
    fn kind(&self) -> &str;
    /// What a provider with this section would offer, without building it (used by
    /// validation). Errors name the bad key.
    fn capabilities(&self, cfg: &ProviderConfig) -> Result<Capabilities>;
    /// Builds the provider. Errors name the bad key.
    async fn build(&self, ctx: BuildContext<'_>) -> Result<Arc<dyn Provider>>;
}

/// The set of adapter kinds an application can configure.
///
/// ```
/// use merchant_ai::Registry;
/// let registry = Registry::new(); // .with(merchant_ai_rules::factory())
/// assert!(registry.kinds().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Arc<dyn AdapterFactory>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

/// One provider of a route, as the route table shows it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteEntry {
    /// The configured name.
    pub provider: String,
    /// The adapter kind.
    pub kind: String,
    /// The vendor region, if any.
    pub region: Option<String>,
    /// The jurisdiction data is processed in, if remote.
    pub jurisdiction: Option<String>,
    /// Whether data leaves the process.
    pub data_leaves_process: bool,
}

/// The routes of a profile: per capability, the providers in fallback order.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RouteTable {
    /// The profile.
    pub profile: String,
    /// Per capability, the ordered route. For a hybrid search route, the semantic side's
    /// entries, then the keyword side's.
    pub routes: BTreeMap<Capability, Vec<RouteEntry>>,
    /// For a hybrid search route: how many entries of `routes[search]` are the semantic side.
    pub hybrid_search: Option<usize>,
}

impl fmt::Display for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "profile {}", self.profile)?;
        for c in Capability::ALL {
            let Some(route) = self.routes.get(&c) else {
                writeln!(f, "  {:<10} (no route)", c.as_str())?;
                continue;
            };
            let describe = |entries: &[RouteEntry]| -> String {
                entries
                    .iter()
                    .map(|e| {
                        let place = if e.data_leaves_process {
                            format!(
                                "remote {}",
                                e.region
                                    .clone()
                                    .or(e.jurisdiction.clone())
                                    .unwrap_or_else(|| "?".into())
                            )
                        } else {
                            "in-process".into()
                        };
                        format!("{} ({}, {place})", e.provider, e.kind)
                    })
                    .collect::<Vec<_>>()
                    .join(" -> ")
            };
            if c == Capability::Search
                && let Some(n) = self.hybrid_search
            {
                let (sem, kw) = route.split_at(n.min(route.len()));
                writeln!(
                    f,
                    "  {:<10} hybrid: semantic [{}] + keyword [{}]",
                    c.as_str(),
                    describe(sem),
                    describe(kw)
                )?;
                continue;
            }
            let parts: Vec<String> = route
                .iter()
                .map(|e| {
                    let place = if e.data_leaves_process {
                        format!(
                            "remote {}",
                            e.region
                                .clone()
                                .or(e.jurisdiction.clone())
                                .unwrap_or_else(|| "?".into())
                        )
                    } else {
                        "in-process".into()
                    };
                    format!("{} ({}, {place})", e.provider, e.kind)
                })
                .collect();
            writeln!(f, "  {:<10} {}", c.as_str(), parts.join(" -> "))?;
        }
        Ok(())
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a factory (replacing one of the same kind).
    #[must_use]
    pub fn with(mut self, factory: impl AdapterFactory) -> Self {
        self.register(Arc::new(factory));
        self
    }

    /// Adds a factory (replacing one of the same kind).
    pub fn register(&mut self, factory: Arc<dyn AdapterFactory>) {
        self.factories.insert(factory.kind().to_owned(), factory);
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    fn factory(&self, cfg: &ProviderConfig) -> Result<&Arc<dyn AdapterFactory>> {
        self.factories.get(cfg.kind()).ok_or_else(|| {
            Error::config(format!(
                "{}: unknown provider kind {:?} (registered kinds: {})",
                cfg.key_path("kind"),
                cfg.kind(),
                if self.factories.is_empty() {
                    "none".to_owned()
                } else {
                    self.kinds().join(", ")
                }
            ))
        })
    }

    /// Checks a profile against the registered adapters without building anything: every kind
    /// is registered, every provider of a route has that capability, every secret variable
    /// is set. All problems are reported at once, each naming its key path.
    pub fn validate<'c>(&self, config: &'c Config, profile: Option<&str>) -> Result<&'c Profile> {
        let profile = config.profile(profile)?;
        let mut problems = Vec::new();
        let hybrid = profile.hybrid_search();
        let mut used: Vec<&str> = profile
            .routes()
            .values()
            .flatten()
            .chain(
                hybrid
                    .into_iter()
                    .flat_map(|h| h.semantic.iter().chain(&h.keyword)),
            )
            .map(String::as_str)
            .collect();
        used.sort_unstable();
        used.dedup();
        let mut caps: BTreeMap<&str, Capabilities> = BTreeMap::new();
        for name in used {
            let Some(cfg) = config.provider(name) else {
                problems.push(format!("provider {name:?} is not defined"));
                continue;
            };
            let factory = match self.factory(cfg) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(e.message().to_owned());
                    continue;
                }
            };
            match factory.capabilities(cfg) {
                Ok(c) => {
                    caps.insert(name, c);
                }
                Err(e) => problems.push(e.message().to_owned()),
            }
            for (key, var) in cfg.secret_env_keys() {
                if cfg.env().get(&var).is_none_or(|v| v.is_empty()) {
                    problems.push(format!(
                        "{}: environment variable {var} is not set",
                        cfg.key_path(&key)
                    ));
                }
            }
        }
        for (cap, route) in profile.routes() {
            for (i, name) in route.iter().enumerate() {
                if let Some(c) = caps.get(name.as_str())
                    && !c.has(*cap)
                {
                    problems.push(format!(
                        "profiles.{}.routes.{cap}[{i}]: provider {name:?} (kind {}) does not offer {cap}",
                        profile.name(),
                        config.provider(name).map_or("?", |p| p.kind()),
                    ));
                }
            }
        }
        if let Some(h) = hybrid {
            for (side, names) in [("semantic", &h.semantic), ("keyword", &h.keyword)] {
                for (i, name) in names.iter().enumerate() {
                    if let Some(c) = caps.get(name.as_str())
                        && !c.has(Capability::Search)
                    {
                        problems.push(format!(
                            "profiles.{}.hybrid.search.{side}[{i}]: provider {name:?} (kind {}) does not offer search",
                            profile.name(),
                            config.provider(name).map_or("?", |p| p.kind()),
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(profile)
        } else {
            Err(Error::config(problems.join("; ")))
        }
    }

    /// Validates the profile, builds each provider it uses once, and wires one fallback chain
    /// per capability.
    pub async fn build(&self, config: &Config, profile: Option<&str>) -> Result<Client> {
        let profile = self.validate(config, profile)?;
        let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
        let hybrid = profile.hybrid_search();
        let hybrid_names: Vec<&String> = hybrid
            .into_iter()
            .flat_map(|h| h.semantic.iter().chain(&h.keyword))
            .collect();
        for route in profile
            .routes()
            .values()
            .map(|r| r.iter().collect::<Vec<_>>())
            .chain([hybrid_names])
        {
            for name in route {
                if providers.contains_key(name) {
                    continue;
                }
                let cfg = config.provider(name).expect("validated");
                let factory = self.factory(cfg)?;
                let p = factory
                    .build(BuildContext::new(cfg, config))
                    .await
                    .map_err(|e| e.context(format!("providers.{name}")))?;
                providers.insert(name.clone(), p);
            }
        }
        let mut builder = Client::builder(profile.name());
        for name in providers.keys() {
            builder = builder.layers(ProviderLayers::new(
                name.clone(),
                &profile.layers().for_provider(name),
            ));
        }
        if let Some(c) = profile.cache() {
            builder = builder.cache(c.clone());
        }
        for (cap, route) in profile.routes() {
            let chain: Vec<(String, Arc<dyn Provider>)> = route
                .iter()
                .map(|n| (n.clone(), providers[n].clone()))
                .collect();
            builder = builder.route(*cap, chain)?;
        }
        if let Some(h) = hybrid {
            let chain = |names: &[String]| -> Vec<(String, Arc<dyn Provider>)> {
                names
                    .iter()
                    .map(|n| (n.clone(), providers[n].clone()))
                    .collect()
            };
            builder =
                builder.hybrid_search(chain(&h.semantic), chain(&h.keyword), h.config.clone())?;
        }
        Ok(builder.build())
    }
}

/// The application's handle: one stack per capability, as a profile configured it.
#[derive(Clone, Debug)]
pub struct Client {
    table: RouteTable,
    layers: BTreeMap<String, ProviderLayers>,
    searcher: Option<Arc<dyn Searcher>>,
    recommender: Option<Arc<dyn Recommender>>,
    chat: Option<Arc<dyn ChatModel>>,
    forecaster: Option<Arc<dyn Forecaster>>,
}

/// Builds a [`Client`] in code, without a config file.
///
/// ```
/// # #[cfg(feature = "contract")] {
/// use merchant_ai::{Client, Capability, contract::ScriptedProvider};
/// use std::sync::Arc;
/// let p = Arc::new(ScriptedProvider::new("scripted"));
/// let client = Client::builder("inline")
///     .route(Capability::Search, vec![("scripted".into(), p.clone() as _)]).unwrap()
///     .build();
/// assert!(client.searcher().is_ok());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ClientBuilder {
    table: RouteTable,
    layers: BTreeMap<String, ProviderLayers>,
    cache: Option<CacheConfig>,
    searcher: Option<Arc<dyn Searcher>>,
    recommender: Option<Arc<dyn Recommender>>,
    chat: Option<Arc<dyn ChatModel>>,
    forecaster: Option<Arc<dyn Forecaster>>,
}

fn missing(name: &str, cap: Capability) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("provider {name:?} does not offer {cap}"),
    )
    .with_provider(name)
}

impl ClientBuilder {
    /// Sets the layers (breaker, retry, timeout) of one provider; routes set afterwards wrap
    /// that provider's handles with them. Without this, a provider's handles are used as they
    /// are.
    #[must_use]
    pub fn layers(mut self, layers: ProviderLayers) -> Self {
        self.layers.insert(layers.provider().to_owned(), layers);
        self
    }

    /// Caches the answers of routes set afterwards (see [`crate::layers::cache`]).
    #[must_use]
    pub fn cache(mut self, cfg: CacheConfig) -> Self {
        self.cache = Some(cfg);
        self
    }

    fn wrap<T: ?Sized + crate::layers::Layered>(&self, name: &str, h: Arc<T>) -> Arc<T> {
        match self.layers.get(name) {
            Some(l) => l.wrap(h),
            None => h,
        }
    }

    /// Sets the route of `cap`: providers in fallback order. Each must offer `cap`.
    pub fn route(
        mut self,
        cap: Capability,
        chain: Vec<(String, Arc<dyn Provider>)>,
    ) -> Result<Self> {
        if chain.is_empty() {
            return Err(Error::config(format!("the route for {cap} is empty")));
        }
        let entries = chain
            .iter()
            .map(|(n, p)| {
                let i = p.info();
                RouteEntry {
                    provider: n.clone(),
                    kind: i.kind.clone(),
                    region: i.region.clone(),
                    jurisdiction: i.jurisdiction.as_ref().map(|j| j.to_string()),
                    data_leaves_process: i.data_leaves_process,
                }
            })
            .collect();
        self.table.routes.insert(cap, entries);
        match cap {
            Capability::Search => {
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.searcher().ok_or_else(|| missing(n, cap))?;
                        Ok((n.clone(), self.wrap(n, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Searcher> = Arc::new(FallbackSearcher::new(r));
                self.searcher = Some(match &self.cache {
                    Some(c) => Arc::new(CachedSearcher::new(s, c)),
                    None => s,
                });
            }
            Capability::Recommend => {
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.recommender().ok_or_else(|| missing(n, cap))?;
                        Ok((n.clone(), self.wrap(n, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Recommender> = Arc::new(FallbackRecommender::new(r));
                self.recommender = Some(match &self.cache {
                    Some(c) => Arc::new(CachedRecommender::new(s, c)),
                    None => s,
                });
            }
            Capability::Chat => {
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.chat_model().ok_or_else(|| missing(n, cap))?;
                        Ok((n.clone(), self.wrap(n, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn ChatModel> = Arc::new(FallbackChat::new(r));
                self.chat = Some(match &self.cache {
                    Some(c) => Arc::new(CachedChat::new(s, c)),
                    None => s,
                });
            }
            Capability::Forecast => {
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.forecaster().ok_or_else(|| missing(n, cap))?;
                        Ok((n.clone(), self.wrap(n, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Forecaster> = Arc::new(FallbackForecaster::new(r));
                self.forecaster = Some(match &self.cache {
                    Some(c) => Arc::new(CachedForecaster::new(s, c)),
                    None => s,
                });
            }
        }
        Ok(self)
    }

    /// Sets a hybrid search route: a semantic and a keyword side, each a fallback chain of
    /// providers (wrapped in their layers), fused by a
    /// [`HybridSearcher`](crate::hybrid::HybridSearcher) named `hybrid`.
    pub fn hybrid_search(
        mut self,
        semantic: Vec<(String, Arc<dyn Provider>)>,
        keyword: Vec<(String, Arc<dyn Provider>)>,
        config: crate::hybrid::HybridConfig,
    ) -> Result<Self> {
        let cap = Capability::Search;
        let mut entries = Vec::new();
        let mut side =
            |name: &str, chain: &[(String, Arc<dyn Provider>)]| -> Result<Arc<dyn Searcher>> {
                if chain.is_empty() {
                    return Err(Error::config(format!(
                        "the {name} side of the hybrid search route is empty"
                    )));
                }
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.searcher().ok_or_else(|| missing(n, cap))?;
                        let i = p.info();
                        entries.push(RouteEntry {
                            provider: n.clone(),
                            kind: i.kind.clone(),
                            region: i.region.clone(),
                            jurisdiction: i.jurisdiction.as_ref().map(|j| j.to_string()),
                            data_leaves_process: i.data_leaves_process,
                        });
                        Ok((n.clone(), self.wrap(n, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(FallbackSearcher::new(r)))
            };
        let semantic_side = side("semantic", &semantic)?;
        let keyword_side = side("keyword", &keyword)?;
        let hybrid = crate::hybrid::HybridSearcher::new("hybrid", semantic_side, keyword_side)
            .with_config(config)?;
        let s: Arc<dyn Searcher> = Arc::new(hybrid);
        self.searcher = Some(match &self.cache {
            Some(c) => Arc::new(CachedSearcher::new(s, c)),
            None => s,
        });
        self.table.routes.insert(cap, entries);
        self.table.hybrid_search = Some(semantic.len());
        Ok(self)
    }

    /// Finishes the client.
    pub fn build(self) -> Client {
        Client {
            table: self.table,
            layers: self.layers,
            searcher: self.searcher,
            recommender: self.recommender,
            chat: self.chat,
            forecaster: self.forecaster,
        }
    }
}

impl Client {
    /// Starts a client for a profile named `profile`.
    pub fn builder(profile: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            table: RouteTable {
                profile: profile.into(),
                routes: BTreeMap::new(),
                hybrid_search: None,
            },
            ..Default::default()
        }
    }

    fn no_route(&self, cap: Capability) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            format!("profile {:?} has no route for {cap}", self.table.profile),
        )
    }

    /// The search stack.
    pub fn searcher(&self) -> Result<Arc<dyn Searcher>> {
        self.searcher
            .clone()
            .ok_or_else(|| self.no_route(Capability::Search))
    }
    /// The recommend stack.
    pub fn recommender(&self) -> Result<Arc<dyn Recommender>> {
        self.recommender
            .clone()
            .ok_or_else(|| self.no_route(Capability::Recommend))
    }
    /// The chat stack.
    pub fn chat_model(&self) -> Result<Arc<dyn ChatModel>> {
        self.chat
            .clone()
            .ok_or_else(|| self.no_route(Capability::Chat))
    }
    /// The forecast stack.
    pub fn forecaster(&self) -> Result<Arc<dyn Forecaster>> {
        self.forecaster
            .clone()
            .ok_or_else(|| self.no_route(Capability::Forecast))
    }
    /// The layers of a provider of this client (its breaker state, its retry budget).
    pub fn provider_layers(&self, provider: &str) -> Option<&ProviderLayers> {
        self.layers.get(provider)
    }

    /// The profile's routes.
    pub fn routes(&self) -> &RouteTable {
        &self.table
    }
}
