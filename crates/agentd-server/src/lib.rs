//! The HTTP API of agentd: an axum [`Router`] over the engine, with one JSON
//! error format, caller identity from request headers (auth mode `none`),
//! request rate limits, body limits, tracing and panic recovery. It never
//! binds a socket itself: callers pass a bound listener and a shutdown
//! future to [`serve`]; with `server.tls_cert` / `server.tls_key`, [`tls`]
//! terminates HTTPS on it.

mod app;
pub mod auth;
mod console;
mod error;
mod extract;
pub mod limit;
pub mod mcp;
mod openai;
mod openapi;
mod ops;
mod probe;
mod readiness;
mod routes;
mod telemetry;
pub mod tls;

pub use app::{AppError, Application, open_store};
pub use auth::headers::{PRINCIPAL_HEADER, ROLES_HEADER, TENANT_HEADER};
pub use error::{ApiError, ApiResult};
pub use extract::Caller;
pub use routes::{MintedKey, router};
pub use tls::{TlsError, TlsListener, TlsReloader};

use agentd_config::Config;
use agentd_engine::Engine;
use auth::Authenticator;
use axum::Router;
use limit::RateLimiter;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the API cannot be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
    #[error(transparent)]
    Limit(#[from] limit::LimitSetupError),
}

/// What every handler shares: the engine and the server settings.
#[derive(Clone)]
pub struct AppState {
    engine: Engine,
    auth: Authenticator,
    /// The request limits of `[rate_limit]`, if any is set.
    limiter: Option<RateLimiter>,
    metrics_auth: bool,
    max_body_bytes: usize,
    wait_timeout: Duration,
    version: Arc<str>,
    /// The process's stop signal: once it fires `/ready` answers 503 and
    /// event streams end, while requests in flight finish.
    shutdown: CancellationToken,
    /// Reloads the config (`POST /v1/admin/reload`); `None` when the
    /// process has no config source to read again.
    reloader: Option<agentd_engine::Reloader>,
    /// When the state was built, in Unix seconds: the `created` of the
    /// models `GET /v1/models` lists.
    started_at: i64,
    /// Whether the console's session cookies are `Secure` (the API is
    /// served over HTTPS).
    secure_cookies: bool,
}

impl AppState {
    /// Builds the state from the engine, the loaded config (`[server]` and
    /// `[auth]`), the version reported by `/health` and the process's
    /// `shutdown` token (the one that stops its server).
    pub async fn new(
        engine: Engine,
        config: &Config,
        version: impl Into<String>,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        // The recorder first: the limiter registers its counters.
        telemetry::prometheus();
        let auth = Authenticator::from_config(config, engine.store()).await?;
        let limiter = RateLimiter::from_config(config.rate_limit.as_ref())?;
        Ok(Self {
            engine,
            auth,
            limiter,
            metrics_auth: config.server.metrics_auth,
            max_body_bytes: config.server.max_body_bytes,
            wait_timeout: config.server.wait_timeout.get(),
            version: version.into().into(),
            shutdown,
            reloader: None,
            started_at: agentd_core::now_millis().div_euclid(1000),
            secure_cookies: config.server.tls_cert.is_some(),
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

    /// Whether the process is shutting down (it no longer takes traffic).
    pub fn draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// The request rate limiter, if `[rate_limit]` sets a request limit.
    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.limiter.as_ref()
    }
}

/// Serves `router` on `listener` (a `TcpListener`, or a [`TlsListener`] for
/// HTTPS) until `shutdown` completes, then stops accepting connections and
/// waits for in-flight requests to finish. Generic rather than boxed, so the
/// plain path is the same code it always was.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
