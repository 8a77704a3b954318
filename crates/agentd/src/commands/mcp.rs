//! `agentd mcp`: the configured agents as MCP tools over stdio, for
//! desktop clients that start their servers as child processes. Runs
//! execute in this process's workers, on the configured store, and are
//! listed and audited like any other.

use super::failure::Failure;
use super::{exit, identity, shutdown_on_signal};
use crate::cli::McpArgs;
use agentd_config::Config;
use agentd_server::Application;
use agentd_server::mcp::{AgentTools, serve_stdio};

/// Serves until the client closes stdin, or SIGTERM / Ctrl-C; then the
/// workers drain as `agentd worker`'s do.
pub(super) async fn mcp(config: &Config, args: &McpArgs) -> Result<u8, Failure> {
    let who = identity(&args.who)?;
    let app = Application::build(config, None)
        .await?
        .with_version(env!("CARGO_PKG_VERSION"));
    let tools = AgentTools::for_identity(
        app.engine().clone(),
        who,
        args.agents.clone(),
        config.server.wait_timeout.get(),
        env!("CARGO_PKG_VERSION"),
    )
    .map_err(|e| Failure::usage(format!("--agent: {e}")))?;
    let shutdown = shutdown_on_signal();
    let workers = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    tracing::info!("serving MCP over stdio");
    let served = serve_stdio(tools, shutdown.child_token()).await;
    // The client is gone (or a signal came): stop taking runs and drain.
    shutdown.cancel();
    let drained = workers
        .await
        .map_err(|e| Failure::failed(format!("the workers stopped abnormally: {e}")))?;
    served.map_err(|e| Failure::failed(format!("MCP over stdio: {e}")))?;
    drained?;
    Ok(exit::OK)
}
