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
use crate::layers::observe::{Observable, Observer};
use crate::layers::policy::{Gate, Gateable, PrivacyPolicy};
use crate::layers::shadow::{Shadow, ShadowConfig, Shadowable};
use crate::layers::{CacheConfig, ProviderLayers};
use crate::thresholds::{Thresholded, Thresholds};

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
    sinks: Sinks,
}

/// Where clients built by a [`Registry`] report: metrics, audit records, held items.
#[derive(Clone, Default)]
struct Sinks {
    metrics: Option<Arc<dyn crate::metrics::Metrics>>,
    audit: Option<Arc<dyn crate::audit::AuditSink>>,
    review: Option<Arc<dyn crate::thresholds::ReviewSink>>,
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

    /// Clients built from now on report metrics to `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn crate::metrics::Metrics>) -> Self {
        self.sinks.metrics = Some(metrics);
        self
    }

    /// Clients built from now on write audit records to `sink` (instead of the profile's
    /// `observe.audit_path`).
    #[must_use]
    pub fn with_audit_sink(mut self, sink: Arc<dyn crate::audit::AuditSink>) -> Self {
        self.sinks.audit = Some(sink);
        self
    }

    /// Clients built from now on send held items to `sink` (instead of the profile's
    /// `thresholds.review_path` or memory).
    #[must_use]
    pub fn with_review_sink(mut self, sink: Arc<dyn crate::thresholds::ReviewSink>) -> Self {
        self.sinks.review = Some(sink);
        self
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
            .chain(profile.ops().shadow.values().map(|c| c.candidate.as_str()))
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
        for (cap, sc) in &profile.ops().shadow {
            if let Some(c) = caps.get(sc.candidate.as_str())
                && !c.has(*cap)
            {
                problems.push(format!(
                    "profiles.{}.shadow.{cap}.candidate: provider {:?} does not offer {cap}",
                    profile.name(),
                    sc.candidate
                ));
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
        let candidates: Vec<String> = profile
            .ops()
            .shadow
            .values()
            .map(|c| c.candidate.clone())
            .collect();
        for route in profile
            .routes()
            .values()
            .map(|r| r.iter().collect::<Vec<_>>())
            .chain([hybrid_names, candidates.iter().collect()])
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
        builder = builder.privacy(PrivacyPolicy::new(
            profile.privacy().cloned().unwrap_or_default(),
            format!("profiles.{}.privacy", profile.name()),
        )?);
        let ops = profile.ops();
        let observe = ops.observe.clone().unwrap_or_default();
        if observe.enabled {
            let obs = Observer::from_config(
                &observe,
                ops.pricing.clone(),
                self.sinks.metrics.clone(),
                self.sinks.audit.clone(),
            )
            .map_err(|e| e.context(format!("profiles.{}.observe", profile.name())))?;
            builder = builder.observe(Arc::new(obs));
        }
        if let Some(t) = &ops.thresholds {
            let t = Thresholds::new(t.clone(), self.sinks.review.clone())
                .map_err(|e| e.context(format!("profiles.{}", profile.name())))?
                .with_metrics(self.sinks.metrics.clone());
            builder = builder.thresholds(Arc::new(t));
        }
        for (cap, sc) in &ops.shadow {
            let p = providers[&sc.candidate].clone();
            builder = builder.shadow(*cap, sc.clone(), p);
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
    privacy: Option<Arc<PrivacyPolicy>>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    observer: Option<Arc<Observer>>,
    thresholds: Option<Arc<Thresholds>>,
    shadows: BTreeMap<Capability, Arc<Shadow>>,
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
    privacy: Option<Arc<PrivacyPolicy>>,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    cache: Option<CacheConfig>,
    observer: Option<Arc<Observer>>,
    thresholds: Option<Arc<Thresholds>>,
    shadow_cfg: BTreeMap<Capability, (ShadowConfig, Arc<dyn Provider>)>,
    shadows: BTreeMap<Capability, Arc<Shadow>>,
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

    /// Puts every provider of routes set afterwards behind a privacy gate (consent, residency,
    /// PII redaction; see [`crate::layers::policy`]). [`Registry::build`] always sets one (the
    /// profile's `[privacy]` section or the defaults); a client built in code without it
    /// sends requests as they are.
    #[must_use]
    pub fn privacy(mut self, policy: PrivacyPolicy) -> Self {
        self.privacy = Some(Arc::new(policy));
        self
    }

    /// Observes every capability (spans, metrics, cost, audit log); outermost layer.
    #[must_use]
    pub fn observe(mut self, observer: Arc<Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Applies human-threshold rules to chat and forecast answers (inside observe).
    #[must_use]
    pub fn thresholds(mut self, rules: Arc<Thresholds>) -> Self {
        self.thresholds = Some(rules);
        self
    }

    /// Puts `candidate` beside the route of `cap` set afterwards, as shadow or canary (see
    /// [`crate::layers::shadow`]); it records to the observer set before this call. The
    /// candidate's handle gets its provider's layers.
    #[must_use]
    pub fn shadow(
        mut self,
        cap: Capability,
        cfg: ShadowConfig,
        candidate: Arc<dyn Provider>,
    ) -> Self {
        self.shadow_cfg.insert(cap, (cfg, candidate));
        self
    }

    fn shadowed<T: ?Sized + crate::layers::Layered + Gateable + Shadowable>(
        &mut self,
        cap: Capability,
        primary: Arc<T>,
        get: impl Fn(&dyn Provider) -> Option<Arc<T>>,
    ) -> Result<Arc<T>> {
        let Some((cfg, p)) = self.shadow_cfg.get(&cap) else {
            return Ok(primary);
        };
        let name = cfg.candidate.clone();
        let h = get(p.as_ref()).ok_or_else(|| missing(&name, cap))?;
        let h = self.wrap(&name, p.info(), h);
        let sh = Arc::new(Shadow::new(
            cap,
            cfg.clone(),
            p.info().clone(),
            self.observer.clone(),
        ));
        if let Some(o) = &self.observer {
            o.set_provider_kind(&name, &p.info().kind);
        }
        self.shadows.insert(cap, sh.clone());
        Ok(T::shadowed(primary, h, sh))
    }

    fn wrap<T: ?Sized + crate::layers::Layered + Gateable>(
        &self,
        name: &str,
        info: &ProviderInfo,
        h: Arc<T>,
    ) -> Arc<T> {
        let h = match self.layers.get(name) {
            Some(l) => l.wrap(h),
            None => h,
        };
        match &self.privacy {
            Some(p) => T::gated(h, Gate::new(name, info.clone(), p.clone())),
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
        for (n, p) in &chain {
            self.providers.insert(n.clone(), p.clone());
        }
        match cap {
            Capability::Search => {
                let r = chain
                    .iter()
                    .map(|(n, p)| {
                        let h = p.searcher().ok_or_else(|| missing(n, cap))?;
                        Ok((n.clone(), self.wrap(n, p.info(), h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Searcher> = Arc::new(FallbackSearcher::new(r));
                let s = self.shadowed(cap, s, |p| p.searcher())?;
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
                        Ok((n.clone(), self.wrap(n, p.info(), h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Recommender> = Arc::new(FallbackRecommender::new(r));
                let s = self.shadowed(cap, s, |p| p.recommender())?;
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
                        Ok((n.clone(), self.wrap(n, p.info(), h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn ChatModel> = Arc::new(FallbackChat::new(r));
                let s = self.shadowed(cap, s, |p| p.chat_model())?;
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
                        Ok((n.clone(), self.wrap(n, p.info(), h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let s: Arc<dyn Forecaster> = Arc::new(FallbackForecaster::new(r));
                let s = self.shadowed(cap, s, |p| p.forecaster())?;
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
                        Ok((n.clone(), self.wrap(n, i, h)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(FallbackSearcher::new(r)))
            };
        let semantic_side = side("semantic", &semantic)?;
        let keyword_side = side("keyword", &keyword)?;
        for (n, p) in semantic.iter().chain(&keyword) {
            self.providers.insert(n.clone(), p.clone());
        }
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

    /// Finishes the client: wraps each capability with the thresholds and observe layers.
    pub fn build(self) -> Client {
        let obs = self.observer.clone();
        let rules = self.thresholds.clone();
        if let Some(o) = &obs {
            for e in self.table.routes.values().flatten() {
                o.set_provider_kind(&e.provider, &e.kind);
            }
        }
        fn outer<T: ?Sized + Observable + Thresholded>(
            h: Option<Arc<T>>,
            obs: &Option<Arc<Observer>>,
            rules: &Option<Arc<Thresholds>>,
        ) -> Option<Arc<T>> {
            let mut h = h?;
            if let Some(r) = rules {
                h = T::thresholded(h, r.clone());
            }
            if let Some(o) = obs {
                h = T::observed(h, o.clone());
            }
            Some(h)
        }
        Client {
            searcher: outer(self.searcher, &obs, &rules),
            recommender: outer(self.recommender, &obs, &rules),
            chat: outer(self.chat, &obs, &rules),
            forecaster: outer(self.forecaster, &obs, &rules),
            table: self.table,
            layers: self.layers,
            privacy: self.privacy,
            providers: self.providers,
            observer: obs,
            thresholds: rules,
            shadows: self.shadows,
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

    /// The privacy policy every provider's gate applies, if the client has one.
    pub fn privacy(&self) -> Option<&PrivacyPolicy> {
        self.privacy.as_deref()
    }

    /// Where customer data may go under this client's routes and privacy policy, and every
    /// violation in the config (see [`crate::layers::policy::DataFlowMap`]).
    pub fn data_flow(&self) -> crate::layers::policy::DataFlowMap {
        let default = PrivacyPolicy::default();
        crate::layers::policy::DataFlowMap::new(&self.table, self.privacy().unwrap_or(&default))
    }

    /// Erases everything the client's providers keep about `subject` (see
    /// [`crate::erasure`]): each provider with a delete operation runs it; the report lists
    /// every provider, including those where no delete exists. Never fails as a whole: a
    /// provider's error is in its entry.
    pub async fn forget(
        &self,
        subject: &crate::SubjectId,
    ) -> Result<crate::erasure::ErasureReport> {
        crate::erasure::forget_all(&self.providers, subject).await
    }

    /// The observer (metrics, audit log, prices), if the observe layer is on.
    pub fn observer(&self) -> Option<&Arc<Observer>> {
        self.observer.as_ref()
    }

    /// The threshold rules and their review sink, if configured (also for
    /// [`Thresholds::review_reorder`]).
    pub fn thresholds(&self) -> Option<&Arc<Thresholds>> {
        self.thresholds.as_ref()
    }

    /// The shadow or canary state of a capability, if configured.
    pub fn shadow(&self, cap: Capability) -> Option<&Arc<Shadow>> {
        self.shadows.get(&cap)
    }
}
