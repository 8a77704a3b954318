//! [`Application`]: the one start-up path of an agentd process. `build`
//! wires the store (opened, migrated, with its keyring), the engine and,
//! given a listener, the router; `run_until_stopped` runs the worker pool
//! (after taking its node id in the worker registry and releasing that
//! node's old leases), the retention task, the rate
//! limiter's housekeeping and the HTTP server under one [`TaskTracker`]
//! until the shutdown token fires. With `server.tls_cert` /
//! `server.tls_key` the server speaks HTTPS, and
//! [`Application::tls_reloader`] reloads its certificate (SIGHUP).
//! With [`Application::with_ops_listener`] (`server.metrics_listen`) a
//! second listener serves only `/health`, `/ready` and `/metrics`: an
//! `agentd worker` is probed and scraped there.
//! The binary, the API tests and the bench all start agentd through here.

use crate::probe::Probe;
use crate::tls::{TlsError, TlsListener, TlsReloader};
use crate::{AppState, ServerError, router};
use agentd_config::Config;
use agentd_engine::retention::{Retention, run_retention};
use agentd_engine::{Engine, EngineError};
use agentd_store::{KeyringError, Store, StoreError, StoreOptions};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why an agentd process could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `store.encryption_key_env` names a missing or malformed keyring.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Server(#[from] ServerError),
    /// `server.tls_cert` or `server.tls_key` names a file that cannot be
    /// served (a config error naming the key).
    #[error("key `{key}`: {0}", key = .0.key())]
    Tls(#[from] TlsError),
    /// The listener failed (its address, or serving on it).
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store the config names, with its keyring, and applies pending
/// migrations. Every process that opens the store goes through here.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, AppError> {
    let options = StoreOptions::from_key_env(config.store.encryption_key_env.as_deref())?;
    let store = agentd_store::open_with(&config.store.url, options).await?;
    store.migrate().await?;
    Ok(store)
}

/// The HTTP half of a process: its bound listener and the router to serve.
struct Http {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    /// HTTPS when set: the certificate served, and its reload.
    tls: Option<TlsReloader>,
}

/// A built agentd process, ready to run.
pub struct Application {
    engine: Engine,
    http: Option<Http>,
    workers: bool,
    retention: Option<Retention>,
    /// How long in-flight requests (a `wait`) may outlive the shutdown.
    request_grace: Duration,
    /// How long the listener keeps accepting after the stop, answering
    /// `/ready` with 503 (`server.drain_delay`).
    drain_delay: Duration,
    /// The process's stop signal, made once here: the router's state holds
    /// it (so `/ready` turns 503 and event streams end the moment it fires)
    /// and every task `run_until_stopped` starts stops on it.
    stop: CancellationToken,
    /// The listener of `/health`, `/ready` and `/metrics` alone, if any.
    ops: Option<(TcpListener, SocketAddr)>,
    /// The version `/health` reports on the ops listener.
    version: Arc<str>,
    /// Reloads the config, when a source was given.
    reloader: Option<agentd_engine::Reloader>,
}

impl Application {
    /// Wires a process from `config`: the store, the engine and, with a
    /// `listener`, the HTTP API on it, over HTTPS when `server.tls_cert` and
    /// `server.tls_key` are set. Without a listener the process only runs
    /// workers (`agentd worker`). Workers run unless
    /// [`Application::without_workers`] says otherwise.
    pub async fn build(config: &Config, listener: Option<TcpListener>) -> Result<Self, AppError> {
        // The certificate first: a bad file is a config error, reported
        // before the store is opened or migrated.
        let tls = match (&listener, &config.server.tls_cert, &config.server.tls_key) {
            (Some(_), Some(cert), Some(key)) => Some(TlsReloader::load(cert, key)?),
            _ => None,
        };
        // The metrics recorder before anything records: the engine's and
        // the providers' metric handles are looked up once, on first use.
        crate::telemetry::prometheus();
        let store = open_store(config).await?;
        let engine = Engine::new(config, store).await?;
        let stop = CancellationToken::new();
        let http = match listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                let state = AppState::new(
                    engine.clone(),
                    config,
                    env!("CARGO_PKG_VERSION"),
                    stop.clone(),
                )
                .await?;
                if state.auth().trusts_headers() && !addr.ip().is_loopback() {
                    tracing::warn!(
                        %addr,
                        "SECURITY: auth.mode = \"none\" on a non-loopback address: anyone who \
                         can reach this port can act as any tenant by sending X-Tenant-Id. \
                         Set auth.mode = \"api_key\" or \"jwt\" before exposing agentd."
                    );
                }
                Some(Http {
                    addr,
                    listener,
                    state,
                    tls,
                })
            }
            None => None,
        };
        Ok(Self {
            engine,
            http,
            workers: true,
            retention: config
                .store
                .checkpoint_ttl
                .map(|ttl| Retention::for_ttl(ttl.get())),
            request_grace: config.queue.shutdown_grace.get(),
            drain_delay: config.server.drain_delay.get(),
            stop,
            ops: None,
            version: env!("CARGO_PKG_VERSION").into(),
            reloader: None,
        })
    }

    /// Also serves `/health`, `/ready` and `/metrics`, without a
    /// credential, on `listener` (`server.metrics_listen`): the only
    /// endpoints of a process without the API (`agentd worker`).
    pub fn with_ops_listener(mut self, listener: TcpListener) -> Result<Self, AppError> {
        let addr = listener.local_addr()?;
        self.ops = Some((listener, addr));
        Ok(self)
    }

    /// The address of the ops listener, if there is one.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves the API without executing runs (`agentd serve --no-workers`).
    pub fn without_workers(mut self) -> Self {
        self.workers = false;
        self
    }

    /// The version `/health` reports (the crate's version by default).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        let version: String = version.into();
        self.version = version.as_str().into();
        if let Some(http) = &mut self.http {
            http.state.set_version(version);
        }
        self
    }

    /// Lets `POST /v1/admin/reload` (and [`Application::reloader`]'s
    /// holder, on SIGHUP) read the config again from `source`.
    pub fn with_config_source(mut self, source: agentd_config::ConfigSource) -> Self {
        let reloader = agentd_engine::Reloader::new(self.engine.clone(), source);
        if let Some(http) = &mut self.http {
            http.state.reloader = Some(reloader.clone());
        }
        self.reloader = Some(reloader);
        self
    }

    /// What reloads this process's config, once it has a source.
    pub fn reloader(&self) -> Option<agentd_engine::Reloader> {
        self.reloader.clone()
    }

    /// The address the API listens on, if it serves one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// The handle that reloads the served certificate from disk, when the
    /// API is served over HTTPS. It stays usable while the process runs.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.http.as_ref().and_then(|h| h.tls.clone())
    }

    /// The engine this process runs (a cheap handle).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The router this process serves, if it serves one (for tests that
    /// drive handlers without a socket).
    pub fn router(&self) -> Option<Router> {
        self.http.as_ref().map(|h| router(h.state.clone()))
    }

    /// Runs every part of the process until `shutdown` fires, then stops
    /// them in order: `/ready` turns 503 and event streams end with a
    /// `shutdown` event, the server stops accepting and waits for requests (at
    /// most the shutdown grace, since `wait` requests may block), the
    /// workers let steps in flight finish within their own grace, the
    /// retention task ends, and the MCP servers are stopped last.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), AppError> {
        // The process's own token, fired by the caller's: a failing server
        // can stop the rest without cancelling the caller's token.
        let stop = self.stop.clone();
        let tasks = TaskTracker::new();
        // Recovery first: if it fails nothing has started yet. The node id
        // is settled before it, so recovery never releases the leases of
        // another live process that had the same one.
        if self.workers {
            let node_id = self.engine.join_fleet().await?;
            tracing::info!(%node_id, "registered in the worker registry");
            let released = self.engine.recover().await?;
            if released > 0 {
                tracing::info!(
                    runs = released,
                    "resuming runs this node held before it stopped"
                );
            }
        }
        {
            let stop = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        if let Some(retention) = self.retention {
            tracing::info!(
                ttl = %agentd_config::Dur(retention.ttl),
                every_secs = retention.every.as_secs(),
                "retention: finished runs past store.checkpoint_ttl are purged"
            );
            let store = self.engine.store().clone();
            tasks.spawn(run_retention(store, retention, stop.clone()));
        }
        if let Some(http) = &self.http {
            // The authenticator's upkeep (the API key cache's refresh).
            let auth = http.state.auth().clone();
            let token = stop.clone();
            tasks.spawn(async move { auth.run(token).await });
        }
        if self.workers {
            let engine = self.engine.clone();
            let token = stop.clone();
            tasks.spawn(async move { engine.run_workers(token).await });
        }
        tasks.spawn(crate::telemetry::run_upkeep(stop.clone()));
        if let Some((listener, addr)) = self.ops {
            let probe = Probe::new(self.engine.clone(), self.version.clone(), stop.clone());
            let token = stop.clone();
            tracing::info!(%addr, "serving /health, /ready and /metrics");
            tasks.spawn(async move {
                let router = crate::ops::router(probe);
                let stopped = async move { token.cancelled().await };
                if let Err(e) = crate::serve(listener, router, stopped).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        if let Some(limiter) = self.http.as_ref().and_then(|h| h.state.limiter()) {
            tasks.spawn(limiter.clone().run_retention(stop.clone()));
        }
        tasks.close();
        let served = match self.http {
            Some(http) => {
                let times = Drain {
                    delay: self.drain_delay,
                    grace: self.request_grace,
                };
                serve_until(http, self.workers, &stop, times).await
            }
            None => {
                let workers = self.engine.settings().workers;
                tracing::info!(workers, "worker started");
                stop.cancelled().await;
                Ok(())
            }
        };
        stop.cancel();
        tasks.wait().await;
        self.engine.shutdown_tools().await;
        tracing::info!("stopped");
        served
    }
}

/// The HTTP server's shutdown: accept for `delay` after the stop (while
/// `/ready` says 503), then stop accepting and give requests in flight
/// `grace` to finish.
#[derive(Clone, Copy)]
struct Drain {
    delay: Duration,
    grace: Duration,
}

/// Serves the API until `stop` fires and the requests drain, or the grace
/// after the drain delay runs out.
async fn serve_until(
    http: Http,
    workers: bool,
    stop: &CancellationToken,
    drain: Drain,
) -> Result<(), AppError> {
    let router = router(http.state);
    // HTTPS and plain HTTP run the same serve loop, so they stop and drain
    // alike; plain HTTP keeps axum's own listener, untouched.
    match http.tls {
        Some(tls) => {
            tracing::info!(addr = %http.addr, workers, "listening (HTTPS)");
            let listener = TlsListener::new(http.listener, tls);
            serve_with_grace(listener, router, stop, drain).await
        }
        None => {
            tracing::info!(addr = %http.addr, workers, "listening");
            serve_with_grace(http.listener, router, stop, drain).await
        }
    }
}

async fn serve_with_grace<L>(
    listener: L,
    router: Router,
    stop: &CancellationToken,
    drain: Drain,
) -> Result<(), AppError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let token = stop.clone();
    let server = crate::serve(listener, router, async move {
        token.cancelled().await;
        if !drain.delay.is_zero() {
            tracing::info!(delay = ?drain.delay, "draining: /ready answers 503 before the listener closes");
            tokio::time::sleep(drain.delay).await;
        }
    });
    // Requests blocked in `wait` may outlive the signal: give them a
    // bounded grace after the drain, then stop anyway.
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(drain.delay + drain.grace).await;
    };
    tokio::select! {
        r = server => r?,
        _ = grace => tracing::warn!("in-flight requests outlived the shutdown grace"),
    }
    Ok(())
}
