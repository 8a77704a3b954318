//! `agentd serve` and `agentd worker`: a long-running process, started
//! through [`Application`].

use super::failure::Failure;
use super::{exit, reload_on_hangup, shutdown_on_signal};
use agentd_config::{AuthMode, Config, ConfigSource};
use agentd_server::Application;

/// Runs the API (`http`), the workers (`workers`) or both until SIGTERM or
/// Ctrl-C; SIGHUP reloads the config (and, over HTTPS, the certificate). With
/// `server.metrics_listen`, `/health`, `/ready` and `/metrics` are also
/// served there.
pub(super) async fn serve(
    config: &Config,
    source: &ConfigSource,
    workers: bool,
    http: bool,
) -> Result<u8, Failure> {
    let listener = if http {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .map_err(|e| {
                Failure::failed(format!("cannot listen on {}: {e}", config.server.listen))
            })?;
        Some(listener)
    } else {
        None
    };
    let app = Application::build(config, listener)
        .await?
        .with_version(env!("CARGO_PKG_VERSION"));
    let app = if workers { app } else { app.without_workers() };
    let app = app.with_config_source(source.clone());
    // `server.metrics_listen`: how a worker (no API) is probed and scraped.
    let app = match &config.server.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::failed(format!("cannot listen on {addr}: {e}")))?;
            app.with_ops_listener(listener)?
        }
        None => app,
    };
    // The URL may hold the database password.
    let store = agentd_core::redact_url(&config.store.url);
    tracing::info!(config = %source, store = %store, "agentd starting");
    if config.auth.mode == AuthMode::None && http {
        tracing::warn!(
            "auth.mode = \"none\": identities come from X-Tenant-Id headers; for development only"
        );
    }
    let shutdown = shutdown_on_signal();
    reload_on_hangup(app.tls_reloader(), app.reloader(), shutdown.clone());
    app.run_until_stopped(shutdown).await?;
    Ok(exit::OK)
}
