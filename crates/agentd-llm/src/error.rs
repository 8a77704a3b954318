//! Why a model call failed ([`ProviderError`], classified so retry, breaker
//! and fallback can act on it) and why a provider could not be built.

use agentd_core::ErrorCode;
use std::time::Duration;

/// Why a model call failed. Every variant names the provider; none carries
/// an API key (provider messages are scrubbed before they get here).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 429 (or a rate-limit error event); retryable, after
    /// `retry_after` when the provider said how long to wait.
    #[error("provider {provider}: rate limited")]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
    },
    /// The call exceeded its timeout (connect, idle gap or overall deadline,
    /// or HTTP 408); retryable.
    #[error("provider {provider}: timed out")]
    Timeout { provider: String },
    /// HTTP 5xx, including Anthropic's 529 overloaded; retryable.
    #[error("provider {provider}: server error: {message}")]
    Server {
        provider: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The connection could not be made or broke mid-response; retryable.
    #[error("provider {provider}: connection failed: {message}")]
    Connection { provider: String, message: String },
    /// HTTP 400/404/422...: the request is wrong; not retryable.
    #[error("provider {provider}: bad request: {message}")]
    BadRequest { provider: String, message: String },
    /// The prompt does not fit the model's context window; not retryable
    /// (shorten the conversation or use a model with a larger window).
    #[error("provider {provider}: context length exceeded: {message}")]
    ContextLength { provider: String, message: String },
    /// HTTP 401/403: the credential is missing, wrong or not allowed; not
    /// retryable. The message names the environment variable to check.
    #[error("provider {provider}: {message}")]
    Auth { provider: String, message: String },
    /// The account's quota or credit is spent (OpenAI `insufficient_quota`,
    /// HTTP 402); not retryable.
    #[error("provider {provider}: quota exhausted: {message}")]
    Quota { provider: String, message: String },
    /// A 2xx answer agentd could not understand; not retryable.
    #[error("provider {provider}: invalid response: {message}")]
    InvalidResponse { provider: String, message: String },
    /// The provider's circuit breaker is open, so it was not called.
    #[error("provider {provider}: circuit open; not called")]
    CircuitOpen { provider: String },
}

impl ProviderError {
    /// True for failures that may succeed on retry (429, 5xx, 529,
    /// connection errors, timeouts).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Timeout { .. }
                | Self::Server { .. }
                | Self::Connection { .. }
        )
    }

    /// True when a run whose model call failed with this should try again
    /// in a later attempt (after the queue's backoff; dead-lettered once
    /// `queue.max_attempts` are spent) instead of failing: the retryable
    /// failures, and an open circuit, which lets calls through again by
    /// itself once its reset has passed. A provider outage thus leaves
    /// runs in the dead letters to requeue, never failed for good.
    pub fn run_may_retry(&self) -> bool {
        self.retryable() || matches!(self, Self::CircuitOpen { .. })
    }

    /// True when the failure says the provider is unhealthy or unusable, so
    /// it counts towards opening its circuit. A bad request (or a context
    /// overflow) is the caller's problem: the provider answered, so it counts
    /// as a success for the breaker.
    pub fn is_provider_fault(&self) -> bool {
        !matches!(
            self,
            Self::BadRequest { .. } | Self::ContextLength { .. } | Self::CircuitOpen { .. }
        )
    }

    /// How long the provider asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The provider the error is about.
    pub fn provider(&self) -> &str {
        match self {
            Self::RateLimited { provider, .. }
            | Self::Timeout { provider }
            | Self::Server { provider, .. }
            | Self::Connection { provider, .. }
            | Self::BadRequest { provider, .. }
            | Self::ContextLength { provider, .. }
            | Self::Auth { provider, .. }
            | Self::Quota { provider, .. }
            | Self::InvalidResponse { provider, .. }
            | Self::CircuitOpen { provider } => provider,
        }
    }

    /// A stable snake_case name of the class, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Timeout { .. } => "timeout",
            Self::Server { .. } => "server",
            Self::Connection { .. } => "connection",
            Self::BadRequest { .. } => "bad_request",
            Self::ContextLength { .. } => "context_length",
            Self::Auth { .. } => "auth",
            Self::Quota { .. } => "quota",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// The run error code this failure maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout { .. } => ErrorCode::Timeout,
            _ => ErrorCode::ProviderError,
        }
    }
}

/// Why a provider (or an agent's chain) could not be built from config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `api_key_env` names a variable that is unset or empty.
    #[error(
        "provider {provider:?}: environment variable {var} (named by `providers.{provider}.api_key_env`) is not set"
    )]
    MissingApiKey { provider: String, var: String },
    /// An openai/anthropic provider without `model`.
    #[error("provider {provider:?}: kind \"{kind}\" needs `model`")]
    MissingModel {
        provider: String,
        kind: &'static str,
    },
    /// `base_url` is not an http(s) URL.
    #[error("provider {provider:?}: `base_url` {url:?} is not a valid http(s) URL: {reason}")]
    BadBaseUrl {
        provider: String,
        url: String,
        reason: String,
    },
    /// The HTTP client could not be created (TLS setup).
    #[error("provider {provider:?}: cannot create the HTTP client: {message}")]
    Client { provider: String, message: String },
    /// An agent names a provider that is not declared.
    #[error("agent {agent:?}: unknown provider {provider:?}")]
    UnknownProvider { agent: String, provider: String },
}
