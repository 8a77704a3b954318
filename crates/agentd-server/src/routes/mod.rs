//! The route table and the middleware stack around it; one module per
//! resource holds the handlers.

mod audit;
mod conversations;
mod events;
pub(crate) mod health;
mod keys;
mod runs;

pub use keys::MintedKey;

use crate::AppState;
use crate::error::{ApiError, ApiResult, error_response};
use agentd_core::ErrorCode;
use agentd_store::Page;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::Serialize;
use std::any::Any;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Page size of a list when the request names none.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for (the store clamps to the same bound).
const MAX_LIMIT: u32 = 1000;

/// Builds the API's router with its middleware.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let open = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready));
    let metrics = Router::new().route("/metrics", get(crate::telemetry::render));
    let (open, metrics) = if state.metrics_auth {
        (open, metrics)
    } else {
        (open.merge(metrics), Router::new())
    };
    // Everything below needs a credential: the layer runs before any
    // extractor, so no handler sees a request without an identity.
    let authenticated = Router::new()
        .merge(metrics)
        .route("/v1/agents/{agent}/runs", post(runs::create))
        .route("/v1/runs", get(runs::list))
        .route("/v1/runs/{id}", get(runs::get))
        .route("/v1/runs/{id}/steps", get(runs::steps))
        .route("/v1/runs/{id}/events", get(events::events))
        .route("/v1/runs/{id}/resume", post(runs::resume))
        .route("/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/v1/dead-letters", get(runs::dead_letters))
        .route("/v1/dead-letters/{id}/requeue", post(runs::requeue))
        .route(
            "/v1/conversations/{id}/messages",
            get(conversations::messages),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", delete(keys::revoke))
        // The last layer added runs first: authentication, then the rate
        // limits, which key on the identity it establishes.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::limit::middleware,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::middleware,
        ));
    let routes = open
        .merge(authenticated)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Inside the router, where the matched route template is known.
        .layer(middleware::from_fn(crate::telemetry::track_http));
    with_middleware(routes, max_body_bytes)
}

/// Wraps routes in the stack every response goes through: request ids,
/// tracing, panic recovery and the body limit. Separate from [`router`] so a
/// test can put a panicking route behind the same stack.
pub(crate) fn with_middleware(routes: Router, max_body_bytes: usize) -> Router {
    routes.layer(DefaultBodyLimit::max(max_body_bytes)).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(PropagateRequestIdLayer::x_request_id())
            // Innermost, so a panic becomes a 500 that is still traced and
            // still carries the request id.
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

fn request_span(req: &Request<Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The path only: query strings are client data with no bound on size.
    tracing::info_span!(
        "http_request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = %detail, "handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The envelope of every list: `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize)]
struct List<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> From<Page<T>> for List<T> {
    fn from(page: Page<T>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// The page size a request asked for, checked rather than silently clamped
/// so a client learns its `limit` was not honoured.
fn page_limit(requested: Option<u32>) -> ApiResult<u32> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("secret internal detail")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_without_internals() {
        let app = with_middleware(Router::new().route("/boom", get(boom)), 1024);

        let res = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();

        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert!(res.headers().contains_key("x-request-id"));
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
    }

    #[test]
    fn page_limits_are_checked() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
