//! A run as a pure state machine. [`rebuild`] turns a journal into a
//! [`RunState`]; [`RunState::next`] says what the run does next (call the
//! model, call a tool, pause, finish) from the state, the agent and the
//! clock; the step modules (`crate::steps`) do it and record the result
//! here. Nothing in this module touches the store, a provider or a tool.

use crate::Agent;
use agentd_core::{
    ErrorCode, Message, Role, Run, RunError, Step, StepKind, StepStatus, ToolCall, Usage,
    value_as_text,
};
use agentd_llm::Messages;
use agentd_store::{Journal, Outcome, StepWrite};
use agentd_tools::{ApprovalDecision, Policies, PolicyDecision, Registry, Tool};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The state rebuilt from a journal and advanced by each step.
pub(crate) struct RunState {
    pub(crate) run: Run,
    /// The conversation the model sees: shared with the request of a model
    /// call in flight, never copied for it.
    pub(crate) messages: Messages,
    /// Index in `messages` of this run's user message: what the run adds to
    /// its conversation starts here.
    pub(crate) run_start: usize,
    /// Tool calls of the last model step still without a journaled result.
    pub(crate) pending: VecDeque<ToolCall>,
    /// Pending calls a human approved: they run without asking again.
    pub(crate) approved: HashSet<String>,
    /// Roles of the run's creator, for tool policies.
    pub(crate) roles: Vec<String>,
    /// Steps done but not yet committed; committed before the next step
    /// starts, or together with the pause or the end of the run.
    pub(crate) unflushed: Vec<StepWrite>,
    pub(crate) next_index: u32,
    /// When the run's first step started: the run timeout counts from here,
    /// less the time spent waiting for humans.
    pub(crate) started_at: i64,
    /// Milliseconds the run sat paused for answers: not execution time.
    pub(crate) waited_ms: i64,
    /// The agent's guardrails: its output contract checks each final
    /// answer, live and on replay alike; its PII guard restores values.
    pub(crate) guards: Option<Arc<crate::guard::Guards>>,
    /// The run's PII placeholders and their values (loaded from the store
    /// when the journal is redacted, else filled as values are met).
    pub(crate) vault: agentd_guard::pii::Vault,
    /// The first messages as the model was sent them, PII redacted: each
    /// model call redacts only the messages added since (the vault gives a
    /// value the same placeholder every time).
    pub(crate) redacted: Messages,
    /// What the run had spent when its period budgets' alerts were last
    /// checked: a model call checks again only after it spent more.
    pub(crate) periods_checked_at: f64,
    /// Answers that failed the contract so far (each got a repair request).
    pub(crate) invalid_answers: u32,
    /// The last answer, parsed and valid; or why the last one is not.
    pub(crate) answer: Option<Result<serde_json::Value, Vec<String>>>,
}

/// What the run does next.
pub(crate) enum Next {
    /// Call the model; `remaining` is what the run's timeout leaves.
    CallModel { remaining: Duration },
    /// Run the first pending tool call.
    CallTool(ToolStep),
    /// Answer the first pending tool call with a refusal: policy denies it.
    Refuse(Refusal),
    /// Wait for a human to approve the first pending tool call.
    Pause(Approval),
    /// End the run (committing the steps not yet committed).
    Finish(Outcome),
}

/// A tool call to make.
pub(crate) struct ToolStep {
    pub(crate) call: ToolCall,
    /// The registry's name of the tool (journal and policies use it, not
    /// the provider-safe spelling the model saw).
    pub(crate) name: String,
    /// `None` when the agent has no such tool available now: the tool set
    /// answers the call with the reason.
    pub(crate) tool: Option<Arc<dyn Tool>>,
    pub(crate) remaining: Duration,
}

/// A tool call the caller's roles may not make.
pub(crate) struct Refusal {
    pub(crate) call: ToolCall,
    pub(crate) name: String,
    pub(crate) reason: String,
}

/// A tool call that waits for a human's approval.
pub(crate) struct Approval {
    pub(crate) call: ToolCall,
    pub(crate) name: String,
}

/// Process-wide rules a tool call is checked against, besides the agent's
/// own tool set.
#[derive(Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// Which roles may call which tools (`[[policies]]`).
    pub(crate) policies: &'a Policies,
    /// Which tools need an approval first (`approval = true`).
    pub(crate) registry: &'a Registry,
}

fn corrupt(run: &Run, what: impl Into<String>) -> RunError {
    RunError::new(
        ErrorCode::Internal,
        format!("journal of run {} is inconsistent: {}", run.id, what.into()),
    )
}

/// The failure of a run past its timeout.
pub(crate) fn timeout_error(agent: &Agent) -> RunError {
    RunError::new(
        ErrorCode::Timeout,
        format!("run exceeded its timeout of {}", agent.config.timeout),
    )
}

/// A completed step record with no result yet.
pub(crate) fn new_step(index: u32, kind: StepKind, name: &str, attempt: u32, at: i64) -> Step {
    Step {
        index,
        kind,
        name: name.to_string(),
        call_id: None,
        status: StepStatus::Completed,
        attempt,
        started_at: at,
        duration_ms: 0,
        input: serde_json::Value::Null,
        output: serde_json::Value::Null,
        error: None,
        usage: None,
    }
}

/// A step to journal that cost nothing.
pub(crate) fn write(step: Step) -> StepWrite {
    StepWrite {
        step,
        usage: Usage::default(),
        cost_usd: 0.0,
    }
}

/// Rebuilds a run's state from its journal: the conversation, the tool
/// calls still pending and the approvals given. `now` starts the run's
/// clock if it has no step yet. An inconsistent journal is an error.
pub(crate) fn rebuild(
    journal: Journal,
    now: i64,
    guards: Option<Arc<crate::guard::Guards>>,
) -> Result<RunState, RunError> {
    let Journal {
        run,
        steps,
        history,
        roles,
        origin: _,
    } = journal;
    let mut messages = history;
    let context = seeded_context(run.metadata.as_ref())
        .map_err(|e| RunError::new(ErrorCode::BadRequest, format!("run {}: {e}", run.id)))?;
    messages.extend(context);
    let run_start = messages.len();
    messages.push(Message::text(Role::User, value_as_text(&run.input)));
    let mut st = RunState {
        messages: messages.into(),
        run_start,
        pending: VecDeque::new(),
        approved: HashSet::new(),
        roles,
        unflushed: Vec::new(),
        next_index: steps.len() as u32,
        started_at: steps.first().map_or(now, |s| s.started_at),
        waited_ms: steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .map(|s| s.duration_ms as i64)
            .sum(),
        run,
        guards,
        vault: agentd_guard::pii::Vault::default(),
        redacted: Messages::default(),
        periods_checked_at: 0.0,
        invalid_answers: 0,
        answer: None,
    };
    for step in &steps {
        st.replay(step)?;
    }
    Ok(st)
}

/// The run's metadata key whose `messages` seed the model's context before
/// the run's input (after any conversation memory). Set by the
/// OpenAI-compatible API from the earlier messages of a chat completion
/// request; being stored with the run, every attempt in any process, a
/// retry or a resume, rebuilds the same context.
pub const CONTEXT_KEY: &str = "openai";

/// The messages `metadata.openai.messages` seeds a run with (none when
/// absent); a value that is not a list of messages is an error naming the
/// field. Checked when a run is submitted, so a stored run's is valid.
pub(crate) fn seeded_context(metadata: Option<&serde_json::Value>) -> Result<Vec<Message>, String> {
    let Some(seed) = metadata
        .and_then(|m| m.get(CONTEXT_KEY))
        .and_then(|o| o.get("messages"))
    else {
        return Ok(Vec::new());
    };
    serde_json::from_value(seed.clone()).map_err(|e| {
        format!(
            "metadata.{CONTEXT_KEY}.messages must be a list of {{\"role\", \"content\"}} \
             messages: {e}"
        )
    })
}

impl RunState {
    /// Applies one journaled step to the rebuilt state.
    fn replay(&mut self, step: &Step) -> Result<(), RunError> {
        match step.kind {
            StepKind::Llm => {
                let m: Message = serde_json::from_value(step.output.clone())
                    .map_err(|e| corrupt(&self.run, format!("step {}: {e}", step.index)))?;
                self.apply_reply(m);
                Ok(())
            }
            StepKind::Tool | StepKind::Human => self.replay_answer(step),
        }
    }

    /// Applies a journaled tool result, human answer or approval decision.
    fn replay_answer(&mut self, step: &Step) -> Result<(), RunError> {
        if step.status == StepStatus::Waiting {
            let what = format!("step {} still waits for a human", step.index);
            return Err(corrupt(&self.run, what));
        }
        // The journal names the call each result belongs to (record v2; v1
        // records get it by migration): check it is the one next in line
        // rather than trust the order.
        if let (Some(id), Some(call)) = (&step.call_id, self.pending.front())
            && *id != call.id
        {
            let what = format!(
                "step {} answers tool call {id:?}, but {:?} is next",
                step.index, call.id
            );
            return Err(corrupt(&self.run, what));
        }
        if step.input.get("approval").is_some() {
            return self.replay_approval(step);
        }
        if self.pending.is_empty() {
            let what = format!("step {} answers no tool call", step.index);
            return Err(corrupt(&self.run, what));
        }
        self.apply_tool_result(&step.output);
        Ok(())
    }

    /// An approval decision: the call runs next, or the model hears the
    /// refusal.
    fn replay_approval(&mut self, step: &Step) -> Result<(), RunError> {
        let Some(call) = self.pending.front() else {
            let what = format!("step {} approves no tool call", step.index);
            return Err(corrupt(&self.run, what));
        };
        match ApprovalDecision::from_answer(&step.output) {
            Ok(ApprovalDecision::Approved) => {
                self.approved.insert(call.id.clone());
            }
            Ok(rejected) => {
                let result = rejected.rejection_result().unwrap_or_default();
                self.apply_tool_result(&result);
            }
            Err(e) => return Err(corrupt(&self.run, format!("step {}: {e}", step.index))),
        }
        Ok(())
    }

    /// What the run does next at time `now` (milliseconds since the epoch).
    /// The order matters: a final reply ends the run even at its deadline;
    /// then the timeout, the step limit, pending tool calls, and the run's
    /// budget before another model call.
    pub(crate) fn next(&self, agent: &Agent, rules: Rules<'_>, now: i64) -> Next {
        if self.replied() {
            return Next::Finish(self.success());
        }
        let Some(remaining) = self.remaining(agent, now) else {
            let error = timeout_error(agent);
            return Next::Finish(Outcome::Failed { error });
        };
        if self.next_index >= agent.config.max_steps {
            let error = RunError::new(
                ErrorCode::MaxStepsExceeded,
                format!("run reached max_steps = {}", agent.config.max_steps),
            );
            return Next::Finish(Outcome::Failed { error });
        }
        if let Some(call) = self.pending.front() {
            return self.next_tool(call, agent, rules, remaining);
        }
        if let Some(budget) = agent.config.budget_usd
            && self.run.cost_usd >= budget
        {
            let error = RunError::new(
                ErrorCode::BudgetExceeded,
                format!(
                    "run spent ${:.6} of its ${budget} budget",
                    self.run.cost_usd
                ),
            );
            return Next::Finish(Outcome::Failed { error });
        }
        Next::CallModel { remaining }
    }

    /// Time left of the run's timeout; `None` once it is spent. Time paused
    /// for humans does not count.
    fn remaining(&self, agent: &Agent, now: i64) -> Option<Duration> {
        let elapsed = Duration::from_millis((now - self.started_at - self.waited_ms).max(0) as u64);
        agent
            .config
            .timeout
            .get()
            .checked_sub(elapsed)
            .filter(|d| !d.is_zero())
    }

    /// What to do with pending tool call `call`: refuse it (policy), ask
    /// for an approval first, or run it.
    fn next_tool(
        &self,
        call: &ToolCall,
        agent: &Agent,
        rules: Rules<'_>,
        remaining: Duration,
    ) -> Next {
        let tool = agent.tools.get(&call.name);
        let name = tool
            .as_ref()
            .map_or_else(|| call.name.clone(), |t| t.spec().name.clone());
        // The caller's roles decide, failing closed: a denied call gets a
        // "not permitted" result the model sees, and the audit log a record.
        if let PolicyDecision::Deny { reason } = rules.policies.allows(&self.roles, &name) {
            let call = call.clone();
            return Next::Refuse(Refusal { call, name, reason });
        }
        // Invalid arguments are answered by the call itself, unasked.
        if let Some(t) = &tool
            && rules.registry.requires_approval(&name)
            && !self.approved.contains(&call.id)
            && t.validate(&call.args).is_ok()
        {
            let call = call.clone();
            return Next::Pause(Approval { call, name });
        }
        Next::CallTool(ToolStep {
            call: call.clone(),
            name,
            tool,
            remaining,
        })
    }

    /// The run's success: the last reply is its output, and a conversation
    /// keeps what this run added to it (as its memory).
    fn success(&self) -> Outcome {
        let mut output = self
            .messages
            .last()
            .map(|m| serde_json::Value::String(m.content.clone()))
            .unwrap_or_default();
        let mut output_json = None;
        if let Some(contract) = self.guards.as_ref().and_then(|g| g.contract.as_ref()) {
            match &self.answer {
                Some(Ok(json)) => output_json = Some(json.clone()),
                // Repairs spent: the fallback, else the run fails.
                Some(Err(problems)) => match &contract.fallback {
                    Some(fallback) => {
                        output = serde_json::Value::String(fallback.to_string());
                        output_json = Some(fallback.clone());
                    }
                    None => {
                        let error = RunError::new(
                            ErrorCode::OutputInvalid,
                            format!(
                                "the answer does not satisfy output_schema after {} \
                                 repair attempt(s): {}",
                                contract.repairs,
                                problems.join("; ")
                            ),
                        );
                        return Outcome::Failed { error };
                    }
                },
                None => {}
            }
        }
        // The caller gets the real values back; memory keeps placeholders.
        if let Some(pii) = self.guards.as_ref().and_then(|g| g.pii.as_ref())
            && pii.restore
        {
            output = crate::guard::restore(&self.vault, output);
            output_json = output_json.map(|j| crate::guard::restore(&self.vault, j));
        }
        let messages = match self.run.conversation_id {
            Some(_) => self.messages[self.run_start..].to_vec(),
            None => Vec::new(),
        };
        Outcome::Succeeded {
            output,
            output_json,
            messages,
        }
    }

    /// Records a model reply (not yet committed): its tool calls become
    /// pending, or, without any, it is the run's answer.
    pub(crate) fn record_reply(&mut self, message: Message, mut w: StepWrite) {
        self.run.cost_usd += w.cost_usd;
        self.run.usage = self.run.usage + w.usage;
        self.next_index += 1;
        // An answer that fails the output contract is journaled with why.
        if let Some(problems) = self.apply_reply(message) {
            w.step.error = Some(RunError::new(
                ErrorCode::OutputInvalid,
                format!(
                    "the answer does not satisfy output_schema: {}",
                    problems.join("; ")
                ),
            ));
        }
        self.unflushed.push(w);
    }

    /// Records the result of the first pending tool call (not yet
    /// committed): the model reads it next.
    pub(crate) fn record_tool_result(&mut self, step: Step, cost_usd: f64) {
        self.apply_tool_result(&step.output);
        self.run.cost_usd += cost_usd;
        self.unflushed.push(StepWrite {
            step,
            usage: Usage::default(),
            cost_usd,
        });
        self.next_index += 1;
    }

    /// A model reply, live or replayed: its tool calls become pending. A
    /// final answer is checked against the output contract, if any: one
    /// that fails it gets a repair request while repairs remain. Answers
    /// the failure's problems.
    fn apply_reply(&mut self, message: Message) -> Option<Vec<String>> {
        self.pending = message.tool_calls.iter().cloned().collect();
        let final_answer = message.tool_calls.is_empty();
        let checked = match self.guards.as_ref().and_then(|g| g.contract.as_ref()) {
            Some(contract) if final_answer => {
                Some((contract.check(&message.content), contract.repairs))
            }
            _ => None,
        };
        self.messages.push(message);
        let (checked, repairs) = checked?;
        let problems = checked.as_ref().err().cloned();
        if problems.is_some() {
            self.invalid_answers += 1;
            if self.invalid_answers <= repairs {
                let list = problems
                    .iter()
                    .flatten()
                    .map(|p| format!("- {p}"))
                    .collect::<Vec<_>>();
                self.messages.push(Message::text(
                    Role::User,
                    format!(
                        "{}:\n{}\nReply again with only the corrected JSON, and no other text.",
                        agentd_core::REPAIR_REQUEST_PREFIX,
                        list.join("\n")
                    ),
                ));
            }
        }
        self.answer = Some(checked);
        problems
    }

    /// The result of the first pending tool call, live or replayed: the
    /// model reads it next.
    fn apply_tool_result(&mut self, output: &serde_json::Value) {
        if let Some(call) = self.pending.pop_front() {
            self.messages
                .push(Message::tool_result(call.id, value_as_text(output)));
        }
    }

    /// The model's last reply in this run called no tool: it is the run's
    /// answer. Derived, so a replayed journal and a live run agree.
    pub(crate) fn replied(&self) -> bool {
        self.pending.is_empty()
            && self.messages.len() > self.run_start + 1
            && self
                .messages
                .last()
                .is_some_and(|m| m.role == Role::Assistant && m.tool_calls.is_empty())
    }
}

#[cfg(test)]
mod tests;
