//! Stable error codes shared by the engine, the API and the CLI.

use serde::{Deserialize, Serialize};

/// A stable, snake_case error code. API clients match on these strings, so a
/// variant's serialized name never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    BudgetExceeded,
    MaxStepsExceeded,
    Timeout,
    ProviderError,
    ToolError,
    Cancelled,
    Internal,
    Unavailable,
    /// A guardrail refused the run's input or a tool's result.
    GuardrailBlocked,
    /// The agent's answer did not satisfy its `output_schema`, repairs
    /// included.
    OutputInvalid,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::BudgetExceeded => "budget_exceeded",
            Self::MaxStepsExceeded => "max_steps_exceeded",
            Self::Timeout => "timeout",
            Self::ProviderError => "provider_error",
            Self::ToolError => "tool_error",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::GuardrailBlocked => "guardrail_blocked",
            Self::OutputInvalid => "output_invalid",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run (or a step) failed: `{code, message}` in the run object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunError {
    pub code: ErrorCode,
    pub message: String,
}

impl RunError {
    /// Builds an error from a code and a human-readable message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
