//! Cancelling a run while a worker executes it.

use crate::helpers::{SETTLE, W1_SCRIPT, events, spawn_engine, start_workers};
use agentd_core::{ErrorCode, RunStatus};
use agentd_store::Transition;
use std::time::Duration;

#[tokio::test]
async fn cancel_stops_a_running_run_and_the_worker_does_not_overwrite_it() -> anyhow::Result<()> {
    // Arrange: one worker executing a slow run
    let t = spawn_engine(&format!(
        r#"
[queue]
workers = 1
poll_interval = "20ms"

[providers.slow]
kind = "mock"
latency_ms = 300
script = {W1_SCRIPT}

[[agents]]
name = "w1"
providers = ["slow"]
tools = ["echo"]
"#
    ))
    .await?;
    let workers = start_workers(&t.engine);
    let run = t.submit("w1", "hello").await?;
    let deadline = tokio::time::Instant::now() + SETTLE;
    while t.run(run.id).await?.status != RunStatus::Running {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Act
    let cancelled = t.engine.cancel(&t.who, run.id).await?;

    // Assert: cancelled at once
    let Transition::Done(cancelled, _) = cancelled else {
        panic!("cancel of a running run: {cancelled:?}");
    };
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(
        cancelled.error.as_ref().map(|e| e.code),
        Some(ErrorCode::Cancelled)
    );

    // Assert: the worker's in-flight model call ends and changes nothing
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = t.run(run.id).await?;
    assert_eq!(later.status, RunStatus::Cancelled);
    assert_eq!(later.output, None);
    assert_eq!(
        later.error.as_ref().map(|e| e.code),
        Some(ErrorCode::Cancelled)
    );
    assert!(t.steps(run.id).await?.len() <= 1);
    let audit = t.audit(run.id).await?;
    assert_eq!(events(&audit).last(), Some(&"cancelled"));
    assert!(!events(&audit).contains(&"succeeded"));

    // Assert: the only worker is free again, and a second cancel conflicts
    let next = t.submit("w1", "again").await?;
    let next = t.settle(next.id).await?;
    assert_eq!(next.status, RunStatus::Succeeded);
    let again = t.engine.cancel(&t.who, run.id).await?;
    assert!(
        matches!(again, Transition::Conflict(RunStatus::Cancelled)),
        "{again:?}"
    );
    workers.stop().await?;
    Ok(())
}
