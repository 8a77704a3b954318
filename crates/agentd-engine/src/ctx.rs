//! What a step needs besides the run's state: the store, the agent, the
//! lease and the rules, borrowed for the life of one execution ([`RunCtx`]),
//! and the journal writes every step ends with (commit, pause, finish).

use crate::events::EventBus;
use crate::state::{Rules, RunState, write};
use crate::{Agent, EngineSettings};
use agentd_core::{Pause, Run, RunError, Step, StepStatus};
use agentd_store::{BudgetLimit, Lease, Outcome, StepWrite, Store, StoreError};
use tokio_util::sync::CancellationToken;

/// Why the loop stopped without finishing the run itself.
pub(crate) enum Stop {
    /// Another worker, a cancel or an expiry took the lease.
    LeaseLost,
    /// Shutdown: the run goes back to the queue.
    Released,
}

/// Everything one execution of a run borrows from the engine.
pub(crate) struct RunCtx<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) agent: &'a Agent,
    pub(crate) lease: &'a Lease,
    pub(crate) rules: Rules<'a>,
    /// The tenant's spending limit, if it has one.
    pub(crate) budget: Option<&'a BudgetLimit>,
    /// The shares of that limit announced when crossed.
    pub(crate) budget_alerts: &'a [f64],
    /// The run's principal's spending limit, if it has one.
    pub(crate) principal_budget: Option<PrincipalBudget<'a>>,
    /// Period budget alerts this engine knows are recorded.
    pub(crate) announced: &'a crate::announced::Announced,
    /// `[webhooks] alerts_url`: where budget alerts are POSTed.
    pub(crate) alerts_url: Option<&'a str>,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) events: &'a EventBus,
    /// Fires when shutdown's grace is over: the step in flight is dropped
    /// and the run handed back to the queue.
    pub(crate) abort: CancellationToken,
}

/// A principal's per-period budget (`[principals."ID"]`), as one run's
/// principal spends against it.
pub(crate) struct PrincipalBudget<'a> {
    pub(crate) id: &'a str,
    pub(crate) limit: BudgetLimit,
    /// The shares of `limit` announced when crossed.
    pub(crate) alerts: &'a [f64],
}

impl RunCtx<'_> {
    /// A store error mid-run (see [`store_failure`]).
    pub(crate) fn failure(&self, e: StoreError) -> Stop {
        store_failure(self.lease, e)
    }

    /// Runs a step's work while keeping the lease alive: every third of the
    /// lease it is extended, so a model call longer than the lease is not
    /// taken over by another worker. If the lease is gone (cancelled, or
    /// lost), the work is dropped at once.
    pub(crate) async fn with_heartbeat<F: std::future::Future>(
        &self,
        work: F,
    ) -> Result<F::Output, Stop> {
        let lease_for = self.settings.lease;
        let beat = async {
            let mut every = tokio::time::interval(lease_for / 3);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = self.store.heartbeat(self.lease, lease_for).await {
                    crate::meter::heartbeat_lost();
                    return self.failure(e);
                }
            }
        };
        tokio::select! {
            out = work => Ok(out),
            stop = beat => Err(stop),
            _ = self.abort.cancelled() => {
                // Shutdown's grace is over: drop the call unjournaled and
                // hand the run to another process at once.
                if let Err(e) = self.store.release(self.lease).await {
                    tracing::warn!(run_id = %self.lease.run_id, error = %e, "releasing an abandoned run failed; it continues when its lease expires");
                }
                Err(Stop::Released)
            }
        }
    }

    /// Commits the steps done so far; the next step starts only after.
    pub(crate) async fn flush(&self, st: &mut RunState) -> Result<(), Stop> {
        if st.unflushed.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut st.unflushed);
        self.store
            .append_steps(self.lease, &writes, self.settings.lease)
            .await
            .map_err(|e| self.failure(e))?;
        st.run.steps = st.next_index;
        self.events.completed(&st.run, writes);
        Ok(())
    }

    /// Pauses the run on the waiting `step`, committing it with the steps
    /// not yet committed.
    pub(crate) async fn pause(
        &self,
        st: &mut RunState,
        step: Step,
        pause: &Pause,
    ) -> Result<Run, Stop> {
        let mut writes = std::mem::take(&mut st.unflushed);
        writes.push(write(step));
        let paused = self
            .store
            .pause_run(self.lease, &writes, pause)
            .await
            .map_err(|e| self.failure(e))?;
        self.events.completed(&paused, writes);
        Ok(paused)
    }

    /// Handles a failed step. A retryable failure ends only this attempt:
    /// the run goes back to the queue after a backoff, or to the dead
    /// letters once `queue.max_attempts` are spent; the failed call is not
    /// journaled, so the next attempt makes it again. Any other failure
    /// fails the run, with the failed step journaled.
    pub(crate) async fn fail_step(
        &self,
        st: &mut RunState,
        mut step: Step,
        error: RunError,
        retryable: bool,
    ) -> Result<Run, Stop> {
        let mut writes = std::mem::take(&mut st.unflushed);
        let outcome = if retryable {
            next_attempt(self.settings, st.run.attempt, error)
        } else {
            step.status = StepStatus::Failed;
            step.error = Some(error.clone());
            writes.push(write(step));
            Outcome::Failed { error }
        };
        self.finish(writes, outcome).await
    }

    /// Ends the run with `outcome`, committing `writes` with it.
    pub(crate) async fn finish(
        &self,
        writes: Vec<StepWrite>,
        outcome: Outcome,
    ) -> Result<Run, Stop> {
        finish(self.store, self.events, self.lease, writes, outcome).await
    }
}

/// What follows failed attempt `attempt`: a retry after the backoff, or the
/// dead letters.
fn next_attempt(s: &EngineSettings, attempt: u32, error: RunError) -> Outcome {
    if attempt >= s.max_attempts {
        return Outcome::Dead { error };
    }
    let delay = s.backoff.delay(attempt, rand::random::<f64>());
    Outcome::Retry { error, delay }
}

/// Ends the run with `outcome`, committing `writes` with it (also for runs
/// that end before they have a [`RunCtx`], such as one of an unknown agent).
pub(crate) async fn finish(
    store: &dyn Store,
    events: &EventBus,
    lease: &Lease,
    writes: Vec<StepWrite>,
    outcome: Outcome,
) -> Result<Run, Stop> {
    let run = store
        .finish_run(lease, &writes, &outcome)
        .await
        .map_err(|e| store_failure(lease, e))?;
    crate::meter::attempt_ended(&run, &outcome);
    events.completed(&run, writes);
    match &outcome {
        Outcome::Succeeded { .. } => {
            tracing::debug!(run_id = %run.id, steps = run.steps, "run succeeded")
        }
        Outcome::Failed { error } => {
            tracing::info!(run_id = %run.id, code = %error.code, "run failed: {}", error.message)
        }
        Outcome::Retry { error, delay } => {
            tracing::info!(run_id = %run.id, attempt = run.attempt, retry_in_ms = delay.as_millis() as u64, code = %error.code, "attempt failed, retrying: {}", error.message)
        }
        Outcome::Dead { error } => {
            tracing::warn!(run_id = %run.id, attempts = run.attempt, code = %error.code, "run is dead (moved to the dead letters): {}", error.message)
        }
    }
    Ok(run)
}

/// A store error mid-run: the lease is left to expire so the run is retried
/// (by this or another process) from its journal.
pub(crate) fn store_failure(lease: &Lease, e: StoreError) -> Stop {
    if !matches!(e, StoreError::LeaseLost { .. }) {
        tracing::error!(run_id = %lease.run_id, error = %e, "store write failed; the run will be retried when its lease expires");
    }
    Stop::LeaseLost
}
