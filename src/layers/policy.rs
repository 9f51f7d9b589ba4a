//! Privacy policy at the gate of every provider: consent, data residency and PII redaction.
//!
//! Each provider of a route sits behind a gate that decides, before a byte leaves the process,
//! whether that provider may receive the request and in what form:
//!
//! - **Consent.** A subject who denied AI processing ([`Consent::Denied`]) never reaches a
//!   provider whose data leaves the process; `consent_unknown = "deny"` treats an unknown
//!   consent the same way. Recorded events carry their own [`Event::consent`]: those without
//!   consent are withheld from such a provider (the rest of the batch goes through).
//! - **Residency.** `residency.REGION.CLASS = [jurisdictions]` says which jurisdictions may
//!   receive data of class `CLASS` about subjects of `REGION` (`"*"` as a region: every other
//!   region; `"*"` in the list: anywhere). A remote provider whose jurisdiction is not listed,
//!   or unknown, may not receive it. In-process providers always may.
//! - **PII.** Per provider, `redact` (the default for remote providers) replaces personal data
//!   with typed placeholders before the call and puts the values back in the answer (chat text,
//!   streamed deltas, reasoning, tool-call arguments); `block` refuses the provider when the
//!   request holds personal data; `allow` (the default for in-process providers) sends it as is.
//!
//! A refused provider is skipped like a failed one: the route goes on with the next provider
//! ([`FallbackNote`] reason `policy`, plus a [`PolicyNote`] naming the rule), and when none is
//! left the call ends with [`ErrorKind::PolicyDenied`] naming the rules. The served response's
//! [`ResponseMeta::governance`] lists the redaction counts by kind (never the values) and every
//! policy outcome.
//!
//! ```toml
//! [profiles.prod.privacy]
//! consent_unknown = "allow"      # allow | deny
//! pii = "redact"                 # remote providers: redact | block | allow
//! detect = ["email", "phone", "card", "cn_id", "iban", "ip"]   # the default
//! names = ["Alice Smith", "张伟"]  # optional: names to redact
//! addresses = ["12 Baker Street"] # optional: street addresses to redact
//!
//! [profiles.prod.privacy.providers.qwen]
//! pii = "block"
//!
//! [profiles.prod.privacy.residency.CN]   # subjects living in CN
//! personal = ["CN"]
//! sensitive = []                 # in-process providers only
//! public = ["*"]
//!
//! [profiles.prod.privacy.residency."*"]  # everyone else
//! sensitive = []
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::api::{Capability, ChatModel, Forecaster, ProviderInfo, Recommender, Searcher};
use crate::error::{Error, ErrorKind, Result};
use crate::redact::{DetectConfig, PiiKind, Redactor, StreamRestorer, Vault};
use crate::registry::RouteTable;
use crate::types::*;

/// What to do with personal data in a request to one provider.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiMode {
    /// Replace it with placeholders, restore the answer.
    Redact,
    /// Do not send the request to this provider when it holds personal data.
    Block,
    /// Send it as it is.
    Allow,
}

impl PiiMode {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiMode::Redact => "redact",
            PiiMode::Block => "block",
            PiiMode::Allow => "allow",
        }
    }
}

/// What an unknown consent means.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDefault {
    /// Treat it as granted.
    #[default]
    Allow,
    /// Treat it as denied.
    Deny,
}

/// One provider's overrides: `[profiles.NAME.privacy.providers.PROVIDER]`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderPrivacy {
    /// The PII mode for this provider.
    pub pii: Option<PiiMode>,
}

/// `[profiles.NAME.privacy]`. See the [module docs](self).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// What an unknown consent means (default `allow`).
    pub consent_unknown: ConsentDefault,
    /// The PII mode of remote providers (default `redact`; in-process providers: `allow`).
    pub pii: PiiMode,
    /// Kinds to find (default: every structured kind).
    pub detect: Vec<PiiKind>,
    /// Names of people to redact.
    pub names: Vec<String>,
    /// Street addresses to redact.
    pub addresses: Vec<String>,
    /// Per provider overrides.
    pub providers: BTreeMap<String, ProviderPrivacy>,
    /// Subject region (or `"*"`) -> data class -> jurisdictions that may receive it.
    pub residency: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            consent_unknown: ConsentDefault::Allow,
            pii: PiiMode::Redact,
            detect: DetectConfig::default().detect,
            names: Vec::new(),
            addresses: Vec::new(),
            providers: BTreeMap::new(),
            residency: BTreeMap::new(),
        }
    }
}

const CLASSES: [DataClass; 4] = [
    DataClass::Public,
    DataClass::Internal,
    DataClass::Personal,
    DataClass::Sensitive,
];

impl PrivacyConfig {
    /// Checks the values; errors name the key path under `path`.
    pub fn validate(&self, path: &str) -> Result<()> {
        let mut problems = Vec::new();
        for (region, classes) in &self.residency {
            if region != "*" && !valid_code(region) {
                problems.push(format!(
                    "{path}.residency.{region}: not a jurisdiction code (letters, e.g. \"CN\", or \"*\")"
                ));
            }
            for (class, list) in classes {
                let kp = format!("{path}.residency.{region}.{class}");
                if !CLASSES.iter().any(|c| c.as_str() == class) {
                    problems.push(format!(
                        "{kp}: unknown data class (expected one of: public, internal, personal, sensitive)"
                    ));
                }
                for (i, j) in list.iter().enumerate() {
                    if j != "*" && !valid_code(j) {
                        problems.push(format!(
                            "{kp}[{i}]: {j:?} is not a jurisdiction code (e.g. \"CN\", or \"*\")"
                        ));
                    }
                }
            }
        }
        if let Err(e) = Redactor::new(&self.detect_config(), path) {
            problems.push(e.message().to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::config(problems.join("; ")))
        }
    }

    fn detect_config(&self) -> DetectConfig {
        DetectConfig {
            detect: self.detect.clone(),
            names: self.names.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

fn valid_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= 8 && s.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
}

/// Why a provider may not receive a request: the rule and what was done.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySkip {
    /// The rule: `consent`, `consent_unknown`, `residency.CN.personal`, `pii`.
    pub rule: String,
    /// What happened: `skipped` or `blocked`.
    pub action: String,
}

impl fmt::Display for PolicySkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({})", self.rule, self.action)
    }
}

impl std::error::Error for PolicySkip {}

impl PolicySkip {
    fn into_error(self, provider: &str, why: String) -> Error {
        Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "provider {provider:?} may not receive this request: {why} (rule {})",
                self.rule
            ),
        )
        .with_provider(provider)
        .with_retryable(false)
        .with_source(self)
    }
}

/// The policy skip behind an error, if a gate refused a provider.
pub fn skip_of(e: &Error) -> Option<&PolicySkip> {
    if e.kind() != ErrorKind::PolicyDenied {
        return None;
    }
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<PolicySkip>())
}

/// A profile's privacy rules, compiled. Shared by the gates of every provider.
#[derive(Debug, Clone)]
pub struct PrivacyPolicy {
    cfg: PrivacyConfig,
    path: String,
    redactor: Redactor,
}

impl Default for PrivacyPolicy {
    fn default() -> Self {
        PrivacyPolicy {
            cfg: PrivacyConfig::default(),
            path: "privacy".into(),
            redactor: Redactor::standard(),
        }
    }
}

impl PrivacyPolicy {
    /// Compiles `cfg`; `path` (e.g. `profiles.prod.privacy`) prefixes rule key paths in errors.
    pub fn new(cfg: PrivacyConfig, path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        cfg.validate(&path)?;
        let redactor = Redactor::new(&cfg.detect_config(), &path)?;
        Ok(PrivacyPolicy {
            cfg,
            path,
            redactor,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PrivacyConfig {
        &self.cfg
    }

    /// The redactor.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The PII mode for a provider.
    pub fn pii_mode(&self, provider: &str, info: &ProviderInfo) -> PiiMode {
        match self.cfg.providers.get(provider).and_then(|p| p.pii) {
            Some(m) => m,
            None if info.data_leaves_process => self.cfg.pii,
            None => PiiMode::Allow,
        }
    }

    /// The residency list that applies to a subject region and data class, with its rule
    /// name (`residency.CN.personal`).
    fn residency_rule(
        &self,
        region: Option<&Jurisdiction>,
        class: DataClass,
    ) -> Option<(String, &Vec<String>)> {
        let region_key = region.and_then(|r| {
            self.cfg
                .residency
                .keys()
                .find(|k| k.as_str() != "*" && k.eq_ignore_ascii_case(r.as_str()))
        });
        let lookup = |key: &String| {
            self.cfg
                .residency
                .get(key)
                .and_then(|m| m.get(class.as_str()))
                .map(|l| (format!("residency.{key}.{}", class.as_str()), l))
        };
        region_key
            .and_then(lookup)
            .or_else(|| lookup(&"*".to_owned()))
    }

    /// Whether `info` may receive a request under `ctx` (consent and residency).
    pub fn admit(
        &self,
        info: &ProviderInfo,
        ctx: &RequestContext,
    ) -> std::result::Result<(), (PolicySkip, String)> {
        if !info.data_leaves_process {
            return Ok(());
        }
        match ctx.consent {
            Consent::Denied => {
                return Err((
                    PolicySkip {
                        rule: "consent".into(),
                        action: "skipped".into(),
                    },
                    "the subject denied AI processing and data would leave the process".into(),
                ));
            }
            Consent::Unknown if self.cfg.consent_unknown == ConsentDefault::Deny => {
                return Err((
                    PolicySkip {
                        rule: "consent_unknown".into(),
                        action: "skipped".into(),
                    },
                    format!(
                        "the subject's consent is unknown and {}.consent_unknown is \"deny\"",
                        self.path
                    ),
                ));
            }
            _ => {}
        }
        if let Some((rule, list)) = self.residency_rule(ctx.subject_region.as_ref(), ctx.data_class)
        {
            let ok = list.iter().any(|j| {
                j == "*"
                    || info
                        .jurisdiction
                        .as_ref()
                        .is_some_and(|pj| pj.as_str().eq_ignore_ascii_case(j))
            });
            if !ok {
                let place = info
                    .jurisdiction
                    .as_ref()
                    .map_or("an undeclared jurisdiction".to_owned(), |j| {
                        format!("jurisdiction {j}")
                    });
                return Err((
                    PolicySkip {
                        rule: rule.clone(),
                        action: "skipped".into(),
                    },
                    format!(
                        "{} data may not go to {place} ({}.{rule} allows {})",
                        ctx.data_class.as_str(),
                        self.path,
                        if list.is_empty() {
                            "in-process providers only".to_owned()
                        } else {
                            list.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One provider's gate: its identity and the shared policy.
#[derive(Debug, Clone)]
pub struct Gate {
    name: String,
    info: ProviderInfo,
    policy: Arc<PrivacyPolicy>,
}

impl Gate {
    /// A gate for provider `name`.
    pub fn new(name: impl Into<String>, info: ProviderInfo, policy: Arc<PrivacyPolicy>) -> Self {
        Gate {
            name: name.into(),
            info,
            policy,
        }
    }

    /// Whether `event` may reach this provider: always in process; outside, only with the
    /// subject's consent (or unknown consent when the profile allows it).
    fn admits_event(&self, event: &Event) -> bool {
        if !self.info.data_leaves_process {
            return true;
        }
        match event.consent {
            Consent::Denied => false,
            Consent::Unknown => self.policy.cfg.consent_unknown != ConsentDefault::Deny,
            _ => true,
        }
    }

    fn admit(&self, ctx: &RequestContext) -> Result<PiiMode> {
        self.policy
            .admit(&self.info, ctx)
            .map_err(|(skip, why)| skip.into_error(&self.name, why))?;
        Ok(self.policy.pii_mode(&self.name, &self.info))
    }

    fn blocked(&self, kinds: &BTreeMap<String, u32>) -> Error {
        let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        PolicySkip {
            rule: "pii".into(),
            action: "blocked".into(),
        }
        .into_error(
            &self.name,
            format!(
                "the request holds personal data ({}) and its PII mode is \"block\"",
                list.join(", ")
            ),
        )
    }

    fn note(&self, meta: &mut ResponseMeta, vault: &Vault) {
        if vault.is_empty() {
            return;
        }
        for (k, n) in vault.counts() {
            *meta.governance.redactions.entry(k.clone()).or_insert(0) += n;
        }
        meta.governance
            .policy
            .push(PolicyNote::new(self.name.as_str(), "pii", "redacted"));
    }

    /// Redacts a chat request in place; `None` when the mode sends it as it is.
    fn prepare_chat(&self, req: &mut ChatRequest) -> Result<Option<Vault>> {
        match self.admit(&req.ctx)? {
            PiiMode::Allow => Ok(None),
            PiiMode::Block => {
                let mut counts = BTreeMap::new();
                let r = self.policy.redactor();
                for m in &req.messages {
                    let mut texts: Vec<String> = vec![m.text()];
                    texts.extend(m.tool_calls.iter().map(|c| c.arguments.clone()));
                    for t in texts {
                        for (k, n) in r.count(&t) {
                            *counts.entry(k).or_insert(0) += n;
                        }
                    }
                }
                if counts.is_empty() {
                    Ok(None)
                } else {
                    Err(self.blocked(&counts))
                }
            }
            PiiMode::Redact => {
                let r = self.policy.redactor();
                let mut vault = Vault::new();
                for m in &mut req.messages {
                    for p in &mut m.content {
                        if let ContentPart::Text { text } = p {
                            *text = vault.redact(r, text);
                        }
                    }
                    for c in &mut m.tool_calls {
                        c.arguments = vault.redact(r, &c.arguments);
                    }
                }
                Ok(Some(vault))
            }
        }
    }

    /// Redacts a search request in place.
    fn prepare_search(&self, req: &mut SearchRequest) -> Result<Option<Vault>> {
        match self.admit(&req.ctx)? {
            PiiMode::Allow => Ok(None),
            PiiMode::Block => {
                let counts = self.policy.redactor().count(&req.query);
                if counts.is_empty() {
                    Ok(None)
                } else {
                    Err(self.blocked(&counts))
                }
            }
            PiiMode::Redact => {
                let mut vault = Vault::new();
                req.query = vault.redact(self.policy.redactor(), &req.query);
                Ok(Some(vault))
            }
        }
    }
}

/// A capability wrapped in its provider's [`Gate`].
#[derive(Debug)]
pub struct Gated<T: ?Sized> {
    inner: Arc<T>,
    gate: Gate,
}

impl<T: ?Sized> Gated<T> {
    /// Wraps `inner` behind `gate`.
    pub fn new(inner: Arc<T>, gate: Gate) -> Self {
        Gated { inner, gate }
    }
}

#[async_trait]
impl Searcher for Gated<dyn Searcher> {
    async fn upsert(&self, products: Vec<Product>) -> Result<IndexReport> {
        self.inner.upsert(products).await
    }
    async fn remove(&self, ids: Vec<ProductId>) -> Result<IndexReport> {
        self.inner.remove(ids).await
    }
    async fn search(&self, mut req: SearchRequest) -> Result<SearchResponse> {
        let vault = self.gate.prepare_search(&mut req)?;
        let mut r = self.inner.search(req).await?;
        if let Some(v) = &vault {
            self.gate.note(&mut r.meta, v);
        }
        Ok(r)
    }
}

#[async_trait]
impl Recommender for Gated<dyn Recommender> {
    async fn record(&self, events: Vec<Event>) -> Result<()> {
        let before = events.len();
        let kept: Vec<Event> = events
            .into_iter()
            .filter(|e| self.gate.admits_event(e))
            .collect();
        if kept.len() < before {
            tracing::debug!(
                provider = %self.gate.name,
                withheld = before - kept.len(),
                "events withheld from a provider outside the process (consent)"
            );
        }
        if kept.is_empty() {
            return Ok(());
        }
        self.inner.record(kept).await
    }
    async fn recommend(&self, req: RecommendRequest) -> Result<RecommendResponse> {
        self.gate.admit(&req.ctx)?;
        self.inner.recommend(req).await
    }
}

#[async_trait]
impl Forecaster for Gated<dyn Forecaster> {
    async fn forecast(&self, req: ForecastRequest) -> Result<ForecastResponse> {
        self.gate.admit(&req.ctx)?;
        self.inner.forecast(req).await
    }
}

fn restore_response(vault: &Vault, r: &mut ChatResponse) {
    r.text = vault.restore(&r.text);
    if let Some(x) = &r.reasoning {
        r.reasoning = Some(vault.restore(x));
    }
    for c in &mut r.tool_calls {
        c.arguments = vault.restore_json(&c.arguments);
    }
}

/// Restores every event of one stream, holding back split placeholders.
struct StreamState {
    vault: Vault,
    text: StreamRestorer,
    reasoning: StreamRestorer,
    calls: BTreeMap<usize, StreamRestorer>,
}

impl StreamState {
    fn map(&mut self, ev: ChatEvent, gate: &Gate) -> Vec<ChatEvent> {
        let v = &self.vault;
        match ev {
            ChatEvent::TextDelta { text } => {
                let t = self.text.push(v, &text);
                if t.is_empty() {
                    vec![]
                } else {
                    vec![ChatEvent::TextDelta { text: t }]
                }
            }
            ChatEvent::ReasoningDelta { text } => {
                let t = self.reasoning.push(v, &text);
                if t.is_empty() {
                    vec![]
                } else {
                    vec![ChatEvent::ReasoningDelta { text: t }]
                }
            }
            ChatEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let a = self
                    .calls
                    .entry(index)
                    .or_insert_with(StreamRestorer::json)
                    .push(v, &arguments);
                vec![ChatEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments: a,
                }]
            }
            ChatEvent::ToolCall { mut call } => {
                call.arguments = v.restore_json(&call.arguments);
                vec![ChatEvent::ToolCall { call }]
            }
            ChatEvent::Finished {
                finish_reason,
                mut meta,
            } => {
                let mut out = Vec::new();
                let r = self.reasoning.finish(v);
                if !r.is_empty() {
                    out.push(ChatEvent::ReasoningDelta { text: r });
                }
                let t = self.text.finish(v);
                if !t.is_empty() {
                    out.push(ChatEvent::TextDelta { text: t });
                }
                for (index, c) in &mut self.calls {
                    let a = c.finish(v);
                    if !a.is_empty() {
                        out.push(ChatEvent::ToolCallDelta {
                            index: *index,
                            id: None,
                            name: None,
                            arguments: a,
                        });
                    }
                }
                gate.note(&mut meta, v);
                out.push(ChatEvent::Finished {
                    finish_reason,
                    meta,
                });
                out
            }
            other => vec![other],
        }
    }
}

#[async_trait]
impl ChatModel for Gated<dyn ChatModel> {
    async fn chat(&self, mut req: ChatRequest) -> Result<ChatResponse> {
        let vault = self.gate.prepare_chat(&mut req)?;
        let mut r = self.inner.chat(req).await?;
        if let Some(v) = &vault {
            restore_response(v, &mut r);
            self.gate.note(&mut r.meta, v);
        }
        Ok(r)
    }

    async fn chat_stream(&self, mut req: ChatRequest) -> Result<ChatStream> {
        let vault = self.gate.prepare_chat(&mut req)?;
        let stream = self.inner.chat_stream(req).await?;
        let Some(vault) = vault else {
            return Ok(stream);
        };
        let state = Arc::new(Mutex::new(StreamState {
            vault,
            text: StreamRestorer::new(),
            reasoning: StreamRestorer::new(),
            calls: BTreeMap::new(),
        }));
        let gate = self.gate.clone();
        let s = stream.flat_map(move |item| {
            let out: Vec<Result<ChatEvent>> = match item {
                Ok(ev) => {
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    st.map(ev, &gate).into_iter().map(Ok).collect()
                }
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(out)
        });
        Ok(Box::pin(s))
    }
}

/// A capability trait object a [`Gate`] can wrap.
pub trait Gateable: 'static {
    /// Wraps `inner` behind `gate`.
    fn gated(inner: Arc<Self>, gate: Gate) -> Arc<Self>;
}

macro_rules! gateable {
    ($($t:ident),*) => {$(
        impl Gateable for dyn $t {
            fn gated(inner: Arc<Self>, gate: Gate) -> Arc<Self> {
                Arc::new(Gated::new(inner, gate))
            }
        }
    )*};
}

gateable!(Searcher, Recommender, ChatModel, Forecaster);

// ---- the data-flow map ----

/// One provider of a route, as the data-flow map sees it for one subject region.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowEntry {
    /// The configured provider name.
    pub provider: String,
    /// Where the data is processed: `in-process`, or the jurisdiction (`?` when undeclared).
    pub place: String,
    /// Data classes it may receive for a subject who granted consent.
    pub classes: Vec<DataClass>,
    /// Whether a subject who denied consent may reach it.
    pub consent_denied: bool,
    /// Its PII mode.
    pub pii: PiiMode,
}

/// The data-flow map of one capability for subjects of one region.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRow {
    /// The capability.
    pub capability: Capability,
    /// The subject region (`*` = any region without its own rules).
    pub region: String,
    /// The route, in order.
    pub providers: Vec<FlowEntry>,
}

/// Where customer data may go under a profile, and what in its config is wrong.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataFlowMap {
    /// One row per capability and subject region.
    pub rows: Vec<FlowRow>,
    /// Every violation found: personal data that may flow against the rules or unchecked
    /// (unredacted to a remote provider, to a provider of undeclared jurisdiction while
    /// residency rules exist). Each names the key path.
    pub violations: Vec<String>,
    /// Requests no provider may serve (they end with `policy_denied`), each naming the route
    /// and the rule.
    pub gaps: Vec<String>,
}

impl DataFlowMap {
    /// The map of `table`'s routes under `policy`; `path` is the profile's privacy key path.
    pub fn new(table: &RouteTable, policy: &PrivacyPolicy) -> Self {
        let cfg = policy.config();
        let mut regions: Vec<String> = cfg
            .residency
            .keys()
            .filter(|k| k.as_str() != "*")
            .cloned()
            .collect();
        regions.push("*".into());
        let mut map = DataFlowMap::default();
        let any_rule = !cfg.residency.is_empty();
        for (cap, route) in &table.routes {
            for region in &regions {
                let mut row = FlowRow {
                    capability: *cap,
                    region: region.clone(),
                    providers: Vec::new(),
                };
                for e in route {
                    let info = entry_info(e);
                    let subject = (region != "*").then(|| Jurisdiction::new(region));
                    let ctx = |class: DataClass, consent: Consent| {
                        let mut c = RequestContext::new()
                            .with_data_class(class)
                            .with_consent(consent);
                        c.subject_region = subject.clone();
                        c
                    };
                    let classes: Vec<DataClass> = CLASSES
                        .into_iter()
                        .filter(|c| policy.admit(&info, &ctx(*c, Consent::Granted)).is_ok())
                        .collect();
                    row.providers.push(FlowEntry {
                        provider: e.provider.clone(),
                        place: if e.data_leaves_process {
                            e.jurisdiction.clone().unwrap_or_else(|| "?".into())
                        } else {
                            "in-process".into()
                        },
                        classes,
                        consent_denied: policy
                            .admit(&info, &ctx(DataClass::Personal, Consent::Denied))
                            .is_ok(),
                        pii: policy.pii_mode(&e.provider, &info),
                    });
                }
                for class in CLASSES {
                    if !row.providers.iter().any(|p| p.classes.contains(&class)) {
                        let rule = policy
                            .residency_rule(
                                (region != "*").then(|| Jurisdiction::new(region)).as_ref(),
                                class,
                            )
                            .map_or_else(String::new, |(r, _)| {
                                format!(" (rule {}.{r})", policy.path)
                            });
                        map.gaps.push(format!(
                            "routes.{cap}: no provider may receive {} data of subjects in {}{rule}; such calls end with policy_denied",
                            class.as_str(),
                            if region == "*" { "other regions" } else { region },
                        ));
                    }
                }
                if row.providers.iter().all(|p| !p.consent_denied) && region == "*" {
                    map.gaps.push(format!(
                        "routes.{cap}: every provider is remote, so subjects who denied consent cannot be served (add an in-process provider such as rules)"
                    ));
                }
                map.rows.push(row);
            }
            for e in route {
                if e.data_leaves_process {
                    let info = entry_info(e);
                    if policy.pii_mode(&e.provider, &info) == PiiMode::Allow {
                        map.violations.push(format!(
                            "{}.providers.{}.pii: \"allow\" sends personal data unredacted to a remote provider ({})",
                            policy.path,
                            e.provider,
                            e.jurisdiction.as_deref().unwrap_or("undeclared jurisdiction")
                        ));
                    }
                    if any_rule && e.jurisdiction.is_none() {
                        map.violations.push(format!(
                            "providers.{}: remote provider has no declared jurisdiction, so residency rules cannot allow it (set its region or jurisdiction)",
                            e.provider
                        ));
                    }
                }
            }
        }
        map.violations.sort();
        map.violations.dedup();
        map.gaps.sort();
        map.gaps.dedup();
        map
    }
}

fn entry_info(e: &crate::registry::RouteEntry) -> ProviderInfo {
    if e.data_leaves_process {
        ProviderInfo::remote(
            e.provider.clone(),
            e.kind.clone(),
            e.region.clone(),
            e.jurisdiction.as_deref().map(Jurisdiction::new),
            crate::api::Capabilities::none(),
        )
    } else {
        ProviderInfo::local(
            e.provider.clone(),
            e.kind.clone(),
            crate::api::Capabilities::none(),
        )
    }
}

impl fmt::Display for DataFlowMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "data flow (who may receive which data classes; consent-denied subjects: providers marked *)"
        )?;
        for row in &self.rows {
            let region = if row.region == "*" {
                "other"
            } else {
                row.region.as_str()
            };
            let parts: Vec<String> = row
                .providers
                .iter()
                .map(|p| {
                    let classes = if p.classes.is_empty() {
                        "nothing".to_owned()
                    } else {
                        p.classes
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join("+")
                    };
                    format!(
                        "{}{} [{}; {}; pii {}]",
                        p.provider,
                        if p.consent_denied { "*" } else { "" },
                        p.place,
                        classes,
                        p.pii.as_str()
                    )
                })
                .collect();
            writeln!(
                f,
                "  {:<10} subjects {:<6} {}",
                row.capability.as_str(),
                region,
                parts.join(" -> ")
            )?;
        }
        for g in &self.gaps {
            writeln!(f, "  gap: {g}")?;
        }
        if self.violations.is_empty() {
            writeln!(f, "no privacy violations")?;
        } else {
            writeln!(f, "{} violation(s):", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  - {v}")?;
            }
        }
        Ok(())
    }
}
