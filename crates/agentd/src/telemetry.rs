//! Logging to stderr: text on a terminal, JSON lines otherwise.

use crate::cli::{Cli, Command, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `AGENTD_LOG` (or `RUST_LOG`) sets the
/// filter; long-running commands log at info, one-shot commands at warn so
/// their output stays readable.
pub fn init(cli: &Cli) {
    let default = match cli.command {
        Command::Serve { .. } | Command::Worker => "info",
        _ => "warn",
    };
    let filter = std::env::var("AGENTD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let format = cli
        .log_format
        .unwrap_or(if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
