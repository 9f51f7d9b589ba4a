//! The conformance suite every provider must pass (feature `contract`).
//!
//! ```no_run
//! # async fn demo(provider: std::sync::Arc<dyn merchant_ai::Provider>) {
//! use merchant_ai::contract::Suite;
//! let report = Suite::new(provider).run().await;
//! report.print();          // one line per scenario: passed, FAILED (why) or skipped (why)
//! report.assert_passed();  // panics with the failures
//! # }
//! ```
//!
//! - Scenarios are named (`search.filters_respected`, `fault.chat.quota_exhausted`, ...) and
//!   grouped by capability. A scenario whose capability the provider does not declare is
//!   skipped, and the skip is printed by name with the reason; so is a fault the harness cannot
//!   produce. [`scenario_names`] lists them all; a test in this crate pins the list, so a
//!   scenario cannot disappear unnoticed.
//! - Fault scenarios need a [`FaultHarness`]: an HTTP adapter's test maps each [`Fault`] onto
//!   its mock server. With [`Suite::with_expected_attempts`] the suite checks how many upstream
//!   requests each failing call made (1 for a bare adapter, which must not retry by itself).
//! - Skips can also be declared with [`Suite::skip`], which requires a reason; nothing is
//!   skipped silently.
//! - [`ScriptedProvider`] is an in-memory provider of all four capabilities with fault
//!   injection and deliberate contract breaches, for testing layers and the suite itself.

pub mod fixtures;
mod harness;
pub mod proxy;
mod scenarios;
mod scripted;

pub use harness::{Fault, FaultHarness, RetryAfterForm};
pub use scenarios::{Outcome, ScenarioResult, Suite, SuiteReport, scenario_names};
pub use scripted::{Misbehaviour, ScriptedFactory, ScriptedProvider};
