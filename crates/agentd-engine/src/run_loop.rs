//! The durable run loop. A run's state is its journal: on every (re)start the
//! loop rebuilds the messages from the journaled steps and continues with the
//! first step that has no record, so no recorded model or tool call runs
//! twice.

use crate::{Agent, Engine, RunEventKind};
use agentd_core::{
    ErrorCode, Message, Pause, Role, Run, RunError, Step, StepKind, StepStatus, ToolCall, Usage,
    now_millis, value_as_text,
};
use agentd_llm::{Completion, CompletionRequest, ProviderError};
use agentd_store::{Claimed, Journal, Lease, Outcome, StepWrite, StoreError};
use agentd_tools::{ToolContext, ToolError, ToolOutput};
use std::collections::VecDeque;
use std::time::Duration;
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
    messages: Vec<Message>,
    /// Index in `messages` of this run's user message: what the run adds to
    /// its conversation starts here.
    run_start: usize,
    /// Tool calls of the last model step still without a journaled result.
    pending: VecDeque<ToolCall>,
    next_index: u32,
    /// When the run's first step started: the run timeout counts from here,
    /// less the time spent waiting for humans.
    started_at: i64,
    /// Milliseconds the run sat paused for answers: not execution time.
    waited_ms: i64,
}

fn corrupt(run: &Run, what: impl Into<String>) -> RunError {
    RunError::new(
        ErrorCode::Internal,
        format!("journal of run {} is inconsistent: {}", run.id, what.into()),
    )
}

fn rebuild(journal: &Journal, system_start: i64) -> Result<State, RunError> {
    let mut messages = journal.history.clone();
    let run_start = messages.len();
    messages.push(Message::text(Role::User, value_as_text(&journal.run.input)));
    let mut pending = VecDeque::new();
    for step in &journal.steps {
        match step.kind {
            StepKind::Llm => {
                let m: Message = serde_json::from_value(step.output.clone())
                    .map_err(|e| corrupt(&journal.run, format!("step {}: {e}", step.index)))?;
                pending = m.tool_calls.iter().cloned().collect();
                messages.push(m);
            }
            StepKind::Tool | StepKind::Human => {
                if step.status == StepStatus::Waiting {
                    return Err(corrupt(
                        &journal.run,
                        format!("step {} still waits for a human", step.index),
                    ));
                }
                let call = pending.pop_front().ok_or_else(|| {
                    corrupt(
                        &journal.run,
                        format!("step {} answers no tool call", step.index),
                    )
                })?;
                messages.push(Message::tool_result(call.id, value_as_text(&step.output)));
            }
        }
    }
    Ok(State {
        messages,
        run_start,
        pending,
        next_index: journal.steps.len() as u32,
        started_at: journal.steps.first().map_or(system_start, |s| s.started_at),
        waited_ms: journal
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .map(|s| s.duration_ms as i64)
            .sum(),
    })
}

fn llm_step(
    index: u32,
    attempt: u32,
    name: &str,
    started_at: i64,
    t0: tokio::time::Instant,
) -> Step {
    Step {
        index,
        kind: StepKind::Llm,
        name: name.to_string(),
        status: StepStatus::Completed,
        attempt,
        started_at,
        duration_ms: t0.elapsed().as_millis() as u64,
        input: serde_json::Value::Null,
        output: serde_json::Value::Null,
        error: None,
        usage: None,
    }
}

impl Engine {
    /// Executes a claimed run until it finishes, pauses, loses its lease or
    /// shutdown asks it to stop at a step boundary.
    pub(crate) async fn execute(&self, claimed: Claimed, shutdown: &CancellationToken) {
        let Claimed { lease, run } = claimed;
        let span =
            tracing::info_span!("run", run_id = %run.id, tenant = %run.tenant, agent = %run.agent);
        self.emit(&run, RunEventKind::Status { status: run.status });
        let result = self
            .execute_inner(&lease, run.clone(), shutdown)
            .instrument(span)
            .await;
        match result {
            Ok(()) => {}
            Err(Stop::LeaseLost) => {
                tracing::info!("lease lost; this worker stops touching the run");
                // Tell local waiters about the state someone else produced.
                if let Ok(Some(now)) = self.inner.store.get_run(&lease.tenant, lease.run_id).await
                    && crate::settled(now.status)
                {
                    self.emit(&now, RunEventKind::Finished { run: now.clone() });
                }
            }
            Err(Stop::Released) => tracing::info!("released to the queue at shutdown"),
        }
    }

    async fn execute_inner(
        &self,
        lease: &Lease,
        run: Run,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        let Some(agent) = self.inner.agents.get(&run.agent).cloned() else {
            let error = RunError::new(
                ErrorCode::BadRequest,
                format!("agent {:?} is not configured in this process", run.agent),
            );
            return self.finish(lease, None, Outcome::Failed { error }).await;
        };
        let journal = self
            .inner
            .store
            .load_journal(lease, agent.history_limit())
            .await
            .map_err(|e| self.store_failure(lease, e))?;
        let mut run = journal.run.clone();
        let mut st = match rebuild(&journal, now_millis()) {
            Ok(st) => st,
            Err(error) => return self.finish(lease, None, Outcome::Failed { error }).await,
        };
        let run_timeout = agent.config.timeout.get();
        loop {
            if shutdown.is_cancelled() {
                // The lease goes back at once so another process continues.
                let _ = self.inner.store.release(lease).await;
                return Err(Stop::Released);
            }
            let elapsed =
                Duration::from_millis((now_millis() - st.started_at - st.waited_ms).max(0) as u64);
            let Some(remaining) = run_timeout.checked_sub(elapsed).filter(|d| !d.is_zero()) else {
                let error = RunError::new(
                    ErrorCode::Timeout,
                    format!("run exceeded its timeout of {}", agent.config.timeout),
                );
                return self.finish(lease, None, Outcome::Failed { error }).await;
            };
            if st.next_index >= agent.config.max_steps {
                let error = RunError::new(
                    ErrorCode::MaxStepsExceeded,
                    format!("run reached max_steps = {}", agent.config.max_steps),
                );
                return self.finish(lease, None, Outcome::Failed { error }).await;
            }
            if let Some(call) = st.pending.front().cloned() {
                self.tool_step(lease, &mut run, &agent, &mut st, call, remaining)
                    .await?;
                if run.status == agentd_core::RunStatus::Paused {
                    return Ok(());
                }
            } else {
                if let Some(budget) = agent.config.budget_usd
                    && run.cost_usd >= budget
                {
                    {
                        let error = RunError::new(
                            ErrorCode::BudgetExceeded,
                            format!("run spent ${:.6} of its ${budget} budget", run.cost_usd),
                        );
                        return self.finish(lease, None, Outcome::Failed { error }).await;
                    }
                }
                if self
                    .llm_step(lease, &mut run, &agent, &mut st, remaining)
                    .await?
                {
                    return Ok(());
                }
            }
        }
    }

    /// One model call. Returns true when the run finished.
    async fn llm_step(
        &self,
        lease: &Lease,
        run: &mut Run,
        agent: &Agent,
        st: &mut State,
        remaining: Duration,
    ) -> Result<bool, Stop> {
        let index = st.next_index;
        let req = CompletionRequest {
            system: agent.config.system_prompt.clone(),
            messages: st.messages.clone(),
            tools: agent.tool_specs.clone(),
        };
        let first = agent
            .providers
            .first()
            .map(|p| p.name().to_string())
            .unwrap_or_default();
        self.emit(
            run,
            RunEventKind::StepStarted {
                index,
                kind: StepKind::Llm,
                name: first,
            },
        );
        let started_at = now_millis();
        let t0 = tokio::time::Instant::now();
        let result = tokio::time::timeout(remaining, call_chain(agent, &req)).await;
        let (name, result) = match result {
            Ok(r) => r,
            Err(_) => {
                let mut step = llm_step(index, run.attempt, "", started_at, t0);
                step.status = StepStatus::Failed;
                let error = RunError::new(
                    ErrorCode::Timeout,
                    format!("run exceeded its timeout of {}", agent.config.timeout),
                );
                step.error = Some(error.clone());
                let write = StepWrite {
                    step,
                    usage: Usage::default(),
                    cost_usd: 0.0,
                };
                self.finish(lease, Some(write), Outcome::Failed { error })
                    .await?;
                return Ok(true);
            }
        };
        let mut step = llm_step(index, run.attempt, &name, started_at, t0);
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
                let write = StepWrite {
                    step,
                    usage,
                    cost_usd: cost,
                };
                run.cost_usd += cost;
                run.usage = run.usage + usage;
                st.next_index += 1;
                if message.tool_calls.is_empty() {
                    let output = serde_json::Value::String(message.content.clone());
                    st.messages.push(message);
                    let messages = st.messages[st.run_start..].to_vec();
                    self.finish(lease, Some(write), Outcome::Succeeded { output, messages })
                        .await?;
                    return Ok(true);
                }
                self.append(lease, run, write).await?;
                st.pending = message.tool_calls.iter().cloned().collect();
                st.messages.push(message);
                Ok(false)
            }
            Err(e) => {
                let error = RunError::new(e.code(), e.to_string());
                step.status = StepStatus::Failed;
                step.error = Some(error.clone());
                let write = StepWrite {
                    step,
                    usage: Usage::default(),
                    cost_usd: 0.0,
                };
                self.finish(lease, Some(write), Outcome::Failed { error })
                    .await?;
                Ok(true)
            }
        }
    }

    /// One tool call; sets `run.status` to paused when the tool asks a human.
    async fn tool_step(
        &self,
        lease: &Lease,
        run: &mut Run,
        agent: &Agent,
        st: &mut State,
        call: ToolCall,
        remaining: Duration,
    ) -> Result<(), Stop> {
        let index = st.next_index;
        self.emit(
            run,
            RunEventKind::StepStarted {
                index,
                kind: StepKind::Tool,
                name: call.name.clone(),
            },
        );
        let started_at = now_millis();
        let t0 = tokio::time::Instant::now();
        let ctx = ToolContext {
            tenant: lease.tenant.clone(),
            run_id: lease.run_id,
            step_index: index,
        };
        let mut step = Step {
            index,
            kind: StepKind::Tool,
            name: call.name.clone(),
            status: StepStatus::Completed,
            attempt: run.attempt,
            started_at,
            duration_ms: 0,
            input: call.args.clone(),
            output: serde_json::Value::Null,
            error: None,
            usage: None,
        };
        let outcome = match agent.tools.get(&call.name) {
            // The model asked for a tool this agent does not have: tell it, so
            // it can correct itself.
            None => Err(ToolError::InvalidArgs {
                tool: call.name.clone(),
                message: format!("this agent has no tool named {:?}", call.name),
            }),
            Some(tool) => {
                match tokio::time::timeout(remaining, tool.call(&ctx, &call.args)).await {
                    Ok(r) => r,
                    Err(_) => {
                        let error = RunError::new(
                            ErrorCode::Timeout,
                            format!("run exceeded its timeout of {}", agent.config.timeout),
                        );
                        step.status = StepStatus::Failed;
                        step.duration_ms = t0.elapsed().as_millis() as u64;
                        step.error = Some(error.clone());
                        let write = StepWrite {
                            step,
                            usage: Usage::default(),
                            cost_usd: 0.0,
                        };
                        return self
                            .finish(lease, Some(write), Outcome::Failed { error })
                            .await;
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
                };
                let write = StepWrite {
                    step,
                    usage: Usage::default(),
                    cost_usd: 0.0,
                };
                let paused = self
                    .inner
                    .store
                    .pause_run(lease, &write, &pause)
                    .await
                    .map_err(|e| self.store_failure(lease, e))?;
                self.emit(&paused, RunEventKind::StepCompleted { step: write.step });
                self.emit(
                    &paused,
                    RunEventKind::Finished {
                        run: paused.clone(),
                    },
                );
                *run = paused;
                return Ok(());
            }
            Err(ToolError::InvalidArgs { message, .. }) => serde_json::json!({ "error": message }),
            Err(e @ ToolError::Failed { .. }) => {
                let error = RunError::new(ErrorCode::ToolError, e.to_string());
                step.status = StepStatus::Failed;
                step.error = Some(error.clone());
                let write = StepWrite {
                    step,
                    usage: Usage::default(),
                    cost_usd: 0.0,
                };
                return self
                    .finish(lease, Some(write), Outcome::Failed { error })
                    .await;
            }
        };
        step.output = output.clone();
        self.append(
            lease,
            run,
            StepWrite {
                step,
                usage: Usage::default(),
                cost_usd: 0.0,
            },
        )
        .await?;
        st.pending.pop_front();
        st.next_index += 1;
        st.messages
            .push(Message::tool_result(call.id, value_as_text(&output)));
        Ok(())
    }

    async fn append(&self, lease: &Lease, run: &mut Run, write: StepWrite) -> Result<(), Stop> {
        self.inner
            .store
            .append_step(lease, &write, self.inner.settings.lease)
            .await
            .map_err(|e| self.store_failure(lease, e))?;
        run.steps = write.step.index + 1;
        self.emit(run, RunEventKind::StepCompleted { step: write.step });
        Ok(())
    }

    async fn finish(
        &self,
        lease: &Lease,
        last: Option<StepWrite>,
        outcome: Outcome,
    ) -> Result<(), Stop> {
        let run = self
            .inner
            .store
            .finish_run(lease, last.as_ref(), &outcome)
            .await
            .map_err(|e| self.store_failure(lease, e))?;
        if let Some(w) = last {
            self.emit(&run, RunEventKind::StepCompleted { step: w.step });
        }
        match &outcome {
            Outcome::Succeeded { .. } => tracing::info!(steps = run.steps, "run succeeded"),
            Outcome::Failed { error } => {
                tracing::info!(code = %error.code, "run failed: {}", error.message)
            }
        }
        self.emit(&run, RunEventKind::Finished { run: run.clone() });
        Ok(())
    }

    /// A store error mid-run: the lease is left to expire so the run is
    /// retried (by this or another process) from its journal.
    fn store_failure(&self, lease: &Lease, e: StoreError) -> Stop {
        match e {
            StoreError::LeaseLost { .. } => Stop::LeaseLost,
            other => {
                tracing::error!(run_id = %lease.run_id, error = %other, "store write failed; the run will be retried when its lease expires");
                Stop::LeaseLost
            }
        }
    }
}

/// Calls the agent's providers in order until one answers; returns the name
/// of the provider that produced the result (or the last error).
async fn call_chain(
    agent: &Agent,
    req: &CompletionRequest,
) -> (String, Result<Completion, ProviderError>) {
    let mut last = None;
    for p in &agent.providers {
        match p.complete(req).await {
            Ok(c) => return (p.name().to_string(), Ok(c)),
            Err(e) => {
                tracing::warn!(provider = p.name(), error = %e, "provider failed; trying the next in the chain");
                last = Some((p.name().to_string(), Err(e)));
            }
        }
    }
    last.unwrap_or_else(|| {
        (
            String::new(),
            Err(ProviderError::BadRequest {
                provider: String::new(),
                message: "agent has no providers".into(),
            }),
        )
    })
}
