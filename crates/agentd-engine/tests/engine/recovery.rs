//! Durability: a run interrupted by a dying or stopping process continues in
//! a new process from its journal, without repeating journaled steps.

use crate::helpers::{
    W1_SCRIPT, build_engine, events, indexes, kinds, spawn_engine, start_workers, step_usage,
};
use agentd_core::{RunStatus, StepKind, StepStatus};
use agentd_store::ClaimRequest;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One node, a lease long enough that only `recover()` can free it in time.
fn config(script: &str) -> String {
    format!(
        r#"
[queue]
workers = 1
lease = "30s"
poll_interval = "20ms"
node_id = "node-a"

[providers.slow]
kind = "mock"
latency_ms = 200
script = {script}

[[agents]]
name = "w1"
providers = ["slow"]
tools = ["echo"]
"#
    )
}

#[tokio::test]
async fn a_run_whose_process_died_continues_from_its_journal_after_recover() -> anyhow::Result<()> {
    // Arrange: a process executes the run and dies after its first step
    let toml = config(W1_SCRIPT);
    let t = spawn_engine(&toml).await?;
    let run = t.submit("w1", "hello").await?;
    let (engine, tenant, id) = (t.engine.clone(), t.who.tenant.clone(), run.id);
    let process = tokio::spawn(async move {
        let shutdown = CancellationToken::new();
        engine.drive(&tenant, id, &shutdown).await
    });
    t.wait_for_steps(run.id, 1).await?;
    process.abort();
    let died = process.await;
    assert!(
        died.as_ref().is_err_and(|e| e.is_cancelled()),
        "the run finished before the crash: {died:?}"
    );
    // Let a write already handed to SQLite land before reading the journal.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = t.steps(run.id).await?;
    let stuck = t.run(run.id).await?;
    assert_eq!(stuck.status, RunStatus::Running);
    assert!(
        t.store
            .claim_next(&ClaimRequest::new("probe", Duration::from_secs(1)))
            .await?
            .is_none(),
        "the dead process's lease must still hold the run"
    );

    // Act: a new process of the same node starts
    let restarted = build_engine(&toml, t.store.clone()).await?;
    let released = restarted.recover().await?;
    let workers = start_workers(&restarted);
    let done = t.settle(run.id).await?;
    workers.stop().await?;

    // Assert
    assert_eq!(released, 1);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.output, Some(json!("done: hello")));
    assert_eq!(done.steps, 3);
    assert_eq!(done.attempt, 2);
    let steps = t.steps(run.id).await?;
    assert_eq!(indexes(&steps), [0, 1, 2]);
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    // Journaled steps were not executed again.
    assert_eq!(steps[..before.len()], before[..]);
    assert_eq!(steps[0].attempt, 1);
    assert_eq!(steps[2].attempt, 2);
    // Nothing was billed twice.
    assert_eq!(step_usage(&steps), done.usage);
    let audit = t.audit(run.id).await?;
    let names = events(&audit);
    assert_eq!(names.first(), Some(&"created"));
    assert_eq!(names.last(), Some(&"succeeded"));
    Ok(())
}

#[tokio::test]
async fn a_run_stopped_by_shutdown_goes_back_to_the_queue_and_continues_elsewhere()
-> anyhow::Result<()> {
    // Arrange: four model calls of 200 ms each
    let toml = config(
        r#"[
  { tool = "echo", args = { text = "{{input}}-1" } },
  { tool = "echo", args = { text = "{{input}}-2" } },
  { tool = "echo", args = { text = "{{input}}-3" } },
  { reply = "done: {{tool_result}}" },
]"#,
    );
    let t = spawn_engine(&toml).await?;
    let workers = start_workers(&t.engine);
    let run = t.submit("w1", "hello").await?;
    t.wait_for_steps(run.id, 1).await?;

    // Act 1: graceful shutdown mid-run
    workers.stop().await?;

    // Assert 1: the in-flight step finished and the run was released
    let before = t.steps(run.id).await?;
    let parked = t.run(run.id).await?;
    assert_eq!(parked.status, RunStatus::Queued);
    assert!(!before.is_empty() && before.len() < 7, "{}", before.len());
    assert_eq!(parked.steps as usize, before.len());

    // Act 2: another process (same node) takes over
    let restarted = build_engine(&toml, t.store.clone()).await?;
    let released = restarted.recover().await?;
    let workers = start_workers(&restarted);
    let done = t.settle(run.id).await?;
    workers.stop().await?;

    // Assert 2
    assert_eq!(released, 0, "shutdown already released the run");
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.output, Some(json!("done: hello-3")));
    let steps = t.steps(run.id).await?;
    assert_eq!(indexes(&steps), (0..7).collect::<Vec<u32>>());
    assert_eq!(steps[..before.len()], before[..]);
    let llm_calls = steps.iter().filter(|s| s.kind == StepKind::Llm).count();
    assert_eq!(llm_calls, 4);
    assert_eq!(step_usage(&steps), done.usage);
    Ok(())
}
