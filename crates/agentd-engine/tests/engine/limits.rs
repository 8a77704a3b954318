//! Limits that halt a run: `max_steps`.

use crate::helpers::{events, indexes, kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind, StepStatus};

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
        ["created", "running", "failed"]
    );
    Ok(())
}
