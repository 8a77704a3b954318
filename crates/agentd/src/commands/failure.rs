//! [`Failure`]: an error with the exit code it maps to, and the mapping of
//! every library error the commands meet.

use super::{config_source_name, engine_config_error, exit};
use agentd_config::ConfigError;
use agentd_engine::EngineError;
use agentd_server::AppError;
use agentd_store::StoreError;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub(super) code: u8,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub(super) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILED,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadUrl { .. } => Self::usage(format!("store.url: {e}")),
            StoreError::BadCursor(_) => Self::usage(format!("--cursor: {e}")),
            StoreError::BadFork(_) => Self::usage(e.to_string()),
            other => Self::failed(other.to_string()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Config(_) | EngineError::UnknownAgent(_) | EngineError::BadAnswer(_) => {
                Self::usage(e.to_string())
            }
            EngineError::Invalid(m) => Self::usage(m),
            e @ EngineError::NoRollout(_) => Self::usage(e.to_string()),
            EngineError::Conflict(m) => Self::failed(m),
            EngineError::Key(e) => Self::failed(e.to_string()),
            EngineError::Forbidden(m) => Self::failed(m),
            EngineError::Store(s) => s.into(),
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        match e {
            // The keyring missing or malformed is a config error (exit 2)
            // naming the key.
            AppError::Keyring(e) => Self::usage(format!(
                "{}: key `store.encryption_key_env`: {e}",
                config_source_name()
            )),
            AppError::Store(e) => e.into(),
            AppError::Engine(e) => engine_config_error(e),
            // Every server setup error is a config error (auth, rate limits).
            AppError::Server(e) => Self::usage(format!("{}: {e}", config_source_name())),
            // A certificate or key that cannot be served is a config error
            // (exit 2), reported like one: the source, the key, the file.
            AppError::Tls(e) => Self::usage(
                ConfigError::new(
                    config_source_name(),
                    Some(e.key().to_string()),
                    e.to_string(),
                )
                .to_string(),
            ),
            AppError::Io(e) => Self::failed(format!("server error: {e}")),
        }
    }
}
