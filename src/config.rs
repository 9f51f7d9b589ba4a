//! Configuration: named providers, profiles (one per environment) and per-capability routes.
//!
//! ```toml
//! default_profile = "dev"
//!
//! [catalog]
//! products = "${MERCHANT_AI_DATA}/products.jsonl"
//!
//! [providers.rules]
//! kind = "rules"
//!
//! [providers.qwen]
//! kind = "alibaba"
//! region = "ap-southeast-1"
//! api_key_env = "DASHSCOPE_API_KEY"   # the key itself never goes in the file
//!
//! [profiles.dev.routes]
//! search = ["rules"]
//!
//! [profiles.prod.routes]
//! chat = ["qwen", "rules"]            # ordered: the fallback chain
//! search = ["rules"]
//! ```
//!
//! - Secrets come only from environment variables named by `*_env` keys (`api_key_env`); a
//!   literal secret in the file is refused. Resolved secrets are [`SecretString`]s, whose
//!   `Debug` shows `[REDACTED]`.
//! - `${VAR}` and `${VAR:-default}` in string values are expanded from the environment.
//! - The profile is the one asked for, else `MERCHANT_AI_PROFILE`, else `default_profile`,
//!   else the only profile.
//! - Every error names the key path (`profiles.prod.routes.chat[1]`) and the reason; TOML syntax
//!   errors give the line and column.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::api::Capability;
use crate::error::{Error, Result};
use crate::hybrid::HybridConfig;
use crate::layers::{CacheConfig, LayersConfig};

pub use secrecy::{ExposeSecret, SecretString};

/// Where environment variables are read from: the process, or a map (for tests and embedding).
#[derive(Clone)]
pub struct EnvSource(Arc<EnvLookup>);

type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EnvSource {
    /// The process environment.
    pub fn process() -> Self {
        EnvSource(Arc::new(|k| std::env::var(k).ok()))
    }
    /// A fixed map of variables.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let m: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        EnvSource(Arc::new(move |k| m.get(k).cloned()))
    }
    /// Looks a variable up.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
    }
}

impl Default for EnvSource {
    fn default() -> Self {
        EnvSource::process()
    }
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvSource")
    }
}

/// Keys whose value would be a secret: refused as literals, hidden in `Debug`.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_env") {
        return false;
    }
    [
        "api_key",
        "apikey",
        "secret",
        "password",
        "token",
        "access_key",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
        && !k.contains("max_tokens")
        && !k.ends_with("_tokens")
}

/// One named provider section: `[providers.NAME]`.
#[derive(Clone)]
pub struct ProviderConfig {
    name: String,
    kind: String,
    region: Option<String>,
    api_key_env: Option<String>,
    options: toml::Table,
    env: EnvSource,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opts: BTreeMap<&str, String> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    "[REDACTED]".to_owned()
                } else {
                    v.to_string()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("region", &self.region)
            .field("api_key_env", &self.api_key_env)
            .field("options", &opts)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider section built in code (for tests and programmatic setups).
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        ProviderConfig {
            name: name.into(),
            kind: kind.into(),
            region: None,
            api_key_env: None,
            options: toml::Table::new(),
            env: EnvSource::process(),
        }
    }
    /// Sets an option (a value as it would appear in TOML).
    #[must_use]
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }
    /// Sets the region.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// Sets the env var holding the API key.
    #[must_use]
    pub fn with_api_key_env(mut self, var: impl Into<String>) -> Self {
        self.api_key_env = Some(var.into());
        self
    }
    /// Sets where variables are read from.
    #[must_use]
    pub fn with_env(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }
    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The adapter kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// The region, if set.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    /// The adapter-specific keys (everything but `kind`, `region`, `api_key_env`), with
    /// `${VAR}` already expanded.
    pub fn options(&self) -> &toml::Table {
        &self.options
    }
    /// The environment this config resolves variables from.
    pub fn env(&self) -> &EnvSource {
        &self.env
    }
    /// The key path of an option, for error messages: `providers.NAME.KEY`.
    pub fn key_path(&self, key: &str) -> String {
        format!("providers.{}.{}", self.name, key)
    }
    /// Deserializes the adapter-specific options into the adapter's own config type. Errors
    /// name `providers.NAME` and serde's reason (unknown field, wrong type).
    pub fn options_as<T: DeserializeOwned>(&self) -> Result<T> {
        toml::Value::Table(self.options.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                Error::config(format!("providers.{}: {}", self.name, e.message().trim()))
            })
    }
    /// The API key from the variable named by `api_key_env`; `None` when no variable is named.
    /// A named but unset variable is an error naming the key and the variable.
    pub fn api_key(&self) -> Result<Option<SecretString>> {
        match &self.api_key_env {
            None => Ok(None),
            Some(var) => self.read_secret("api_key_env", var).map(Some),
        }
    }
    /// A secret from the variable named by the option `key` (which must end in `_env`).
    pub fn secret(&self, key: &str) -> Result<Option<SecretString>> {
        if key == "api_key_env" {
            return self.api_key();
        }
        match self.options.get(key) {
            None => Ok(None),
            Some(toml::Value::String(var)) => self.read_secret(key, var).map(Some),
            Some(_) => Err(Error::config(format!(
                "{}: must be the name of an environment variable",
                self.key_path(key)
            ))),
        }
    }
    fn read_secret(&self, key: &str, var: &str) -> Result<SecretString> {
        match self.env.get(var) {
            Some(v) if !v.is_empty() => Ok(SecretString::from(v)),
            _ => Err(Error::config(format!(
                "{}: environment variable {var} is not set",
                self.key_path(key)
            ))),
        }
    }
    /// Every `*_env` key naming a secret, with its variable (for validation).
    pub fn secret_env_keys(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(v) = &self.api_key_env {
            out.push(("api_key_env".to_owned(), v.clone()));
        }
        for (k, v) in &self.options {
            if k.ends_with("_env")
                && let toml::Value::String(var) = v
            {
                out.push((k.clone(), var.clone()));
            }
        }
        out
    }
}

/// One profile: `[profiles.NAME]`.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    name: String,
    description: Option<String>,
    routes: BTreeMap<Capability, Vec<String>>,
    layers: LayersConfig,
    cache: Option<CacheConfig>,
    hybrid_search: Option<HybridRoute>,
}

/// A hybrid search route (`[profiles.NAME.hybrid.search]`): a semantic and a keyword side, each
/// a fallback chain of providers, fused by [`HybridSearcher`](crate::hybrid::HybridSearcher).
///
/// ```toml
/// [profiles.shop.hybrid.search]
/// semantic = "openai"            # a provider, or a list: a fallback chain
/// keyword = ["rules"]
/// k = 60.0                       # tuning: see HybridConfig (all optional)
/// semantic_weight = 1.0
/// keyword_weight = 1.0
/// ```
///
/// It is the profile's search route, so `routes.search` is not set alongside it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct HybridRoute {
    /// The semantic side, in fallback order.
    pub semantic: Vec<String>,
    /// The keyword side, in fallback order.
    pub keyword: Vec<String>,
    /// The fusion tuning.
    pub config: HybridConfig,
}

impl Profile {
    /// The hybrid search route (`[profiles.NAME.hybrid.search]`), if the profile has one.
    pub fn hybrid_search(&self) -> Option<&HybridRoute> {
        self.hybrid_search.as_ref()
    }
    /// The response cache settings (`[profiles.NAME.cache]`), if the profile enables one.
    pub fn cache(&self) -> Option<&CacheConfig> {
        self.cache.as_ref().filter(|c| c.enabled)
    }
    /// The layer settings (`[profiles.NAME.layers]`).
    pub fn layers(&self) -> &LayersConfig {
        &self.layers
    }
    /// The profile name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The route (ordered provider names) for a capability; empty if none.
    pub fn route(&self, c: Capability) -> &[String] {
        self.routes.get(&c).map(Vec::as_slice).unwrap_or(&[])
    }
    /// All routes.
    pub fn routes(&self) -> &BTreeMap<Capability, Vec<String>> {
        &self.routes
    }
}

/// Files local providers load at start: `[catalog]`.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    /// Products as JSON lines ([`Product`](crate::Product) per line).
    pub products: Option<PathBuf>,
    /// Events as JSON lines ([`Event`](crate::Event) per line).
    pub events: Option<PathBuf>,
}

/// A parsed and checked configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    source: String,
    default_profile: Option<String>,
    providers: BTreeMap<String, ProviderConfig>,
    profiles: BTreeMap<String, Profile>,
    catalog: CatalogConfig,
    env: EnvSource,
}

const TOP_KEYS: &[&str] = &["default_profile", "catalog", "providers", "profiles"];
const PROFILE_KEYS: &[&str] = &["description", "routes", "layers", "cache", "hybrid"];
const CATALOG_KEYS: &[&str] = &["products", "events"];

impl Config {
    /// Reads and checks a TOML file, with variables from the process environment.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        Self::from_file_with_env(path, EnvSource::process())
    }

    /// Reads and checks a TOML file, with variables from `env`.
    pub fn from_file_with_env(path: impl AsRef<Path>, env: EnvSource) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let mut c = Self::parse_with_env(&text, env).map_err(|e| e.context(path.display()))?;
        c.source = path.display().to_string();
        Ok(c)
    }

    /// Parses and checks TOML text, with variables from the process environment.
    pub fn parse(text: &str) -> Result<Config> {
        Self::parse_with_env(text, EnvSource::process())
    }

    /// Parses and checks TOML text, with variables from `env`.
    pub fn parse_with_env(text: &str, env: EnvSource) -> Result<Config> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            Error::config(format!(
                "invalid TOML at line {line}, column {col}: {}",
                e.message().trim()
            ))
        })?;
        let mut problems = Vec::new();
        let c = Self::from_table(table, env, &mut problems);
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(Error::config(problems.join("; ")))
        }
    }

    fn from_table(mut t: toml::Table, env: EnvSource, problems: &mut Vec<String>) -> Config {
        for k in t.keys() {
            if !TOP_KEYS.contains(&k.as_str()) {
                problems.push(format!(
                    "{k}: unknown key (expected one of: {})",
                    TOP_KEYS.join(", ")
                ));
            }
        }
        let default_profile = match t.remove("default_profile") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(_) => {
                problems.push("default_profile: must be a string".into());
                None
            }
        };

        let mut catalog = CatalogConfig::default();
        match t.remove("catalog") {
            None => {}
            Some(toml::Value::Table(ct)) => {
                for (k, v) in ct {
                    let path = format!("catalog.{k}");
                    if !CATALOG_KEYS.contains(&k.as_str()) {
                        problems.push(format!(
                            "{path}: unknown key (expected one of: {})",
                            CATALOG_KEYS.join(", ")
                        ));
                        continue;
                    }
                    match v {
                        toml::Value::String(s) => match expand_vars(&s, &env) {
                            Ok(s) => {
                                let p = Some(PathBuf::from(s));
                                if k == "products" {
                                    catalog.products = p;
                                } else {
                                    catalog.events = p;
                                }
                            }
                            Err(e) => problems.push(format!("{path}: {e}")),
                        },
                        _ => problems.push(format!("{path}: must be a file path string")),
                    }
                }
            }
            Some(_) => problems.push("catalog: must be a table".into()),
        }

        let mut providers = BTreeMap::new();
        let mut lower_names: HashMap<String, String> = HashMap::new();
        match t.remove("providers") {
            None => problems.push("providers: no provider is defined".into()),
            Some(toml::Value::Table(pt)) => {
                for (name, v) in pt {
                    let path = format!("providers.{name}");
                    if !valid_name(&name) {
                        problems.push(format!(
                            "{path}: provider names use letters, digits, '_' and '-' only"
                        ));
                    }
                    if let Some(prev) = lower_names.insert(name.to_ascii_lowercase(), name.clone())
                    {
                        problems.push(format!(
                            "{path}: duplicate provider name (differs from {prev:?} only in case)"
                        ));
                    }
                    let toml::Value::Table(mut pt) = v else {
                        problems.push(format!("{path}: must be a table"));
                        continue;
                    };
                    let kind = match pt.remove("kind") {
                        Some(toml::Value::String(s)) => s,
                        Some(_) => {
                            problems.push(format!("{path}.kind: must be a string"));
                            continue;
                        }
                        None => {
                            problems.push(format!(
                                "{path}.kind: missing (the adapter kind, e.g. \"rules\")"
                            ));
                            continue;
                        }
                    };
                    let mut take_str = |key: &str, pt: &mut toml::Table| match pt.remove(key) {
                        None => None,
                        Some(toml::Value::String(s)) => Some(s),
                        Some(_) => {
                            problems.push(format!("{path}.{key}: must be a string"));
                            None
                        }
                    };
                    let region = take_str("region", &mut pt);
                    let api_key_env = take_str("api_key_env", &mut pt);
                    for (k, v) in pt.iter_mut() {
                        if is_secret_key(k) {
                            problems.push(format!(
                                "{path}.{k}: secrets must not be written in the config file; name an environment variable with {k}_env instead"
                            ));
                            continue;
                        }
                        if let Err(e) = expand_value(v, &env) {
                            problems.push(format!("{path}.{k}: {e}"));
                        }
                    }
                    providers.insert(
                        name.clone(),
                        ProviderConfig {
                            name,
                            kind,
                            region,
                            api_key_env,
                            options: pt,
                            env: env.clone(),
                        },
                    );
                }
            }
            Some(_) => problems.push("providers: must be a table of [providers.NAME]".into()),
        }

        let mut profiles = BTreeMap::new();
        match t.remove("profiles") {
            None => problems.push("profiles: no profile is defined".into()),
            Some(toml::Value::Table(pt)) => {
                for (name, v) in pt {
                    let path = format!("profiles.{name}");
                    let toml::Value::Table(pt) = v else {
                        problems.push(format!("{path}: must be a table"));
                        continue;
                    };
                    let mut profile = Profile {
                        name: name.clone(),
                        ..Default::default()
                    };
                    for (k, v) in pt {
                        match (k.as_str(), v) {
                            ("description", toml::Value::String(s)) => {
                                profile.description = Some(s)
                            }
                            ("routes", toml::Value::Table(rt)) => {
                                for (cap, list) in rt {
                                    let rpath = format!("{path}.routes.{cap}");
                                    let Some(c) = Capability::parse(&cap) else {
                                        problems.push(format!(
                                            "{rpath}: unknown capability (expected one of: search, recommend, chat, forecast)"
                                        ));
                                        continue;
                                    };
                                    let toml::Value::Array(items) = list else {
                                        problems.push(format!(
                                            "{rpath}: must be a list of provider names"
                                        ));
                                        continue;
                                    };
                                    let mut names: Vec<String> = Vec::new();
                                    for (i, item) in items.into_iter().enumerate() {
                                        let ipath = format!("{rpath}[{i}]");
                                        let toml::Value::String(pn) = item else {
                                            problems
                                                .push(format!("{ipath}: must be a provider name"));
                                            continue;
                                        };
                                        if !providers.contains_key(&pn) {
                                            problems.push(format!(
                                                "{ipath}: provider {pn:?} is not defined (defined: {})",
                                                list_or_none(providers.keys())
                                            ));
                                        }
                                        if names.contains(&pn) {
                                            problems.push(format!(
                                                "{ipath}: provider {pn:?} appears twice in the route"
                                            ));
                                        }
                                        names.push(pn);
                                    }
                                    if names.is_empty() {
                                        problems.push(format!("{rpath}: the route is empty"));
                                    }
                                    profile.routes.insert(c, names);
                                }
                            }
                            ("cache", v) => {
                                let cpath = format!("{path}.cache");
                                match v.try_into::<CacheConfig>() {
                                    Ok(c) => {
                                        if let Err(e) = c.validate(&cpath) {
                                            problems.push(e.message().to_owned());
                                        }
                                        profile.cache = Some(c);
                                    }
                                    Err(e) => {
                                        problems.push(format!("{cpath}: {}", e.message().trim()))
                                    }
                                }
                            }
                            ("layers", v) => {
                                let lpath = format!("{path}.layers");
                                match v.try_into::<LayersConfig>() {
                                    Ok(l) => {
                                        if let Err(e) = l.validate(&lpath) {
                                            problems.push(e.message().to_owned());
                                        }
                                        for name in l.providers.keys() {
                                            if !providers.contains_key(name) {
                                                problems.push(format!(
                                                    "{lpath}.providers.{name}: provider {name:?} is not defined"
                                                ));
                                            }
                                        }
                                        profile.layers = l;
                                    }
                                    Err(e) => {
                                        problems.push(format!("{lpath}: {}", e.message().trim()))
                                    }
                                }
                            }
                            ("hybrid", toml::Value::Table(ht)) => {
                                profile.hybrid_search =
                                    parse_hybrid(&path, ht, &providers, problems);
                            }
                            ("hybrid", _) => {
                                problems.push(format!("{path}.hybrid: must be a table"))
                            }
                            ("routes", _) => {
                                problems.push(format!("{path}.routes: must be a table"))
                            }
                            ("description", _) => {
                                problems.push(format!("{path}.description: must be a string"))
                            }
                            (other, _) => problems.push(format!(
                                "{path}.{other}: unknown key (expected one of: {})",
                                PROFILE_KEYS.join(", ")
                            )),
                        }
                    }
                    if profile.hybrid_search.is_some()
                        && profile.routes.contains_key(&Capability::Search)
                    {
                        problems.push(format!(
                            "{path}.routes.search: the search route is {path}.hybrid.search; \
                             remove routes.search (list fallbacks in the semantic and keyword sides)"
                        ));
                    }
                    profiles.insert(name, profile);
                }
            }
            Some(_) => problems.push("profiles: must be a table of [profiles.NAME]".into()),
        }

        if let Some(d) = &default_profile
            && !profiles.is_empty()
            && !profiles.contains_key(d)
        {
            problems.push(format!(
                "default_profile: profile {d:?} is not defined (defined: {})",
                list_or_none(profiles.keys())
            ));
        }

        Config {
            source: "<string>".into(),
            default_profile,
            providers,
            profiles,
            catalog,
            env,
        }
    }

    /// Where the config came from (a path, or `<string>`).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// All provider sections, by name.
    pub fn providers(&self) -> &BTreeMap<String, ProviderConfig> {
        &self.providers
    }
    /// One provider section.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.get(name)
    }
    /// All profiles, by name.
    pub fn profiles(&self) -> &BTreeMap<String, Profile> {
        &self.profiles
    }
    /// The `[catalog]` section.
    pub fn catalog(&self) -> &CatalogConfig {
        &self.catalog
    }
    /// The environment variables are read from.
    pub fn env(&self) -> &EnvSource {
        &self.env
    }

    /// Picks a profile: `requested`, else `MERCHANT_AI_PROFILE`, else `default_profile`, else the
    /// only profile. An unknown name is an error listing the defined profiles.
    pub fn profile(&self, requested: Option<&str>) -> Result<&Profile> {
        let from_env = self
            .env
            .get("MERCHANT_AI_PROFILE")
            .filter(|s| !s.is_empty());
        let (name, origin) = match (requested, from_env, &self.default_profile) {
            (Some(r), _, _) => (r.to_owned(), "requested"),
            (None, Some(e), _) => (e, "MERCHANT_AI_PROFILE"),
            (None, None, Some(d)) => (d.clone(), "default_profile"),
            (None, None, None) if self.profiles.len() == 1 => {
                return Ok(self.profiles.values().next().expect("one profile"));
            }
            (None, None, None) => {
                return Err(Error::config(format!(
                    "no profile chosen: pass one, set MERCHANT_AI_PROFILE or default_profile (defined: {})",
                    list_or_none(self.profiles.keys())
                )));
            }
        };
        self.profiles.get(&name).ok_or_else(|| {
            Error::config(format!(
                "profile {name:?} ({origin}) is not defined (defined: {})",
                list_or_none(self.profiles.keys())
            ))
        })
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn list_or_none<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn expand_value(v: &mut toml::Value, env: &EnvSource) -> std::result::Result<(), String> {
    match v {
        toml::Value::String(s) => {
            *s = expand_vars(s, env)?;
            Ok(())
        }
        toml::Value::Array(a) => a.iter_mut().try_for_each(|x| expand_value(x, env)),
        toml::Value::Table(t) => t.iter_mut().try_for_each(|(_, x)| expand_value(x, env)),
        _ => Ok(()),
    }
}

/// Parses `[profiles.NAME.hybrid]`.
fn parse_hybrid(
    path: &str,
    ht: toml::Table,
    providers: &BTreeMap<String, ProviderConfig>,
    problems: &mut Vec<String>,
) -> Option<HybridRoute> {
    let mut out = None;
    for (cap, v) in ht {
        let hpath = format!("{path}.hybrid.{cap}");
        if cap != "search" {
            problems.push(format!(
                "{hpath}: unknown key (hybrid routes exist for: search)"
            ));
            continue;
        }
        let toml::Value::Table(mut t) = v else {
            problems.push(format!("{hpath}: must be a table"));
            continue;
        };
        let mut side = |key: &str, t: &mut toml::Table| -> Vec<String> {
            let spath = format!("{hpath}.{key}");
            let items = match t.remove(key) {
                None => {
                    problems.push(format!(
                        "{spath}: missing (a provider name or a list of them)"
                    ));
                    return Vec::new();
                }
                Some(toml::Value::String(s)) => vec![toml::Value::String(s)],
                Some(toml::Value::Array(a)) => a,
                Some(_) => {
                    problems.push(format!(
                        "{spath}: must be a provider name or a list of them"
                    ));
                    return Vec::new();
                }
            };
            let mut names: Vec<String> = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let toml::Value::String(pn) = item else {
                    problems.push(format!("{spath}[{i}]: must be a provider name"));
                    continue;
                };
                if !providers.contains_key(&pn) {
                    problems.push(format!(
                        "{spath}[{i}]: provider {pn:?} is not defined (defined: {})",
                        list_or_none(providers.keys())
                    ));
                }
                if names.contains(&pn) {
                    problems.push(format!("{spath}[{i}]: provider {pn:?} appears twice"));
                }
                names.push(pn);
            }
            if names.is_empty() {
                problems.push(format!("{spath}: the side is empty"));
            }
            names
        };
        let semantic = side("semantic", &mut t);
        let keyword = side("keyword", &mut t);
        let config = match toml::Value::Table(t).try_into::<HybridConfig>() {
            Ok(c) => {
                if let Err(e) = c.validate() {
                    problems.push(format!(
                        "{hpath}.{}",
                        e.message().trim_start_matches("hybrid.")
                    ));
                }
                c
            }
            Err(e) => {
                problems.push(format!(
                    "{hpath}: {} (expected semantic, keyword, k, semantic_weight, keyword_weight, \
                     window_factor, min_window, max_window)",
                    e.message().trim()
                ));
                HybridConfig::default()
            }
        };
        out = Some(HybridRoute {
            semantic,
            keyword,
            config,
        });
    }
    out
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
pub fn expand_vars(s: &str, env: &EnvSource) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err("unclosed ${ in value".into());
            };
            let expr = &body[..end];
            let (var, default) = match expr.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (expr, None),
            };
            if !valid_name(var) {
                return Err(format!("${{{expr}}} is not a valid variable reference"));
            }
            match (env.get(var).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {var} is not set (used as ${{{var}}})"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables() {
        let env = EnvSource::from_map([("A", "/opt/a")]);
        assert_eq!(expand_vars("${A}/x", &env).unwrap(), "/opt/a/x");
        assert_eq!(expand_vars("${B:-/tmp}/x", &env).unwrap(), "/tmp/x");
        assert_eq!(expand_vars("cost $$5", &env).unwrap(), "cost $5");
        assert_eq!(expand_vars("plain $x", &env).unwrap(), "plain $x");
        assert!(
            expand_vars("${B}", &env)
                .unwrap_err()
                .contains("B is not set")
        );
        assert!(expand_vars("${A", &env).is_err());
    }

    #[test]
    fn secret_keys() {
        assert!(is_secret_key("api_key"));
        assert!(is_secret_key("access_key_secret"));
        assert!(!is_secret_key("api_key_env"));
        assert!(!is_secret_key("max_tokens"));
        assert!(!is_secret_key("model"));
    }
}
