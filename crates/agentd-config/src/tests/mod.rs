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

mod env;
mod errors;
mod validation;
