//! The commands, one module per group. Each returns the process exit code;
//! errors are printed once, in [`dispatch`], with the code the contract
//! gives them.

mod audit;
mod backup;
mod check;
mod deploy;
mod dlq;
mod failure;
mod healthcheck;
mod keys;
mod mcp;
mod print;
mod rollout;
mod run;
mod runs;
mod schedules;
mod serve;
mod store;
mod test;
mod usage;

use crate::cli::{Cli, Command, Who};
use agentd_config::{Config, ConfigSource};
use agentd_core::{Identity, PrincipalId, RunId, TenantId};
use agentd_engine::{Engine, EngineError};
use agentd_store::Store;
pub use failure::Failure;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Exit codes of the contract.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PAUSED: u8 = 3;
}

/// Runs the command and turns its outcome into an exit code.
pub async fn dispatch(cli: Cli, loaded: Result<(Config, ConfigSource), Failure>) -> u8 {
    match run(cli, loaded).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}

async fn run(cli: Cli, loaded: Result<(Config, ConfigSource), Failure>) -> Result<u8, Failure> {
    let (config, source) = loaded?;
    let _ = SOURCE.set(source.to_string());
    match &cli.command {
        Command::Serve { no_workers } => serve::serve(&config, &source, !no_workers, true).await,
        Command::Worker => serve::serve(&config, &source, true, false).await,
        Command::Mcp(args) => mcp::mcp(&config, args).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.ping().await?;
            eprintln!(
                "migrations applied to {}",
                agentd_core::redact_url(&config.store.url)
            );
            Ok(exit::OK)
        }
        Command::Backup { out, force } => backup::backup(&config, out, *force).await,
        Command::Restore { file, force } => backup::restore(&config, file, *force).await,
        Command::Store(cmd) => store::store(cmd).await,
        Command::Run(args) => run::run_once(&config, args, cli.json).await,
        Command::Test => test::contract_tests(&config, cli.json).await,
        Command::Runs(cmd) => runs::runs(&config, cmd, cli.json).await,
        Command::Dlq(cmd) => dlq::dlq(&config, cmd, cli.json).await,
        Command::Keys(cmd) => keys::keys(&config, cmd, cli.json).await,
        Command::Audit(args) => audit::audit(&config, args, cli.json).await,
        Command::Usage(args) => usage::usage(&config, args, cli.json).await,
        Command::Rollout(cmd) => rollout::rollout(&config, cmd, cli.json).await,
        Command::Schedules(cmd) => schedules::schedules(&config, cmd, cli.json).await,
        Command::Check(args) => check::check(&config, args, cli.log_format, cli.json).await,
        Command::Deploy(args) => deploy::deploy(&config, args, cli.json),
        Command::Healthcheck(args) => healthcheck::healthcheck(&config, args).await,
    }
}

/// The configuration the command line names (or the default one).
pub fn load_config(cli: &Cli) -> Result<(Config, ConfigSource), Failure> {
    // Only the HTTP API authenticates; its auth config is checked when it
    // is built (`AuthSetupError`, exit 2).
    Config::load(cli.config.as_deref()).map_err(|e| Failure::usage(e.to_string()))
}

/// The config source of this process, for messages (set once at load).
static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn config_source_name() -> &'static str {
    SOURCE.get().map_or("configuration", String::as_str)
}

/// Opens and migrates the store the config names, through the same path
/// `serve` takes.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    Ok(agentd_server::open_store(config).await?)
}

/// The engine of a one-shot command (`run`, `runs resume`, `dlq`).
async fn build_engine(config: &Config) -> Result<Engine, Failure> {
    let store = open_store(config).await?;
    Engine::new(config, store)
        .await
        .map_err(engine_config_error)
}

/// Cancels the token on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

/// On every SIGHUP (unix) until `stop`: reloads the config (agents,
/// providers, tools, policies, pricing, budgets, rollouts) and, when
/// serving HTTPS, the certificate. Each logs its outcome; a failure keeps
/// what is in force.
fn reload_on_hangup(
    tls: Option<agentd_server::TlsReloader>,
    config: Option<agentd_engine::Reloader>,
    stop: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered now, before serving, so an early SIGHUP cannot kill us.
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload with POST /v1/admin/reload");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    got = hangup.recv() => {
                        if got.is_none() {
                            break;
                        }
                        if let Some(config) = &config {
                            let _ = config.reload("SIGHUP").await;
                        }
                        if let Some(tls) = &tls {
                            tracing::info!("SIGHUP: reloading the TLS certificate");
                            let _ = tls.reload();
                        }
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (tls, config, stop);
    }
}

/// The identity a command acts as: the CLI is the operator, so `admin`.
fn identity(who: &Who) -> Result<Identity, Failure> {
    Ok(Identity {
        tenant: TenantId::parse(who.tenant.as_str())
            .map_err(|e| Failure::usage(format!("--tenant: {e}")))?,
        principal: PrincipalId::parse(who.principal.as_str())
            .map_err(|e| Failure::usage(format!("--principal: {e}")))?,
        roles: vec![agentd_engine::ADMIN_ROLE.to_string()],
    })
}

/// JSON if the text parses as JSON, otherwise the text itself.
fn json_or_text(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_string()))
}

fn parse_run_id(s: &str) -> Result<RunId, Failure> {
    RunId::parse(s).map_err(|e| Failure::usage(e.to_string()))
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Maps an engine error that names a config key to a usage error naming
/// the file it came from, like config errors do.
fn engine_config_error(e: EngineError) -> Failure {
    match e {
        EngineError::Config(msg) => Failure::usage(format!("{}: {msg}", config_source_name())),
        other => other.into(),
    }
}
