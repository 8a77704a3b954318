//! agentd configuration: the typed `agentd.toml` tree, its loader (embedded
//! default or file, then `AGENTD_<SECTION>__<KEY>` environment overrides) and
//! structural validation, with errors that name the source, key and
//! expectation.

mod access;
mod agent;
pub mod check;
pub mod deploy;
mod dur;
mod error;
pub mod guardrails;
mod keypath;
mod load;
pub mod reload;
mod rollout;
mod schedule;
mod store_url;
mod tooling;
mod types;
mod validate;
mod webhooks;

use std::path::Path;

pub use access::{
    AuthConfig, AuthMode, DEFAULT_JWT_ALGORITHMS, JWT_ALGORITHMS, JwtConfig, OneOrMany,
    RateLimitBackend, RateLimitConfig,
};
pub use dur::{Dur, DurParseError};
pub use error::{ConfigError, ConfigSource};
pub use rollout::{AutoRollback, RolloutConfig};
pub use schedule::{CronSchedule, Missed, ScheduleConfig, ScheduleError};
pub use store_url::sqlite_file;
pub use tooling::{McpConfig, PolicyConfig, ToolConfig, ToolKind};
pub use types::{
    ANY_PRINCIPAL, AgentConfig, AgentTest, Backoff, BudgetConfig, CircuitBreakerConfig, Config,
    Memory, MemoryStrategy, Pricing, ProviderConfig, ProviderKind, QueueConfig, RetryConfig,
    ScriptEntry, ScriptError, ServerConfig, StoreConfig, TelemetryConfig,
};
pub use webhooks::WebhooksConfig;

/// The file `load(None)` looks for in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "agentd.toml";

impl Config {
    /// Embedded default: what `agentd serve` uses with no file at all.
    pub fn embedded() -> Config {
        let mock = ProviderConfig {
            kind: ProviderKind::Mock,
            script: vec![
                ScriptEntry::Tool {
                    tool: "echo".to_owned(),
                    args: serde_json::json!({ "text": "{{input}}" }),
                },
                ScriptEntry::Reply {
                    reply: "done: {{tool_result}}".to_owned(),
                },
            ],
            ..ProviderConfig::default()
        };
        let demo = AgentConfig {
            name: "demo".to_owned(),
            description: Some("Echoes its input back through the echo tool.".to_owned()),
            providers: vec!["mock".to_owned()],
            system_prompt: Some("You are a helpful demo agent.".to_owned()),
            tools: vec!["echo".to_owned()],
            ..AgentConfig::default()
        };
        Config {
            providers: [("mock".to_owned(), mock)].into_iter().collect(),
            agents: vec![demo],
            ..Config::default()
        }
    }

    /// Load: defaults, then the TOML file (if `path` is Some), then
    /// environment overrides `AGENTD_<SECTION>__<KEY>`, then `validate()`.
    ///
    /// With `path` None, `./agentd.toml` is used if it exists, otherwise the
    /// embedded default.
    ///
    /// # Errors
    /// A missing or unreadable file, invalid TOML, a wrong type, unknown or
    /// unsupported key, or a failed [`Config::validate`] check; the error names
    /// the file or environment variable and the key.
    pub fn load(path: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        Config::load_with_env(path, &load::process_env())
    }

    /// Same as [`Config::load`] but with an explicit environment (for tests;
    /// `load()` uses the process environment).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<(Config, ConfigSource), ConfigError> {
        let default_file = Path::new(DEFAULT_CONFIG_FILE);
        let path = path.or_else(|| default_file.is_file().then_some(default_file));
        load::load(path, env)
    }

    /// Parse from a TOML string (tests, `agentd test`), then validate; no
    /// environment overrides and no embedded providers or agents.
    ///
    /// # Errors
    /// As [`Config::load`], with source name `TOML string`.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        load::from_toml_str(s)
    }

    /// Structural validation (called by `load`): addresses, names, provider
    /// references, ranges. Tool names are checked by the engine, not here.
    ///
    /// # Errors
    /// The first failed check, with source name `configuration` (`load`
    /// names the file or environment variable instead).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::check(self).map_err(|invalid| {
            ConfigError::new(
                "configuration",
                Some(invalid.key.to_string()),
                invalid.message,
            )
        })
    }

    /// The agent named `name`, if declared: the version new runs start on
    /// when its rollout has no canary (`[rollout."NAME"] stable`), else the
    /// only one declared.
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        let stable = self.rollout.get(name).map(|r| r.stable.as_str());
        let mut versions = self.agents.iter().filter(|a| a.name == name);
        match stable {
            Some(v) => versions.find(|a| a.version.as_deref() == Some(v)),
            None => versions.next(),
        }
    }
}

#[cfg(test)]
mod tests;
