//! The tool step: runs a pending tool call (or answers one policy denies)
//! and records its result for the model; a tool that asks a human
//! (`ask_human`) pauses the run instead.

use super::Happened;
use crate::ctx::{RunCtx, Stop};
use crate::run_event::RunEventKind;
use crate::state::{Refusal, RunState, ToolStep, new_step, timeout_error};
use agentd_core::{ErrorCode, Pause, RunError, Step, StepKind, StepStatus, now_millis};
use agentd_tools::{ToolContext, ToolError, ToolOutput};
use tracing::Instrument;

/// Runs the call `plan` describes.
pub(crate) async fn run(
    ctx: &RunCtx<'_>,
    st: &mut RunState,
    plan: ToolStep,
) -> Result<Happened, Stop> {
    let ToolStep {
        call,
        name,
        tool,
        remaining,
    } = plan;
    // Durability rule: commit the steps before a call with effects. A call
    // that only writes to the journal is committed with them.
    if !tool.as_ref().is_some_and(|t| t.journal_only()) {
        ctx.flush(st).await?;
    }
    let index = st.next_index;
    ctx.events.emit(&st.run, || RunEventKind::StepStarted {
        index,
        kind: StepKind::Tool,
        name: name.clone(),
    });
    let started_at = now_millis();
    let t0 = tokio::time::Instant::now();
    let tctx = ToolContext {
        tenant: ctx.lease.tenant.clone(),
        run_id: ctx.lease.run_id,
        step_index: index,
    };
    let mut step = new_step(index, StepKind::Tool, &name, st.run.attempt, started_at);
    // The call moves into the journaled step; the tool reads its input
    // from there.
    step.call_id = Some(call.id);
    step.input = call.args;
    let span = crate::trace::tool_span(ctx, index, &name, tool.is_some());
    // The model wrote placeholders; the tool gets the values they stand
    // for (the journal keeps what the model wrote).
    // Copied only when there are values to put back.
    let restored = match ctx.agent.guards.pii.as_ref() {
        Some(pii) if pii.restore && !st.vault.is_empty() => {
            Some(crate::guard::restore(&st.vault, step.input.clone()))
        }
        _ => None,
    };
    let args = restored.as_ref().unwrap_or(&step.input);
    let outcome = match tool {
        // A tool this agent does not have, or whose MCP server is down: the
        // tool set says which.
        None => {
            ctx.agent
                .tools
                .call(&tctx, &name, args)
                .instrument(span)
                .await
        }
        Some(tool) => {
            let call = tool.call(&tctx, args).instrument(span);
            let work = tokio::time::timeout(remaining, call);
            match ctx.with_heartbeat(work).await? {
                Ok(r) => r,
                Err(_) => {
                    step.duration_ms = t0.elapsed().as_millis() as u64;
                    let error = timeout_error(ctx.agent);
                    return Ok(Happened::Failed {
                        step,
                        error,
                        retryable: false,
                    });
                }
            }
        }
    };
    step.duration_ms = t0.elapsed().as_millis() as u64;
    let outcome = match outcome {
        Ok(ToolOutput::Value(v)) => match guard_result(ctx, st, index, v).await? {
            Ok(v) => Ok(ToolOutput::Value(v)),
            Err((output, error)) => {
                step.output = output;
                return Ok(Happened::Failed {
                    step,
                    error,
                    retryable: false,
                });
            }
        },
        // A tool's error may quote the values its arguments were given
        // back: they are kept out of the journal like its results.
        Err(mut e) => {
            if let Some(pii) = ctx
                .agent
                .guards
                .pii
                .as_ref()
                .filter(|p| p.redacts_journal())
            {
                let (ToolError::InvalidArgs { message, .. } | ToolError::Failed { message, .. }) =
                    &mut e;
                let (redacted, found) = st.vault.redact(message, pii.kinds());
                *message = redacted;
                super::guard::save_vault(ctx, &st.vault, found > 0).await?;
            }
            Err(e)
        }
        other => other,
    };
    let cost = ctx.agent.tool_costs.get(&name).copied().unwrap_or(0.0);
    if cost > 0.0 && matches!(outcome, Ok(ToolOutput::Value(_))) {
        crate::meter::tool_call_cost(ctx.agent, st.run.tenant.as_str(), cost);
    }
    Ok(settle(st, step, outcome, cost))
}

/// A tool's result through the guardrails: personal data redacted (or
/// blocked, or flagged), then the injection guard. `Err` blocks the run,
/// with the result to journal on the failed step.
async fn guard_result(
    ctx: &RunCtx<'_>,
    st: &mut RunState,
    index: u32,
    v: serde_json::Value,
) -> Result<Result<serde_json::Value, (serde_json::Value, RunError)>, Stop> {
    let v = match ctx.agent.guards.pii.as_ref() {
        Some(pii) if pii.redacts_journal() => {
            let (v, found) = pii.redact(&mut st.vault, v);
            super::guard::save_vault(ctx, &st.vault, found > 0).await?;
            v
        }
        // Redaction for the model only happens when the model is called.
        Some(pii) if pii.action != agentd_config::guardrails::PiiAction::Redact => {
            let text = agentd_core::value_as_text(&v);
            let source = agentd_config::guardrails::GuardSource::ToolResult;
            if let Some(error) =
                super::guard::pii_verdict(ctx, source, &text, Some(index), true).await?
            {
                // Journaled without the values that blocked it.
                let (kept, _) = pii.redact(&mut agentd_guard::pii::Vault::default(), v);
                return Ok(Err((kept, error)));
            }
            v
        }
        _ => v,
    };
    // What a tool returns may carry instructions meant for the model.
    super::guard::enforce_on_tool_result(ctx, index, v).await
}

/// What a tool's answer means for the run: a result the model reads next
/// (recorded in `st`), a pause for a human, or a failed attempt.
pub(crate) fn settle(
    st: &mut RunState,
    mut step: Step,
    outcome: Result<ToolOutput, ToolError>,
    cost_usd: f64,
) -> Happened {
    // Only a call that returned a result is charged.
    let charged = if matches!(outcome, Ok(ToolOutput::Value(_))) {
        cost_usd
    } else {
        0.0
    };
    let output = match outcome {
        Ok(ToolOutput::Value(v)) => v,
        Ok(ToolOutput::Pause { question }) => {
            step.kind = StepKind::Human;
            step.status = StepStatus::Waiting;
            let pause = Pause {
                question,
                step: step.index,
                tool: None,
                args: None,
            };
            return Happened::Paused { step, pause };
        }
        Err(ToolError::InvalidArgs { message, .. }) => serde_json::json!({ "error": message }),
        // The tool could not do its work (I/O, a server down): another
        // attempt may succeed, and it gets the same idempotency key.
        Err(e @ ToolError::Failed { .. }) => {
            let error = RunError::new(ErrorCode::ToolError, e.to_string());
            return Happened::Failed {
                step,
                error,
                retryable: true,
            };
        }
    };
    step.output = output;
    st.record_tool_result(step, charged);
    Happened::Recorded
}

/// Answers a call the caller's roles may not make: the audit log gets a
/// record and the model a "not permitted" result.
pub(crate) async fn refuse(
    ctx: &RunCtx<'_>,
    st: &mut RunState,
    r: Refusal,
) -> Result<Happened, Stop> {
    let Refusal { call, name, reason } = r;
    let index = st.next_index;
    let detail =
        serde_json::json!({ "tool": name, "step": index, "roles": st.roles, "reason": reason });
    let lease = ctx.lease;
    ctx.store
        .audit(
            &lease.tenant,
            lease.run_id,
            "policy",
            "tool_denied",
            &detail,
        )
        .await
        .map_err(|e| ctx.failure(e))?;
    ctx.flush(st).await?;
    let mut step = new_step(index, StepKind::Tool, &name, st.run.attempt, now_millis());
    step.call_id = Some(call.id);
    step.input = call.args;
    step.output = serde_json::json!({ "error": format!("not permitted: {reason}") });
    st.record_tool_result(step, 0.0);
    Ok(Happened::Recorded)
}
