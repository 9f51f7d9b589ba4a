//! Erasure: forgetting a subject everywhere the providers keep data about them.
//!
//! A provider that stores subject data (a local recommender's event history, a remote
//! service's user profile) offers a [`SubjectEraser`] through [`Provider::eraser`]. The
//! client's [`forget`](crate::Client::forget) calls every one of them and returns an
//! [`ErasureReport`] that lists every provider of the client: erased (and how many records),
//! no delete operation available (so the operator knows where to act by hand), or failed.
//!
//! ```
//! # #[cfg(feature = "contract")] {
//! # async fn demo(client: merchant_ai::Client) -> merchant_ai::Result<()> {
//! let report = client.forget(&"u_7f3a".into()).await?;
//! for entry in &report.entries {
//!     println!("{}: {}", entry.provider, entry.outcome);
//! }
//! # Ok(()) }
//! # }
//! ```
//!
//! The report holds the pseudonymous subject id and counts only; an audit sink can record it
//! as it is.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::api::Provider;
use crate::error::{Error, ErrorKind, Result};
use crate::types::SubjectId;

/// Deletes what a provider keeps about one subject.
#[async_trait]
pub trait SubjectEraser: Send + Sync + fmt::Debug + 'static {
    /// Forgets `subject`; returns how many records (events, profiles, ...) were deleted.
    /// Forgetting an unknown subject is not an error (0 records).
    async fn forget(&self, subject: &SubjectId) -> Result<u64>;
}

/// What happened at one provider.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ErasureOutcome {
    /// The provider deleted the subject's data.
    Erased {
        /// Records deleted.
        records: u64,
    },
    /// The provider offers no delete operation: whatever it keeps must be erased by hand
    /// (or it keeps nothing, e.g. a stateless chat model).
    NoDeleteAvailable,
    /// The delete call failed.
    Failed {
        /// The error kind.
        kind: ErrorKind,
        /// The error message (never customer text).
        message: String,
    },
}

impl fmt::Display for ErasureOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErasureOutcome::Erased { records } => write!(f, "erased ({records} records)"),
            ErasureOutcome::NoDeleteAvailable => f.write_str("no delete operation available"),
            ErasureOutcome::Failed { kind, message } => write!(f, "failed: {kind}: {message}"),
        }
    }
}

/// One provider's line in an [`ErasureReport`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureEntry {
    /// The configured provider name.
    pub provider: String,
    /// The adapter kind.
    pub kind: String,
    /// Whether the provider is remote (its data left the process).
    pub remote: bool,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ErasureOutcome,
}

/// The result of [`forget`](crate::Client::forget): one entry per provider, by name.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// The pseudonymous subject.
    pub subject: SubjectId,
    /// Per provider, in name order.
    pub entries: Vec<ErasureEntry>,
}

impl ErasureReport {
    /// Whether every provider that has a delete operation succeeded.
    pub fn complete(&self) -> bool {
        !self
            .entries
            .iter()
            .any(|e| matches!(e.outcome, ErasureOutcome::Failed { .. }))
    }
    /// Providers without a delete operation (to be handled by hand).
    pub fn without_delete(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.outcome == ErasureOutcome::NoDeleteAvailable)
            .map(|e| e.provider.as_str())
            .collect()
    }
}

impl fmt::Display for ErasureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erasure of subject {}", self.subject)?;
        for e in &self.entries {
            writeln!(
                f,
                "  {:<12} {:<8} {:<10} {}",
                e.provider,
                e.kind,
                if e.remote { "remote" } else { "in-process" },
                e.outcome
            )?;
        }
        Ok(())
    }
}

/// Runs `forget` on every provider of `providers` (each once).
pub async fn forget_all(
    providers: &BTreeMap<String, Arc<dyn Provider>>,
    subject: &SubjectId,
) -> Result<ErasureReport> {
    if subject.as_str().trim().is_empty() {
        return Err(Error::invalid_request("subject is empty"));
    }
    let mut entries = Vec::with_capacity(providers.len());
    for (name, p) in providers {
        let info = p.info();
        let outcome = match p.eraser() {
            None => ErasureOutcome::NoDeleteAvailable,
            Some(e) => match e.forget(subject).await {
                Ok(records) => ErasureOutcome::Erased { records },
                Err(err) => {
                    tracing::warn!(provider = %name, kind = %err.kind(), "erasure failed on one provider");
                    ErasureOutcome::Failed {
                        kind: err.kind(),
                        message: err.message().to_owned(),
                    }
                }
            },
        };
        entries.push(ErasureEntry {
            provider: name.clone(),
            kind: info.kind.clone(),
            remote: info.data_leaves_process,
            outcome,
        });
    }
    Ok(ErasureReport {
        subject: subject.clone(),
        entries,
    })
}
