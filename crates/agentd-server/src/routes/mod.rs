//! The route table and the middleware stack around it; one module per
//! resource holds the handlers.

mod admin;
mod agents;
mod audit;
mod conversations;
mod deliveries;
mod events;
mod fork;
pub(crate) mod health;
mod keys;
mod openai;
mod rollouts;
pub(crate) mod runs;
mod schedules;
mod usage;

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
use serde::Serialize;
use std::any::Any;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Page size of a list when the request names none.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for (the store clamps to the same bound).
const MAX_LIMIT: u32 = 1000;

/// Builds the API's router with its middleware, and serves its OpenAPI
/// document at `/openapi.json` with Swagger UI at `/docs`.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let (routes, spec) = api(&state).split_for_parts();
    let spec = crate::openapi::document(spec, state.metrics_auth);
    let routes = routes
        .merge(crate::openapi::docs(spec))
        .merge(mcp(&state))
        .merge(crate::console::router(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Inside the router, where the matched route template is known.
        .layer(middleware::from_fn(crate::telemetry::track_http));
    with_middleware(routes, max_body_bytes)
}

/// `$routes` behind authentication, then the `[rate_limit]` limits, which
/// key on the identity it establishes (the last layer added runs first):
/// no handler sees a request without an identity.
macro_rules! identified {
    ($routes:expr, $state:expr) => {
        $routes
            .route_layer(middleware::from_fn_with_state(
                $state.clone(),
                crate::limit::middleware,
            ))
            .route_layer(middleware::from_fn_with_state(
                $state.clone(),
                crate::auth::middleware,
            ))
    };
}

/// Every route of the API, each registered with its OpenAPI operation by
/// `routes!`, so the document describes exactly the routes served. (Swagger
/// UI and the document itself are added by [`router`].)
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let open = OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::ready));
    let metrics = OpenApiRouter::new().routes(routes!(crate::telemetry::render));
    let (open, metrics) = if state.metrics_auth {
        (open, metrics)
    } else {
        (open.merge(metrics), OpenApiRouter::new())
    };
    // Everything below needs a credential: the layer runs before any
    // extractor, so no handler sees a request without an identity.
    let authenticated = OpenApiRouter::new()
        .merge(metrics)
        .routes(routes!(runs::create))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::steps))
        .routes(routes!(deliveries::list))
        .routes(routes!(events::events))
        .routes(routes!(runs::resume))
        .routes(routes!(fork::fork_run))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::dead_letters))
        .routes(routes!(runs::requeue))
        .routes(routes!(conversations::messages))
        .routes(routes!(audit::list))
        .routes(routes!(usage::get))
        .routes(routes!(agents::list))
        .routes(routes!(agents::budgets))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(rollouts::get))
        .routes(routes!(rollouts::promote))
        .routes(routes!(rollouts::rollback))
        .routes(routes!(schedules::list))
        .routes(routes!(admin::reload));
    let authenticated = identified!(authenticated, state);
    // The OpenAI-compatible routes: the same authentication and limits,
    // with every error (theirs included) in OpenAI's shape.
    let openai = OpenApiRouter::new()
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::models))
        .routes(routes!(openai::create_response))
        .routes(routes!(openai::get_response));
    let openai = identified!(openai, state)
        .route_layer(middleware::from_fn(crate::openai::error::middleware));
    open.merge(authenticated).merge(openai)
}

/// `/mcp`: agents as MCP tools over streamable HTTP (GET, POST and
/// DELETE, as the transport defines them), with the authentication and
/// rate limits of the API. Not in the OpenAPI document: its messages are
/// JSON-RPC, described by the MCP specification.
fn mcp(state: &AppState) -> Router<AppState> {
    let mcp = Router::new().route_service("/mcp", crate::mcp::http_service(state));
    identified!(mcp, state)
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
    // Layered on each route (`Router::layer`), so the route template is
    // known: it names the span (bounded, unlike the path). The path only:
    // query strings are client data with no bound on size.
    let method = crate::telemetry::method_label(req.method());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(crate::telemetry::UNMATCHED, |p| p.as_str());
    let span = tracing::info_span!(
        "http_request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        url.path = %req.uri().path(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    // A caller's W3C `traceparent` makes this request (and the runs it
    // creates) part of the caller's trace.
    agentd_telemetry::set_parent_from_headers(&span, req.headers());
    span
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
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct List<T> {
    items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
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
    use axum::routing::get;
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
