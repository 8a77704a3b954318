//! Errors from the file: each names the file, the key and what was expected.

use super::*;

// ---- errors from the file ----

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::load_with_env(Some(&path), &[]).unwrap_err();
    assert_eq!(err.source_name(), path.display().to_string());
    assert_eq!(err.key(), None);
    assert!(err.to_string().contains("nope.toml"), "{err}");
    assert!(err.to_string().contains("file not found"), "{err}");
}

#[test]
fn wrong_type() {
    let (_dir, path) = write_config("[queue]\nworkers = \"x\"\n");
    let err = Config::load_with_env(Some(&path), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: key `queue.workers`: expected an unsigned integer, found string \"x\"",
            path.display()
        )
    );
    assert_eq!(err.key(), Some("queue.workers"));
    assert_eq!(
        err.message(),
        "expected an unsigned integer, found string \"x\""
    );

    let err = file_error("[queue]\nworkers = -1\n");
    assert!(
        err.message()
            .contains("expected an unsigned integer, found integer -1"),
        "{err}"
    );

    let err = file_error("[queue.backoff]\njitter = \"yes\"\n");
    assert_eq!(err.key(), Some("queue.backoff.jitter"));
    assert!(err.message().contains("expected a boolean"), "{err}");

    let err = file_error("queue = 3\n");
    assert_eq!(err.key(), Some("queue"));
    assert!(
        err.message().contains("expected a table, found integer 3"),
        "{err}"
    );

    let err = file_error("[[agents]]\nname = \"a\"\nproviders = \"p\"\n");
    assert_eq!(err.key(), Some("agents[0].providers"));
    assert!(err.message().contains("expected an array"), "{err}");
}

#[test]
fn wrong_type_in_array_element() {
    let err = file_error(&format!(
        "{MINIMAL_AGENT}\n[[agents]]\nname = \"b\"\nproviders = [\"test\"]\nmax_steps = \"many\"\n"
    ));
    assert_eq!(err.key(), Some("agents[1].max_steps"));
    assert!(
        err.to_string().contains("key `agents[1].max_steps`"),
        "{err}"
    );
    assert!(
        err.message().contains("expected an unsigned integer"),
        "{err}"
    );
}

#[test]
fn unknown_key() {
    let err = file_error("[queue]\nwrkers = 3\n");
    assert_eq!(err.key(), Some("queue.wrkers"));
    let text = err.to_string();
    assert!(text.contains("unknown key"), "{text}");
    assert!(
        text.contains("allowed keys: workers, lease, max_attempts"),
        "{text}"
    );

    let err = file_error("colour = \"blue\"\n");
    assert_eq!(err.key(), Some("colour"));
    assert!(err.message().contains("unknown key"), "{err}");
    assert!(err.message().contains("server, store, queue"), "{err}");

    let err = file_error(&format!("{MINIMAL_AGENT}\nmodel = \"x\"\n"));
    assert_eq!(err.key(), Some("agents[0].model"));

    let err =
        file_error("[providers.p]\nkind = \"mock\"\nscript = [{ reply = \"a\", extra = 1 }]\n");
    assert_eq!(err.key(), Some("providers.p.script[0].extra"));
    assert!(err.message().contains("unknown key"), "{err}");
}

#[test]
fn missing_required_key() {
    let err = file_error("[[agents]]\nproviders = [\"p\"]\n");
    assert_eq!(err.key(), Some("agents[0].name"));
    assert!(err.message().contains("missing required key"), "{err}");

    let err = file_error("[providers.p]\nmodel = \"m\"\n");
    assert_eq!(err.key(), Some("providers.p.kind"));

    let err = file_error("[pricing.m]\ninput_per_mtok = 1.0\n");
    assert_eq!(err.key(), Some("pricing.m.output_per_mtok"));
}

#[test]
fn bad_duration() {
    let err = file_error("[queue]\nlease = \"30 seconds\"\n");
    assert_eq!(err.key(), Some("queue.lease"));
    let text = err.to_string();
    assert!(text.contains("expected a duration like \"30s\""), "{text}");
    assert!(text.contains("found string \"30 seconds\""), "{text}");

    let err = file_error(&format!("{MINIMAL_AGENT}\ntimeout = 30\n"));
    assert_eq!(err.key(), Some("agents[0].timeout"));
    assert!(
        err.message().contains("expected a duration like \"30s\""),
        "{err}"
    );
}

#[test]
fn unknown_provider_kind() {
    let err = file_error("[providers.main]\nkind = \"gemini\"\n");
    assert_eq!(err.key(), Some("providers.main.kind"));
    let text = err.to_string();
    assert!(text.contains("unknown value \"gemini\""), "{text}");
    assert!(
        text.contains("expected one of: mock, openai, anthropic"),
        "{text}"
    );

    let err = file_error("[auth]\nmode = \"oauth\"\n");
    assert_eq!(err.key(), Some("auth.mode"));
    assert!(err.message().contains("none, api_key, jwt"), "{err}");

    let err = file_error("[providers.p]\nkind = \"mock\"\nscript = [{ error = \"boom\" }]\n");
    assert_eq!(err.key(), Some("providers.p.script[0].error"));
    assert!(
        err.message().contains("rate_limit, timeout, server"),
        "{err}"
    );
}

#[test]
fn invalid_script_entry() {
    let err = file_error(
        "[providers.p]\nkind = \"mock\"\nscript = [{ reply = \"a\" }, { reply = \"a\", tool = \"t\" }]\n",
    );
    assert_eq!(err.key(), Some("providers.p.script[1]"));
    assert!(
        err.message().contains("exactly one of `reply`, `tool`"),
        "{err}"
    );

    let err = file_error("[providers.p]\nkind = \"mock\"\nscript = [{ tool = \"t\", args = 3 }]\n");
    assert_eq!(err.key(), Some("providers.p.script[0]"));
    assert!(err.message().contains("`args` must be a table"), "{err}");
}

#[test]
fn invalid_toml_syntax() {
    let err = file_error("[server]\nlisten = \"127.0.0.1:8080\"\nmax_body_bytes = = 3\n");
    assert_eq!(err.key(), None);
    let text = err.to_string();
    assert!(text.contains("invalid TOML at line 3"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    let err = file_error("[queue]\nworkers = 1\n[queue]\nworkers = 2\n");
    assert!(err.message().contains("invalid TOML at line"), "{err}");
}

#[test]
fn identity_rate_limit_and_tls_sections_load() {
    let c = load_file(
        r#"
[server]
tls_cert = "cert.pem"
tls_key = "key.pem"
metrics_auth = true

[auth]
mode = "jwt"
operators = ["root"]

[auth.jwt]
issuer = "https://idp.example/"
audience = ["a", "b"]
jwks_url = "http://127.0.0.1:9/jwks"
algorithms = ["ES256"]
leeway = "5s"
tenant_claim = "org_id"
roles_claim = "realm_access.roles"

[rate_limit]
per_principal_rpm = 600
per_tenant_rpm = 6000
max_concurrent_runs_per_tenant = 1000
backend = "redis"
redis_url = "redis://127.0.0.1:6379"
"#,
    )
    .unwrap();
    assert_eq!(c.server.tls_cert.as_deref(), Some(Path::new("cert.pem")));
    assert!(c.server.metrics_auth);
    assert_eq!(c.auth.operators, ["root"]);
    let jwt = c.auth.jwt.unwrap();
    assert_eq!(jwt.audience.to_vec(), ["a", "b"]);
    assert_eq!(jwt.tenant_claim, "org_id");
    assert_eq!(jwt.roles_claim, "realm_access.roles");
    assert_eq!(jwt.leeway.get(), Duration::from_secs(5));
    let limits = c.rate_limit.unwrap();
    assert_eq!(limits.max_concurrent_runs_per_tenant, Some(1000));
    assert_eq!(limits.backend, RateLimitBackend::Redis);
}

#[test]
fn identity_rate_limit_and_tls_mistakes_name_the_key() {
    const JWT: &str = "issuer = \"i\", audience = \"a\"";
    for (text, key, says) in [
        (
            "[server]\ntls_cert = \"c.pem\"\n",
            "server.tls_key",
            "is required",
        ),
        (
            "[server]\ntls_key = \"k.pem\"\n",
            "server.tls_cert",
            "is required",
        ),
        ("[auth]\nmode = \"jwt\"\n", "auth.jwt", "is required"),
        (
            &format!("[auth]\njwt = {{ {JWT} }}\n"),
            "auth.jwt",
            "jwks_url",
        ),
        (
            &format!("[auth]\njwt = {{ {JWT}, jwks_url = \"http://idp.example/k\" }}\n"),
            "auth.jwt.jwks_url",
            "must be https",
        ),
        (
            &format!(
                "[auth]\njwt = {{ {JWT}, jwks_url = \"https://i/k\", jwks_file = \"k.json\" }}\n"
            ),
            "auth.jwt.jwks_file",
            "choose one",
        ),
        (
            &format!(
                "[auth]\njwt = {{ {JWT}, jwks_file = \"k\", algorithms = [\"RS256\", \"none\"] }}\n"
            ),
            "auth.jwt.algorithms[1]",
            "\"none\" is refused",
        ),
        (
            &format!("[auth]\njwt = {{ {JWT}, jwks_file = \"k\", algorithms = [\"HS256\"] }}\n"),
            "auth.jwt.algorithms[0]",
            "HMAC",
        ),
        (
            &format!("[auth]\njwt = {{ {JWT}, jwks_file = \"k\", roles_claim = \"a..b\" }}\n"),
            "auth.jwt.roles_claim",
            "dotted path",
        ),
        (
            "[auth]\njwt = { issuer = \"i\", audience = [], jwks_file = \"k\" }\n",
            "auth.jwt.audience",
            "non-empty",
        ),
        (
            "[rate_limit]\nper_tenant_rpm = 0\n",
            "rate_limit.per_tenant_rpm",
            "at least 1",
        ),
        (
            "[rate_limit]\nbackend = \"redis\"\n",
            "rate_limit.redis_url",
            "is required",
        ),
        (
            "[rate_limit]\nredis_url = \"redis://h\"\n",
            "rate_limit.redis_url",
            "only used with",
        ),
        (
            "[rate_limit]\nbackend = \"redis\"\nredis_url = \"http://h\"\n",
            "rate_limit.redis_url",
            "redis://",
        ),
    ] {
        let err = file_error(text);
        assert_eq!(err.key(), Some(key), "{text}: {err}");
        assert!(err.message().contains(says), "{text}: {err}");
    }
}

#[test]
fn agent_test_cases() {
    let text = format!(
        "{MINIMAL_AGENT}[[agents.tests]]\nname = \"greets\"\ninput = \"hi\"\n\
         script = [{{ tool = \"echo\", args = {{ text = \"x\" }} }}, {{ reply = \"ok\" }}]\n\
         expect_output = \"ok\"\nexpect_tools = [\"echo\"]\n"
    );
    let config = Config::from_toml_str(&text).unwrap();
    let case = &config.agents[0].tests[0];
    assert_eq!(case.name.as_deref(), Some("greets"));
    assert_eq!(case.input, serde_json::json!("hi"));
    assert_eq!(case.script.len(), 2);
    assert_eq!(case.expect_output.as_deref(), Some("ok"));
    assert_eq!(
        case.expect_tools.as_deref(),
        Some(&["echo".to_string()][..])
    );

    let err = Config::from_toml_str(&format!(
        "{MINIMAL_AGENT}[[agents.tests]]\ninput = \"hi\"\nexpect = \"x\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("expect"), "{err}");
}
