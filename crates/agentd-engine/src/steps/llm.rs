//! The model step: commits the steps before it, reserves the call's cost
//! from the tenant's budget, calls the agent's provider chain (streaming
//! text to listeners, if any) and records the reply.

use super::Happened;
use crate::Agent;
use crate::ctx::{RunCtx, Stop};
use crate::run_event::RunEventKind;
use crate::state::{RunState, new_step, timeout_error};
use agentd_core::{ErrorCode, RunError, Step, StepKind, now_millis};
use agentd_llm::{Completion, CompletionRequest, ProviderError};
use agentd_store::{BudgetLimits, Outcome, Reservation, StepWrite};
use std::time::Duration;

/// One model call, at most `remaining` long.
pub(crate) async fn run(
    ctx: &RunCtx<'_>,
    st: &mut RunState,
    remaining: Duration,
) -> Result<Happened, Stop> {
    ctx.flush(st).await?;
    // Spending of this run's since the last check may have crossed a
    // period threshold; spending of others is checked by those runs.
    if st.run.cost_usd > st.periods_checked_at {
        crate::alerts::check_periods(ctx).await?;
        st.periods_checked_at = st.run.cost_usd;
    }
    let agent = ctx.agent;
    let index = st.next_index;
    // The conversation is shared with the request, not copied.
    let req = CompletionRequest {
        system: agent.config.system_prompt.clone(),
        messages: super::guard::model_messages(ctx, st).await?,
        tools: agent.tools.provider_specs(),
    };
    if let Some(error) = reserve_budget(ctx, &req, remaining).await? {
        // Flushed above: nothing is left to commit with the failure.
        return Ok(Happened::Ended(Outcome::Failed { error }));
    }
    ctx.events.emit(&st.run, || RunEventKind::StepStarted {
        index,
        kind: StepKind::Llm,
        name: agent.first_provider(),
    });
    let started_at = now_millis();
    let t0 = tokio::time::Instant::now();
    // Stream only when someone watches this run's events, here or in
    // another process: a streamed call is not retried once text was
    // forwarded.
    let (run_id, tenant) = (st.run.id, &st.run.tenant);
    let on_token = |text: &str| ctx.events.token(run_id, tenant, index, text);
    let stream = ctx.events.streaming(run_id);
    let call = agent
        .chain
        .complete(&req, stream.then_some(&on_token as agentd_llm::OnToken<'_>));
    let tags = agentd_llm::RunTags {
        run_id: run_id.to_string(),
        tenant: tenant.to_string(),
        step: index,
    };
    let call = agentd_llm::for_run(tags, call);
    let result = ctx
        .with_heartbeat(tokio::time::timeout(remaining, call))
        .await?;
    // The reply is appended to the shared conversation: drop the request's
    // share first, so the append does not copy it.
    drop(req);
    let (name, result) = match result {
        Ok(outcome) => (outcome.provider, outcome.result),
        Err(_) => {
            let name = agent.first_provider();
            (name.clone(), Err(ProviderError::Timeout { provider: name }))
        }
    };
    let mut step = new_step(index, StepKind::Llm, &name, st.run.attempt, started_at);
    step.duration_ms = t0.elapsed().as_millis() as u64;
    let deadline_passed = t0.elapsed() >= remaining;
    Ok(settle(agent, st, step, result, deadline_passed))
}

/// What the chain's answer means for the run: a reply recorded in `st`
/// (with its usage and cost), or a failed step. A timeout is the run's own
/// (final) when its deadline passed, otherwise the provider's (it may pass).
fn settle(
    agent: &Agent,
    st: &mut RunState,
    mut step: Step,
    result: Result<Completion, ProviderError>,
    deadline_passed: bool,
) -> Happened {
    match result {
        Ok(Completion {
            message,
            usage,
            model,
        }) => {
            let cost = agent
                .pricing
                .get(&model)
                .map_or(0.0, |p| agentd_llm::pricing::cost_usd(usage, p));
            crate::meter::model_call(agent, &step.name, st.run.tenant.as_str(), usage, cost);
            step.usage = Some(usage);
            step.output = serde_json::to_value(&message).unwrap_or_default();
            let w = StepWrite {
                step,
                usage,
                cost_usd: cost,
            };
            st.record_reply(message, w);
            Happened::Recorded
        }
        Err(e) => {
            let (error, retryable) =
                if matches!(e, ProviderError::Timeout { .. }) && deadline_passed {
                    (timeout_error(agent), false)
                } else {
                    (RunError::new(e.code(), e.to_string()), e.run_may_retry())
                };
            Happened::Failed {
                step,
                error,
                retryable,
            }
        }
    }
}

/// Reserves the next model call's estimated cost from the tenant's and
/// the principal's budgets, if they have them; `Some(error)` when a
/// period's budget is spent. Calls of other runs in flight may hold the
/// rest of a budget for a moment: then this waits for them to settle
/// (their cost, once journaled, may leave room).
async fn reserve_budget(
    ctx: &RunCtx<'_>,
    req: &CompletionRequest,
    remaining: Duration,
) -> Result<Option<RunError>, Stop> {
    let limits = BudgetLimits {
        tenant: ctx.budget.copied(),
        principal: ctx.principal_budget.as_ref().map(|p| (p.id, p.limit)),
    };
    if !limits.any() {
        return Ok(None);
    }
    let agent = ctx.agent;
    let estimate = agent.price_ceiling.as_ref().map_or(0.0, |price| {
        agentd_llm::pricing::estimate_usd(req, agent.max_output_tokens, price)
    });
    let lease = ctx.lease;
    let wait = async {
        loop {
            // The call cannot outlive the run's deadline, so neither need
            // its reservation.
            let answer = ctx
                .store
                .reserve_budget(lease, &limits, estimate, remaining)
                .await;
            let (principal, spent_usd) = match answer {
                Ok(Reservation::Granted) => {
                    crate::meter::budget_checked(lease.tenant.as_str(), true);
                    return Ok(None);
                }
                Ok(Reservation::Exhausted {
                    principal,
                    spent_usd,
                    ..
                }) => (principal, spent_usd),
                Err(e) => return Err(ctx.failure(e)),
            };
            let (owner, limit) = match limits.principal.filter(|_| principal) {
                Some((id, limit)) => (
                    format!("principal {id} of tenant {}", lease.tenant),
                    limit.limit_usd,
                ),
                None => (
                    format!("tenant {}", lease.tenant),
                    limits.tenant.map_or(0.0, |l| l.limit_usd),
                ),
            };
            if spent_usd + estimate > limit {
                crate::meter::budget_checked(lease.tenant.as_str(), false);
                return Ok(Some(RunError::new(
                    ErrorCode::BudgetExceeded,
                    format!(
                        "{owner} spent ${spent_usd:.6} of its ${limit} budget for this period; \
                         the next model call may cost up to ${estimate:.6}"
                    ),
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await
        }
    };
    ctx.with_heartbeat(wait).await?
}
