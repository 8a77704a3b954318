//! Building providers and chains from `agentd.toml`.

use crate::hello;
use agentd_config::{Config, ProviderConfig, ProviderKind};
use agentd_llm::{BreakerRegistry, BreakerState, BuildError, ProviderChain};
use std::time::Duration;

const CONFIG: &str = r#"
[providers.down]
kind = "mock"
script = [{ error = "server" }]

[providers.up]
kind = "mock"
script = [{ reply = "hello from up" }]

[providers.gpt]
kind = "openai"
api_key_env = "AGENTD_TEST_NOT_SET"
model = "gpt-4o-mini"

[[agents]]
name = "resilient"
providers = ["down", "up"]
retry = { max_attempts = 3, initial = "1s", max = "4s" }
circuit_breaker = { failures = 3, reset = "30s" }

[[agents]]
name = "plain"
providers = ["down", "up"]

[[agents]]
name = "real"
providers = ["gpt"]
"#;

#[tokio::test(start_paused = true)]
async fn an_agent_chain_follows_its_retry_and_breaker_config() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let registry = BreakerRegistry::new();
    let chain = ProviderChain::from_config(
        config.agent("resilient").unwrap(),
        &config.providers,
        &registry,
    )
    .unwrap();
    assert_eq!(chain.provider_names().collect::<Vec<_>>(), ["down", "up"]);

    let out = chain.complete(&hello(), None).await;

    assert_eq!(out.result.unwrap().message.content, "hello from up");
    assert_eq!(
        (out.provider.as_str(), out.attempts),
        ("up", 4),
        "3 on down, 1 on up"
    );
    // Three failed calls: `down` is open; /ready would show this.
    assert_eq!(
        registry.breaker_states(),
        [
            ("down".to_owned(), BreakerState::Open),
            ("up".to_owned(), BreakerState::Closed)
        ]
    );

    // Without `retry` / `circuit_breaker`: one attempt each, no breaker.
    let plain = ProviderChain::from_config(
        config.agent("plain").unwrap(),
        &config.providers,
        &BreakerRegistry::new(),
    )
    .unwrap();
    let out = plain.complete(&hello(), None).await;
    assert_eq!((out.provider.as_str(), out.attempts), ("up", 2));
}

#[test]
fn a_missing_key_variable_is_a_build_error_naming_provider_and_variable() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let e = ProviderChain::from_config_with_env(
        config.agent("real").unwrap(),
        &config.providers,
        &BreakerRegistry::new(),
        &|_| None,
    )
    .unwrap_err();
    assert!(matches!(e, BuildError::MissingApiKey { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "provider \"gpt\": environment variable AGENTD_TEST_NOT_SET (named by `providers.gpt.api_key_env`) is not set"
    );
    // An empty variable is as good as none.
    let e = agentd_llm::build_with_env("gpt", &config.providers["gpt"], &|_| Some(" ".into()))
        .err()
        .unwrap();
    assert!(matches!(e, BuildError::MissingApiKey { .. }), "{e:?}");

    let e = agentd_llm::build_with_env(
        "x",
        &ProviderConfig {
            kind: ProviderKind::Anthropic,
            ..ProviderConfig::default()
        },
        &|_| None,
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "provider \"x\": kind \"anthropic\" needs `model`"
    );
}

#[test]
fn defaults_of_real_providers() {
    let cfg = ProviderConfig {
        kind: ProviderKind::Anthropic,
        model: Some("claude-sonnet-4-5".into()),
        api_key_env: Some("K".into()),
        ..ProviderConfig::default()
    };
    let p = agentd_llm::build_with_env("claude", &cfg, &|_| Some("key".into())).unwrap();
    assert_eq!(p.name(), "claude");
    assert_eq!(agentd_llm::call_timeout(&cfg), Duration::from_secs(60));
    assert_eq!(
        agentd_llm::anthropic::DEFAULT_BASE_URL,
        "https://api.anthropic.com"
    );
    assert_eq!(
        agentd_llm::openai::DEFAULT_BASE_URL,
        "https://api.openai.com/v1"
    );
}

#[test]
fn the_chain_and_its_calls_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let config = Config::from_toml_str(CONFIG).unwrap();
    let chain = ProviderChain::from_config(
        config.agent("resilient").unwrap(),
        &config.providers,
        &BreakerRegistry::new(),
    )
    .unwrap();
    send_sync(&chain);
    let req = hello();
    let sink = |_: &str| {};
    send(&chain.complete(&req, Some(&sink)));
}
