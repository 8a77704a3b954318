//! Limits that halt a run (`max_steps`) or refuse one
//! (`rate_limit.max_concurrent_runs_per_tenant`).

use crate::helpers::{events, indexes, kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind, StepStatus};
use agentd_engine::EngineError;
use agentd_store::StoreError;

#[tokio::test]
async fn a_run_that_never_replies_fails_at_max_steps() -> anyhow::Result<()> {
    // Arrange: a model that calls echo forever
    let t = spawn_engine(
        r#"
[providers.loop]
kind = "mock"
script = [{ tool = "echo", args = { text = "x" } }]

[[agents]]
name = "looper"
providers = ["loop"]
tools = ["echo"]
max_steps = 4
"#,
    )
    .await?;
    let run = t.submit("looper", "go").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.clone().expect("a failed run has an error");
    assert_eq!(error.code, ErrorCode::MaxStepsExceeded);
    assert!(error.message.contains("max_steps"), "{}", error.message);
    assert_eq!(run.output, None);
    assert_eq!(run.steps, 4);
    let steps = t.steps(run.id).await?;
    assert_eq!(indexes(&steps), [0, 1, 2, 3]);
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm, StepKind::Tool]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    assert_eq!(
        events(&t.audit(run.id).await?),
        ["created", "claimed", "failed"]
    );
    Ok(())
}

#[tokio::test]
async fn submit_refuses_a_run_beyond_the_tenants_active_cap() -> anyhow::Result<()> {
    // Arrange: no workers, so submitted runs stay queued.
    let t = spawn_engine(
        r#"
[rate_limit]
max_concurrent_runs_per_tenant = 2

[providers.mock]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "a"
providers = ["mock"]
"#,
    )
    .await?;
    let first = t.submit("a", "1").await?;
    t.submit("a", "2").await?;

    // Act
    let third = t.submit("a", "3").await;
    let other = agentd_test_support::identity("t2")?;
    let elsewhere = t.submit_as(&other, "a", "x", None).await;
    // A finished run frees its slot.
    let done = t.drive(first.id).await?;
    let after = t.submit("a", "4").await;

    // Assert
    let err = third.expect_err("the third active run is refused");
    assert!(
        matches!(
            err.downcast_ref::<EngineError>(),
            Some(EngineError::Store(StoreError::TooManyActiveRuns {
                limit: 2
            }))
        ),
        "{err:?}"
    );
    assert_eq!(elsewhere?.status, RunStatus::Queued);
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(after?.status, RunStatus::Queued);
    Ok(())
}
