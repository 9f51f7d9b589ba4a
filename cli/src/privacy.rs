//! `merchant-ai redact` (stdin to stdout) and the data-flow part of `merchant-ai check`.

use std::io::{BufRead, Write};

use clap::Args;
use merchant_ai::Config;
use merchant_ai::config::Profile;
use merchant_ai::layers::PrivacyConfig;
use merchant_ai::redact::{DetectConfig, PiiKind, Redactor, Vault};

use crate::GlobalArgs;
use crate::fail::{CliError, CliResult};

/// Options of `merchant-ai redact`.
#[derive(Debug, Args)]
pub struct RedactArgs {
    /// A name to redact (repeat for several); adds to the profile's `privacy.names`.
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// A street address to redact (repeat for several); adds to `privacy.addresses`.
    #[arg(long = "address", value_name = "ADDRESS")]
    addresses: Vec<String>,
    /// Only these kinds, comma-separated (email,phone,card,cn_id,iban,ip); default: the
    /// profile's `privacy.detect`, else all.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    kinds: Vec<String>,
}

fn profile_privacy(g: &GlobalArgs) -> CliResult<Option<PrivacyConfig>> {
    let Some(path) = &g.config else {
        return Ok(None);
    };
    if !path.exists() {
        return Err(CliError::usage(format!(
            "config file {} does not exist",
            path.display()
        )));
    }
    let config = Config::from_file(path)?;
    let profile: &Profile = config.profile(g.profile.as_deref())?;
    Ok(profile.privacy().cloned())
}

/// Reads stdin, writes it with personal data replaced by placeholders. The same value gets
/// the same placeholder throughout the input. Counts go to stderr (or, with `--json`, each
/// line becomes `{"text": ..., "redactions": {...}}`).
pub fn redact(g: &GlobalArgs, a: RedactArgs) -> CliResult<()> {
    let base = profile_privacy(g)?.unwrap_or_default();
    let mut kinds = base.detect.clone();
    if !a.kinds.is_empty() {
        kinds = Vec::new();
        for k in &a.kinds {
            let kind = PiiKind::parse(k.trim()).ok_or_else(|| {
                CliError::usage(format!(
                    "--kinds: unknown kind {k:?} (expected: email, phone, card, cn_id, iban, ip, name, address)"
                ))
            })?;
            kinds.push(kind);
        }
    }
    let cfg = DetectConfig::default()
        .with_kinds(kinds)
        .with_names(base.names.iter().chain(&a.names).cloned())
        .with_addresses(base.addresses.iter().chain(&a.addresses).cloned());
    let redactor = Redactor::new(&cfg, "privacy")?;
    let mut vault = Vault::new();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut lines = 0usize;
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| CliError::data(format!("cannot read stdin: {e}")))?;
        lines += 1;
        let written = if g.json {
            let before = vault.counts().clone();
            let text = vault.redact(&redactor, &line);
            let mut counts = vault.counts().clone();
            for (k, n) in &before {
                if let Some(c) = counts.get_mut(k) {
                    *c -= n;
                }
            }
            counts.retain(|_, n| *n > 0);
            let v = serde_json::json!({ "text": text, "redactions": counts });
            writeln!(out, "{v}")
        } else {
            let text = vault.redact(&redactor, &line);
            writeln!(out, "{text}")
        };
        if written.is_err() {
            // stdout closed (e.g. piped into head): stop quietly.
            return Ok(());
        }
    }
    let _ = out.flush();
    if !g.json {
        let counts = vault.counts();
        let total: u32 = counts.values().sum();
        let by: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!(
            "redacted {total} value(s) in {lines} line(s){}{}",
            if by.is_empty() { "" } else { ": " },
            by.join(", ")
        );
    }
    Ok(())
}
