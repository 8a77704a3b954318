//! The HTTP API of agentd: an axum [`Router`] over the engine, with one JSON
//! error format, caller identity from request headers (auth mode `none`),
//! body limits, tracing and panic recovery. It never binds a socket itself:
//! callers pass a bound listener and a shutdown future to [`serve`].

mod app;
pub mod auth;
mod error;
mod extract;
mod routes;

pub use app::{AppError, Application, open_store};
pub use auth::headers::{PRINCIPAL_HEADER, ROLES_HEADER, TENANT_HEADER};
pub use error::{ApiError, ApiResult};
pub use extract::Caller;
pub use routes::{MintedKey, router};

use agentd_config::Config;
use agentd_engine::Engine;
use auth::Authenticator;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why the API cannot be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
}

/// What every handler shares: the engine and the server settings.
#[derive(Clone)]
pub struct AppState {
    engine: Engine,
    auth: Authenticator,
    metrics_auth: bool,
    max_body_bytes: usize,
    wait_timeout: Duration,
    version: Arc<str>,
}

impl AppState {
    /// Builds the state from the engine, the loaded config (`[server]` and
    /// `[auth]`) and the version reported by `/health`.
    pub async fn new(
        engine: Engine,
        config: &Config,
        version: impl Into<String>,
    ) -> Result<Self, ServerError> {
        let auth = Authenticator::from_config(config, engine.store()).await?;
        Ok(Self {
            engine,
            auth,
            metrics_auth: config.server.metrics_auth,
            max_body_bytes: config.server.max_body_bytes,
            wait_timeout: config.server.wait_timeout.get(),
            version: version.into().into(),
        })
    }

    /// Replaces the version `/health` reports.
    pub(crate) fn set_version(&mut self, version: String) {
        self.version = version.into();
    }

    /// The engine behind the API.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How callers are identified.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting connections and waits for in-flight requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
