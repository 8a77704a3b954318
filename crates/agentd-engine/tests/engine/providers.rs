//! Provider failures: a failing model ends the attempt; a fallback chain
//! moves on to the next provider.

use crate::helpers::{W1_SCRIPT, kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind, StepStatus, Usage};
use serde_json::json;

#[tokio::test]
async fn a_provider_error_on_the_last_attempt_makes_the_run_dead() -> anyhow::Result<()> {
    // Arrange: one attempt allowed, so the first failure is the last.
    let t = spawn_engine(
        r#"
[queue]
max_attempts = 1

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

    // Assert: dead, with the provider's error; the failed call is not
    // journaled, so a requeued run makes it again.
    assert_eq!(run.status, RunStatus::Dead);
    let error = run.error.clone().expect("a dead run has an error");
    assert_eq!(error.code, ErrorCode::ProviderError);
    assert!(error.message.contains("flaky"), "{}", error.message);
    assert_eq!(run.output, None);
    assert_eq!(run.usage, Usage::default());
    assert_eq!(run.cost_usd, 0.0);
    assert_eq!(run.attempt, 1);
    assert!(t.steps(run.id).await?.is_empty());
    assert_eq!(run.steps, 0);
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
