//! Model providers behind one [`Provider`] trait: the scripted mock (the
//! boundary agentd itself mocks), and pricing of token usage.

pub mod mock;
pub mod pricing;

pub use mock::MockProvider;

use agentd_config::{ProviderConfig, ProviderKind};
use agentd_core::{ErrorCode, Message, ToolSpec, Usage};
use std::sync::Arc;
use std::time::Duration;

/// What a provider is asked.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub system: Option<String>,
    /// The conversation so far, oldest first (no system message).
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
}

/// What a provider answered: one assistant message.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub message: Message,
    pub usage: Usage,
    /// The model that answered: the key looked up in `[pricing]`.
    pub model: String,
}

/// Why a model call failed. `retryable` separates transient failures from
/// ones a retry cannot fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("provider {provider}: rate limited")]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
    },
    #[error("provider {provider}: timed out")]
    Timeout { provider: String },
    #[error("provider {provider}: server error: {message}")]
    Server { provider: String, message: String },
    #[error("provider {provider}: bad request: {message}")]
    BadRequest { provider: String, message: String },
    #[error("provider {provider}: {message}")]
    Auth { provider: String, message: String },
}

impl ProviderError {
    /// True for failures that may succeed on retry (429, 5xx, timeouts).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Timeout { .. } | Self::Server { .. }
        )
    }

    /// The run error code this failure maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout { .. } => ErrorCode::Timeout,
            _ => ErrorCode::ProviderError,
        }
    }
}

/// A model endpoint.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The configured provider name (`[providers.<name>]`).
    fn name(&self) -> &str;
    /// One model call.
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError>;
}

/// Why a provider could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "provider {name:?}: kind \"{kind}\" is not available in this version of agentd (only \"mock\")"
    )]
    Unsupported { name: String, kind: &'static str },
}

/// Builds the provider `[providers.<name>]` describes.
pub fn build(name: &str, cfg: &ProviderConfig) -> Result<Arc<dyn Provider>, BuildError> {
    match cfg.kind {
        ProviderKind::Mock => Ok(Arc::new(MockProvider::from_config(name, cfg))),
        ProviderKind::OpenAi => Err(BuildError::Unsupported {
            name: name.to_string(),
            kind: "openai",
        }),
        ProviderKind::Anthropic => Err(BuildError::Unsupported {
            name: name.to_string(),
            kind: "anthropic",
        }),
    }
}
