//! Environment overrides.

use super::*;

// ---- environment overrides ----

#[test]
fn env_overrides_file_which_overrides_defaults() {
    let file = format!(
        "{MINIMAL_AGENT}\n[server]\nlisten = \"127.0.0.1:9000\"\n[queue]\nworkers = 2\nmax_attempts = 7\n"
    );
    let c = load_file_env(
        &file,
        &[
            ("AGENTD_QUEUE__WORKERS", "8"),
            ("AGENTD_STORE__URL", "sqlite://x.db"),
            ("AGENTD_QUEUE__BACKOFF__INITIAL", "2s"),
            ("AGENTD_PROVIDERS__TEST__LATENCY_MS", "7"),
        ],
    )
    .unwrap();
    assert_eq!(c.queue.workers, 8, "env beats file");
    assert_eq!(c.queue.max_attempts, 7, "file beats default");
    assert_eq!(c.server.listen, "127.0.0.1:9000", "file beats default");
    assert_eq!(c.queue.lease.get(), Duration::from_secs(30), "default");
    assert_eq!(c.store.url, "sqlite://x.db");
    assert_eq!(c.queue.backoff.initial.get(), Duration::from_secs(2));
    assert_eq!(c.queue.backoff.max.get(), Duration::from_secs(60));
    let test = &c.providers["test"];
    assert_eq!(test.latency_ms, 7);
    assert_eq!(test.script.len(), 1, "the rest of the provider is kept");
}

#[test]
fn env_overrides_embedded_default() {
    let (c, source) = Config::load_with_env(
        None,
        &env(&[
            ("AGENTD_SERVER__LISTEN", "127.0.0.1:0"),
            ("AGENTD_QUEUE__WORKERS", "8"),
            ("AGENTD_AUTH__MODE", "jwt"),
            ("AGENTD_AUTH__JWT__ISSUER", "https://idp.example/"),
            ("AGENTD_AUTH__JWT__AUDIENCE", "agentd"),
            (
                "AGENTD_AUTH__JWT__JWKS_URL",
                "https://idp.example/jwks.json",
            ),
            ("AGENTD_QUEUE__BACKOFF__JITTER", "false"),
            ("AGENTD_PROVIDERS__MOCK__LATENCY_MS", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(source, ConfigSource::Embedded);
    assert_eq!(c.server.listen, "127.0.0.1:0");
    assert_eq!(c.queue.workers, 8);
    assert_eq!(c.auth.mode, AuthMode::Jwt);
    let jwt = c.auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.audience.to_vec(), ["agentd"]);
    assert_eq!(jwt.algorithms, ["RS256", "ES256", "EdDSA"]);
    assert_eq!(jwt.leeway.get(), Duration::from_secs(60));
    assert_eq!(jwt.principal_claim, "sub");
    assert!(!c.queue.backoff.jitter);
    assert_eq!(c.providers["mock"].latency_ms, 3);
    assert_eq!(c.providers["mock"].script.len(), 2);
    assert!(c.agent("demo").is_some());
}

#[test]
fn env_ignores_unrelated_variables() {
    let vars = [
        ("AGENTD_CONFIG", "/does/not/exist.toml"),
        ("AGENTD_ENCRYPTION_KEY", "c2VjcmV0"),
        ("AGENTD_LOG", "debug"),
        ("AGENTD_FOO__BAR", "1"),
        ("AGENTD_QUEUE____WORKERS", "x"),
        ("OTHER__QUEUE__WORKERS", "x"),
        ("PATH", "/usr/bin"),
    ];
    let (c, _) = Config::load_with_env(None, &env(&vars)).unwrap();
    assert_eq!(c, Config::embedded());
    assert_eq!(load_file_env("", &vars).unwrap(), Config::default());
}

#[test]
fn env_error_names_the_variable() {
    let err = load_file_env("", &[("AGENTD_QUEUE__WORKERS", "x")]).unwrap_err();
    assert_eq!(
        err.source_name(),
        "environment variable AGENTD_QUEUE__WORKERS"
    );
    assert_eq!(err.key(), Some("queue.workers"));
    assert_eq!(
        err.to_string(),
        "environment variable AGENTD_QUEUE__WORKERS: key `queue.workers`: \
         expected an unsigned integer, found string \"x\""
    );

    // Validation errors are attributed to the variable too.
    let err = load_file_env(MINIMAL_AGENT, &[("AGENTD_SERVER__LISTEN", "nope")]).unwrap_err();
    assert_eq!(
        err.source_name(),
        "environment variable AGENTD_SERVER__LISTEN"
    );
    assert_eq!(err.key(), Some("server.listen"));

    let err =
        Config::load_with_env(None, &env(&[("AGENTD_QUEUE__LEASE", "30 seconds")])).unwrap_err();
    assert_eq!(
        err.source_name(),
        "environment variable AGENTD_QUEUE__LEASE"
    );
    assert!(
        err.message().contains("expected a duration like \"30s\""),
        "{err}"
    );

    let err = load_file_env("", &[("AGENTD_QUEUE__WRKERS", "3")]).unwrap_err();
    assert_eq!(
        err.source_name(),
        "environment variable AGENTD_QUEUE__WRKERS"
    );
    assert_eq!(err.key(), Some("queue.wrkers"));
}

#[test]
fn telemetry_endpoint_loads_checks_and_overrides() {
    let c =
        Config::from_toml_str("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n").unwrap();
    assert_eq!(
        c.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
    let (c, _) = Config::load_with_env(
        None,
        &env(&[(
            "AGENTD_TELEMETRY__OTLP_ENDPOINT",
            "https://otel.internal:4318",
        )]),
    )
    .unwrap();
    assert_eq!(
        c.telemetry.otlp_endpoint.as_deref(),
        Some("https://otel.internal:4318")
    );
    for bad in ["127.0.0.1:4318", "grpc://c:4317", "http://"] {
        let err = file_error(&format!("[telemetry]\notlp_endpoint = {bad:?}\n"));
        assert_eq!(err.key(), Some("telemetry.otlp_endpoint"), "{bad}: {err}");
        assert!(err.message().contains("OTLP/HTTP"), "{bad}: {err}");
    }
}

#[test]
fn rate_limits_from_env() {
    let (c, _) =
        Config::load_with_env(None, &env(&[("AGENTD_RATE_LIMIT__PER_PRINCIPAL_RPM", "5")]))
            .unwrap();
    let limits = c.rate_limit.unwrap();
    assert_eq!(limits.per_principal_rpm, Some(5));
    assert_eq!(limits.per_tenant_rpm, None);
    assert_eq!(limits.backend, RateLimitBackend::Local);
}
