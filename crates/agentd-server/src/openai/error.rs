//! Errors of the OpenAI-compatible routes, in OpenAI's shape
//! (`{"error": {"message", "type", "code", "param"}}`), so the OpenAI SDKs
//! raise the exception that matches the status (`AuthenticationError`,
//! `NotFoundError`, `RateLimitError`, ...). [`middleware`] reshapes the
//! errors answered before a handler runs (authentication, rate limits, a
//! malformed body), which use agentd's own shape.

use crate::error::{ApiError, ceil_secs};
use agentd_core::Run;
use agentd_engine::EngineError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The header naming the run behind a response.
pub(crate) const RUN_ID_HEADER: &str = "x-agentd-run-id";

/// Largest agentd error body [`middleware`] reads to reshape.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An error answered in OpenAI's shape (boxed: results carrying it stay
/// small).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
pub(crate) struct OpenAiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<String>,
    param: Option<&'static str>,
    retry_after: Option<u64>,
    /// The run the error is about (a failed run): sent as
    /// `X-Agentd-Run-Id`, and the SDKs are told not to retry, since a retry
    /// would start another run.
    run: Option<String>,
}

/// `{"error": {...}}`, OpenAI's error body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OpenAiErrorBody {
    error: OpenAiErrorDetail,
}

/// What went wrong, as OpenAI reports it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OpenAiErrorDetail {
    message: String,
    /// `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `not_found_error`, `conflict_error`,
    /// `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `model_not_found`, `invalid_api_key`, `rate_limit_exceeded`, or
    /// agentd's own error code.
    code: Option<String>,
    /// The request field at fault, if one is.
    param: Option<&'static str>,
}

impl OpenAiError {
    fn new(status: StatusCode, kind: &'static str, code: &str, message: String) -> Self {
        Self(Box::new(Inner {
            status,
            message,
            kind,
            code: Some(code.to_string()),
            param: None,
            retry_after: None,
            run: None,
        }))
    }

    /// A 400 about request field `param`.
    pub(crate) fn invalid(message: impl Into<String>, param: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message.into(),
        );
        e.0.param = Some(param);
        e
    }

    /// A 404 about request field `param` (`code` says what is missing).
    pub(crate) fn not_found(message: impl Into<String>, code: &str, param: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            code,
            message.into(),
        );
        e.0.param = Some(param);
        e
    }

    /// A 500 whose cause is logged, never sent.
    pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::from(ApiError::internal(e))
    }

    /// The run failed, died or was cancelled: a 500 with the run's error
    /// (its id in `X-Agentd-Run-Id`).
    pub(crate) fn run_ended(run: &Run) -> Self {
        let (code, message) = match &run.error {
            Some(e) => (e.code.as_str().to_string(), e.message.clone()),
            None => (run.status.as_str().to_string(), String::new()),
        };
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &code,
            format!("run {} is {}: {message}", run.id, run.status.as_str()),
        );
        e.0.run = Some(run.id.to_string());
        e
    }

    /// The HTTP status of the response.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The error as a `data:` line of a stream, where the SDKs raise it.
    pub(crate) fn body(&self) -> Value {
        serde_json::to_value(OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message: self.0.message.clone(),
                kind: self.0.kind,
                code: self.0.code.clone(),
                param: self.0.param,
            },
        })
        .unwrap_or(Value::Null)
    }
}

/// An agentd error (`code`, `message`, status) in OpenAI's terms.
fn reshape(status: StatusCode, code: &str, message: String) -> OpenAiError {
    let (kind, code) = match status {
        StatusCode::UNAUTHORIZED => ("authentication_error", "invalid_api_key"),
        StatusCode::FORBIDDEN => ("permission_error", code),
        StatusCode::NOT_FOUND => ("not_found_error", code),
        StatusCode::CONFLICT => ("conflict_error", code),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "rate_limit_exceeded"),
        s if s.is_server_error() => ("server_error", code),
        _ => ("invalid_request_error", code),
    };
    OpenAiError::new(status, kind, code, message)
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let retry_after = match &e {
            ApiError::RateLimited { retry_after, .. } => Some(ceil_secs(*retry_after).max(1)),
            _ => None,
        };
        if let ApiError::Internal(cause) = &e {
            tracing::error!(
                error.cause_chain = %crate::error::CauseChain(cause.as_ref()),
                "request failed"
            );
        }
        let mut out = reshape(status, e.code().as_str(), e.to_string());
        out.0.retry_after = retry_after;
        out
    }
}

impl From<EngineError> for OpenAiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownAgent(name) => {
                let mut e = Self::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "model_not_found",
                    format!("the model {name:?} does not exist: it names no agent"),
                );
                e.0.param = Some("model");
                e
            }
            other => ApiError::from(other).into(),
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut res = (self.0.status, axum::Json(self.body())).into_response();
        let headers = res.headers_mut();
        if let Some(secs) = self.0.retry_after {
            headers.insert(RETRY_AFTER, secs.into());
        }
        if let Some(run) = &self.0.run
            && let Ok(v) = HeaderValue::from_str(run)
        {
            headers.insert(RUN_ID_HEADER, v);
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        res
    }
}

/// Reshapes an agentd error response (one whose `error` has no `type`)
/// into OpenAI's shape, keeping its status and headers (`Retry-After`,
/// `WWW-Authenticate`).
pub(crate) async fn middleware(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || !is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading an error body to reshape failed");
            return OpenAiError::internal(e).into_response();
        }
    };
    let reshaped = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .filter(|e| e.get("type").is_none())
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
            reshape(status, field("code"), field("message").to_string())
        });
    let body = match reshaped {
        Some(e) => {
            parts.headers.remove(CONTENT_LENGTH);
            Body::from(e.body().to_string())
        }
        None => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_types_the_sdks_raise() {
        let unknown = OpenAiError::from(EngineError::UnknownAgent("x".into()));
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(unknown.body()["error"]["code"], "model_not_found");
        assert_eq!(unknown.body()["error"]["param"], "model");
        let limited = OpenAiError::from(ApiError::RateLimited {
            message: "slow down".into(),
            retry_after: std::time::Duration::from_millis(1500),
        });
        assert_eq!(limited.body()["error"]["type"], "rate_limit_error");
        assert_eq!(limited.0.retry_after, Some(2));
        let bad = OpenAiError::from(ApiError::BadRequest("no".into()));
        assert_eq!(bad.body()["error"]["type"], "invalid_request_error");
        assert_eq!(bad.body()["error"]["code"], "bad_request");
        let internal = OpenAiError::internal(std::io::Error::other("secret"));
        assert_eq!(internal.body()["error"]["type"], "server_error");
        assert_eq!(internal.body()["error"]["message"], "internal error");
    }
}
