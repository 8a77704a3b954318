//! `ConfigError`: what went wrong, where it came from, and which key.

use std::fmt;
use std::path::PathBuf;

/// Where a config came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: the built-in default (plus environment overrides).
    Embedded,
    /// The file at this path (plus environment overrides).
    File(PathBuf),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Embedded => f.write_str(EMBEDDED_ORIGIN),
            ConfigSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How errors name the embedded default.
pub(crate) const EMBEDDED_ORIGIN: &str = "embedded default";

/// A configuration error: the source (file, environment variable or embedded
/// default), the full key when known, and what was expected.
///
/// Displays as ``agentd.toml: key `queue.workers`: expected an unsigned
/// integer, found string "x"``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}{message}", key_prefix(.key.as_deref()))]
pub struct ConfigError {
    origin: String,
    key: Option<String>,
    message: String,
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|k| format!("key `{k}`: ")).unwrap_or_default()
}

impl ConfigError {
    /// A new error; `source_name` is a file path, `environment variable
    /// AGENTD_X__Y` or `embedded default`, `key` a full key like
    /// `agents[0].tools`.
    pub fn new(
        source_name: impl Into<String>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            origin: source_name.into(),
            key,
            message: message.into(),
        }
    }

    /// Where the offending value came from: a file path, `environment
    /// variable AGENTD_X__Y`, or `embedded default`.
    pub fn source_name(&self) -> &str {
        &self.origin
    }

    /// The full key, like `agents[0].max_steps`, when the error concerns one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What was wrong, without source and key.
    pub fn message(&self) -> &str {
        &self.message
    }
}
