//! Cost from a pricing table: what a call cost, from its [`Usage`] and the provider's prices.
//!
//! Each profile may price its providers (`[profiles.NAME.pricing.PROVIDER]`), with overrides
//! per model. Prices are in major units of the provider's currency:
//!
//! ```toml
//! [profiles.prod.pricing.qwen]
//! currency = "CNY"
//! input_per_million = 0.8      # per million input tokens
//! output_per_million = 2.0     # per million output tokens
//! per_call = 0.0               # added to every call
//! per_unit = 0.0               # per billable unit (search request, embedding, rerank document, series)
//!
//! [profiles.prod.pricing.qwen.models."qwen-max"]
//! input_per_million = 2.4
//! output_per_million = 9.6
//!
//! [profiles.prod.pricing.local]
//! currency = "CNY"
//! per_cpu_second = 0.0004      # local models: CPU time
//! cpu_threads = 2              # threads the local model keeps busy
//! ```
//!
//! The observe layer fills [`Usage::cost`] of every response served by a priced provider, for
//! streams from the final usage of the stream, so a streamed and a non-streamed call with the
//! same usage cost exactly the same. The sum is taken in integer pico-units and rounded once to
//! [`Cost::micros`]; a price from the table replaces a cost an adapter estimated itself.
//!
//! CPU-seconds of a local model are estimated as the call's wall time times `cpu_threads`: the
//! library cannot see the CPU time of the threads an adapter uses, and a local model keeps its
//! threads busy for the whole call. A cache hit costs nothing (its cost is zero).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::types::{Cost, Currency, Usage};

/// Overrides of a provider's prices for one model (`[...pricing.PROVIDER.models."MODEL"]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million input tokens.
    pub input_per_million: Option<f64>,
    /// Per million output tokens.
    pub output_per_million: Option<f64>,
    /// Per call.
    pub per_call: Option<f64>,
    /// Per billable unit.
    pub per_unit: Option<f64>,
    /// Per CPU-second.
    pub per_cpu_second: Option<f64>,
}

/// The prices of one provider (`[profiles.NAME.pricing.PROVIDER]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// ISO 4217 currency of every price of this provider.
    pub currency: String,
    /// Per million input tokens.
    #[serde(default)]
    pub input_per_million: f64,
    /// Per million output tokens.
    #[serde(default)]
    pub output_per_million: f64,
    /// Per call.
    #[serde(default)]
    pub per_call: f64,
    /// Per billable unit ([`Usage::units`]).
    #[serde(default)]
    pub per_unit: f64,
    /// Per CPU-second (local models).
    #[serde(default)]
    pub per_cpu_second: f64,
    /// Threads a local model keeps busy during a call (for CPU-seconds).
    #[serde(default = "one")]
    pub cpu_threads: f64,
    /// Per model name, prices that replace the ones above.
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
}

fn one() -> f64 {
    1.0
}

fn check_price(path: &str, key: &str, v: f64) -> Result<f64> {
    if v.is_finite() && (0.0..1e9).contains(&v) {
        Ok(v)
    } else {
        Err(Error::config(format!(
            "{path}.{key}: must be a price of at least 0 (got {v})"
        )))
    }
}

impl Price {
    /// Prices in `currency` (all zero; set the fields you need).
    pub fn new(currency: Currency) -> Self {
        Price {
            currency: currency.code().to_owned(),
            input_per_million: 0.0,
            output_per_million: 0.0,
            per_call: 0.0,
            per_unit: 0.0,
            per_cpu_second: 0.0,
            cpu_threads: 1.0,
            models: BTreeMap::new(),
        }
    }
    /// Sets the token prices (per million input and output tokens).
    #[must_use]
    pub fn with_tokens(mut self, input_per_million: f64, output_per_million: f64) -> Self {
        self.input_per_million = input_per_million;
        self.output_per_million = output_per_million;
        self
    }
    /// Sets the price per call.
    #[must_use]
    pub fn with_per_call(mut self, p: f64) -> Self {
        self.per_call = p;
        self
    }
    /// Sets the price per billable unit.
    #[must_use]
    pub fn with_per_unit(mut self, p: f64) -> Self {
        self.per_unit = p;
        self
    }
    /// Sets the price per CPU-second and the threads a call keeps busy.
    #[must_use]
    pub fn with_cpu(mut self, per_cpu_second: f64, threads: f64) -> Self {
        self.per_cpu_second = per_cpu_second;
        self.cpu_threads = threads;
        self
    }
    /// Adds prices for one model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>, p: ModelPrice) -> Self {
        self.models.insert(model.into(), p);
        self
    }

    fn validate(&self, path: &str) -> Result<Rates> {
        let currency = Currency::new(&self.currency)
            .map_err(|e| Error::config(format!("{path}.currency: {}", e.message())))?;
        let check = |key: &str, v: f64| check_price(path, key, v);
        check("input_per_million", self.input_per_million)?;
        check("output_per_million", self.output_per_million)?;
        check("per_call", self.per_call)?;
        check("per_unit", self.per_unit)?;
        check("per_cpu_second", self.per_cpu_second)?;
        if !(self.cpu_threads.is_finite() && self.cpu_threads > 0.0 && self.cpu_threads <= 4096.0) {
            return Err(Error::config(format!(
                "{path}.cpu_threads: must be a positive number of threads (got {})",
                self.cpu_threads
            )));
        }
        let base = Rates::from_prices(
            currency,
            [
                self.input_per_million,
                self.output_per_million,
                self.per_call,
                self.per_unit,
                self.per_cpu_second,
            ],
            self.cpu_threads,
        );
        let mut models = BTreeMap::new();
        for (name, m) in &self.models {
            let mp = format!("{path}.models.{name:?}");
            let pick = |key: &str, o: Option<f64>, d: f64| -> Result<f64> {
                o.map_or(Ok(d), |v| check_price(&mp, key, v))
            };
            let r = Rates::from_prices(
                currency,
                [
                    pick(
                        "input_per_million",
                        m.input_per_million,
                        self.input_per_million,
                    )?,
                    pick(
                        "output_per_million",
                        m.output_per_million,
                        self.output_per_million,
                    )?,
                    pick("per_call", m.per_call, self.per_call)?,
                    pick("per_unit", m.per_unit, self.per_unit)?,
                    pick("per_cpu_second", m.per_cpu_second, self.per_cpu_second)?,
                ],
                self.cpu_threads,
            );
            models.insert(name.clone(), r);
        }
        Ok(Rates { models, ..base })
    }
}

/// Prices in pico-units (10^-12 of a major unit), so per-token prices are exact integers.
#[derive(Debug, Clone, PartialEq)]
struct Rates {
    currency: Currency,
    input_pico_per_token: i128,
    output_pico_per_token: i128,
    per_call_pico: i128,
    per_unit_pico: i128,
    per_cpu_second: f64,
    cpu_threads: f64,
    models: BTreeMap<String, Rates>,
}

impl Rates {
    fn from_prices(currency: Currency, p: [f64; 5], cpu_threads: f64) -> Rates {
        // Per million tokens in major units == per token in micro-units == 10^6 pico per token.
        let pico = |v: f64, scale: f64| (v * scale).round() as i128;
        Rates {
            currency,
            input_pico_per_token: pico(p[0], 1e6),
            output_pico_per_token: pico(p[1], 1e6),
            per_call_pico: pico(p[2], 1e12),
            per_unit_pico: pico(p[3], 1e12),
            per_cpu_second: p[4],
            cpu_threads,
            models: BTreeMap::new(),
        }
    }

    fn cost(&self, usage: &Usage, busy: Duration) -> Cost {
        let mut pico: i128 = self.per_call_pico;
        pico += i128::from(usage.input_tokens.unwrap_or(0)) * self.input_pico_per_token;
        pico += i128::from(usage.output_tokens.unwrap_or(0)) * self.output_pico_per_token;
        pico += i128::from(usage.units.unwrap_or(0)) * self.per_unit_pico;
        if self.per_cpu_second > 0.0 {
            let cpu = busy.as_secs_f64() * self.cpu_threads * self.per_cpu_second * 1e12;
            if cpu.is_finite() && cpu > 0.0 {
                pico += cpu.round() as i128;
            }
        }
        // Round half up to micros.
        let micros = (pico + 500_000) / 1_000_000;
        Cost::new(i64::try_from(micros).unwrap_or(i64::MAX), self.currency)
    }
}

/// `[profiles.NAME.pricing]`: prices per provider name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PricingTable {
    providers: BTreeMap<String, Rates>,
    raw: BTreeMap<String, Price>,
}

impl PricingTable {
    /// An empty table (no call is priced).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the prices of `provider`. Errors name the bad key under
    /// `pricing.PROVIDER`.
    pub fn with_provider(mut self, provider: impl Into<String>, price: Price) -> Result<Self> {
        let provider = provider.into();
        let rates = price.validate(&format!("pricing.{provider}"))?;
        self.providers.insert(provider.clone(), rates);
        self.raw.insert(provider, price);
        Ok(self)
    }

    /// Parses a `pricing` table; errors name the key path under `path`.
    pub fn from_toml(v: toml::Value, path: &str) -> Result<Self> {
        let raw: BTreeMap<String, Price> = v.try_into().map_err(|e: toml::de::Error| {
            Error::config(format!("{path}: {}", e.message().trim()))
        })?;
        let mut t = PricingTable::new();
        for (name, price) in raw {
            let rates = price.validate(&format!("{path}.{name}"))?;
            t.providers.insert(name.clone(), rates);
            t.raw.insert(name, price);
        }
        Ok(t)
    }

    /// The priced provider names.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.raw.keys().map(String::as_str)
    }

    /// Whether no provider is priced.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The cost of a call to `provider` (with `model`, if the table prices it apart) that
    /// consumed `usage` and kept the provider busy for `busy` (only CPU-second prices use it).
    /// `None` when the provider has no prices.
    pub fn cost(
        &self,
        provider: &str,
        model: Option<&str>,
        usage: &Usage,
        busy: Duration,
    ) -> Option<Cost> {
        let r = self.providers.get(provider)?;
        let r = model.and_then(|m| r.models.get(m)).unwrap_or(r);
        Some(r.cost(usage, busy))
    }

    /// A zero cost in the provider's currency (for cache hits), if it is priced.
    pub fn zero(&self, provider: &str) -> Option<Cost> {
        self.providers
            .get(provider)
            .map(|r| Cost::new(0, r.currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_call_unit_and_model_prices() {
        let t = PricingTable::new()
            .with_provider(
                "qwen",
                Price::new(Currency::CNY)
                    .with_tokens(0.8, 2.0)
                    .with_per_call(0.001)
                    .with_model(
                        "qwen-max",
                        ModelPrice {
                            input_per_million: Some(2.4),
                            ..Default::default()
                        },
                    ),
            )
            .unwrap();
        let u = Usage::new().with_input_tokens(1000).with_output_tokens(500);
        // 1000 * 0.8e-6 + 500 * 2e-6 + 0.001 = 0.0008 + 0.001 + 0.001 = 0.0028 CNY.
        let c = t.cost("qwen", None, &u, Duration::ZERO).unwrap();
        assert_eq!(c, Cost::new(2800, Currency::CNY));
        let c = t
            .cost("qwen", Some("qwen-max"), &u, Duration::ZERO)
            .unwrap();
        assert_eq!(c.micros, 2400 + 1000 + 1000);
        assert!(t.cost("other", None, &u, Duration::ZERO).is_none());
        // Fractions of a micro add up before the single rounding.
        let t = PricingTable::new()
            .with_provider(
                "e",
                Price::new(Currency::USD)
                    .with_tokens(0.02, 0.0)
                    .with_per_unit(0.0000004),
            )
            .unwrap();
        let c = t
            .cost(
                "e",
                None,
                &Usage::new().with_input_tokens(30).with_units(3),
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(c.micros, 2); // 0.6 + 1.2 micros, rounded once
    }

    #[test]
    fn cpu_seconds_for_local_models() {
        let t = PricingTable::new()
            .with_provider("local", Price::new(Currency::CNY).with_cpu(0.0004, 2.0))
            .unwrap();
        let c = t
            .cost("local", None, &Usage::new(), Duration::from_millis(1500))
            .unwrap();
        assert_eq!(c.micros, 1200); // 1.5 s * 2 threads * 400 micros
    }

    #[test]
    fn bad_prices_name_the_key() {
        let e = PricingTable::new()
            .with_provider("q", Price::new(Currency::CNY).with_tokens(-1.0, 0.0))
            .unwrap_err();
        assert!(e.message().contains("pricing.q.input_per_million"), "{e}");
        let v: toml::Value = toml::from_str("[q]\ncurrency = \"yuan\"").unwrap();
        let e = PricingTable::from_toml(v, "profiles.p.pricing").unwrap_err();
        assert!(e.message().contains("profiles.p.pricing.q.currency"), "{e}");
        let v: toml::Value = toml::from_str("[q]\ncurrency = \"CNY\"\nper_tokn = 1").unwrap();
        let e = PricingTable::from_toml(v, "profiles.p.pricing").unwrap_err();
        assert!(e.message().contains("per_tokn"), "{e}");
    }
}
