//! Extractors that parse requests at the edge into domain types and turn
//! every rejection into an [`ApiError`], so no plain-text axum rejection ever
//! reaches a client and handlers receive only valid values.

use crate::error::ApiError;
use agentd_core::{Identity, RunId};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The caller's identity, established by the authentication middleware
/// from the request's credential (see [`crate::auth`]).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Absent only if a route was mounted outside the authenticated
        // router: a bug, never a reason to guess an identity.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::internal(std::io::Error::other("route is not behind authentication"))
        })
    }
}

/// The `{id}` of a `/v1/runs/{id}/...` path, parsed as a run id; a non-UUID
/// is a 400, not a 404, so typos are told apart from missing runs.
#[derive(Debug, Clone, Copy)]
pub struct RunPath(pub RunId);

impl<S: Send + Sync> FromRequestParts<S> for RunPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(path_rejection)?;
        RunId::parse(&raw)
            .map(RunPath)
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// A single `{param}` path segment as text.
#[derive(Debug, Clone)]
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(path_rejection)?;
        Ok(PathText(raw))
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    if r.status().is_server_error() {
        ApiError::Internal(Box::new(r))
    } else {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::Json` with rejections in the API's error format: bad syntax, a
/// missing or mistyped field and a wrong content type are 400, a body over
/// the limit is 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    // The body limit surfaces as a buffering failure with status 413.
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("request body is larger than the server accepts".into());
    }
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected a request with `Content-Type: application/json`".into())
        }
        // body_text() carries serde's reason ("missing field `input` at line
        // 1 column 2"), which is about the client's own input: safe to echo.
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            ApiError::BadRequest(r.body_text())
        }
        other if other.status().is_server_error() => ApiError::Internal(Box::new(other)),
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// `axum::extract::Query` with rejections as 400 in the API's error format.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::BadRequest(r.body_text())
}

/// Reads and drops a request's body (at most `limit` bytes) before it is
/// refused without being read, so the connection stays usable: a server
/// that answers first and leaves the body unread closes the connection
/// after the answer, and a client that already put it back in its pool
/// (the OpenAI SDKs' httpx does) fails its next request with "server
/// disconnected". A larger body is not read; that connection closes.
pub(crate) async fn drain_body(req: axum::extract::Request, limit: usize) {
    let _ = axum::body::to_bytes(req.into_body(), limit).await;
}

/// The `since` and `until` query parameters of a time range (RFC 3339),
/// each optional; 400 naming the parameter when one does not parse, or
/// when `since` is after `until`.
pub(crate) fn time_range(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<agentd_core::Millis>, Option<agentd_core::Millis>), ApiError> {
    let parse = |name: &str, s: &str| {
        agentd_core::parse_rfc3339(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid {name} {s:?}: expected an RFC 3339 time such as 2026-12-01T00:00:00Z"
            ))
        })
    };
    let since = since.map(|s| parse("since", s)).transpose()?;
    let until = until.map(|s| parse("until", s)).transpose()?;
    if !agentd_core::ordered_range(since, until) {
        return Err(ApiError::BadRequest("since is after until".into()));
    }
    Ok((since, until))
}
