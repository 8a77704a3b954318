//! Provider failures: a failing model fails the run; a fallback chain moves
//! on to the next provider.

use crate::helpers::{W1_SCRIPT, kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind, StepStatus, Usage};
use serde_json::json;

#[tokio::test]
async fn a_provider_error_fails_the_run_and_journals_the_failed_call() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(
        r#"
[providers.flaky]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "fragile"
providers = ["flaky"]
tools = ["echo"]
"#,
    )
    .await?;
    let run = t.submit("fragile", "hi").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.clone().expect("a failed run has an error");
    assert_eq!(error.code, ErrorCode::ProviderError);
    assert!(error.message.contains("flaky"), "{}", error.message);
    assert_eq!(run.output, None);
    assert_eq!(run.usage, Usage::default());
    assert_eq!(run.cost_usd, 0.0);
    let steps = t.steps(run.id).await?;
    assert_eq!(steps.len(), 1);
    assert_eq!(run.steps, 1);
    assert_eq!(steps[0].index, 0);
    assert_eq!(steps[0].kind, StepKind::Llm);
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert_eq!(steps[0].name, "flaky");
    assert_eq!(
        steps[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::ProviderError)
    );
    Ok(())
}

#[tokio::test]
async fn a_fallback_chain_answers_from_the_first_healthy_provider() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(&format!(
        r#"
[providers.broken]
kind = "mock"
script = [{{ error = "rate_limit" }}]

[providers.good]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "chain"
providers = ["broken", "good"]
tools = ["echo"]
"#
    ))
    .await?;
    let run = t.submit("chain", "hi").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.output, Some(json!("done: hi")));
    let steps = t.steps(run.id).await?;
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    let llm_names: Vec<&str> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Llm)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(llm_names, ["good", "good"]);
    Ok(())
}
