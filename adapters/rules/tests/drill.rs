//! An outage drill: with the remote providers down, every capability is still served by the
//! rules adapter, and the extra upstream attempts stay bounded.

use merchant_ai::contract::ScriptedFactory;
use merchant_ai::drill::{DrillOptions, run};
use merchant_ai::{Capability, Config, Registry};

const CONFIG: &str = r#"
[providers.vendor_sg]
kind = "scripted"
region = "ap-southeast-1"
jurisdiction = "SG"

[providers.vendor_cn]
kind = "scripted"
region = "cn-beijing"
jurisdiction = "CN"
capabilities = ["chat"]

[providers.rules]
kind = "rules"

[profiles.prod.routes]
search = ["vendor_sg", "rules"]
recommend = ["vendor_sg", "rules"]
chat = ["vendor_sg", "vendor_cn", "rules"]
forecast = ["vendor_sg", "rules"]

[profiles.prod.layers.retry]
max_attempts = 3
initial_backoff_ms = 1
max_backoff_ms = 4

[profiles.prod.layers.breaker]
min_calls = 5
cooldown_ms = 60000
"#;

#[tokio::test]
async fn remote_outage_is_absorbed_by_the_rules_adapter() {
    let registry = Registry::new()
        .with(ScriptedFactory)
        .with(merchant_ai_rules::factory());
    let config = Config::parse(CONFIG).unwrap();
    let client = registry.build(&config, Some("prod")).await.unwrap();
    let report = run(&client, &DrillOptions::default().with_calls(12)).await;
    println!("{report}");
    // Every scenario, including the rules adapter itself down, is fully served.
    assert!(report.all_served(), "{report}");

    let names: Vec<&str> = report.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "down:vendor_sg",
            "down:rules",
            "down:vendor_cn",
            "down:all-remote"
        ]
    );
    let baseline = &report.scenarios[0];
    for o in &baseline.outcomes {
        assert_eq!(
            o.served_by.keys().collect::<Vec<_>>(),
            ["vendor_sg"],
            "{:?}",
            o.capability
        );
        assert_eq!(o.upstream_attempts_per_call, 1.0);
    }
    let all_remote = report.scenarios.last().unwrap();
    assert_eq!(all_remote.down, ["vendor_sg", "vendor_cn"]);
    for o in &all_remote.outcomes {
        assert_eq!(
            o.served_by.get("rules"),
            Some(&12),
            "{:?} {:?}",
            o.capability,
            o.served_by
        );
        // At most: 3 attempts on each dead remote of the route, plus the rules call; and far
        // less once the breakers opened.
        let remotes = if o.capability == Capability::Chat {
            2.0
        } else {
            1.0
        };
        assert!(
            o.upstream_attempts_per_call <= remotes * 3.0 + 1.0,
            "{:?}",
            o
        );
    }
    let chat = all_remote
        .outcomes
        .iter()
        .find(|o| o.capability == Capability::Chat)
        .unwrap();
    assert!(
        chat.upstream_attempts_per_call < 3.0,
        "breakers cut the retries: {chat:?}"
    );
    assert!(
        serde_json::to_string(&report)
            .unwrap()
            .contains("\"down:all-remote\"")
    );
}
