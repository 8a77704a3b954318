//! The `agentd` binary: parses the command line and hands off to the
//! commands. Exit codes: 0 ok, 1 failed, 2 bad usage or config, 3 paused.

mod cli;
mod commands;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything can touch TLS (reqwest, sqlx, redis, the HTTPS API):
    // with more than one rustls provider compiled in and none installed,
    // rustls panics at first use. Err only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    // Before telemetry, which needs `[telemetry]`; an error is reported by
    // `dispatch`, once logging is set up.
    let loaded = commands::load_config(&cli);
    let config = loaded.as_ref().ok().map(|(c, _)| c);
    let traces = telemetry::init(
        &cli,
        config.map(|c| &c.telemetry),
        config
            .map(agentd_config::Config::pii_log_kinds)
            .unwrap_or_default(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli, loaded));
    drop(runtime);
    // Outside any runtime: the export of the last spans blocks.
    if let Some(Err(e)) = traces.map(agentd_telemetry::TracePipeline::shutdown) {
        eprintln!("warning: flushing traces at exit: {e}");
    }
    ExitCode::from(code)
}
