//! Validation, and the providers and resilience keys.

use super::*;

// ---- validation ----

/// Validation failures come through `load` like parse errors, naming the file.
fn validation_error(text: &str) -> ConfigError {
    file_error(text)
}

#[test]
fn invalid_listen_address() {
    let err = validation_error("[server]\nlisten = \"localhost\"\n");
    assert_eq!(err.key(), Some("server.listen"));
    assert!(err.message().contains("socket address"), "{err}");
}

#[test]
fn invalid_store_url() {
    let err = validation_error("[store]\nurl = \"mysql://db\"\n");
    assert_eq!(err.key(), Some("store.url"));
    for ok in [
        "sqlite::memory:",
        "postgres://u@h/db",
        "postgresql://u@h/db",
    ] {
        load_file(&format!("[store]\nurl = \"{ok}\"\n")).unwrap();
    }
}

#[test]
fn invalid_store_lifecycle_keys() {
    let err = validation_error("[store]\ncheckpoint_ttl = \"0s\"\n");
    assert_eq!(err.key(), Some("store.checkpoint_ttl"));
    assert!(err.message().contains("longer than 0s"), "{err}");
    let err = validation_error("[store]\nencryption_key_env = \"\"\n");
    assert_eq!(err.key(), Some("store.encryption_key_env"));
    assert!(err.message().contains("environment variable"), "{err}");
}

#[test]
fn zero_workers() {
    let err = validation_error("[queue]\nworkers = 0\n");
    assert_eq!(err.key(), Some("queue.workers"));
    assert!(err.message().contains("at least 1"), "{err}");
}

#[test]
fn bad_agent_names() {
    let base = "[providers.p]\nkind = \"mock\"\nscript = [{ reply = \"r\" }]\n";
    for name in ["", "has space", "dot.ted", "slash/x"] {
        let err = validation_error(&format!(
            "{base}[[agents]]\nname = \"{name}\"\nproviders = [\"p\"]\n"
        ));
        assert_eq!(err.key(), Some("agents[0].name"), "{name}: {err}");
    }
    let err = validation_error(&format!(
        "{base}[[agents]]\nname = \"a\"\nproviders = [\"p\"]\n[[agents]]\nname = \"a\"\nproviders = [\"p\"]\n"
    ));
    assert_eq!(err.key(), Some("agents[1].name"));
    assert!(
        err.message().contains("duplicate agent name \"a\""),
        "{err}"
    );
}

#[test]
fn agent_providers() {
    let base = "[providers.a]\nkind = \"mock\"\nscript = [{ reply = \"r\" }]\n\
                [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\n\
                [[agents]]\nname = \"ok\"\nproviders = [\"a\"]\n";
    let err = validation_error(&format!(
        "{base}[[agents]]\nname = \"bad\"\nproviders = [\"b\", \"x\"]\n"
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: key `agents[1].providers`: unknown provider \"x\" (declared: a, b)",
            err.source_name()
        )
    );

    let err = validation_error(&format!(
        "{base}[[agents]]\nname = \"none\"\nproviders = []\n"
    ));
    assert_eq!(err.key(), Some("agents[1].providers"));
    assert!(err.message().contains("at least one provider"), "{err}");

    let err = validation_error("[[agents]]\nname = \"x\"\nproviders = [\"p\"]\n");
    assert!(err.message().contains("(declared: none)"), "{err}");
}

#[test]
fn mock_needs_script() {
    let err = validation_error("[providers.m]\nkind = \"mock\"\n");
    assert_eq!(err.key(), Some("providers.m.script"));
    assert!(err.message().contains("non-empty `script`"), "{err}");
}

#[test]
fn agent_limits() {
    let err = validation_error(&format!("{MINIMAL_AGENT}max_steps = 0\n"));
    assert_eq!(err.key(), Some("agents[0].max_steps"));

    let err = validation_error(&format!("{MINIMAL_AGENT}budget_usd = -0.01\n"));
    assert_eq!(err.key(), Some("agents[0].budget_usd"));
    assert!(err.message().contains(">= 0"), "{err}");

    let err = validation_error(&format!("{MINIMAL_AGENT}budget_usd = nan\n"));
    assert_eq!(err.key(), Some("agents[0].budget_usd"));

    load_file(&format!("{MINIMAL_AGENT}budget_usd = 0\n")).unwrap();
    load_file(&format!("{MINIMAL_AGENT}budget_usd = 0.0\n")).unwrap();
}

#[test]
fn memory_window_needs_max_messages() {
    let err = validation_error(&format!(
        "{MINIMAL_AGENT}memory = {{ strategy = \"window\" }}\n"
    ));
    assert_eq!(err.key(), Some("agents[0].memory.max_messages"));
    let err = validation_error(&format!(
        "{MINIMAL_AGENT}memory = {{ strategy = \"window\", max_messages = 0 }}\n"
    ));
    assert_eq!(err.key(), Some("agents[0].memory.max_messages"));
    let c = load_file(&format!(
        "{MINIMAL_AGENT}memory = {{ strategy = \"window\", max_messages = 1 }}\n"
    ))
    .unwrap();
    assert_eq!(c.agents[0].memory.max_messages, Some(1));
}

#[test]
fn negative_pricing() {
    let err =
        validation_error("[pricing.\"gpt-4.1\"]\ninput_per_mtok = -1.0\noutput_per_mtok = 1.0\n");
    assert_eq!(err.key(), Some("pricing.\"gpt-4.1\".input_per_mtok"));
    let err = validation_error("[pricing.m]\ninput_per_mtok = 1.0\noutput_per_mtok = -1.0\n");
    assert_eq!(err.key(), Some("pricing.m.output_per_mtok"));
}

#[test]
fn validate_on_constructed_config() {
    let mut c = Config::embedded();
    c.agents[0].providers = vec!["ghost".into()];
    let err = c.validate().unwrap_err();
    assert_eq!(err.key(), Some("agents[0].providers"));
    assert_eq!(err.message(), "unknown provider \"ghost\" (declared: mock)");

    let mut c = Config::embedded();
    c.queue.backoff.initial = Dur::from_secs(120);
    assert_eq!(
        c.validate().unwrap_err().key(),
        Some("queue.backoff.initial")
    );

    let mut c = Config::default();
    c.queue.lease = Dur(Duration::ZERO);
    assert_eq!(c.validate().unwrap_err().key(), Some("queue.lease"));
}

#[test]
fn config_error_constructor() {
    let err = ConfigError::new(
        "agentd.toml",
        Some("agents[0].tools".into()),
        "unknown tool \"x\"",
    );
    assert_eq!(
        err.to_string(),
        "agentd.toml: key `agents[0].tools`: unknown tool \"x\""
    );
    let err = ConfigError::new("embedded default", None, "oops");
    assert_eq!(err.to_string(), "embedded default: oops");
}

#[test]
fn enum_given_wrong_type_lists_choices() {
    for (text, choices) in [
        ("[providers.p]\nkind = 3\n", "mock, openai, anthropic"),
        ("[auth]\nmode = [1]\n", "none, api_key, jwt"),
        (
            "[providers.p]\nkind = \"mock\"\nscript = [{ error = 1 }]\n",
            "rate_limit, timeout, server",
        ),
        (
            "[[agents]]\nname = \"a\"\nproviders = []\nmemory = { strategy = true }\n",
            "window, all",
        ),
    ] {
        // The same list serde reports for an unknown string value.
        let err = file_error(text);
        assert!(
            err.message()
                .starts_with(&format!("expected one of: {choices}, found")),
            "{err}"
        );
        let unknown = file_error(
            &text
                .replacen("= 3", "= \"zzz\"", 1)
                .replacen("= [1]", "= \"zzz\"", 1)
                .replacen("= 1 }", "= \"zzz\" }", 1)
                .replacen("= true", "= \"zzz\"", 1),
        );
        assert!(
            unknown
                .message()
                .ends_with(&format!("expected one of: {choices}")),
            "{unknown}"
        );
    }
}

// ---- providers and resilience keys (agentd-llm) ----

#[test]
fn retry_and_circuit_breaker_keys() {
    let c = load_file(&format!(
        "{MINIMAL_AGENT}retry = {{ max_attempts = 4, initial = \"200ms\" }}\n\
         circuit_breaker = {{ failures = 3, reset = \"1m\" }}\n\
         [[agents]]\nname = \"plain\"\nproviders = [\"test\"]\n"
    ))
    .unwrap();
    let retry = c.agents[0].retry.clone().unwrap();
    assert_eq!(retry.max_attempts, 4);
    assert_eq!(retry.initial.get(), Duration::from_millis(200));
    assert_eq!(retry.max.get(), Duration::from_secs(30), "default max");
    let breaker = c.agents[0].circuit_breaker.clone().unwrap();
    assert_eq!(breaker.failures, 3);
    assert_eq!(breaker.reset.get(), Duration::from_secs(60));
    // Absent means one attempt and no breaker.
    assert_eq!(c.agents[1].retry, None);
    assert_eq!(c.agents[1].circuit_breaker, None);

    for (extra, key, msg) in [
        (
            "retry = { max_attempts = 0 }",
            "agents[0].retry.max_attempts",
            "at least 1",
        ),
        (
            "retry = { initial = \"2m\", max = \"1m\" }",
            "agents[0].retry.initial",
            "must not exceed `retry.max`",
        ),
        (
            "retry = { attempts = 2 }",
            "agents[0].retry.attempts",
            "unknown key",
        ),
        (
            "circuit_breaker = { failures = 0 }",
            "agents[0].circuit_breaker.failures",
            "at least 1",
        ),
        (
            "circuit_breaker = { reset = \"0s\" }",
            "agents[0].circuit_breaker.reset",
            "longer than 0s",
        ),
    ] {
        let err = file_error(&format!("{MINIMAL_AGENT}{extra}\n"));
        assert_eq!(err.key(), Some(key), "{extra}: {err}");
        assert!(err.message().contains(msg), "{extra}: {err}");
    }
}

#[test]
fn real_provider_keys() {
    let c = load_file(
        "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n\
         model = \"llama3.1\"\nmax_tokens = 512\ntimeout = \"90s\"\n\
         [providers.claude]\nkind = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\
         api_key_env = \"ANTHROPIC_API_KEY\"\n",
    )
    .unwrap();
    let local = &c.providers["local"];
    assert_eq!(local.api_key_env, None, "a local server may need no key");
    assert_eq!(local.max_tokens, Some(512));
    assert_eq!(local.timeout.unwrap().get(), Duration::from_secs(90));
    assert_eq!(c.providers["claude"].max_tokens, None);

    for (text, key, msg) in [
        (
            "[providers.p]\nkind = \"openai\"\napi_key_env = \"K\"\n",
            "providers.p.model",
            "kind \"openai\" needs `model`",
        ),
        (
            "[providers.p]\nkind = \"anthropic\"\napi_key_env = \"K\"\nmodel = \" \"\n",
            "providers.p.model",
            "kind \"anthropic\" needs `model`",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\n",
            "providers.p.api_key_env",
            "the OpenAI API (the default `base_url`) needs `api_key_env`",
        ),
        (
            "[providers.p]\nkind = \"anthropic\"\nmodel = \"m\"\nbase_url = \"http://proxy:4000\"\n",
            "providers.p.api_key_env",
            "the Anthropic API needs `api_key_env`",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nbase_url = \"api.openai.com\"\n",
            "providers.p.base_url",
            "`http://` or `https://`",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"\"\n",
            "providers.p.api_key_env",
            "name of an environment variable",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\ntimeout = \"0s\"\n",
            "providers.p.timeout",
            "longer than 0s",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nmax_tokens = 0\n",
            "providers.p.max_tokens",
            "at least 1",
        ),
        (
            "[providers.p]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\nscript = [{ reply = \"r\" }]\n",
            "providers.p.script",
            "only a mock provider has a `script`",
        ),
    ] {
        let err = file_error(text);
        assert_eq!(err.key(), Some(key), "{text}: {err}");
        assert!(err.message().contains(msg), "{text}: {err}");
    }
}

#[test]
fn tenant_budgets() {
    let c = Config::from_toml_str(
        "[tenants.acme]\nbudget_usd = 2.5\nperiod = \"1h\"\n\n[tenants.free]\n",
    )
    .unwrap();
    assert_eq!(c.tenants["acme"].budget_usd, Some(2.5));
    assert_eq!(c.tenants["acme"].period.get().as_secs(), 3600);
    assert_eq!(c.tenants["free"].budget_usd, None);
    assert_eq!(c.tenants["free"].period.get().as_secs(), 86_400);
    for (text, key) in [
        (
            "[tenants.acme]\nbudget_usd = -1\n",
            "tenants.acme.budget_usd",
        ),
        ("[tenants.acme]\nperiod = \"0s\"\n", "tenants.acme.period"),
        ("[tenants.acme]\nbudget = 1\n", "tenants.acme.budget"),
    ] {
        let err = Config::from_toml_str(text).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
    }
}

#[test]
fn principal_budgets() {
    let c = Config::from_toml_str(
        "[principals.\"alice@example.com\"]\nbudget_usd = 5\nalerts = [0.5, 1.0]\n\n\
         [principals.\"*\"]\nbudget_usd = 1\nperiod = \"1h\"\n\n[principals.bob]\n",
    )
    .unwrap();
    assert_eq!(
        c.principal_budget("alice@example.com").unwrap().budget_usd,
        Some(5.0)
    );
    // Everyone else spends against "*"; an entry of one's own without a
    // budget exempts that principal.
    let any = c.principal_budget("carol").unwrap();
    assert_eq!(
        (any.budget_usd, any.period.get().as_secs()),
        (Some(1.0), 3600)
    );
    assert_eq!(c.principal_budget("bob"), None);
    assert_eq!(Config::default().principal_budget("carol"), None);
    for (text, key) in [
        (
            "[principals.alice]\nbudget_usd = -1\n",
            "principals.alice.budget_usd",
        ),
        (
            "[principals.alice]\nperiod = \"0s\"\n",
            "principals.alice.period",
        ),
        (
            "[principals.alice]\nalerts = [0.5]\n",
            "principals.alice.alerts",
        ),
        (
            "[principals.alice]\nbudget_usd = 1\nalerts = [1.5]\n",
            "principals.alice.alerts[0]",
        ),
        ("[principals.\"\"]\nbudget_usd = 1\n", "principals.\"\""),
    ] {
        let err = Config::from_toml_str(text).unwrap_err();
        assert_eq!(err.key(), Some(key), "{text}: {err}");
    }
}
