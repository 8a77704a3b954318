//! [`Probe`]: what the operational endpoints (`/health`, `/ready`,
//! `/metrics`) read, on the API's router and on the listener of
//! `server.metrics_listen` alike (see [`crate::ops`]).

use crate::AppState;
use agentd_engine::Engine;
use axum::extract::FromRef;
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
