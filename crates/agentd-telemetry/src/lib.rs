//! Telemetry shared by every agentd crate: the OTLP trace pipeline, W3C
//! trace-context propagation (incoming, stored with a run, outgoing) and
//! the JSON log format whose run fields are top-level.
//!
//! The other crates describe their work with plain `tracing` spans; only
//! this crate knows about OpenTelemetry. With no OTLP endpoint configured
//! no OpenTelemetry layer is installed and the propagation helpers find no
//! span context, so they do nothing.

mod logfmt;
mod otlp;
mod propagate;
mod redact;

pub use logfmt::{ContextFields, JsonLines};
pub use otlp::{OTLP_ENDPOINT_VARS, OtlpError, TracePipeline, trace_layer};
pub use propagate::{
    current_trace_id, inject, run_origin, set_parent_from_headers, set_parent_from_origin,
};
pub use redact::{Redacting, RedactingWriter};
