//! The API's one error type: every failure a handler, an extractor or a
//! middleware reports becomes `{"error": {"code", "message"}}` with a status
//! here, so clients match on stable codes and never see internals.

use agentd_core::ErrorCode;
use agentd_engine::EngineError;
use agentd_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use utoipa::ToSchema;

/// Result alias of the handlers.
pub type ApiResult<T, E = ApiError> = std::result::Result<T, E>;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a missing field, a bad id or filter.
    #[error("{0}")]
    BadRequest(String),
    /// The resource does not exist for the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    /// No credential, or one that was refused; only the reason code is sent.
    #[error("missing or invalid credential")]
    Unauthorized(Reason),
    /// The caller's roles do not allow the request.
    #[error("{0}")]
    Forbidden(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource's state does not allow the request.
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds `server.max_body_bytes`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A rate limit refuses the request (`[rate_limit]`); answered with
    /// `Retry-After`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A dependency (the store) is not reachable.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an infrastructure failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The stable code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            // No dedicated code exists for 405; it is a malformed request.
            Self::BadRequest(_) | Self::MethodNotAllowed => ErrorCode::BadRequest,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The "not found" every lookup of a run answers, whether the run does
    /// not exist or belongs to another tenant: the two must look the same.
    pub(crate) fn run_not_found(id: impl fmt::Display) -> Self {
        Self::NotFound(format!("run {id} not found"))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownAgent(name) => Self::NotFound(format!("unknown agent {name:?}")),
            e @ EngineError::NoRollout(_) => Self::NotFound(e.to_string()),
            EngineError::Conflict(message) => Self::Conflict(message),
            EngineError::Store(s) => s.into(),
            EngineError::BadAnswer(message) => Self::BadRequest(message),
            EngineError::Forbidden(message) => Self::Forbidden(message),
            EngineError::Invalid(message) => Self::BadRequest(message),
            other => Self::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor(c) => Self::BadRequest(format!("invalid cursor {c:?}")),
            e @ StoreError::BadFork(_) => Self::BadRequest(e.to_string()),
            e @ StoreError::IdempotencyConflict { .. } => Self::Conflict(e.to_string()),
            e @ StoreError::ConversationBusy { .. } => Self::Conflict(e.to_string()),
            e @ StoreError::TooManyActiveRuns { .. } => Self::RateLimited {
                message: e.to_string(),
                retry_after: ACTIVE_RUNS_RETRY_AFTER,
            },
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error.cause_chain = %CauseChain(cause.as_ref()), "request failed");
        }
        if let Self::Unauthorized(reason) = self {
            return unauthorized_response(reason);
        }
        let mut res = error_response(self.status(), self.code(), &self.to_string());
        if let Self::RateLimited { retry_after, .. } = self {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                ceil_secs(retry_after).max(1).into(),
            );
        }
        res
    }
}

/// 401 with the reason code in the body and the RFC 6750 challenge: a
/// request without a credential gets the bare challenge, a refused one
/// `error="invalid_token"`.
fn unauthorized_response(reason: Reason) -> Response {
    let challenge = if reason == Reason::MissingCredential {
        r#"Bearer realm="agentd""#
    } else {
        r#"Bearer realm="agentd", error="invalid_token""#
    };
    let mut detail = ErrorDetail::new(ErrorCode::Unauthorized, "missing or invalid credential");
    detail.reason = Some(reason);
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, challenge)],
        Json(ErrorBody { error: detail }),
    )
        .into_response()
}

/// The error body in the API's one format; also used by the panic handler,
/// which has no `ApiError` to convert.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail::new(code, message),
    };
    (status, Json(body)).into_response()
}

/// Every error response's body: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to match on and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Why a credential was refused (401 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl ErrorDetail {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }
}

/// Formats an error and all its sources as `outer: inner: root`, so one log
/// line carries the whole cause chain.
pub(crate) struct CauseChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for CauseChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_hide_their_cause_from_the_client() {
        let err = ApiError::internal(std::io::Error::other("SELECT * FROM runs failed"));

        let res = err.into_response();

        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "error": { "code": "internal", "message": "internal error" } })
        );
    }

    #[test]
    fn unknown_agents_are_not_found_and_codes_match_statuses() {
        let err = ApiError::from(EngineError::UnknownAgent("x".into()));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert_eq!(
            ApiError::PayloadTooLarge("big".into()).code().as_str(),
            "payload_too_large"
        );
        assert_eq!(
            ApiError::Conflict("c".into()).status(),
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn reasons_serialize_as_their_codes() {
        for reason in [
            Reason::MissingCredential,
            Reason::WrongIssuerOrAudience,
            Reason::KeysUnavailable,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}

/// Why a credential was refused: a stable code sent to the client (the
/// detail is logged by the auth module, never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No `Authorization: Bearer ...` header.
    MissingCredential,
    /// The header or the token is not well-formed.
    MalformedCredential,
    /// The credential is not one this server issued or trusts (unknown key,
    /// bad secret, bad signature, unknown `kid`, refused algorithm).
    InvalidCredential,
    /// The key was revoked.
    Revoked,
    /// The key or token is past its expiry.
    Expired,
    /// The token's `nbf` is in the future.
    NotYetValid,
    /// The token was issued by another issuer or for another audience.
    WrongIssuerOrAudience,
    /// A claim the identity needs is missing or not usable.
    BadClaims,
    /// The signing keys could not be fetched; the credential may be fine.
    KeysUnavailable,
}

impl Reason {
    /// The code in the error body's `reason` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCredential => "missing_credential",
            Reason::MalformedCredential => "malformed_credential",
            Reason::InvalidCredential => "invalid_credential",
            Reason::Revoked => "revoked",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuerOrAudience => "wrong_issuer_or_audience",
            Reason::BadClaims => "bad_claims",
            Reason::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// `Retry-After` of a run refused by `max_concurrent_runs_per_tenant`: a
/// run slot frees when some run ends, which the API cannot predict.
pub(crate) const ACTIVE_RUNS_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Whole seconds, rounded up: a client that waits this long is not early.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
