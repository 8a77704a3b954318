//! The run's decisions, tested on the pure state: `rebuild` from a journal
//! written by hand, then `next` at a chosen clock. No store, no provider;
//! the one tool called (`ask_human`) only returns a value.

use super::*;
use crate::steps::{Happened, tool};
use agentd_config::Config;
use agentd_core::{ConversationId, PrincipalId, RunId, RunStatus, TenantId};
use agentd_llm::BreakerRegistry;
use agentd_tools::{ToolContext, ToolOutput};
use serde_json::json;

/// An agent with a 10 s timeout, 6 steps and a $0.50 budget; `extra` is
/// prepended (tool settings, policies).
fn config(extra: &str) -> Config {
    let toml = format!(
        r#"{extra}
[providers.m]
kind = "mock"
script = [{{ reply = "done" }}]

[[agents]]
name = "a"
providers = ["m"]
tools = ["echo", "ask_human"]
timeout = "10s"
max_steps = 6
budget_usd = 0.5
"#
    );
    Config::from_toml_str(&toml).expect("test config")
}

/// The agent and the process-wide rules of `config`.
struct Fixture {
    agent: Agent,
    registry: Registry,
    policies: Policies,
}

impl Fixture {
    async fn new(extra: &str) -> Self {
        let config = config(extra);
        let registry = Registry::from_config(&config).await.expect("registry");
        let policies = Policies::from_config(&config.policies).expect("policies");
        let breakers = BreakerRegistry::new();
        let agent =
            Agent::build(0, &config.agents[0], &config, &registry, &breakers).expect("agent");
        Self {
            agent,
            registry,
            policies,
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            policies: &self.policies,
            registry: &self.registry,
        }
    }

    fn next(&self, st: &RunState, now: i64) -> Next {
        st.next(&self.agent, self.rules(), now)
    }
}

/// When the run's first step started.
const T0: i64 = 1_000_000;

fn run() -> Run {
    Run {
        id: RunId::new(),
        agent: "a".into(),
        tenant: TenantId::parse("t").expect("tenant"),
        principal: PrincipalId::parse("p").expect("principal"),
        conversation_id: None,
        status: RunStatus::Running,
        input: json!("hello"),
        output: None,
        output_json: None,
        error: None,
        pause: None,
        steps: 0,
        attempt: 1,
        usage: Usage::default(),
        cost_usd: 0.0,
        metadata: None,
        created_at: T0,
        updated_at: T0,
        agent_version: None,
        forked_from: None,
    }
}

fn journal(steps: Vec<Step>) -> Journal {
    Journal {
        run: run(),
        steps,
        history: Vec::new(),
        roles: vec!["user".into()],
        origin: Default::default(),
    }
}

fn call(id: &str, name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        args,
    }
}

/// A journaled model step at `index` that calls `calls` (none: a reply).
fn model_step(index: u32, calls: Vec<ToolCall>) -> Step {
    let message = Message {
        role: Role::Assistant,
        content: if calls.is_empty() {
            "done".into()
        } else {
            String::new()
        },
        tool_calls: calls,
        tool_call_id: None,
    };
    let mut step = new_step(index, StepKind::Llm, "m", 1, T0 + index as i64);
    step.output = serde_json::to_value(message).expect("message");
    step
}

/// A journaled answer of call `id` by a human, after `waited_ms`.
fn human_step(index: u32, id: &str, answer: serde_json::Value, waited_ms: u64) -> Step {
    let mut step = new_step(index, StepKind::Human, "ask_human", 1, T0 + index as i64);
    step.call_id = Some(id.into());
    step.output = answer;
    step.duration_ms = waited_ms;
    step
}

fn failure(next: Next) -> RunError {
    match next {
        Next::Finish(Outcome::Failed { error }) => error,
        _ => panic!("expected the run to fail"),
    }
}

#[tokio::test]
async fn a_fresh_run_calls_the_model_with_the_whole_timeout_left() {
    let f = Fixture::new("").await;
    let st = rebuild(journal(Vec::new()), T0, None).expect("rebuild");
    assert_eq!(st.messages.len(), 1);
    match f.next(&st, T0) {
        Next::CallModel { remaining } => assert_eq!(remaining, Duration::from_secs(10)),
        _ => panic!("expected a model call"),
    }
}

#[tokio::test]
async fn the_run_times_out_once_its_timeout_is_spent() {
    let f = Fixture::new("").await;
    let st = rebuild(journal(Vec::new()), T0, None).expect("rebuild");
    assert!(matches!(f.next(&st, T0 + 9_999), Next::CallModel { .. }));
    let error = failure(f.next(&st, T0 + 10_000));
    assert_eq!(error.code, ErrorCode::Timeout);
}

#[tokio::test]
async fn time_waiting_for_a_human_does_not_count_towards_the_timeout() {
    let f = Fixture::new("").await;
    let ask = call("c1", "ask_human", json!({"question": "ok?"}));
    let steps = vec![
        model_step(0, vec![ask]),
        human_step(1, "c1", json!("yes"), 60_000),
    ];
    let st = rebuild(journal(steps), T0, None).expect("rebuild");
    assert!(matches!(f.next(&st, T0 + 65_000), Next::CallModel { .. }));
    assert_eq!(failure(f.next(&st, T0 + 70_000)).code, ErrorCode::Timeout);
}

#[tokio::test]
async fn the_run_fails_at_max_steps() {
    let f = Fixture::new("").await;
    let mut steps = Vec::new();
    for i in 0..3 {
        let id = format!("c{i}");
        steps.push(model_step(
            2 * i,
            vec![call(&id, "echo", json!({"text": "x"}))],
        ));
        let mut answer = new_step(2 * i + 1, StepKind::Tool, "echo", 1, T0);
        answer.call_id = Some(id);
        steps.push(answer);
    }
    let st = rebuild(journal(steps), T0, None).expect("rebuild");
    assert_eq!(st.next_index, 6);
    let error = failure(f.next(&st, T0 + 1));
    assert_eq!(error.code, ErrorCode::MaxStepsExceeded);
}

#[tokio::test]
async fn the_run_fails_once_it_spent_the_agents_budget() {
    let f = Fixture::new("").await;
    let mut st = rebuild(journal(Vec::new()), T0, None).expect("rebuild");
    st.run.cost_usd = 0.49;
    assert!(matches!(f.next(&st, T0), Next::CallModel { .. }));
    st.run.cost_usd = 0.5;
    assert_eq!(failure(f.next(&st, T0)).code, ErrorCode::BudgetExceeded);
}

#[tokio::test]
async fn a_pending_tool_call_runs_under_its_registry_name() {
    let f = Fixture::new("").await;
    let echo = call("c1", "echo", json!({"text": "hi"}));
    let st = rebuild(journal(vec![model_step(0, vec![echo])]), T0, None).expect("rebuild");
    // The run's budget only guards model calls: a pending call still runs.
    match f.next(&st, T0 + 1) {
        Next::CallTool(plan) => {
            assert_eq!(plan.call.id, "c1");
            assert_eq!(plan.name, "echo");
            assert!(plan.tool.is_some_and(|t| !t.journal_only()));
            assert_eq!(plan.remaining, Duration::from_millis(9_999));
        }
        _ => panic!("expected a tool call"),
    }
}

#[tokio::test]
async fn a_call_the_policy_denies_is_refused() {
    let f = Fixture::new("[[policies]]\nrole = \"user\"\nallow = [\"ask_human\"]\n").await;
    let echo = call("c1", "echo", json!({"text": "hi"}));
    let st = rebuild(journal(vec![model_step(0, vec![echo])]), T0, None).expect("rebuild");
    match f.next(&st, T0 + 1) {
        Next::Refuse(r) => assert_eq!((r.call.id.as_str(), r.name.as_str()), ("c1", "echo")),
        _ => panic!("expected a refusal"),
    }
}

#[tokio::test]
async fn a_tool_that_needs_an_approval_pauses_until_approved() {
    let f = Fixture::new("[tools.echo]\napproval = true\n").await;
    let echo = call("c1", "echo", json!({"text": "hi"}));
    let st = rebuild(journal(vec![model_step(0, vec![echo.clone()])]), T0, None).expect("rebuild");
    match f.next(&st, T0 + 1) {
        Next::Pause(a) => assert_eq!((a.call.id.as_str(), a.name.as_str()), ("c1", "echo")),
        _ => panic!("expected an approval pause"),
    }
    // Once approved, the same call runs without asking again.
    let mut decision = human_step(1, "c1", json!({"approve": true}), 5);
    decision.input = json!({"approval": {"tool": "echo", "args": echo.args}});
    let steps = vec![model_step(0, vec![echo]), decision];
    let st = rebuild(journal(steps), T0, None).expect("rebuild");
    assert!(matches!(f.next(&st, T0 + 1), Next::CallTool(_)));
}

#[tokio::test]
async fn ask_human_pauses_the_run_on_a_waiting_step() {
    let f = Fixture::new("").await;
    let ask = call("c1", "ask_human", json!({"question": "ok?"}));
    let mut st = rebuild(journal(vec![model_step(0, vec![ask])]), T0, None).expect("rebuild");
    let Next::CallTool(plan) = f.next(&st, T0 + 1) else {
        panic!("expected the ask_human call");
    };
    let ask_human = plan.tool.expect("ask_human is available");
    // Journal-only: the model step before it is committed with the pause.
    assert!(ask_human.journal_only());
    let ctx = ToolContext {
        tenant: st.run.tenant.clone(),
        run_id: st.run.id,
        step_index: 1,
    };
    let outcome = ask_human.call(&ctx, &plan.call.args).await;
    assert!(matches!(outcome, Ok(ToolOutput::Pause { .. })));
    let step = new_step(1, StepKind::Tool, &plan.name, 1, T0 + 1);
    match tool::settle(&mut st, step, outcome, 0.0) {
        Happened::Paused { step, pause } => {
            assert_eq!(step.kind, StepKind::Human);
            assert_eq!(step.status, StepStatus::Waiting);
            assert_eq!((pause.question.as_str(), pause.step), ("ok?", 1));
        }
        _ => panic!("expected a pause"),
    }
    assert_eq!(st.next_index, 1, "a pause records nothing in the state");
}

#[tokio::test]
async fn a_final_reply_finishes_the_run_even_at_its_deadline() {
    let f = Fixture::new("").await;
    let mut st = rebuild(journal(Vec::new()), T0, None).expect("rebuild");
    st.run.conversation_id = Some(ConversationId::parse("c").expect("conversation"));
    let reply = Message::text(Role::Assistant, "the answer");
    let step = new_step(0, StepKind::Llm, "m", 1, T0);
    st.record_reply(reply, write(step));
    match f.next(&st, T0 + 10_000) {
        Next::Finish(Outcome::Succeeded {
            output, messages, ..
        }) => {
            assert_eq!(output, json!("the answer"));
            // The conversation keeps this run's input and reply.
            assert_eq!(messages.len(), 2);
        }
        _ => panic!("expected success"),
    }
}

#[tokio::test]
async fn resuming_after_an_answered_human_step_calls_the_model_with_the_answer() {
    let f = Fixture::new("").await;
    let ask = call("c1", "ask_human", json!({"question": "ok?"}));
    let steps = vec![
        model_step(0, vec![ask]),
        human_step(1, "c1", json!("yes"), 1_000),
    ];
    let st = rebuild(journal(steps), T0, None).expect("rebuild");
    assert!(st.pending.is_empty());
    assert_eq!(st.next_index, 2);
    let last = st.messages.last().expect("the answer");
    assert_eq!(
        (last.tool_call_id.as_deref(), last.content.as_str()),
        (Some("c1"), "yes")
    );
    assert!(matches!(f.next(&st, T0 + 2), Next::CallModel { .. }));
}

#[tokio::test]
async fn a_journal_still_waiting_for_a_human_is_inconsistent() {
    let mut waiting = human_step(1, "c1", json!(null), 0);
    waiting.status = StepStatus::Waiting;
    let ask = call("c1", "ask_human", json!({"question": "ok?"}));
    let Err(error) = rebuild(journal(vec![model_step(0, vec![ask]), waiting]), T0, None) else {
        panic!("expected an inconsistent journal");
    };
    assert_eq!(error.code, ErrorCode::Internal);
}

#[tokio::test]
async fn seeded_context_goes_after_memory_and_before_the_input_on_every_rebuild() {
    let mut j = journal(vec![model_step(0, vec![])]);
    j.history = vec![Message::text(Role::User, "remembered")];
    j.run.metadata = Some(json!({
        CONTEXT_KEY: {"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "assistant", "content": "hi"},
        ]}
    }));
    let st = rebuild(j, T0, None).expect("rebuild");
    let texts: Vec<(Role, &str)> = st
        .messages
        .iter()
        .take(4)
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (Role::User, "remembered"),
            (Role::System, "be brief"),
            (Role::Assistant, "hi"),
            (Role::User, "hello"),
        ]
    );
    // What the run adds to its conversation starts at its input, so the
    // seed is not copied into the conversation's memory.
    assert_eq!(st.run_start, 3);
}

#[test]
fn a_seed_that_is_not_a_list_of_messages_is_refused_naming_the_field() {
    assert_eq!(seeded_context(None), Ok(Vec::new()));
    assert_eq!(seeded_context(Some(&json!({"other": 1}))), Ok(Vec::new()));
    let Err(err) = seeded_context(Some(&json!({CONTEXT_KEY: {"messages": "hi"}}))) else {
        panic!("a string was taken for messages");
    };
    assert!(err.contains("metadata.openai.messages"), "{err}");
}
