//! The durable run loop. A run's state is its journal: on every (re)start the
//! loop rebuilds the messages from the journaled steps and continues with the
//! first step that has no record, so no recorded model or tool call runs
//! twice.
//!
//! Durability rule: a step is committed before the next step starts. The one
//! exception is a tool whose call only writes to the journal (`ask_human`):
//! the model step before it and the pause are committed together.

use crate::{Agent, Engine, RunEventKind};
use agentd_core::{
    ErrorCode, Message, Pause, Role, Run, RunError, RunStatus, Step, StepKind, StepStatus,
    ToolCall, Usage, now_millis, value_as_text,
};
use agentd_llm::{Completion, CompletionRequest, ProviderError};
use agentd_store::{Claimed, Journal, Lease, Outcome, Reservation, StepWrite, StoreError};
use agentd_tools::{ApprovalDecision, ToolContext, ToolError, ToolOutput, approval_question};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Why the loop stopped without finishing the run itself.
enum Stop {
    /// Another worker, a cancel or an expiry took the lease.
    LeaseLost,
    /// Shutdown: the run goes back to the queue.
    Released,
}

/// The state rebuilt from a journal.
struct State {
    run: Run,
    messages: Vec<Message>,
    /// Index in `messages` of this run's user message: what the run adds to
    /// its conversation starts here.
    run_start: usize,
    /// Tool calls of the last model step still without a journaled result.
    pending: VecDeque<ToolCall>,
    /// Pending calls a human approved: they run without asking again.
    approved: HashSet<String>,
    /// Roles of the run's creator, for tool policies.
    roles: Vec<String>,
    /// Steps done but not yet committed; committed before the next step
    /// starts, or together with the pause or the end of the run.
    unflushed: Vec<StepWrite>,
    next_index: u32,
    /// When the run's first step started: the run timeout counts from here,
    /// less the time spent waiting for humans.
    started_at: i64,
    /// Milliseconds the run sat paused for answers: not execution time.
    waited_ms: i64,
    /// Fires when shutdown's grace is over: the step in flight is dropped
    /// and the run handed back to the queue.
    abort: CancellationToken,
}

fn corrupt(run: &Run, what: impl Into<String>) -> RunError {
    RunError::new(
        ErrorCode::Internal,
        format!("journal of run {} is inconsistent: {}", run.id, what.into()),
    )
}

fn rebuild(journal: Journal) -> Result<State, RunError> {
    let Journal {
        run,
        steps,
        history,
        roles,
    } = journal;
    let mut messages = history;
    let run_start = messages.len();
    messages.push(Message::text(Role::User, value_as_text(&run.input)));
    let mut pending = VecDeque::new();
    let mut approved = HashSet::new();
    for step in &steps {
        match step.kind {
            StepKind::Llm => {
                let m: Message = match serde_json::from_value(step.output.clone()) {
                    Ok(m) => m,
                    Err(e) => {
                        let err = corrupt(&run, format!("step {}: {e}", step.index));
                        return Err(err);
                    }
                };
                pending = m.tool_calls.iter().cloned().collect();
                messages.push(m);
            }
            StepKind::Tool | StepKind::Human => {
                if step.status == StepStatus::Waiting {
                    let err = corrupt(&run, format!("step {} still waits for a human", step.index));
                    return Err(err);
                }
                // The journal names the call each result belongs to (record
                // v2; v1 records get it by migration): check it is the one
                // next in line rather than trust the order.
                if let (Some(id), Some(call)) = (&step.call_id, pending.front())
                    && *id != call.id
                {
                    let what = format!(
                        "step {} answers tool call {id:?}, but {:?} is next",
                        step.index, call.id
                    );
                    return Err(corrupt(&run, what));
                }
                if step.input.get("approval").is_some() {
                    // An approval decision: the call runs next, or the model
                    // hears the refusal.
                    let Some(call) = pending.front() else {
                        let err =
                            corrupt(&run, format!("step {} approves no tool call", step.index));
                        return Err(err);
                    };
                    match ApprovalDecision::from_answer(&step.output) {
                        Ok(ApprovalDecision::Approved) => {
                            approved.insert(call.id.clone());
                        }
                        Ok(rejected) => {
                            let result = rejected.rejection_result().unwrap_or_default();
                            let id = call.id.clone();
                            pending.pop_front();
                            messages.push(Message::tool_result(id, value_as_text(&result)));
                        }
                        Err(e) => {
                            let err = corrupt(&run, format!("step {}: {e}", step.index));
                            return Err(err);
                        }
                    }
                    continue;
                }
                let Some(call) = pending.pop_front() else {
                    let err = corrupt(&run, format!("step {} answers no tool call", step.index));
                    return Err(err);
                };
                messages.push(Message::tool_result(call.id, value_as_text(&step.output)));
            }
        }
    }
    Ok(State {
        messages,
        run_start,
        pending,
        approved,
        roles,
        unflushed: Vec::new(),
        next_index: steps.len() as u32,
        started_at: steps.first().map_or_else(now_millis, |s| s.started_at),
        waited_ms: steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .map(|s| s.duration_ms as i64)
            .sum(),
        abort: CancellationToken::new(),
        run,
    })
}

fn new_step(index: u32, kind: StepKind, name: &str, attempt: u32, started_at: i64) -> Step {
    Step {
        index,
        kind,
        name: name.to_string(),
        call_id: None,
        status: StepStatus::Completed,
        attempt,
        started_at,
        duration_ms: 0,
        input: serde_json::Value::Null,
        output: serde_json::Value::Null,
        error: None,
        usage: None,
    }
}

fn write(step: Step) -> StepWrite {
    StepWrite {
        step,
        usage: Usage::default(),
        cost_usd: 0.0,
    }
}

fn timeout_error(agent: &Agent) -> RunError {
    RunError::new(
        ErrorCode::Timeout,
        format!("run exceeded its timeout of {}", agent.config.timeout),
    )
}

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
        let span = tracing::info_span!("run", run_id = %lease.run_id, tenant = %lease.tenant, agent = %journal.run.agent);
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
            Ok(run) if crate::settled(run.status) => self.settle(&run),
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

    async fn execute_inner(
        &self,
        lease: &Lease,
        journal: Journal,
        shutdown: &CancellationToken,
    ) -> Result<Run, Stop> {
        let Some(agent) = self.inner.agents.get(&journal.run.agent).cloned() else {
            let error = RunError::new(
                ErrorCode::BadRequest,
                format!(
                    "agent {:?} is not configured in this process",
                    journal.run.agent
                ),
            );
            return self
                .finish(lease, Vec::new(), Outcome::Failed { error })
                .await;
        };
        // Every lost lease (a worker that died mid-step) counts as an
        // attempt, so a run that keeps killing its workers ends up dead
        // instead of taking the fleet down one process at a time.
        let max_attempts = self.inner.settings.max_attempts;
        if journal.run.attempt > max_attempts {
            let error = RunError::new(
                ErrorCode::Internal,
                format!(
                    "run was interrupted {} times (its worker stopped mid-step); \
                     queue.max_attempts = {max_attempts}",
                    journal.run.attempt - 1
                ),
            );
            return self
                .finish(lease, Vec::new(), Outcome::Dead { error })
                .await;
        }
        let mut st = match rebuild(journal) {
            Ok(st) => st,
            Err(error) => {
                return self
                    .finish(lease, Vec::new(), Outcome::Failed { error })
                    .await;
            }
        };
        st.abort = self.abort_token();
        let run_timeout = agent.config.timeout.get();
        loop {
            if shutdown.is_cancelled() {
                // Keep finished work, then give the run back at once so
                // another process continues it.
                self.flush(lease, &mut st).await?;
                let _ = self.inner.store.release(lease).await;
                return Err(Stop::Released);
            }
            let elapsed =
                Duration::from_millis((now_millis() - st.started_at - st.waited_ms).max(0) as u64);
            let Some(remaining) = run_timeout.checked_sub(elapsed).filter(|d| !d.is_zero()) else {
                let error = timeout_error(&agent);
                let writes = std::mem::take(&mut st.unflushed);
                return self.finish(lease, writes, Outcome::Failed { error }).await;
            };
            if st.next_index >= agent.config.max_steps {
                let error = RunError::new(
                    ErrorCode::MaxStepsExceeded,
                    format!("run reached max_steps = {}", agent.config.max_steps),
                );
                let writes = std::mem::take(&mut st.unflushed);
                return self.finish(lease, writes, Outcome::Failed { error }).await;
            }
            if let Some(call) = st.pending.front().cloned() {
                if let Some(run) = self
                    .tool_step(lease, &agent, &mut st, call, remaining)
                    .await?
                {
                    return Ok(run);
                }
            } else {
                if let Some(budget) = agent.config.budget_usd
                    && st.run.cost_usd >= budget
                {
                    let error = RunError::new(
                        ErrorCode::BudgetExceeded,
                        format!("run spent ${:.6} of its ${budget} budget", st.run.cost_usd),
                    );
                    let writes = std::mem::take(&mut st.unflushed);
                    return self.finish(lease, writes, Outcome::Failed { error }).await;
                }
                if let Some(run) = self.llm_step(lease, &agent, &mut st, remaining).await? {
                    return Ok(run);
                }
            }
        }
    }

    /// Reserves the next model call's estimated cost from the tenant's
    /// budget, if it has one; `Some(error)` when the period's budget is
    /// spent. Calls of other runs in flight may hold the rest of the budget
    /// for a moment: then this waits for them to settle (their cost, once
    /// journaled, may leave room).
    async fn reserve_budget(
        &self,
        lease: &Lease,
        agent: &Agent,
        st: &State,
        req: &CompletionRequest,
        remaining: Duration,
    ) -> Result<Option<RunError>, Stop> {
        let Some(limit) = self.inner.budgets.get(lease.tenant.as_str()) else {
            return Ok(None);
        };
        let estimate = agent.price_ceiling.as_ref().map_or(0.0, |price| {
            agentd_llm::pricing::estimate_usd(req, agent.max_output_tokens, price)
        });
        let store = &self.inner.store;
        let wait = async {
            loop {
                // The call cannot outlive the run's deadline, so neither
                // need its reservation.
                match store
                    .reserve_budget(lease, limit, estimate, remaining)
                    .await
                {
                    Ok(Reservation::Granted) => return Ok(None),
                    Ok(Reservation::Exhausted { spent_usd, .. })
                        if spent_usd + estimate > limit.limit_usd =>
                    {
                        return Ok(Some(RunError::new(
                            ErrorCode::BudgetExceeded,
                            format!(
                                "tenant {} spent ${spent_usd:.6} of its ${} budget for this period; \
                                 the next model call may cost up to ${estimate:.6}",
                                lease.tenant, limit.limit_usd
                            ),
                        )));
                    }
                    Ok(Reservation::Exhausted { .. }) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => return Err(store_failure(lease, e)),
                }
            }
        };
        self.with_heartbeat(lease, &st.abort, wait).await?
    }

    /// One model call. Returns true when the run finished.
    async fn llm_step(
        &self,
        lease: &Lease,
        agent: &Agent,
        st: &mut State,
        remaining: Duration,
    ) -> Result<Option<Run>, Stop> {
        self.flush(lease, st).await?;
        let index = st.next_index;
        let req = CompletionRequest {
            system: agent.config.system_prompt.clone(),
            messages: st.messages.clone().into(),
            tools: agent.tools.provider_specs(),
        };
        if let Some(error) = self
            .reserve_budget(lease, agent, st, &req, remaining)
            .await?
        {
            // Flushed above: nothing is left to commit with the failure.
            return self
                .finish(lease, Vec::new(), Outcome::Failed { error })
                .await
                .map(Some);
        }
        self.emit(&st.run, || RunEventKind::StepStarted {
            index,
            kind: StepKind::Llm,
            name: agent.first_provider(),
        });
        let started_at = now_millis();
        let t0 = tokio::time::Instant::now();
        // Stream only when someone watches this process's events: a
        // streamed call is not retried once text was forwarded.
        let (run_id, tenant) = (st.run.id, st.run.tenant.clone());
        let on_token = |text: &str| self.emit_token(run_id, &tenant, index, text);
        let stream = self.inner.events.receiver_count() > 0;
        let call = agent
            .chain
            .complete(&req, stream.then_some(&on_token as agentd_llm::OnToken<'_>));
        let result = self
            .with_heartbeat(lease, &st.abort, tokio::time::timeout(remaining, call))
            .await?;
        let (name, result) = match result {
            Ok(outcome) => (outcome.provider, outcome.result),
            Err(_) => {
                let name = agent.first_provider();
                (name.clone(), Err(ProviderError::Timeout { provider: name }))
            }
        };
        let mut step = new_step(index, StepKind::Llm, &name, st.run.attempt, started_at);
        step.duration_ms = t0.elapsed().as_millis() as u64;
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
                step.usage = Some(usage);
                step.output = serde_json::to_value(&message).unwrap_or_default();
                st.run.cost_usd += cost;
                st.run.usage = st.run.usage + usage;
                st.next_index += 1;
                st.unflushed.push(StepWrite {
                    step,
                    usage,
                    cost_usd: cost,
                });
                if message.tool_calls.is_empty() {
                    let output = serde_json::Value::String(message.content.clone());
                    st.messages.push(message);
                    // Only a conversation keeps them (as its memory).
                    let messages = match st.run.conversation_id {
                        Some(_) => st.messages[st.run_start..].to_vec(),
                        None => Vec::new(),
                    };
                    let writes = std::mem::take(&mut st.unflushed);
                    return self
                        .finish(lease, writes, Outcome::Succeeded { output, messages })
                        .await
                        .map(Some);
                }
                st.pending = message.tool_calls.iter().cloned().collect();
                st.messages.push(message);
                Ok(None)
            }
            Err(e) => {
                // The run's own deadline is final; a provider's failure may
                // pass.
                let (error, retryable) =
                    if matches!(e, ProviderError::Timeout { .. }) && t0.elapsed() >= remaining {
                        (timeout_error(agent), false)
                    } else {
                        (RunError::new(e.code(), e.to_string()), e.retryable())
                    };
                self.fail_step(lease, st, step, error, retryable)
                    .await
                    .map(Some)
            }
        }
    }

    /// One tool call. Returns true when the run paused or finished.
    async fn tool_step(
        &self,
        lease: &Lease,
        agent: &Agent,
        st: &mut State,
        call: ToolCall,
        remaining: Duration,
    ) -> Result<Option<Run>, Stop> {
        // Journal and policies use the registry's name, not the
        // provider-safe spelling the model saw.
        let name = agent
            .tools
            .canonical_name(&call.name)
            .unwrap_or_else(|| call.name.clone());
        // The caller's roles decide, failing closed: a denied call gets a
        // "not permitted" result the model sees, and the audit log a record.
        let denied = match self.inner.policies.allows(&st.roles, &name) {
            agentd_tools::PolicyDecision::Allow => None,
            agentd_tools::PolicyDecision::Deny { reason } => Some(reason),
        };
        let tool = if denied.is_some() {
            None
        } else {
            agent.tools.get(&name)
        };
        let index = st.next_index;
        if let Some(reason) = denied {
            let detail = serde_json::json!({ "tool": name, "step": index, "roles": st.roles, "reason": reason });
            if let Err(e) = self
                .inner
                .store
                .audit(
                    &lease.tenant,
                    lease.run_id,
                    "policy",
                    "tool_denied",
                    &detail,
                )
                .await
            {
                return Err(store_failure(lease, e));
            }
            self.flush(lease, st).await?;
            let mut step = new_step(index, StepKind::Tool, &name, st.run.attempt, now_millis());
            step.call_id = Some(call.id.clone());
            step.input = call.args.clone();
            step.output = serde_json::json!({ "error": format!("not permitted: {reason}") });
            st.messages
                .push(Message::tool_result(call.id, value_as_text(&step.output)));
            st.unflushed.push(write(step));
            st.pending.pop_front();
            st.next_index += 1;
            return Ok(None);
        }
        if let Some(t) = &tool
            && self.inner.tools.requires_approval(&name)
            && !st.approved.contains(&call.id)
            && t.validate(&call.args).is_ok()
        {
            return self.ask_approval(lease, st, &name, &call).await.map(Some);
        }
        if !tool.as_ref().is_some_and(|t| t.journal_only()) {
            self.flush(lease, st).await?;
        }
        self.emit(&st.run, || RunEventKind::StepStarted {
            index,
            kind: StepKind::Tool,
            name: name.clone(),
        });
        let started_at = now_millis();
        let t0 = tokio::time::Instant::now();
        let ctx = ToolContext {
            tenant: lease.tenant.clone(),
            run_id: lease.run_id,
            step_index: index,
        };
        let mut step = new_step(index, StepKind::Tool, &name, st.run.attempt, started_at);
        step.call_id = Some(call.id.clone());
        step.input = call.args.clone();
        let outcome = match tool {
            // A tool this agent does not have, or whose MCP server is down:
            // the tool set says which.
            None => agent.tools.call(&ctx, &name, &call.args).await,
            Some(tool) => {
                let work = tokio::time::timeout(remaining, tool.call(&ctx, &call.args));
                match self.with_heartbeat(lease, &st.abort, work).await? {
                    Ok(r) => r,
                    Err(_) => {
                        step.duration_ms = t0.elapsed().as_millis() as u64;
                        return self
                            .fail_step(lease, st, step, timeout_error(agent), false)
                            .await
                            .map(Some);
                    }
                }
            }
        };
        step.duration_ms = t0.elapsed().as_millis() as u64;
        let output = match outcome {
            Ok(ToolOutput::Value(v)) => v,
            Ok(ToolOutput::Pause { question }) => {
                step.kind = StepKind::Human;
                step.status = StepStatus::Waiting;
                let pause = Pause {
                    question,
                    step: index,
                    tool: None,
                    args: None,
                };
                return self.pause(lease, st, step, &pause).await.map(Some);
            }
            Err(ToolError::InvalidArgs { message, .. }) => serde_json::json!({ "error": message }),
            // The tool could not do its work (I/O, a server down): another
            // attempt may succeed, and it gets the same idempotency key.
            Err(e @ ToolError::Failed { .. }) => {
                let error = RunError::new(ErrorCode::ToolError, e.to_string());
                return self.fail_step(lease, st, step, error, true).await.map(Some);
            }
        };
        step.output = output;
        st.messages
            .push(Message::tool_result(call.id, value_as_text(&step.output)));
        st.unflushed.push(write(step));
        st.pending.pop_front();
        st.next_index += 1;
        Ok(None)
    }

    /// Pauses before a tool marked `approval = true` runs: a waiting human
    /// step whose answer is the decision. Nothing ran yet, so the model step
    /// before it is committed together with the pause.
    async fn ask_approval(
        &self,
        lease: &Lease,
        st: &mut State,
        name: &str,
        call: &ToolCall,
    ) -> Result<Run, Stop> {
        let index = st.next_index;
        let mut step = new_step(index, StepKind::Human, name, st.run.attempt, now_millis());
        step.status = StepStatus::Waiting;
        step.call_id = Some(call.id.clone());
        step.input = serde_json::json!({ "approval": { "tool": name, "args": call.args } });
        let pause = Pause {
            question: approval_question(name, &call.args),
            step: index,
            tool: Some(name.to_string()),
            args: Some(call.args.clone()),
        };
        self.pause(lease, st, step, &pause).await
    }

    /// Pauses the run on the waiting `step`, committing it with the steps
    /// not yet committed.
    async fn pause(
        &self,
        lease: &Lease,
        st: &mut State,
        step: Step,
        pause: &Pause,
    ) -> Result<Run, Stop> {
        let mut writes = std::mem::take(&mut st.unflushed);
        writes.push(write(step));
        let paused = self
            .inner
            .store
            .pause_run(lease, &writes, pause)
            .await
            .map_err(|e| store_failure(lease, e))?;
        self.completed(&paused, writes);
        Ok(paused)
    }

    /// Handles a failed step. A retryable failure ends only this attempt:
    /// the run goes back to the queue after a backoff, or to the dead
    /// letters once `queue.max_attempts` are spent; the failed call is not
    /// journaled, so the next attempt makes it again. Any other failure
    /// fails the run, with the failed step journaled.
    async fn fail_step(
        &self,
        lease: &Lease,
        st: &mut State,
        mut step: Step,
        error: RunError,
        retryable: bool,
    ) -> Result<Run, Stop> {
        let mut writes = std::mem::take(&mut st.unflushed);
        let outcome = if retryable {
            self.next_attempt(st.run.attempt, error)
        } else {
            step.status = StepStatus::Failed;
            step.error = Some(error.clone());
            writes.push(write(step));
            Outcome::Failed { error }
        };
        self.finish(lease, writes, outcome).await
    }

    /// What follows failed attempt `attempt`: a retry after the backoff, or
    /// the dead letters.
    fn next_attempt(&self, attempt: u32, error: RunError) -> Outcome {
        let s = &self.inner.settings;
        if attempt >= s.max_attempts {
            return Outcome::Dead { error };
        }
        let delay = s.backoff.delay(attempt, rand::random::<f64>());
        Outcome::Retry { error, delay }
    }

    /// Runs a step's work while keeping the lease alive: every third of the
    /// lease it is extended, so a model call longer than the lease is not
    /// taken over by another worker. If the lease is gone (cancelled, or
    /// lost), the work is dropped at once.
    async fn with_heartbeat<F: std::future::Future>(
        &self,
        lease: &Lease,
        abort: &CancellationToken,
        work: F,
    ) -> Result<F::Output, Stop> {
        let lease_for = self.inner.settings.lease;
        let beat = async {
            let mut every = tokio::time::interval(lease_for / 3);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = self.inner.store.heartbeat(lease, lease_for).await {
                    return store_failure(lease, e);
                }
            }
        };
        tokio::select! {
            out = work => Ok(out),
            stop = beat => Err(stop),
            _ = abort.cancelled() => {
                // Shutdown's grace is over: drop the call unjournaled and
                // hand the run to another process at once.
                if let Err(e) = self.inner.store.release(lease).await {
                    tracing::warn!(run_id = %lease.run_id, error = %e, "releasing an abandoned run failed; it continues when its lease expires");
                }
                Err(Stop::Released)
            }
        }
    }

    /// Commits the steps done so far; the next step starts only after.
    async fn flush(&self, lease: &Lease, st: &mut State) -> Result<(), Stop> {
        if st.unflushed.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut st.unflushed);
        self.inner
            .store
            .append_steps(lease, &writes, self.inner.settings.lease)
            .await
            .map_err(|e| store_failure(lease, e))?;
        st.run.steps = st.next_index;
        self.completed(&st.run, writes);
        Ok(())
    }

    fn completed(&self, run: &Run, writes: Vec<StepWrite>) {
        for w in writes {
            self.emit(run, || RunEventKind::StepCompleted { step: w.step });
        }
    }

    async fn finish(
        &self,
        lease: &Lease,
        writes: Vec<StepWrite>,
        outcome: Outcome,
    ) -> Result<Run, Stop> {
        let run = self
            .inner
            .store
            .finish_run(lease, &writes, &outcome)
            .await
            .map_err(|e| store_failure(lease, e))?;
        self.completed(&run, writes);
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
}

/// A store error mid-run: the lease is left to expire so the run is retried
/// (by this or another process) from its journal.
fn store_failure(lease: &Lease, e: StoreError) -> Stop {
    if !matches!(e, StoreError::LeaseLost { .. }) {
        tracing::error!(run_id = %lease.run_id, error = %e, "store write failed; the run will be retried when its lease expires");
    }
    Stop::LeaseLost
}
