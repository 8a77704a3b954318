//! The operational endpoints, `/health`, `/ready` and `/metrics`, on their
//! own: the listener of `server.metrics_listen`, which is how an `agentd
//! worker` (no API) is probed and scraped. The API's router serves the same
//! handlers.

use crate::probe::Probe;
use axum::Router;
use axum::middleware;
use axum::routing::get;

/// The router of `server.metrics_listen`: the three endpoints, no
/// credential, counted and logged like API requests.
pub(crate) fn router(probe: Probe) -> Router {
    let routes = Router::new()
        .route("/health", get(crate::routes::health::health))
        .route("/ready", get(crate::routes::health::ready))
        .route("/metrics", get(crate::telemetry::render))
        .with_state(probe)
        .layer(middleware::from_fn(crate::telemetry::track_http));
    // No request here has a body worth accepting.
    crate::routes::with_middleware(routes, 1024)
}
