//! Layers wrap a capability (`Arc<dyn Trait>` in, `Arc<dyn Trait>` out) to add behaviour
//! around every call. The crate docs (*Layer order*) say where each one sits; per provider
//! the order, outermost first, is breaker -> retry -> limits -> timeout -> chaos -> adapter,
//! and the fallback chain runs over those stacks.
//!
//! Each profile configures the layers, with overrides per provider:
//!
//! ```toml
//! [profiles.prod.layers.retry]
//! max_attempts = 3
//! initial_backoff_ms = 100
//!
//! [profiles.prod.layers.timeout]
//! attempt_ms = 10000
//! first_event_ms = 5000
//! stall_ms = 20000
//!
//! [profiles.prod.layers.breaker]
//! cooldown_ms = 5000
//!
//! [profiles.prod.layers.providers.qwen.retry]   # only for provider `qwen`
//! max_attempts = 2
//!
//! [profiles.dev.layers.retry]
//! enabled = false
//! ```
//!
//! Without a `layers` table every layer runs with its defaults ([`RetryConfig`],
//! [`TimeoutConfig`], [`BreakerConfig`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::Deserialize;

use crate::api::{ChatModel, Forecaster, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{ChatEvent, ChatStream};

pub mod breaker;
pub mod cache;
pub mod chaos;
pub mod fallback;
pub mod limit;
pub mod observe;
pub mod policy;
pub mod retry;
mod rng;
pub mod shadow;
pub mod timeout;

pub use breaker::{Breaker, BreakerConfig, BreakerLayer, BreakerState};
pub use cache::CacheConfig;
pub use chaos::{Chaos, ChaosConfig, ChaosLayer};
pub use limit::{LimitConfig, LimitLayer, Limiter};
pub use policy::{PiiMode, PrivacyConfig, PrivacyPolicy};
pub use retry::{BudgetConfig, Retry, RetryBudget, RetryConfig, RetryEvent, RetryLayer};
pub use timeout::{TimeoutConfig, TimeoutLayer};

/// Waits for a stream's first event: `Ok` with it and the rest, or the error that came first.
pub async fn first_event(mut stream: ChatStream) -> Result<(ChatEvent, ChatStream)> {
    match stream.next().await {
        Some(Ok(ev)) => Ok((ev, stream)),
        Some(Err(e)) => Err(e),
        None => Err(Error::new(
            ErrorKind::Unavailable,
            "the stream ended before its first event",
        )),
    }
}

/// Puts an event back in front of the rest of its stream.
pub fn prepend(first: ChatEvent, rest: ChatStream) -> ChatStream {
    Box::pin(futures::stream::once(async move { Ok(first) }).chain(rest))
}

/// The layer settings of one provider (each `None` = the default).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerSettings {
    /// Retry policy.
    pub retry: Option<RetryConfig>,
    /// Timeouts.
    pub timeout: Option<TimeoutConfig>,
    /// Circuit breaker.
    pub breaker: Option<BreakerConfig>,
    /// Fault injection (off unless set).
    pub chaos: Option<ChaosConfig>,
    /// Concurrency and request-rate limits (off unless set).
    pub limits: Option<LimitConfig>,
}

/// `[profiles.NAME.layers]`: settings for every provider, and overrides per provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayersConfig {
    /// Retry policy of every provider.
    pub retry: Option<RetryConfig>,
    /// Timeouts of every provider.
    pub timeout: Option<TimeoutConfig>,
    /// Circuit breaker of every provider.
    pub breaker: Option<BreakerConfig>,
    /// Fault injection for every provider (off unless set).
    pub chaos: Option<ChaosConfig>,
    /// Limits for every provider (each provider gets its own limiter; off unless set).
    pub limits: Option<LimitConfig>,
    /// Per provider name, settings that replace the ones above.
    pub providers: BTreeMap<String, LayerSettings>,
}

impl LayersConfig {
    /// The settings for `provider`: its override where set, else the profile's, else defaults.
    pub fn for_provider(&self, provider: &str) -> LayerSettings {
        let o = self.providers.get(provider);
        LayerSettings {
            retry: o
                .and_then(|o| o.retry.clone())
                .or_else(|| self.retry.clone()),
            timeout: o
                .and_then(|o| o.timeout.clone())
                .or_else(|| self.timeout.clone()),
            breaker: o
                .and_then(|o| o.breaker.clone())
                .or_else(|| self.breaker.clone()),
            chaos: o
                .and_then(|o| o.chaos.clone())
                .or_else(|| self.chaos.clone()),
            limits: o
                .and_then(|o| o.limits.clone())
                .or_else(|| self.limits.clone()),
        }
    }

    /// Checks every value; errors name the key path under `path`.
    pub fn validate(&self, path: &str) -> Result<()> {
        let check = |p: &str, s: &LayerSettings| -> Result<()> {
            if let Some(r) = &s.retry {
                r.validate(&format!("{p}.retry"))?;
            }
            if let Some(t) = &s.timeout {
                t.validate(&format!("{p}.timeout"))?;
            }
            if let Some(b) = &s.breaker {
                b.validate(&format!("{p}.breaker"))?;
            }
            if let Some(c) = &s.chaos {
                c.validate(&format!("{p}.chaos"))?;
            }
            if let Some(l) = &s.limits {
                l.validate(&format!("{p}.limits"))?;
            }
            Ok(())
        };
        check(
            path,
            &LayerSettings {
                retry: self.retry.clone(),
                timeout: self.timeout.clone(),
                breaker: self.breaker.clone(),
                chaos: self.chaos.clone(),
                limits: self.limits.clone(),
            },
        )?;
        for (name, s) in &self.providers {
            check(&format!("{path}.providers.{name}"), s)?;
        }
        Ok(())
    }
}

/// The layers of one provider, shared by its four capabilities (one breaker, one retry budget).
#[derive(Debug, Clone)]
pub struct ProviderLayers {
    provider: String,
    retry: Option<Arc<Retry>>,
    timeout: Option<TimeoutConfig>,
    breaker: Option<Arc<Breaker>>,
    limiter: Option<Arc<Limiter>>,
    chaos: Arc<Chaos>,
}

impl ProviderLayers {
    /// No layer at all (the adapter as it is).
    pub fn none(provider: impl Into<String>) -> Self {
        let provider = provider.into();
        ProviderLayers {
            chaos: Arc::new(Chaos::new(provider.clone(), None)),
            provider,
            retry: None,
            timeout: None,
            breaker: None,
            limiter: None,
        }
    }

    /// The layers `settings` ask for, defaults where unset, skipping disabled ones.
    pub fn new(provider: impl Into<String>, settings: &LayerSettings) -> Self {
        let provider = provider.into();
        let retry = settings.retry.clone().unwrap_or_default();
        let timeout = settings.timeout.clone().unwrap_or_default();
        let breaker = settings.breaker.clone().unwrap_or_default();
        ProviderLayers {
            retry: retry
                .enabled
                .then(|| Arc::new(Retry::new(provider.clone(), retry))),
            timeout: timeout.enabled.then_some(timeout),
            breaker: breaker
                .enabled
                .then(|| Arc::new(Breaker::new(provider.clone(), breaker))),
            limiter: settings
                .limits
                .as_ref()
                .filter(|l| {
                    l.enabled
                        && (l.max_concurrent.is_some()
                            || l.requests_per_minute.is_some()
                            || l.tokens_per_minute.is_some())
                })
                .map(|l| Arc::new(Limiter::new(provider.clone(), l))),
            chaos: Arc::new(Chaos::new(provider.clone(), settings.chaos.clone())),
            provider,
        }
    }

    /// The provider these layers belong to.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Replaces the retry state (e.g. one with an observer).
    #[must_use]
    pub fn with_retry(mut self, retry: Option<Arc<Retry>>) -> Self {
        self.retry = retry;
        self
    }

    /// The provider's breaker, if enabled.
    pub fn breaker(&self) -> Option<&Arc<Breaker>> {
        self.breaker.as_ref()
    }

    /// The provider's chaos switch (always present; injects nothing unless configured or
    /// forced down).
    pub fn chaos(&self) -> &Arc<Chaos> {
        &self.chaos
    }

    /// The provider's retry state, if enabled.
    pub fn retry(&self) -> Option<&Arc<Retry>> {
        self.retry.as_ref()
    }

    /// Wraps one capability handle: breaker -> retry -> limits -> timeout -> chaos -> `s`.
    pub fn wrap<T: ?Sized + Layered>(&self, s: Arc<T>) -> Arc<T> {
        let mut s = T::chaos(s, self.chaos.clone());
        if let Some(t) = &self.timeout {
            s = T::timeout(s, &self.provider, t.clone());
        }
        if let Some(l) = &self.limiter {
            s = T::limit(s, l.clone());
        }
        if let Some(r) = &self.retry {
            s = T::retry(s, r.clone());
        }
        if let Some(b) = &self.breaker {
            s = T::breaker(s, b.clone());
        }
        s
    }
}

/// A capability trait object the standard layers can wrap (`dyn Searcher`, `dyn Recommender`,
/// `dyn ChatModel`, `dyn Forecaster`).
pub trait Layered: 'static {
    /// Wraps with a [`TimeoutLayer`].
    fn timeout(inner: Arc<Self>, provider: &str, cfg: TimeoutConfig) -> Arc<Self>;
    /// Wraps with a [`RetryLayer`].
    fn retry(inner: Arc<Self>, retry: Arc<Retry>) -> Arc<Self>;
    /// Wraps with a [`BreakerLayer`].
    fn breaker(inner: Arc<Self>, breaker: Arc<Breaker>) -> Arc<Self>;
    /// Wraps with a [`ChaosLayer`].
    fn chaos(inner: Arc<Self>, chaos: Arc<Chaos>) -> Arc<Self>;
    /// Wraps with a [`LimitLayer`].
    fn limit(inner: Arc<Self>, limiter: Arc<Limiter>) -> Arc<Self>;
}

macro_rules! layered {
    ($($t:ident),*) => {$(
        impl Layered for dyn $t {
            fn timeout(inner: Arc<Self>, provider: &str, cfg: TimeoutConfig) -> Arc<Self> {
                Arc::new(TimeoutLayer::new(inner, provider, cfg))
            }
            fn retry(inner: Arc<Self>, retry: Arc<Retry>) -> Arc<Self> {
                Arc::new(RetryLayer::new(inner, retry))
            }
            fn breaker(inner: Arc<Self>, breaker: Arc<Breaker>) -> Arc<Self> {
                Arc::new(BreakerLayer::new(inner, breaker))
            }
            fn chaos(inner: Arc<Self>, chaos: Arc<Chaos>) -> Arc<Self> {
                Arc::new(ChaosLayer::new(inner, chaos))
            }
            fn limit(inner: Arc<Self>, limiter: Arc<Limiter>) -> Arc<Self> {
                Arc::new(LimitLayer::new(inner, limiter))
            }
        }
    )*};
}

layered!(Searcher, Recommender, ChatModel, Forecaster);

/// A provider whose capability handles come wrapped in its [`ProviderLayers`], e.g. to run the
/// contract suite or a drill against a layered stack.
#[derive(Debug)]
pub struct LayeredProvider {
    inner: Arc<dyn crate::Provider>,
    layers: ProviderLayers,
}

impl LayeredProvider {
    /// Wraps every handle of `inner` with `layers`.
    pub fn new(inner: Arc<dyn crate::Provider>, layers: ProviderLayers) -> Self {
        LayeredProvider { inner, layers }
    }
    /// The layers.
    pub fn layers(&self) -> &ProviderLayers {
        &self.layers
    }
}

impl crate::Provider for LayeredProvider {
    fn info(&self) -> &crate::ProviderInfo {
        self.inner.info()
    }
    fn searcher(&self) -> Option<Arc<dyn Searcher>> {
        self.inner.searcher().map(|h| self.layers.wrap(h))
    }
    fn recommender(&self) -> Option<Arc<dyn Recommender>> {
        self.inner.recommender().map(|h| self.layers.wrap(h))
    }
    fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        self.inner.chat_model().map(|h| self.layers.wrap(h))
    }
    fn forecaster(&self) -> Option<Arc<dyn Forecaster>> {
        self.inner.forecaster().map(|h| self.layers.wrap(h))
    }
    fn eraser(&self) -> Option<Arc<dyn crate::erasure::SubjectEraser>> {
        self.inner.eraser()
    }
}
