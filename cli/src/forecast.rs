//! `merchant-ai forecast`: CSV in, forecast CSV / SVG plot / reorder advice out.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use merchant_ai::chrono::{DateTime, NaiveDate, Utc};
use merchant_ai::*;

use crate::GlobalArgs;
use crate::fail::{CliError, CliResult};
use crate::print;
use crate::setup::Session;

/// The quantile levels requested: an 80% interval.
pub const QUANTILES: [f64; 2] = [0.1, 0.9];

/// Longest series accepted after filling gaps (guards against a typo such as year 2205).
const MAX_POINTS: usize = 100_000;

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// History as CSV with a header and the columns id,date,value (dates YYYY-MM-DD).
    #[arg(long, value_name = "CSV")]
    input: PathBuf,
    /// Steps to forecast (days for daily data).
    #[arg(long, value_name = "N")]
    horizon: usize,
    /// Write the forecast as CSV: id,date,point,q10,q90.
    #[arg(long, value_name = "CSV")]
    output: Option<PathBuf>,
    /// Draw history, forecast and the 80% interval per series as SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Stock per series as CSV with a header: id,on_hand and optionally on_order; prints reorder advice.
    #[arg(long, value_name = "CSV", requires = "lead_time")]
    stock: Option<PathBuf>,
    /// Days between ordering and receiving (with --stock).
    #[arg(long, value_name = "DAYS", requires = "stock")]
    lead_time: Option<usize>,
    /// Probability of not running out before the next delivery (with --stock).
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    service_level: f64,
}

/// Parsed history: the series and the date of each one's last point.
#[derive(Debug)]
pub struct History {
    /// One series per id, in order of first appearance.
    pub series: Vec<Series>,
    /// The inferred frequency.
    pub frequency: Frequency,
    /// Filled gaps per series id (missing dates counted as zero).
    pub filled: Vec<(String, usize)>,
}

pub async fn run(g: &GlobalArgs, a: ForecastArgs) -> CliResult<()> {
    if !(a.service_level > 0.5 && a.service_level < 1.0) {
        return Err(CliError::usage(format!(
            "--service-level must be between 0.5 and 1 (exclusive), got {}",
            a.service_level
        )));
    }
    let text = read_text("input", &a.input)?;
    let hist = parse_history(&a.input, &text)?;
    let stock = match &a.stock {
        Some(p) => Some(parse_stock(p, &read_text("stock", p)?)?),
        None => None,
    };
    for (id, n) in &hist.filled {
        if !g.json {
            eprintln!("note: series {id:?}: {n} missing dates counted as 0");
        }
    }
    let s = Session::start(g, false).await?;
    let req =
        ForecastRequest::new(hist.series.clone(), a.horizon).with_quantiles(QUANTILES.to_vec());
    let r = s.client.forecaster()?.forecast(req).await?;
    let dates = future_dates(&hist, &r, a.horizon);

    if let Some(out) = &a.output {
        std::fs::write(out, forecast_csv(&r, &dates))
            .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", out.display())))?;
    }
    if let Some(p) = &a.plot {
        plot_svg(p, &hist.series, &r, 120)?;
    }
    let advice = match (&stock, a.lead_time) {
        (Some(st), Some(lead)) => reorder(&r, st, lead, a.service_level),
        _ => Vec::new(),
    };

    if g.json {
        print::json(&serde_json::json!({
            "frequency": hist.frequency,
            "horizon": a.horizon,
            "dates": dates,
            "forecast": r,
            "replenishment": advice.iter().map(|x| x.to_json()).collect::<Vec<_>>(),
            "output": a.output,
            "plot": a.plot,
        }))?;
    } else {
        summary(&r, &hist.series, &dates, 7);
        if !advice.is_empty() {
            outln!(
                "\nreorder advice (lead time {} days, service level {}):",
                a.lead_time.unwrap_or(0),
                a.service_level
            );
            for x in &advice {
                outln!("{}", x.line());
            }
        }
        if let Some(out) = &a.output {
            outln!("wrote {}", out.display());
        }
        if let Some(p) = &a.plot {
            outln!("wrote {}", p.display());
        }
        outln!("{}", print::served(&r.meta));
    }
    let failed = r.series.iter().filter(|s| s.error.is_some()).count();
    if failed == r.series.len() {
        return Err(CliError::runtime("no series could be forecast"));
    }
    Ok(())
}

fn read_text(what: &str, path: &Path) -> CliResult<String> {
    if !path.exists() {
        return Err(CliError::data(format!(
            "{what} file {} does not exist",
            path.display()
        )));
    }
    let t = std::fs::read_to_string(path)
        .map_err(|e| CliError::data(format!("cannot read {what} file {}: {e}", path.display())))?;
    Ok(t.strip_prefix('\u{feff}').unwrap_or(&t).to_owned())
}

fn split_line(line: &str) -> Vec<String> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim().to_owned())
        .collect()
}

/// Finds the columns named in `required` (and `optional`) in a header line.
fn header_columns(
    path: &Path,
    line_no: usize,
    line: &str,
    required: &[&str],
    optional: &[&str],
) -> CliResult<Vec<Option<usize>>> {
    let names: Vec<String> = split_line(line)
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    for r in required {
        match names.iter().position(|n| n == r) {
            Some(i) => out.push(Some(i)),
            None => {
                return Err(CliError::data(format!(
                    "{} line {line_no}: the header must name the columns {} (found: {})",
                    path.display(),
                    required.join(","),
                    names.join(",")
                )));
            }
        }
    }
    for o in optional {
        out.push(names.iter().position(|n| n == o));
    }
    Ok(out)
}

/// The non-empty lines with their 1-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

fn field<'a>(
    path: &Path,
    line_no: usize,
    fields: &'a [String],
    col: usize,
    name: &str,
) -> CliResult<&'a str> {
    match fields.get(col) {
        Some(v) if !v.is_empty() => Ok(v.as_str()),
        Some(_) => Err(CliError::data(format!(
            "{} line {line_no}: {name} is empty",
            path.display()
        ))),
        None => Err(CliError::data(format!(
            "{} line {line_no}: expected a {name} in column {}, found {} field(s)",
            path.display(),
            col + 1,
            fields.len()
        ))),
    }
}

fn number(path: &Path, line_no: usize, name: &str, v: &str) -> CliResult<f64> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(CliError::data(format!(
            "{} line {line_no}: {name} {v:?} is not a number",
            path.display()
        ))),
    }
}

/// Parses `id,date,value` CSV text; errors name the file, the line and the problem.
pub fn parse_history(path: &Path, text: &str) -> CliResult<History> {
    let mut it = lines(text);
    let Some((hl, header)) = it.next() else {
        return Err(CliError::data(format!(
            "{}: the file is empty (expected a header id,date,value)",
            path.display()
        )));
    };
    let cols = header_columns(path, hl, header, &["id", "date", "value"], &[])?;
    let (ci, cd, cv) = (
        cols[0].unwrap_or(0),
        cols[1].unwrap_or(1),
        cols[2].unwrap_or(2),
    );
    let mut order: Vec<String> = Vec::new();
    let mut rows: HashMap<String, Vec<(NaiveDate, f64, usize)>> = HashMap::new();
    for (n, line) in it {
        let f = split_line(line);
        let id = field(path, n, &f, ci, "id")?;
        let ds = field(path, n, &f, cd, "date")?;
        let date = NaiveDate::parse_from_str(ds, "%Y-%m-%d").map_err(|_| {
            CliError::data(format!(
                "{} line {n}: date {ds:?} is not a date in the form YYYY-MM-DD",
                path.display()
            ))
        })?;
        let value = number(path, n, "value", field(path, n, &f, cv, "value")?)?;
        if !rows.contains_key(id) {
            order.push(id.to_owned());
        }
        rows.entry(id.to_owned())
            .or_default()
            .push((date, value, n));
    }
    if order.is_empty() {
        return Err(CliError::data(format!(
            "{}: no data rows after the header",
            path.display()
        )));
    }
    // Sort, reject duplicates, infer the frequency from the smallest gap.
    let mut min_gap: Option<i64> = None;
    for id in &order {
        let r = rows.get_mut(id).expect("present");
        r.sort_by_key(|x| x.0);
        for w in r.windows(2) {
            let gap = (w[1].0 - w[0].0).num_days();
            if gap == 0 {
                return Err(CliError::data(format!(
                    "{} line {}: series {id:?} has date {} twice (first at line {})",
                    path.display(),
                    w[1].2.max(w[0].2),
                    w[1].0,
                    w[1].2.min(w[0].2)
                )));
            }
            min_gap = Some(min_gap.map_or(gap, |m: i64| m.min(gap)));
        }
    }
    let frequency = match min_gap {
        None | Some(1) => Frequency::Daily,
        Some(7) => Frequency::Weekly,
        Some(28..=31) => Frequency::Monthly,
        Some(89..=92) => Frequency::Quarterly,
        Some(365 | 366) => Frequency::Yearly,
        Some(g) => {
            return Err(CliError::data(format!(
                "{}: cannot infer the frequency: the smallest gap between two dates of a series is {g} days (expected 1, 7, about 30, about 91 or about 365)",
                path.display()
            )));
        }
    };
    let step_days = match frequency {
        Frequency::Daily => Some(1),
        Frequency::Weekly => Some(7),
        _ => None,
    };
    let mut series = Vec::new();
    let mut filled = Vec::new();
    for id in order {
        let r = &rows[&id];
        let first = r[0].0;
        let mut values = Vec::with_capacity(r.len());
        let mut gaps = 0usize;
        match step_days {
            Some(step) => {
                let span = (r[r.len() - 1].0 - first).num_days() / step + 1;
                if span as usize > MAX_POINTS {
                    return Err(CliError::data(format!(
                        "{}: series {id:?} spans {span} steps from {first} (more than {MAX_POINTS}); check its dates",
                        path.display()
                    )));
                }
                let mut next = 0i64;
                for (d, v, line) in r {
                    let off = (*d - first).num_days();
                    if off % step != 0 {
                        return Err(CliError::data(format!(
                            "{} line {line}: date {d} of series {id:?} is off the {} grid starting at {first}",
                            path.display(),
                            if step == 1 { "daily" } else { "weekly" }
                        )));
                    }
                    let k = off / step;
                    while next < k {
                        values.push(0.0);
                        gaps += 1;
                        next += 1;
                    }
                    values.push(*v);
                    next += 1;
                }
            }
            None => values.extend(r.iter().map(|x| x.1)),
        }
        if gaps > 0 {
            filled.push((id.clone(), gaps));
        }
        let start = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        series.push(Series::new(id, values).with_start(start, frequency));
    }
    Ok(History {
        series,
        frequency,
        filled,
    })
}

/// Stock rows: id -> (on hand, on order).
pub fn parse_stock(path: &Path, text: &str) -> CliResult<HashMap<String, StockPosition>> {
    let mut it = lines(text);
    let Some((hl, header)) = it.next() else {
        return Err(CliError::data(format!(
            "{}: the file is empty (expected a header id,on_hand[,on_order])",
            path.display()
        )));
    };
    let cols = header_columns(path, hl, header, &["id", "on_hand"], &["on_order"])?;
    let (ci, ch) = (cols[0].unwrap_or(0), cols[1].unwrap_or(1));
    let mut out = HashMap::new();
    for (n, line) in it {
        let f = split_line(line);
        let id = field(path, n, &f, ci, "id")?;
        let on_hand = number(path, n, "on_hand", field(path, n, &f, ch, "on_hand")?)?;
        let on_order = match cols[2] {
            Some(c) if f.get(c).is_some_and(|v| !v.is_empty()) => {
                number(path, n, "on_order", &f[c])?
            }
            _ => 0.0,
        };
        if out
            .insert(
                id.to_owned(),
                StockPosition::new(on_hand).with_on_order(on_order),
            )
            .is_some()
        {
            return Err(CliError::data(format!(
                "{} line {n}: id {id:?} appears twice",
                path.display()
            )));
        }
    }
    Ok(out)
}

/// The dates of the forecast steps per series (from the response, or stepped from history).
fn future_dates(h: &History, r: &ForecastResponse, horizon: usize) -> Vec<Vec<DateTime<Utc>>> {
    r.series
        .iter()
        .map(|f| {
            if let Some(ts) = f.timestamps.as_ref().filter(|t| t.len() == horizon) {
                return ts.clone();
            }
            h.series
                .iter()
                .find(|s| s.id == f.id)
                .and_then(|s| s.future_timestamps(horizon))
                .unwrap_or_default()
        })
        .collect()
}

fn fmt_date(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn qname(level: f64) -> String {
    format!("q{}", (level * 100.0).round() as i64)
}

/// `id,date,point,q10,q90` rows for every successful series.
pub fn forecast_csv(r: &ForecastResponse, dates: &[Vec<DateTime<Utc>>]) -> String {
    let mut out = String::from("id,date,point");
    for q in QUANTILES {
        out.push(',');
        out.push_str(&qname(q));
    }
    out.push('\n');
    for (f, ds) in r.series.iter().zip(dates) {
        if f.error.is_some() {
            continue;
        }
        for (k, p) in f.point.iter().enumerate() {
            let date = ds
                .get(k)
                .map(fmt_date)
                .unwrap_or_else(|| format!("+{}", k + 1));
            let _ = write!(out, "{},{date},{p:.3}", f.id);
            for q in QUANTILES {
                let v = f.quantile(q).and_then(|v| v.get(k)).copied().unwrap_or(*p);
                let _ = write!(out, ",{v:.3}");
            }
            out.push('\n');
        }
    }
    out
}

/// `id,date,value` CSV of daily series (used by `merchant-ai sample`).
pub fn series_to_csv(series: &[Series]) -> String {
    let mut out = String::from("id,date,value\n");
    for s in series {
        let start = s.start.unwrap_or_default();
        let f = s.frequency.unwrap_or(Frequency::Daily);
        for (i, v) in s.values.iter().enumerate() {
            let _ = writeln!(out, "{},{},{v}", s.id, fmt_date(&f.step(start, i)));
        }
    }
    out
}

/// Per series: the total, the recent history and the forecast as sparklines on one scale,
/// and the first `rows` steps with their interval.
pub fn summary(
    r: &ForecastResponse,
    history: &[Series],
    dates: &[Vec<DateTime<Utc>>],
    rows: usize,
) {
    for (f, ds) in r.series.iter().zip(dates) {
        if let Some(e) = &f.error {
            outln!(
                "   {}: not forecast ({}: {})",
                f.id,
                e.kind.as_str(),
                e.message
            );
            continue;
        }
        let total: f64 = f.point.iter().sum();
        let lo = f.quantile(QUANTILES[0]).unwrap_or(&[]);
        let hi = f.quantile(QUANTILES[1]).unwrap_or(&[]);
        outln!(
            "   {} (model {}): {:.1} units over the next {} steps",
            f.id,
            f.model,
            total,
            f.point.len(),
        );
        if let Some(h) = history.iter().find(|s| s.id == f.id) {
            let n = f.point.len().min(56);
            let past = &h.values[h.values.len().saturating_sub(n)..];
            let max = past.iter().chain(&f.point).copied().fold(0.0f64, f64::max);
            outln!(
                "      last {} {} | next {} {}",
                past.len(),
                sparkline_scaled(past, max),
                n,
                sparkline_scaled(&f.point[..n], max)
            );
        }
        for k in 0..rows.min(f.point.len()) {
            let d = ds
                .get(k)
                .map(fmt_date)
                .unwrap_or_else(|| format!("+{}", k + 1));
            outln!(
                "      {d}  {:>8.2}   80% interval [{:.2}, {:.2}]",
                f.point[k],
                lo.get(k).copied().unwrap_or(f.point[k]),
                hi.get(k).copied().unwrap_or(f.point[k]),
            );
        }
        if f.point.len() > rows {
            outln!("      ... {} more steps", f.point.len() - rows);
        }
    }
}

/// A one-line chart of the values, scaled from 0 to `max`.
pub fn sparkline_scaled(v: &[f64], max: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    v.iter()
        .map(|x| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// One series' reorder advice, or why there is none.
pub struct Advice {
    id: String,
    stock: Option<StockPosition>,
    result: std::result::Result<Replenishment, String>,
}

impl Advice {
    /// A line of text.
    pub fn line(&self) -> String {
        match (&self.result, &self.stock) {
            (Ok(r), Some(s)) => format!(
                "   {}: on hand {:.0}, on order {:.0}; reorder point {:.1} (demand {:.1} + safety stock {:.1}) -> {}",
                self.id,
                s.on_hand,
                s.on_order,
                r.reorder_point,
                r.protection_demand,
                r.safety_stock,
                if r.reorder_now {
                    format!("ORDER {:.0} units now", r.order_quantity)
                } else {
                    "no order needed".to_owned()
                }
            ),
            (Err(e), _) => format!("   {}: no advice ({e})", self.id),
            (Ok(_), None) => format!("   {}: no advice", self.id),
        }
    }
    /// The advice as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.result {
            Ok(r) => serde_json::json!({ "id": self.id, "stock": self.stock, "replenishment": r }),
            Err(e) => serde_json::json!({ "id": self.id, "stock": self.stock, "error": e }),
        }
    }
}

/// Reorder advice for every series.
pub fn reorder(
    r: &ForecastResponse,
    stock: &HashMap<String, StockPosition>,
    lead_time: usize,
    service_level: f64,
) -> Vec<Advice> {
    let policy = ReplenishmentPolicy::new(lead_time).with_service_level(service_level);
    r.series
        .iter()
        .map(|f| {
            let st = stock.get(&f.id).copied();
            let result = match (&f.error, st) {
                (Some(e), _) => Err(format!("not forecast: {}", e.message)),
                (None, None) => Err("no row in the stock file".to_owned()),
                (None, Some(s)) => replenish(f, &s, &policy).map_err(|e| e.message().to_owned()),
            };
            Advice {
                id: f.id.clone(),
                stock: st,
                result,
            }
        })
        .collect()
}

/// Draws one panel per series (at most 12): the last `tail` points of history, the forecast
/// and its 80% interval band.
pub fn plot_svg(
    path: &Path,
    history: &[Series],
    r: &ForecastResponse,
    tail: usize,
) -> CliResult<()> {
    use plotters::prelude::*;
    let ok: Vec<&SeriesForecast> = r
        .series
        .iter()
        .filter(|s| s.error.is_none())
        .take(12)
        .collect();
    if ok.is_empty() {
        return Err(CliError::runtime("nothing to plot: no series was forecast"));
    }
    let err = |e: String| CliError::runtime(format!("cannot draw {}: {e}", path.display()));
    let root = SVGBackend::new(path, (960, 260 * ok.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let panels = root.split_evenly((ok.len(), 1));
    for (f, area) in ok.iter().zip(panels.iter()) {
        let Some(h) = history.iter().find(|s| s.id == f.id) else {
            continue;
        };
        let hist: Vec<f64> = h.values[h.values.len().saturating_sub(tail)..].to_vec();
        let n = hist.len() as i64;
        let lo = f.quantile(QUANTILES[0]).unwrap_or(&f.point).to_vec();
        let hi = f.quantile(QUANTILES[1]).unwrap_or(&f.point).to_vec();
        let ymax = hist
            .iter()
            .chain(&hi)
            .chain(&f.point)
            .copied()
            .fold(1.0f64, f64::max)
            * 1.1;
        let ymin = lo.iter().chain(&hist).copied().fold(0.0f64, f64::min);
        let x_end = f.point.len() as i64;
        let start = h.start;
        let freq = h.frequency.unwrap_or(Frequency::Daily);
        let offset = h.values.len() as i64 - n;
        let label = move |x: &i64| -> String {
            match start {
                Some(s) => {
                    let idx = (offset + n - 1 + *x).max(0) as usize;
                    fmt_date(&freq.step(s, idx))
                }
                None => x.to_string(),
            }
        };
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} ({})", f.id, f.model), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(-(n - 1)..x_end, ymin..ymax)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&label)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let mut band: Vec<(i64, f64)> = (0..f.point.len())
            .map(|k| (k as i64 + 1, hi.get(k).copied().unwrap_or(f.point[k])))
            .collect();
        band.extend(
            (0..f.point.len())
                .rev()
                .map(|k| (k as i64 + 1, lo.get(k).copied().unwrap_or(f.point[k]))),
        );
        chart
            .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.18).filled())))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                hist.iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64 - (n - 1), *v)),
                BLACK,
            ))
            .map_err(|e| err(e.to_string()))?;
        let last = hist.last().copied().unwrap_or(0.0);
        chart
            .draw_series(LineSeries::new(
                std::iter::once((0, last))
                    .chain(f.point.iter().enumerate().map(|(k, v)| (k as i64 + 1, *v))),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliResult<History> {
        parse_history(Path::new("t.csv"), text)
    }

    #[test]
    fn groups_sorts_and_fills_daily_gaps() {
        let h = parse(
            "ID, Date, Value\n\"b\",2025-01-02,5\na,2025-01-03,3\na,2025-01-01,1\n\nb,2025-01-01,4\n",
        )
        .unwrap();
        assert_eq!(h.frequency, Frequency::Daily);
        assert_eq!(h.series[0].id, "b");
        assert_eq!(h.series[0].values, vec![4.0, 5.0]);
        assert_eq!(h.series[1].values, vec![1.0, 0.0, 3.0]);
        assert_eq!(h.filled, vec![("a".to_owned(), 1)]);
        let last = h.series[1].future_timestamps(1).unwrap()[0];
        assert_eq!(fmt_date(&last), "2025-01-04");
    }

    #[test]
    fn infers_weekly_and_monthly() {
        let h = parse("id,date,value\na,2025-01-06,1\na,2025-01-13,2\na,2025-01-27,3\n").unwrap();
        assert_eq!(h.frequency, Frequency::Weekly);
        assert_eq!(h.series[0].values, vec![1.0, 2.0, 0.0, 3.0]);
        let h = parse("id,date,value\na,2025-01-01,1\na,2025-02-01,2\na,2025-03-01,3\n").unwrap();
        assert_eq!(h.frequency, Frequency::Monthly);
        let e = parse("id,date,value\na,2025-01-01,1\na,2025-01-04,2\n").unwrap_err();
        assert_eq!(e.code, crate::fail::DATA);
        assert!(e.message.contains("3 days"), "{}", e.message);
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases = [
            ("", "empty"),
            ("id,date,value\n", "no data rows"),
            ("id,date\na,2025-01-01\n", "id,date,value"),
            ("id,date,value\na,2025-01-01\n", "line 2: expected a value"),
            ("id,date,value\na,01/02/2025,1\n", "line 2: date"),
            ("id,date,value\na,2025-01-01,NaN\n", "line 2: value \"NaN\""),
            ("id,date,value\n,2025-01-01,1\n", "line 2: id is empty"),
            (
                "id,date,value\na,2025-01-01,1\na,2025-01-01,2\n",
                "line 3: series \"a\" has date 2025-01-01 twice (first at line 2)",
            ),
            (
                "id,date,value\na,2025-01-01,1\na,2025-01-02,1\na,2525-01-01,2\n",
                "check its dates",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.code, crate::fail::DATA);
            assert!(e.message.starts_with("t.csv"), "{}", e.message);
            assert!(e.message.contains(want), "{want:?} not in {:?}", e.message);
        }
    }

    #[test]
    fn stock_file() {
        let p = Path::new("s.csv");
        let m = parse_stock(p, "id,on_hand,on_order\na,10,5\nb,3,\n").unwrap();
        assert_eq!(m["a"], StockPosition::new(10.0).with_on_order(5.0));
        assert_eq!(m["b"], StockPosition::new(3.0));
        let e = parse_stock(p, "id,on_hand\na,x\n").unwrap_err();
        assert!(e.message.contains("line 2: on_hand \"x\""), "{}", e.message);
        let e = parse_stock(p, "id,on_hand\na,1\na,2\n").unwrap_err();
        assert!(e.message.contains("line 3"), "{}", e.message);
    }

    #[test]
    fn csv_round_trip_and_sparkline() {
        let s = Series::new("x", vec![1.0, 2.0]).with_start(
            NaiveDate::from_ymd_opt(2025, 3, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc(),
            Frequency::Daily,
        );
        let csv = series_to_csv(&[s]);
        assert_eq!(csv, "id,date,value\nx,2025-03-01,1\nx,2025-03-02,2\n");
        let h = parse(&csv).unwrap();
        assert_eq!(h.series[0].values, vec![1.0, 2.0]);
        assert_eq!(sparkline_scaled(&[0.0, 1.0], 1.0), "▁█");
        assert_eq!(sparkline_scaled(&[1.0, 1.0], 2.0), "▅▅");
        assert_eq!(sparkline_scaled(&[0.0, 0.0], 0.0), "▁▁");
    }
    #[test]
    fn plot_and_csv_of_a_forecast() {
        let h = parse("id,date,value\na,2025-01-01,1\na,2025-01-02,3\na,2025-01-03,2\n").unwrap();
        let f = SeriesForecast::new("a", vec![2.0, 2.5], "test").with_quantiles(vec![
            QuantileForecast::new(0.1, vec![1.0, 1.2]),
            QuantileForecast::new(0.9, vec![3.0, 3.9]),
        ]);
        let bad = SeriesForecast::failed("b", Error::invalid_request("too short"));
        let r = ForecastResponse::new(vec![f, bad], ResponseMeta::new("x"));
        let dates = future_dates(&h, &r, 2);
        assert_eq!(
            forecast_csv(&r, &dates),
            "id,date,point,q10,q90\na,2025-01-04,2.000,1.000,3.000\na,2025-01-05,2.500,1.200,3.900\n"
        );
        let path =
            std::env::temp_dir().join(format!("merchant-ai-plot-{}.svg", std::process::id()));
        plot_svg(&path, &h.series, &r, 120).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            svg.starts_with("<svg") && svg.contains("a (test)"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        assert!(svg.contains("<polygon"), "the interval band is drawn");
    }
}
