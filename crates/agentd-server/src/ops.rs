//! The operational endpoints, `/health`, `/ready` and `/metrics`, and what
//! they need ([`Probe`]): served by the API's router, and on their own by
//! the listener of `server.metrics_listen`, which is how an `agentd
//! worker` (no API) is probed and scraped.

use crate::AppState;
use agentd_engine::Engine;
use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use axum::routing::get;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the operational endpoints read: the engine, the version `/health`
/// reports and the process's stop signal (`/ready` is 503 once it fires).
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) engine: Engine,
    pub(crate) version: Arc<str>,
    shutdown: CancellationToken,
}

impl Probe {
    pub(crate) fn new(engine: Engine, version: Arc<str>, shutdown: CancellationToken) -> Self {
        Self {
            engine,
            version,
            shutdown,
        }
    }

    /// Whether the process is shutting down (it no longer takes traffic).
    pub(crate) fn draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

impl FromRef<AppState> for Probe {
    fn from_ref(app: &AppState) -> Self {
        Self::new(
            app.engine.clone(),
            app.version.clone(),
            app.shutdown.clone(),
        )
    }
}

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
