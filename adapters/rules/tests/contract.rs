//! The shared contract suite on the rules provider, bare and behind the default layers.

use std::sync::Arc;

use merchant_ai::contract::Suite;
use merchant_ai::layers::{LayerSettings, LayeredProvider, ProviderLayers};
use merchant_ai::{Provider, Registry};
use merchant_ai_rules::{RulesConfig, RulesProvider};

#[tokio::test]
async fn rules_provider_passes_the_contract_suite() {
    let p: Arc<dyn Provider> =
        Arc::new(RulesProvider::new("rules", RulesConfig::default()).unwrap());
    let report = Suite::new(p).run().await;
    report.print();
    report.assert_passed();
    // In-process: only the fault matrix is skipped (no upstream to break).
    for r in report.skipped() {
        assert!(r.name.starts_with("fault."), "{} skipped", r.name);
    }
}

#[tokio::test]
async fn rules_provider_passes_behind_the_default_layers() {
    let p: Arc<dyn Provider> =
        Arc::new(RulesProvider::new("rules", RulesConfig::default()).unwrap());
    let layered = LayeredProvider::new(p, ProviderLayers::new("rules", &LayerSettings::default()));
    let report = Suite::new(Arc::new(layered)).run().await;
    report.assert_passed();
}

#[tokio::test]
async fn built_from_config_by_the_registry() {
    let config = merchant_ai::Config::parse(
        r#"
[providers.rules]
kind = "rules"
[providers.rules.forecast]
method = "auto"
[profiles.default.routes]
search = ["rules"]
recommend = ["rules"]
chat = ["rules"]
forecast = ["rules"]
"#,
    )
    .unwrap();
    let registry = Registry::new().with(merchant_ai_rules::factory());
    let client = registry.build(&config, None).await.unwrap();
    assert!(client.searcher().is_ok() && client.forecaster().is_ok());
    let bad = merchant_ai::Config::parse(
        "[providers.rules]\nkind = \"rules\"\n[providers.rules.forecast]\nmethod = \"arima\"\n[profiles.p.routes]\nforecast = [\"rules\"]\n",
    )
    .unwrap();
    let err = registry.build(&bad, None).await.unwrap_err();
    assert!(
        err.message()
            .contains("providers.rules.forecast.method: unknown forecast method \"arima\""),
        "{err}"
    );
}
