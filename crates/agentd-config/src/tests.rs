//! Tests of loading, layering, errors and validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A temp dir holding `agentd.toml` with `text`; keep the dir alive.
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentd.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_file(text: &str) -> Result<Config, ConfigError> {
    load_file_env(text, &[])
}

fn load_file_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let (_dir, path) = write_config(text);
    Config::load_with_env(Some(&path), &env(vars)).map(|(c, _)| c)
}

/// Loads `text` from a file, expecting an error, and checks it names the file.
fn file_error(text: &str) -> ConfigError {
    let (_dir, path) = write_config(text);
    let err = Config::load_with_env(Some(&path), &[]).unwrap_err();
    assert_eq!(err.source_name(), path.display().to_string(), "{err}");
    assert!(err.to_string().contains("agentd.toml"), "{err}");
    err
}

const MINIMAL_AGENT: &str = r#"
[providers.test]
kind = "mock"
script = [{ reply = "hi" }]

[[agents]]
name = "a"
providers = ["test"]
"#;

const FULL_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:8080"
max_body_bytes = 1048576
wait_timeout = "45s"

[store]
url = "sqlite://agentd.db"
encryption_key_env = "AGENTD_ENCRYPTION_KEY"
checkpoint_ttl = "7d"

[queue]
workers = 4
lease = "30s"
max_attempts = 5
backoff = { initial = "1s", max = "60s", jitter = true }
node_id = "node-a"
poll_interval = "100ms"

[auth]
mode = "api_key"

[providers.main]
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
model = "gpt-4o-mini"
timeout = "60s"

[providers.claude]
kind = "anthropic"
model = "claude-sonnet"
api_key_env = "ANTHROPIC_API_KEY"

[providers.test]
kind = "mock"
latency_ms = 5
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
  { error = "rate_limit" },
  { tool = "ask_human" },
]

[pricing."gpt-4o-mini"]
input_per_mtok = 0.15
output_per_mtok = 0.60

[[agents]]
name = "support"
providers = ["main", "test"]
system_prompt = "You are a support agent."
tools = ["echo", "http_get", "ask_human", "mcp:files/*"]
max_steps = 20
timeout = "5m"
budget_usd = 0.50
memory = { strategy = "window", max_messages = 40 }

[[agents]]
name = "triage_2"
providers = ["claude"]
"#;

// ---- defaults and the embedded config ----

#[test]
fn section_defaults() {
    let c = Config::default();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.server.max_body_bytes, 1_048_576);
    assert_eq!(*c.server.wait_timeout, Duration::from_secs(30));
    assert_eq!(c.store.url, "sqlite://agentd.db");
    assert_eq!(c.store.encryption_key_env, None);
    assert_eq!(c.store.checkpoint_ttl, None);
    assert_eq!(c.queue.workers, 256);
    assert_eq!(c.queue.lease.get(), Duration::from_secs(30));
    assert_eq!(c.queue.max_attempts, 5);
    assert_eq!(c.queue.backoff.initial.get(), Duration::from_secs(1));
    assert_eq!(c.queue.backoff.max.get(), Duration::from_secs(60));
    assert!(c.queue.backoff.jitter);
    assert_eq!(c.queue.node_id, None);
    assert_eq!(c.queue.poll_interval.get(), Duration::from_millis(200));
    assert_eq!(c.auth.mode, AuthMode::None);
    assert!(c.providers.is_empty());
    assert!(c.pricing.is_empty());
    assert!(c.agents.is_empty());
    c.validate().unwrap();

    let a = AgentConfig::default();
    assert_eq!(a.max_steps, 20);
    assert_eq!(a.timeout.get(), Duration::from_secs(300));
    assert!(a.tools.is_empty());
    assert_eq!(a.memory.strategy, MemoryStrategy::All);
    assert_eq!(a.memory.max_messages, None);
}

#[test]
fn embedded_config() {
    let c = Config::embedded();
    c.validate().unwrap();
    let mock = &c.providers["mock"];
    assert_eq!(mock.kind, ProviderKind::Mock);
    assert_eq!(
        mock.script,
        vec![
            ScriptEntry::Tool {
                tool: "echo".into(),
                args: serde_json::json!({ "text": "{{input}}" }),
            },
            ScriptEntry::Reply {
                reply: "done: {{tool_result}}".into()
            },
        ]
    );
    assert_eq!(c.agents.len(), 1);
    let demo = c.agent("demo").unwrap();
    assert_eq!(demo.providers, vec!["mock"]);
    assert_eq!(demo.tools, vec!["echo"]);
    assert_eq!(
        demo.system_prompt.as_deref(),
        Some("You are a helpful demo agent.")
    );
    assert_eq!(demo.max_steps, 20);
    assert!(c.agent("nope").is_none());
    assert_eq!(c.server, ServerConfig::default());
    assert_eq!(c.queue, QueueConfig::default());
}

#[test]
fn load_without_file_is_embedded() {
    // The crate directory (the test's cwd) has no agentd.toml.
    assert!(!std::path::Path::new(DEFAULT_CONFIG_FILE).exists());
    let (c, source) = Config::load_with_env(None, &[]).unwrap();
    assert_eq!(source, ConfigSource::Embedded);
    assert_eq!(source.to_string(), "embedded default");
    assert_eq!(c, Config::embedded());
}

#[test]
fn file_gets_section_defaults_but_no_default_agents() {
    let (_dir, path) = write_config("[queue]\nworkers = 2\n");
    let (c, source) = Config::load_with_env(Some(&path), &[]).unwrap();
    assert_eq!(source, ConfigSource::File(path.clone()));
    assert_eq!(source.to_string(), path.display().to_string());
    assert_eq!(c.queue.workers, 2);
    assert_eq!(c.queue.lease.get(), Duration::from_secs(30));
    assert_eq!(c.server, ServerConfig::default());
    assert!(c.providers.is_empty());
    assert!(c.agents.is_empty());

    let empty = load_file("").unwrap();
    assert_eq!(empty, Config::default());
}

#[test]
fn full_example_file() {
    let c = load_file(FULL_EXAMPLE).unwrap();
    assert_eq!(c.server.wait_timeout.get(), Duration::from_secs(45));
    assert_eq!(
        c.store.encryption_key_env.as_deref(),
        Some("AGENTD_ENCRYPTION_KEY")
    );
    assert_eq!(
        c.store.checkpoint_ttl.unwrap().get(),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(c.queue.node_id.as_deref(), Some("node-a"));
    assert_eq!(c.queue.poll_interval.get(), Duration::from_millis(100));
    assert_eq!(c.auth.mode, AuthMode::ApiKey);

    let main = &c.providers["main"];
    assert_eq!(main.kind, ProviderKind::OpenAi);
    assert_eq!(main.base_url.as_deref(), Some("https://api.openai.com/v1"));
    assert_eq!(main.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
    assert_eq!(main.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(main.timeout.unwrap().get(), Duration::from_secs(60));
    assert!(main.script.is_empty());
    assert_eq!(c.providers["claude"].kind, ProviderKind::Anthropic);

    let test = &c.providers["test"];
    assert_eq!(test.latency_ms, 5);
    assert_eq!(test.script.len(), 4);
    assert_eq!(
        test.script[2],
        ScriptEntry::Error {
            error: ScriptError::RateLimit
        }
    );
    assert_eq!(
        test.script[3],
        ScriptEntry::Tool {
            tool: "ask_human".into(),
            args: serde_json::json!({})
        }
    );

    let price = c.pricing["gpt-4o-mini"];
    assert_eq!(price.input_per_mtok, 0.15);
    assert_eq!(price.output_per_mtok, 0.60);

    let support = c.agent("support").unwrap();
    assert_eq!(support.providers, vec!["main", "test"]);
    assert_eq!(support.tools.len(), 4);
    assert_eq!(support.timeout.get(), Duration::from_secs(300));
    assert_eq!(support.budget_usd, Some(0.5));
    assert_eq!(support.memory.strategy, MemoryStrategy::Window);
    assert_eq!(support.memory.max_messages, Some(40));

    let triage = c.agent("triage_2").unwrap();
    assert_eq!(triage.max_steps, 20);
    assert!(triage.tools.is_empty());
    assert_eq!(triage.system_prompt, None);
}

#[test]
fn serializes_back_to_equivalent_toml() {
    for config in [Config::embedded(), load_file(FULL_EXAMPLE).unwrap()] {
        let text = toml::to_string(&config).unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), config, "{text}");
    }
}

#[test]
fn from_toml_str_parses_and_validates() {
    let c = Config::from_toml_str(MINIMAL_AGENT).unwrap();
    assert_eq!(c.agents[0].name, "a");
    let err = Config::from_toml_str("[queue]\nworkers = 0\n").unwrap_err();
    assert_eq!(err.source_name(), "TOML string");
    assert_eq!(err.key(), Some("queue.workers"));
}

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
