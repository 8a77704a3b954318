//! The OTLP/HTTP (protobuf) trace exporter and the `tracing` layer that
//! feeds it.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The standard variables that name a collector; either one turns tracing
/// on and takes precedence over `[telemetry] otlp_endpoint`, the way
/// environment settings override the file elsewhere.
pub const OTLP_ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Path of the trace signal under an OTLP/HTTP base URL.
const TRACES_PATH: &str = "/v1/traces";

/// The exporter could not be built (a malformed endpoint or header).
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace exporter: {0}")]
pub struct OtlpError(String);

/// A running trace pipeline: spans go to a batch processor (its own OS
/// thread) that exports them over OTLP/HTTP. [`TracePipeline::shutdown`]
/// flushes what is still buffered.
#[derive(Debug)]
pub struct TracePipeline {
    provider: SdkTracerProvider,
}

impl TracePipeline {
    /// The pipeline for `otlp_endpoint` (`[telemetry]`, a base URL such as
    /// `http://127.0.0.1:4318`) and the process environment; `None` when
    /// neither names a collector, so nothing is installed.
    ///
    /// # Errors
    /// The endpoint or `OTEL_EXPORTER_OTLP_HEADERS` cannot be used.
    pub fn from_config(otlp_endpoint: Option<&str>) -> Result<Option<TracePipeline>, OtlpError> {
        Self::with_env(otlp_endpoint, |name| std::env::var(name).ok())
    }

    /// As [`TracePipeline::from_config`] with the environment read through
    /// `env` (only to decide whether tracing is on; the exporter itself
    /// reads the process environment for the standard variables).
    ///
    /// # Errors
    /// As [`TracePipeline::from_config`].
    pub fn with_env(
        otlp_endpoint: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TracePipeline>, OtlpError> {
        let from_env = OTLP_ENDPOINT_VARS
            .iter()
            .any(|v| env(v).is_some_and(|s| !s.is_empty()));
        let builder = SpanExporter::builder().with_http();
        let builder = match (from_env, otlp_endpoint) {
            // The exporter resolves the standard variables itself.
            (true, _) => builder,
            (false, Some(base)) => builder.with_endpoint(traces_url(base)),
            (false, None) => return Ok(None),
        };
        let exporter = builder.build().map_err(|e| OtlpError(e.to_string()))?;
        let mut resource = Resource::builder();
        if env("OTEL_SERVICE_NAME").is_none_or(|s| s.is_empty()) {
            resource = resource.with_service_name("agentd");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(TracePipeline { provider }))
    }

    /// The tracer spans are recorded with.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("agentd")
    }

    /// Flushes buffered spans and stops the exporter thread. Blocks (on
    /// the export's HTTP calls): call it outside async code or through
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// The last export failed or timed out: those spans are lost.
    pub fn shutdown(self) -> Result<(), OtlpError> {
        self.provider
            .shutdown()
            .map_err(|e| OtlpError(e.to_string()))
    }
}

/// `base` with the trace signal's path, unless it names it already.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

/// The layer that turns agentd's `info` spans into OpenTelemetry spans.
/// Its own filter: traces do not depend on the log level, and the spans of
/// dependencies (HTTP clients, the database driver) stay out.
pub fn trace_layer<S>(pipeline: &TracePipeline) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let spans = Targets::new().with_target("agentd", tracing::Level::INFO);
    tracing_opentelemetry::layer()
        .with_tracer(pipeline.tracer())
        .with_threads(false)
        .with_location(false)
        .with_filter(spans)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_trace_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn nothing_is_built_without_an_endpoint() {
        assert!(TracePipeline::with_env(None, |_| None).unwrap().is_none());
        let empty = |_: &str| Some(String::new());
        assert!(TracePipeline::with_env(None, empty).unwrap().is_none());
    }
}
