//! The durable run loop. A run's state is its journal: on every (re)start the
//! loop rebuilds the state from the journaled steps ([`crate::state`]) and
//! asks it what comes next; the step modules ([`crate::steps`]) do it, so no
//! recorded model or tool call runs twice.
//!
//! Durability rule: a step is committed before the next step starts. The one
//! exception is a tool whose call only writes to the journal (`ask_human`):
//! the model step before it and the pause are committed together.

use crate::ctx::{self, PrincipalBudget, RunCtx, Stop};
use crate::state::{self, Next, Rules};
use crate::steps::{self, Happened};
use crate::{Engine, RunEventKind, meter};
use agentd_core::{ErrorCode, Run, RunError, RunStatus, StepKind, now_millis};
use agentd_store::{Claimed, Journal, Lease, Outcome};
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

impl Engine {
    /// Executes a claimed run until it finishes, pauses, loses its lease or
    /// shutdown asks it to stop at a step boundary.
    pub(crate) async fn execute(
        &self,
        claimed: Claimed,
        shutdown: &CancellationToken,
        slot: Option<OwnedSemaphorePermit>,
    ) {
        let Claimed { lease, journal } = claimed;
        let span = crate::trace::attempt_span(&lease, &journal);
        // Lets a watch from another process that arrives mid-run be answered.
        let _executing = self
            .inner
            .events
            .remote()
            .map(|r| r.executing(lease.run_id, &lease.tenant));
        self.emit(&journal.run, || RunEventKind::Status {
            status: RunStatus::Running,
        });
        let result = self
            .execute_inner(&lease, journal, shutdown)
            .instrument(span)
            .await;
        // Free the worker slot before announcing the outcome, so a caller
        // that waited for this run can start the next one on it at once.
        drop(slot);
        match result {
            Ok(run) if crate::settled(run.status) => {
                crate::meter::run_settled(&run);
                self.judge_canary(&run);
                self.settle(&run)
            }
            // Back in the queue for its next attempt.
            Ok(run) => self.emit(&run, || RunEventKind::Status { status: run.status }),
            Err(Stop::LeaseLost) => {
                tracing::info!(run_id = %lease.run_id, "lease lost; this worker stops touching the run");
                // Tell local waiters about the state someone else produced.
                if let Ok(Some(now)) = self.inner.store.get_run(&lease.tenant, lease.run_id).await
                    && crate::settled(now.status)
                {
                    self.settle(&now);
                }
            }
            Err(Stop::Released) => {
                tracing::info!(run_id = %lease.run_id, "released to the queue at shutdown")
            }
        }
    }

    /// Checks the claimed run may run here, rebuilds its state and runs it.
    async fn execute_inner(
        &self,
        lease: &Lease,
        mut journal: Journal,
        shutdown: &CancellationToken,
    ) -> Result<Run, Stop> {
        let inner = &*self.inner;
        let store = &*inner.store;
        // The whole attempt runs on this catalog, whatever a reload does.
        let catalog = self.catalog();
        let Some(versions) = catalog.agents.get(&journal.run.agent) else {
            let error = RunError::new(
                ErrorCode::BadRequest,
                format!(
                    "agent {:?} is not configured in this process",
                    journal.run.agent
                ),
            );
            let outcome = Outcome::Failed { error };
            return ctx::finish(store, &inner.events, lease, Vec::new(), outcome).await;
        };
        let Some(agent) = versions.get(&journal.run.agent_version) else {
            // Dead, not failed: declaring the version again and requeueing
            // the run continues it.
            let error = RunError::new(
                ErrorCode::Internal,
                format!(
                    "version {:?} of agent {:?} is not configured in this process; declare it \
                     again (`[[agents]] version`) and requeue the run",
                    journal.run.agent_version.as_deref().unwrap_or(""),
                    journal.run.agent
                ),
            );
            let outcome = Outcome::Dead { error };
            return ctx::finish(store, &inner.events, lease, Vec::new(), outcome).await;
        };
        // The claim read the largest window among the agent's versions.
        if let Some(limit) = agent.history_limit() {
            let extra = journal.history.len().saturating_sub(limit as usize);
            journal.history.drain(..extra);
        }
        meter::attempt_started(agent, &journal);
        // Every lost lease (a worker that died mid-step) counts as an
        // attempt, so a run that keeps killing its workers ends up dead
        // instead of taking the fleet down one process at a time.
        let max_attempts = inner.settings.max_attempts;
        if journal.run.attempt > max_attempts {
            let error = RunError::new(
                ErrorCode::Internal,
                format!(
                    "run was interrupted {} times (its worker stopped mid-step); \
                     queue.max_attempts = {max_attempts}",
                    journal.run.attempt - 1
                ),
            );
            let outcome = Outcome::Dead { error };
            return ctx::finish(store, &inner.events, lease, Vec::new(), outcome).await;
        }
        let principal = journal.run.principal.to_string();
        let ctx = RunCtx {
            store,
            agent,
            lease,
            rules: Rules {
                policies: &catalog.policies,
                registry: &catalog.tools,
            },
            budget: catalog.budgets.get(lease.tenant.as_str()),
            budget_alerts: catalog
                .config
                .tenants
                .get(lease.tenant.as_str())
                .map_or(&[], |t| t.alerts.as_slice()),
            principal_budget: catalog.config.principal_budget(&principal).and_then(|b| {
                Some(PrincipalBudget {
                    id: &principal,
                    limit: crate::catalog::budget_limit(b)?,
                    alerts: &b.alerts,
                })
            }),
            announced: &inner.announced,
            alerts_url: catalog.config.webhooks.alerts_url.as_deref(),
            settings: &inner.settings,
            events: &inner.events,
            abort: self.abort_token(),
        };
        match state::rebuild(journal, now_millis(), Some(agent.guards.clone())) {
            Ok(mut st) => {
                let blocked = match crate::steps::guard::enforce_pii_on_input(&ctx, &mut st).await?
                {
                    Some(blocked) => Some(blocked),
                    None => crate::steps::guard::enforce_on_input(&ctx, &mut st).await?,
                };
                match blocked {
                    Some(blocked) => ctx.finish(Vec::new(), blocked).await,
                    None => run_loop(&ctx, &mut st, shutdown).await,
                }
            }
            Err(error) => ctx.finish(Vec::new(), Outcome::Failed { error }).await,
        }
    }
}

/// Asks the state what comes next and does it, until the run pauses, ends
/// or is handed back.
async fn run_loop(
    ctx: &RunCtx<'_>,
    st: &mut state::RunState,
    shutdown: &CancellationToken,
) -> Result<Run, Stop> {
    loop {
        // A run whose model just replied finishes even at shutdown: handed
        // back, its next attempt would call the model again.
        if shutdown.is_cancelled() && !st.replied() {
            // Keep finished work, then give the run back at once so another
            // process continues it.
            ctx.flush(st).await?;
            let _ = ctx.store.release(ctx.lease).await;
            return Err(Stop::Released);
        }
        let spent_before = st.run.cost_usd;
        let happened = match st.next(ctx.agent, ctx.rules, now_millis()) {
            Next::Finish(outcome) => Happened::Ended(outcome),
            Next::CallModel { remaining } => {
                let started = Instant::now();
                let span = crate::trace::step_span(ctx, st, StepKind::Llm);
                let happened = steps::llm::run(ctx, st, remaining).instrument(span).await?;
                meter::step_took(ctx.agent, StepKind::Llm, started.elapsed());
                happened
            }
            Next::CallTool(plan) => {
                let started = Instant::now();
                let span = crate::trace::step_span(ctx, st, StepKind::Tool);
                let happened = steps::tool::run(ctx, st, plan).instrument(span).await?;
                meter::step_took(ctx.agent, StepKind::Tool, started.elapsed());
                happened
            }
            Next::Refuse(refusal) => steps::tool::refuse(ctx, st, refusal).await?,
            Next::Pause(approval) => steps::approval::ask(st, approval),
        };
        match happened {
            Happened::Recorded => crate::alerts::check_run(ctx, st, spent_before).await?,
            Happened::Paused { step, pause } => return ctx.pause(st, step, &pause).await,
            Happened::Failed {
                step,
                error,
                retryable,
            } => return ctx.fail_step(st, step, error, retryable).await,
            Happened::Ended(outcome) => {
                let writes = std::mem::take(&mut st.unflushed);
                let run = ctx.finish(writes, outcome).await?;
                // The run's last spending is in the tenant's and the
                // principal's periods now. Announcing is not worth failing
                // a finished run for.
                if crate::alerts::check_periods(ctx).await.is_err() {
                    tracing::warn!(run_id = %run.id, "checking the period budgets' alerts failed");
                }
                return Ok(run);
            }
        }
    }
}
