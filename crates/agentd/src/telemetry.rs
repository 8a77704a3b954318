//! Logging to stderr (text on a terminal, JSON lines otherwise) and, when a
//! collector is configured, OpenTelemetry traces.

use crate::cli::{Cli, Command, LogFormat};
use agentd_config::TelemetryConfig;
use agentd_telemetry::{JsonLines, TracePipeline};
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Installs the global subscriber and returns the trace pipeline, if any,
/// to be shut down (flushed) at exit. `AGENTD_LOG` (or `RUST_LOG`) sets the
/// log filter; long-running commands log at info, one-shot commands at
/// warn so their output stays readable. Traces do not depend on it.
pub fn init(
    cli: &Cli,
    telemetry: Option<&TelemetryConfig>,
    pii: Vec<agentd_guard::pii::PiiKind>,
) -> Option<TracePipeline> {
    let default = match cli.command {
        Command::Serve { .. } | Command::Worker | Command::Mcp(_) => "info",
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
    let endpoint = telemetry.and_then(|t| t.otlp_endpoint.as_deref());
    let (traces, trace_error) = match TracePipeline::from_config(endpoint) {
        Ok(traces) => (traces, None),
        Err(e) => (None, Some(e)),
    };
    // `guardrails.pii` with `logs` in scope: lines leave masked.
    let stderr = agentd_telemetry::Redacting::new(std::io::stderr, pii);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => JsonLines::new(stderr, traces.is_some())
            .with_filter(JsonLines::<fn() -> std::io::Stderr>::filter(filter))
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(stderr)
            .with_filter(filter)
            .boxed(),
    };
    let spans = traces.as_ref().map(agentd_telemetry::trace_layer);
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    if let Some(e) = trace_error {
        tracing::warn!(error = %e, "traces are off");
    }
    traces
}
