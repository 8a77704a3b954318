//! Forking a run from a step: the fork keeps the original's first steps,
//! executes from there to the end, and leaves the original untouched.

use crate::helpers::{W1_SCRIPT, events, identity, indexes, kinds, spawn_engine};
use agentd_core::{ForkOrigin, RunStatus, StepKind};
use agentd_engine::{EngineError, Fork};
use agentd_store::StoreError;
use serde_json::json;

fn config() -> String {
    format!(
        r#"
[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "w1"
providers = ["m"]
tools = ["echo"]
"#
    )
}

fn fork(from_step: u32, input: Option<&str>) -> Fork {
    Fork {
        from_step,
        input: input.map(|i| json!(i)),
        origin: Default::default(),
        agent_version: None,
    }
}

#[tokio::test]
async fn a_fork_replays_the_kept_steps_and_executes_the_rest() -> anyhow::Result<()> {
    // Arrange: a W1 run (model asks echo, echo, model answers) completes.
    let t = spawn_engine(&config()).await?;
    let original = t.submit("w1", "hello").await?;
    let original = t.drive(original.id).await?;
    assert_eq!(original.status, RunStatus::Succeeded);
    let original_steps = t.steps(original.id).await?;

    // Act: fork from step 1 with another input.
    let forked = t
        .engine
        .fork(&t.who, original.id, fork(1, Some("bye")))
        .await?
        .expect("the run exists");
    assert_eq!(forked.status, RunStatus::Queued);
    assert_eq!(
        forked.forked_from,
        Some(ForkOrigin {
            run_id: original.id,
            step: 1
        })
    );
    let forked = t.drive(forked.id).await?;

    // Assert: step 0 (the model's echo call) was kept, steps 1 and 2 ran
    // again; the kept call still echoes the original's text.
    assert_eq!(forked.status, RunStatus::Succeeded);
    assert_eq!(forked.input, json!("bye"));
    assert_eq!(forked.output, Some(json!("done: hello")));
    let steps = t.steps(forked.id).await?;
    assert_eq!(indexes(&steps), [0, 1, 2]);
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    assert_eq!(steps[0], original_steps[0]);
    assert!(
        steps[1].started_at >= forked.created_at,
        "step 1 re-executed"
    );
    assert!(
        steps[2].started_at >= forked.created_at,
        "step 2 re-executed"
    );
    // Only what the fork executed is counted: its one model call.
    assert_eq!(forked.usage, steps[2].usage.unwrap_or_default());
    let audit = t.audit(forked.id).await?;
    assert_eq!(&events(&audit)[..2], ["created", "forked"]);
    assert_eq!(
        audit[1].detail,
        json!({ "from_run": original.id, "from_step": 1 })
    );

    // Assert: the original is untouched.
    assert_eq!(t.run(original.id).await?, original);
    assert_eq!(t.steps(original.id).await?, original_steps);

    // A fork from step 0 re-runs everything with the new input.
    let again = t
        .engine
        .fork(&t.who, original.id, fork(0, Some("bye")))
        .await?
        .expect("the run exists");
    let again = t.drive(again.id).await?;
    assert_eq!(again.output, Some(json!("done: bye")));
    Ok(())
}

#[tokio::test]
async fn forks_are_tenant_scoped_and_from_step_is_checked() -> anyhow::Result<()> {
    let t = spawn_engine(&config()).await?;
    let original = t.submit("w1", "hello").await?;
    let original = t.drive(original.id).await?;

    // Another tenant's run is not there.
    let other = identity("t2")?;
    assert!(
        t.engine
            .fork(&other, original.id, fork(1, None))
            .await?
            .is_none()
    );

    // Past the journal (3 steps) is refused, naming from_step.
    match t.engine.fork(&t.who, original.id, fork(4, None)).await {
        Err(EngineError::Store(e @ StoreError::BadFork(_))) => {
            assert!(e.to_string().contains("from_step"), "{e}");
        }
        other => panic!("expected BadFork, got {other:?}"),
    }
    // The whole journal is a fork that only has to finish.
    let whole = t
        .engine
        .fork(&t.who, original.id, fork(3, None))
        .await?
        .expect("the run exists");
    let whole = t.drive(whole.id).await?;
    assert_eq!(whole.status, RunStatus::Succeeded);
    assert_eq!(whole.output, original.output);
    Ok(())
}
