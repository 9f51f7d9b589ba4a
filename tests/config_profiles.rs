//! Config profiles build different stacks; every invalid config names the key and the reason;
//! no secret value is ever printed.

use merchant_ai::contract::{Fault, FaultHarness, ScriptedFactory, ScriptedProvider};
use merchant_ai::{
    Capability, ChatRequest, Config, EnvSource, ErrorKind, Message, Provider, ProviderConfig,
    Registry,
};

const THREE_PROFILES: &str = r#"
default_profile = "dev"

[providers.local]
kind = "scripted"

[providers.vendor_sg]
kind = "scripted"
region = "ap-southeast-1"
jurisdiction = "SG"
api_key_env = "VENDOR_KEY"

[providers.search_only]
kind = "scripted"
capabilities = ["search"]

[profiles.dev]
description = "laptop: everything local"
[profiles.dev.routes]
search = ["local"]
chat = ["local"]

[profiles.staging.routes]
search = ["search_only", "local"]
chat = ["vendor_sg", "local"]
forecast = ["local"]

[profiles.prod.routes]
search = ["vendor_sg", "search_only", "local"]
recommend = ["vendor_sg", "local"]
chat = ["vendor_sg", "local"]
forecast = ["vendor_sg", "local"]
"#;

fn env() -> EnvSource {
    EnvSource::from_map([("VENDOR_KEY", "sk-live-SECRET-0042")])
}

fn registry() -> Registry {
    Registry::new().with(ScriptedFactory)
}

#[tokio::test]
async fn one_file_three_profiles_three_stacks() {
    let config = Config::parse_with_env(THREE_PROFILES, env()).unwrap();
    let reg = registry();

    let dev = reg.build(&config, None).await.unwrap();
    assert_eq!(dev.routes().profile, "dev");
    assert!(dev.recommender().is_err());
    let providers = |c: &merchant_ai::Client, cap: Capability| -> Vec<String> {
        c.routes().routes[&cap]
            .iter()
            .map(|e| e.provider.clone())
            .collect()
    };
    assert_eq!(providers(&dev, Capability::Search), ["local"]);

    let staging = reg.build(&config, Some("staging")).await.unwrap();
    assert_eq!(
        providers(&staging, Capability::Chat),
        ["vendor_sg", "local"]
    );
    assert!(staging.forecaster().is_ok());
    assert!(staging.recommender().is_err());

    let prod = reg.build(&config, Some("prod")).await.unwrap();
    assert_eq!(
        providers(&prod, Capability::Search),
        ["vendor_sg", "search_only", "local"]
    );
    let entry = &prod.routes().routes[&Capability::Chat][0];
    assert!(entry.data_leaves_process);
    assert_eq!(entry.jurisdiction.as_deref(), Some("SG"));
    let table = prod.routes().to_string();
    assert!(
        table.contains(
            "vendor_sg (scripted, remote ap-southeast-1) -> local (scripted, in-process)"
        ),
        "{table}"
    );

    // The stacks really differ: dev's chat is served by `local`, prod's by `vendor_sg`.
    let req = ChatRequest::new(vec![Message::user("hi")]);
    let d = dev.chat_model().unwrap().chat(req.clone()).await.unwrap();
    let p = prod.chat_model().unwrap().chat(req).await.unwrap();
    assert_eq!(d.meta.provider, "local");
    assert_eq!(p.meta.provider, "vendor_sg");
}

#[tokio::test]
async fn profile_from_env_var() {
    let env = EnvSource::from_map([("VENDOR_KEY", "k"), ("MERCHANT_AI_PROFILE", "staging")]);
    let config = Config::parse_with_env(THREE_PROFILES, env).unwrap();
    let client = registry().build(&config, None).await.unwrap();
    assert_eq!(client.routes().profile, "staging");
    let err = registry().build(&config, Some("qa")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(
        err.message()
            .contains(r#"profile "qa" (requested) is not defined (defined: dev, prod, staging)"#),
        "{err}"
    );
}

fn config_error(toml: &str) -> String {
    match Config::parse_with_env(toml, env()) {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            e.message().to_owned()
        }
        Ok(c) => {
            let e = registry().validate(&c, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            e.message().to_owned()
        }
    }
}

#[test]
fn invalid_configs_name_the_key_and_reason() {
    let cases: &[(&str, &str)] = &[
        // unknown provider kind, listing the registered kinds
        (
            "[providers.x]\nkind = \"openia\"\n[profiles.p.routes]\nchat = [\"x\"]",
            "providers.x.kind: unknown provider kind \"openia\" (registered kinds: scripted)",
        ),
        // a route to a provider without that capability
        (
            "[providers.s]\nkind = \"scripted\"\ncapabilities = [\"search\"]\n[profiles.p.routes]\nchat = [\"s\"]",
            "profiles.p.routes.chat[0]: provider \"s\" (kind scripted) does not offer chat",
        ),
        // a missing env var for a key
        (
            "[providers.v]\nkind = \"scripted\"\napi_key_env = \"NOT_SET_ANYWHERE\"\n[profiles.p.routes]\nchat = [\"v\"]",
            "providers.v.api_key_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        // duplicate names in a route
        (
            "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nchat = [\"a\", \"a\"]",
            "profiles.p.routes.chat[1]: provider \"a\" appears twice in the route",
        ),
        // duplicate provider names (by case)
        (
            "[providers.Local]\nkind = \"scripted\"\n[providers.local]\nkind = \"scripted\"\n[profiles.p.routes]\nchat = [\"local\"]",
            "duplicate provider name",
        ),
        // a route to an undefined provider
        (
            "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nsearch = [\"b\"]",
            "profiles.p.routes.search[0]: provider \"b\" is not defined (defined: a)",
        ),
        // an unknown capability
        (
            "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nsearhc = [\"a\"]",
            "profiles.p.routes.searhc: unknown capability",
        ),
        // an unknown key in a profile
        (
            "[providers.a]\nkind = \"scripted\"\n[profiles.p]\nroute = {}",
            "profiles.p.route: unknown key (expected one of: description, routes, layers, cache, hybrid)",
        ),
        // an adapter option of the wrong type, named by the adapter's parser
        (
            "[providers.a]\nkind = \"scripted\"\ncapabilities = \"chat\"\n[profiles.p.routes]\nchat = [\"a\"]",
            "providers.a: invalid type",
        ),
        // a literal secret in the file
        (
            "[providers.a]\nkind = \"scripted\"\napi_key = \"sk-123\"\n[profiles.p.routes]\nchat = [\"a\"]",
            "providers.a.api_key: secrets must not be written in the config file",
        ),
        // a missing ${VAR}
        (
            "[providers.a]\nkind = \"scripted\"\nmodel_dir = \"${NO_SUCH_DIR_VAR}/m\"\n[profiles.p.routes]\nchat = [\"a\"]",
            "providers.a.model_dir: environment variable NO_SUCH_DIR_VAR is not set",
        ),
        // a missing kind
        (
            "[providers.a]\nregion = \"x\"\n[profiles.p.routes]\nchat = [\"a\"]",
            "providers.a.kind: missing",
        ),
        // bad TOML, with line and column
        (
            "[providers.a]\nkind = \"scripted\"\n[profiles.p.routes]\nchat = [\"a\"\n",
            "invalid TOML at line 4, column",
        ),
        // a duplicate table is a TOML error with its position
        (
            "[providers.a]\nkind = \"scripted\"\n[providers.a]\nkind = \"scripted\"\n",
            "invalid TOML at line 3",
        ),
        // default_profile naming nothing
        (
            "default_profile = \"prod\"\n[providers.a]\nkind = \"scripted\"\n[profiles.dev.routes]\nchat = [\"a\"]",
            "default_profile: profile \"prod\" is not defined (defined: dev)",
        ),
    ];
    for (toml, expected) in cases {
        let msg = config_error(toml);
        assert!(
            msg.contains(expected),
            "for config\n{toml}\nexpected an error containing\n  {expected}\ngot\n  {msg}"
        );
    }
}

#[test]
fn env_vars_expand_in_options() {
    let env = EnvSource::from_map([("ASSETS", "/opt/assets")]);
    let c = Config::parse_with_env(
        "[catalog]\nproducts = \"${ASSETS}/p.jsonl\"\n[providers.a]\nkind = \"scripted\"\ndir = \"${ASSETS}/m\"\nfallback = \"${UNSET_X:-/tmp}/y\"\n[profiles.p.routes]\nchat = [\"a\"]",
        env,
    )
    .unwrap();
    let a = c.provider("a").unwrap();
    assert_eq!(a.options()["dir"].as_str(), Some("/opt/assets/m"));
    assert_eq!(a.options()["fallback"].as_str(), Some("/tmp/y"));
    assert_eq!(
        c.catalog().products.as_deref(),
        Some(std::path::Path::new("/opt/assets/p.jsonl"))
    );
}

#[tokio::test]
async fn no_secret_in_debug_or_display() {
    let secret = "sk-live-SECRET-0042";
    let config = Config::parse_with_env(THREE_PROFILES, env()).unwrap();
    let vendor = config.provider("vendor_sg").unwrap();
    let key = vendor.api_key().unwrap().unwrap();
    assert_eq!(
        merchant_ai::config::ExposeSecret::expose_secret(&key),
        secret
    );
    let client = registry().build(&config, Some("prod")).await.unwrap();
    let printed = [
        format!("{config:?}"),
        format!("{vendor:?}"),
        format!("{key:?}"),
        format!("{client:?}"),
        format!("{}", client.routes()),
        format!("{:?}", registry()),
        format!(
            "{:?}",
            ProviderConfig::new("x", "y").with_option("password_hint", "abc")
        ),
    ];
    for p in &printed {
        assert!(!p.contains(secret), "secret printed in: {p}");
    }
    assert!(!printed[6].contains("abc"));
    // Errors carry neither the key nor the customer's text.
    let customer_text = "my email is jane.doe@example.com";
    let p = ScriptedProvider::new("s");
    p.inject(Capability::Chat, Fault::QuotaExhausted).await;
    let err = p
        .chat_model()
        .unwrap()
        .chat(ChatRequest::new(vec![Message::user(customer_text)]))
        .await
        .unwrap_err();
    for s in [format!("{err}"), format!("{err:?}")] {
        assert!(!s.contains("jane.doe") && !s.contains(secret), "{s}");
    }
    let req = ChatRequest::new(vec![Message::user(customer_text)]);
    assert!(!format!("{req:?}").contains("jane.doe"));
    let r = p.chat_model().unwrap();
    p.clear().await;
    let resp = r.chat(req).await.unwrap();
    assert!(!format!("{resp:?}").contains("scripted reply"));
}
