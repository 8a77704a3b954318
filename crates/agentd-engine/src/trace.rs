//! The spans of a run's execution: one per attempt (parented on the trace
//! context stored with the run, so every attempt, in any process, joins
//! the creating request's trace), one per step and one per tool call. The
//! provider-call spans are made by the providers (`agentd_llm::Traced`).
//!
//! `otel.name` gives each span its low-cardinality OpenTelemetry name; the
//! `agentd.*` fields are its attributes and, in the JSON log, the
//! `run_id`/`tenant`/`agent` of every line logged inside it. Numbers are
//! recorded as `i64`: tracing-opentelemetry exports unsigned ones as
//! strings.

use crate::ctx::RunCtx;
use crate::state::RunState;
use agentd_core::StepKind;
use agentd_store::{Journal, Lease};
use tracing::Span;

/// The span of one attempt at `journal`'s run. A root in this process:
/// its parent is the run's stored trace context, not whatever span
/// claimed the run.
pub(crate) fn attempt_span(lease: &Lease, journal: &Journal) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "run",
        otel.name = "run attempt",
        agentd.run_id = %lease.run_id,
        agentd.tenant = %lease.tenant,
        agentd.agent = %journal.run.agent,
        agentd.attempt = i64::from(journal.run.attempt),
        request_id = journal.origin.request_id.as_deref(),
    );
    agentd_telemetry::set_parent_from_origin(&span, &journal.origin);
    span
}

/// The span of the step `st` is about to take.
pub(crate) fn step_span(ctx: &RunCtx<'_>, st: &RunState, kind: StepKind) -> Span {
    let name = match kind {
        StepKind::Llm => "step llm",
        StepKind::Tool => "step tool",
        StepKind::Human => "step human",
    };
    tracing::info_span!(
        "step",
        otel.name = name,
        agentd.run_id = %ctx.lease.run_id,
        agentd.tenant = %ctx.lease.tenant,
        agentd.step = i64::from(st.next_index),
        agentd.step.kind = kind.as_str(),
    )
}

/// The span of a call to tool `name` at step `index`; `known` is false
/// for a name the agent does not have (the model's choice, so not a span
/// name).
pub(crate) fn tool_span(ctx: &RunCtx<'_>, index: u32, name: &str, known: bool) -> Span {
    let span_name = if known {
        format!("tool {name}")
    } else {
        "tool (unknown)".to_owned()
    };
    tracing::info_span!(
        "tool_call",
        otel.name = span_name.as_str(),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = name,
        agentd.run_id = %ctx.lease.run_id,
        agentd.tenant = %ctx.lease.tenant,
        agentd.step = i64::from(index),
    )
}
