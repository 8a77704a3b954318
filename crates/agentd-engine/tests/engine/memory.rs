//! Conversation memory: a run sees its conversation's earlier messages, and
//! runs of one conversation execute one at a time, in creation order.

use crate::helpers::{W1_SCRIPT, spawn_engine, start_workers};
use agentd_core::{ConversationId, Role, RunId, RunStatus};
use agentd_store::ConversationMessage;

fn config(latency_ms: u64, workers: u32) -> String {
    format!(
        r#"
[queue]
workers = {workers}
poll_interval = "20ms"

[providers.m]
kind = "mock"
latency_ms = {latency_ms}
script = {W1_SCRIPT}

[[agents]]
name = "w1"
providers = ["m"]
tools = ["echo"]
"#
    )
}

fn roles(messages: &[ConversationMessage]) -> Vec<Role> {
    messages.iter().map(|m| m.message.role).collect()
}

const ONE_RUN: [Role; 4] = [Role::User, Role::Assistant, Role::Tool, Role::Assistant];

#[tokio::test]
async fn a_second_run_of_a_conversation_sees_the_first_runs_messages() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(&config(0, 1)).await?;
    let conv = ConversationId::parse("c1")?;

    // Act 1
    let first = t.submit_as(&t.who, "w1", "first", Some("c1")).await?;
    let first = t.drive(first.id).await?;

    // Assert 1
    assert_eq!(first.status, RunStatus::Succeeded);
    assert_eq!(first.conversation_id.as_ref(), Some(&conv));
    let after_one = t
        .store
        .list_messages(&t.who.tenant, &conv, None, 100)
        .await?
        .items;
    assert_eq!(roles(&after_one), ONE_RUN);
    assert!(after_one.iter().all(|m| m.run_id == first.id));
    assert_eq!(after_one[0].message.content, "first");
    assert_eq!(after_one[3].message.content, "done: first");

    // Act 2
    let second = t.submit_as(&t.who, "w1", "again", Some("c1")).await?;
    let second = t.drive(second.id).await?;

    // Assert 2: the conversation holds both runs, in order
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.output, Some(serde_json::json!("done: again")));
    let after_two = t
        .store
        .list_messages(&t.who.tenant, &conv, None, 100)
        .await?
        .items;
    assert_eq!(after_two.len(), 8);
    let keys = |ms: &[ConversationMessage]| -> Vec<(u64, RunId)> {
        ms.iter().map(|m| (m.seq, m.run_id)).collect()
    };
    assert_eq!(keys(&after_two[..4]), keys(&after_one));
    assert!(after_two[4..].iter().all(|m| m.run_id == second.id));
    assert_eq!(roles(&after_two[4..]), ONE_RUN);
    assert_eq!(after_two[4].message.content, "again");
    assert!(after_two.windows(2).all(|w| w[0].seq < w[1].seq));

    // Assert 2: the second run's first model call was sent the history. The
    // mock bills characters / 4, so the prompt grew by at least the text of
    // the first run's messages.
    let first_call = |steps: Vec<agentd_core::Step>| steps[0].usage.unwrap_or_default();
    let u1 = first_call(t.steps(first.id).await?);
    let u2 = first_call(t.steps(second.id).await?);
    let history_chars: usize = after_one
        .iter()
        .map(|m| m.message.content.chars().count())
        .sum();
    assert_eq!(u1.input_tokens, ("first".len() / 4) as u64);
    assert!(
        u2.input_tokens >= ((history_chars + "again".len()) / 4) as u64,
        "second run's prompt ({} tokens) lacks the history ({history_chars} chars)",
        u2.input_tokens
    );
    Ok(())
}

#[tokio::test]
async fn runs_of_one_conversation_execute_one_at_a_time_in_creation_order() -> anyhow::Result<()> {
    // Arrange: four workers, a slow model, three runs of one conversation
    let t = spawn_engine(&config(50, 4)).await?;
    let workers = start_workers(&t.engine);
    let mut ids: Vec<RunId> = Vec::new();
    for input in ["one", "two", "three"] {
        ids.push(t.submit_as(&t.who, "w1", input, Some("c2")).await?.id);
    }

    // Act
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(t.settle(*id).await?);
    }
    workers.stop().await?;

    // Assert: all succeeded
    for run in &runs {
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    // Assert: messages are grouped per run, in creation order
    let conv = ConversationId::parse("c2")?;
    let messages = t
        .store
        .list_messages(&t.who.tenant, &conv, None, 100)
        .await?
        .items;
    assert_eq!(messages.len(), 12);
    let run_of: Vec<RunId> = messages.iter().map(|m| m.run_id).collect();
    let expected: Vec<RunId> = ids.iter().flat_map(|id| [*id; 4]).collect();
    assert_eq!(run_of, expected);
    let users: Vec<&str> = messages
        .iter()
        .filter(|m| m.message.role == Role::User)
        .map(|m| m.message.content.as_str())
        .collect();
    assert_eq!(users, ["one", "two", "three"]);

    // Assert: a run started only after the previous one finished
    for pair in runs.windows(2) {
        let next_steps = t.steps(pair[1].id).await?;
        assert!(
            next_steps[0].started_at >= pair[0].updated_at,
            "run {} started at {} before run {} finished at {}",
            pair[1].id,
            next_steps[0].started_at,
            pair[0].id,
            pair[0].updated_at
        );
    }
    Ok(())
}
