//! Runs the built `merchant-ai` binary as a user or a script would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_merchant-ai"));
    c.env_remove("MERCHANT_AI_PROFILE");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Two daily series of `days` days.
fn write_sales(dir: &Path, days: usize) -> PathBuf {
    let mut csv = String::from("id,date,value\n");
    let start = merchant_ai::chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    for id in ["tea-1", "mug-2"] {
        for d in 0..days {
            let date = start + merchant_ai::chrono::Duration::days(d as i64);
            let v = if id == "tea-1" { 10 + (d % 7) } else { d % 3 };
            csv.push_str(&format!("{id},{date},{v}\n"));
        }
    }
    let p = dir.join("sales.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

#[test]
fn demo_tours_every_capability_and_names_the_provider() {
    let o = run(&["demo"]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "stdout:\n{out}\nstderr:\n{}",
        stderr(&o)
    );
    for section in [
        "== search ==",
        "== recommend ==",
        "== chat ==",
        "== forecast ==",
    ] {
        assert!(out.contains(section), "missing {section}:\n{out}");
    }
    assert!(out.contains("served by rules"), "{out}");
    assert!(
        out.contains("order_status"),
        "the tool round trip is shown:\n{out}"
    );
    assert!(out.contains("reorder"), "{out}");
}

#[test]
fn demo_json_has_all_sections() {
    let o = run(&["demo", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    for k in ["search", "recommend", "chat", "forecast"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["failed"], serde_json::json!([]));
}

#[test]
fn search_json_parses() {
    let o = run(&[
        "search",
        "running shoes",
        "--limit",
        "3",
        "--in-stock",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let hits = v["hits"].as_array().expect("hits");
    assert!(!hits.is_empty() && hits.len() <= 3, "{v}");
    assert_eq!(v["meta"]["provider"], "rules");
}

#[test]
fn search_with_category_and_brand_filters() {
    let o = run(&[
        "search",
        "tea",
        "--category",
        "Grocery > Tea",
        "--brand",
        "Jadeleaf",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for h in v["hits"].as_array().unwrap() {
        assert_eq!(h["product"]["brand"], "Jadeleaf");
        assert_eq!(h["product"]["category"][1], "Tea");
    }
}

#[test]
fn recommend_for_a_subject_and_a_product() {
    let o = run(&["recommend", "--subject", "u_0001", "--limit", "4", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["items"].as_array().unwrap().len() <= 4);
    let o = run(&["recommend", "--product", "sku-00001"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("sku-00001 "),
        "the anchor is not recommended"
    );
}

#[test]
fn chat_answers_and_streams() {
    let o = run(&["chat", "where is my order 12345?", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v["responses"].as_array().unwrap().is_empty());
    let o = run(&["chat", "hello", "--stream"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("served by rules"));
}

#[test]
fn forecast_writes_ids_times_horizon_rows_and_a_plot() {
    let d = tmp("forecast");
    let input = write_sales(&d, 90);
    let out = d.join("forecast.csv");
    let svg = d.join("forecast.svg");
    let o = run(&[
        "forecast",
        "--input",
        s(&input),
        "--horizon",
        "14",
        "--output",
        s(&out),
        "--plot",
        s(&svg),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,date,point,q10,q90");
    assert_eq!(lines.len(), 1 + 2 * 14, "{csv}");
    assert!(lines[1].starts_with("tea-1,2025-08-30,"), "{}", lines[1]);
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("<svg") && plot.contains("tea-1"));
}

#[test]
fn forecast_with_stock_prints_reorder_advice() {
    let d = tmp("stock");
    let input = write_sales(&d, 60);
    let stock = d.join("stock.csv");
    std::fs::write(&stock, "id,on_hand,on_order\ntea-1,20,0\nmug-2,500,\n").unwrap();
    let o = run(&[
        "forecast",
        "--input",
        s(&input),
        "--horizon",
        "14",
        "--stock",
        s(&stock),
        "--lead-time",
        "7",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let adv = v["replenishment"].as_array().unwrap();
    assert_eq!(adv.len(), 2);
    assert_eq!(adv[0]["replenishment"]["reorder_now"], true, "{v}");
    assert_eq!(adv[1]["replenishment"]["reorder_now"], false, "{v}");
}

#[test]
fn bad_csv_line_exits_3_naming_the_line() {
    let d = tmp("badcsv");
    let p = d.join("bad.csv");
    std::fs::write(
        &p,
        "id,date,value\na,2025-01-01,1\na,2025-01-02,2\na,2025-13-03,3\n",
    )
    .unwrap();
    let o = run(&["forecast", "--input", s(&p), "--horizon", "7"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("line 4") && err.contains("YYYY-MM-DD"),
        "{err}"
    );

    std::fs::write(&p, "id,date,value\na,2025-01-01,1\na,2025-01-02,lots\n").unwrap();
    let o = run(&["forecast", "--input", s(&p), "--horizon", "7"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));

    std::fs::write(&p, "sku,day,qty\na,2025-01-01,1\n").unwrap();
    let o = run(&["forecast", "--input", s(&p), "--horizon", "7"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("id,date,value"), "{}", stderr(&o));
}

#[test]
fn missing_files_are_named() {
    let o = run(&[
        "forecast",
        "--input",
        "/nonexistent/sales.csv",
        "--horizon",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/nonexistent/sales.csv"));
    let o = run(&["check", "--config", "/nonexistent/merchant-ai.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/merchant-ai.toml"));
}

#[test]
fn unknown_profile_exits_2_listing_profiles() {
    let o = run(&["check", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("\"nope\"") && err.contains("defined: default"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["search"]).status.code(), Some(2));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("Exit codes"));
}

#[test]
fn check_prints_the_route_table() {
    let o = run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("profile default"), "{out}");
    for cap in ["search", "recommend", "chat", "forecast"] {
        assert!(out.contains(cap), "{out}");
    }
    assert!(out.contains("rules (rules, in-process)"), "{out}");
    let o = run(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profile"], "default");
    assert!(v["routes"]["routes"]["search"].is_array(), "{v}");
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let d = tmp("cfg");
    let cfg = d.join("bad.toml");
    std::fs::write(
        &cfg,
        "[providers.rules]\nkind = \"rules\"\n[profiles.p.routes]\nsearch = [\"missing\"]\n",
    )
    .unwrap();
    let o = run(&["check", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("profiles.p.routes.search[0]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn catalog_files_from_config_are_used_and_bad_lines_exit_3() {
    let d = tmp("catalog");
    let o = run(&["sample", "--out", s(&d), "--products", "60"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = d.join("merchant-ai.toml");
    let text = format!(
        "[catalog]\nproducts = \"{}\"\nevents = \"{}\"\n[providers.rules]\nkind = \"rules\"\n[profiles.dev.routes]\nsearch = [\"rules\"]\nrecommend = [\"rules\"]\n",
        s(&d.join("products.jsonl")),
        s(&d.join("events.jsonl"))
    );
    std::fs::write(&cfg, text).unwrap();
    let o = run(&["check", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("forecast   (no route)"),
        "{}",
        stdout(&o)
    );
    let o = run(&["search", "--config", s(&cfg), "shoe", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["total"].as_u64().unwrap() > 0);

    // A broken product line: exit 3, naming the file and the line.
    let products = d.join("products.jsonl");
    let mut t = std::fs::read_to_string(&products).unwrap();
    t = t.replacen('\n', "\n{\"id\": \"broken\"\n", 1);
    std::fs::write(&products, t).unwrap();
    let o = run(&["check", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("products.jsonl line 2"), "{err}");
}

#[test]
fn drill_takes_each_provider_down_and_reports_who_served() {
    let d = tmp("drill");
    let cfg = d.join("drill.toml");
    std::fs::write(
        &cfg,
        r#"
[providers.primary]
kind = "rules"
[providers.backup]
kind = "rules"
[profiles.staging.routes]
search = ["primary", "backup"]
recommend = ["primary", "backup"]
chat = ["primary", "backup"]
forecast = ["primary", "backup"]
[profiles.staging.layers.retry]
initial_backoff_ms = 1
max_backoff_ms = 2
"#,
    )
    .unwrap();
    let o = run(&[
        "drill",
        "--config",
        s(&cfg),
        "--profile",
        "staging",
        "--calls",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "down:primary", "down:backup"]);
    for o in v["scenarios"][1]["outcomes"].as_array().unwrap() {
        assert_eq!(o["served_by"]["backup"], 3, "{o}");
    }

    // The built-in profile has one provider: taking it down leaves nothing, exit 1.
    let o = run(&["drill", "--calls", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("down:rules"), "{}", stdout(&o));
}

#[test]
fn redact_reads_stdin_and_writes_placeholders() {
    use std::io::Write as _;
    let mut child = bin()
        .args(["redact", "--name", "Alice Smith"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            "Alice Smith, li.na@example.cn, +86 138 1234 5678\n订单号：2024031512345678901，型号 SM-G9980，¥1,299.00\nagain li.na@example.cn\n"
                .as_bytes(),
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "[NAME_1], [EMAIL_1], [PHONE_1]\n订单号：2024031512345678901，型号 SM-G9980，¥1,299.00\nagain [EMAIL_1]\n"
    );
    assert!(
        stderr(&o).contains("redacted 4 value(s) in 3 line(s)"),
        "{}",
        stderr(&o)
    );
    let o = run(&["redact", "--kinds", "email,bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"bogus\""), "{}", stderr(&o));
}

#[test]
fn check_prints_the_data_flow_map_and_fails_on_violations() {
    let d = tmp("flow");
    let cfg = d.join("flow.toml");
    let base = "[providers.rules]\nkind = \"rules\"\n[providers.remote]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nchat_model = \"m\"\njurisdiction = \"US\"\n[profiles.p.routes]\nchat = [\"remote\", \"rules\"]\nsearch = [\"rules\"]\n[profiles.p.privacy.residency.CN]\npersonal = [\"CN\"]\n";
    std::fs::write(&cfg, base).unwrap();
    let o = run(&["check", "--config", s(&cfg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("data flow"), "{out}");
    assert!(out.contains("subjects CN"), "{out}");
    assert!(out.contains("no privacy violations"), "{out}");
    let o = run(&["check", "--config", s(&cfg), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["data_flow"]["rows"].is_array(), "{v}");

    // Sending personal data unredacted to a remote provider is a violation: exit 2.
    let bad = format!("{base}[profiles.p.privacy.providers.remote]\npii = \"allow\"\n");
    std::fs::write(&cfg, bad).unwrap();
    let o = run(&["check", "--config", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("profiles.p.privacy.providers.remote.pii"),
        "{}",
        stdout(&o)
    );
}
