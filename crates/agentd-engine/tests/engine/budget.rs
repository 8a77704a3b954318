//! `budget_usd` halts a run before the model call that would exceed it.

use crate::helpers::{kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind};

/// A model that never stops calling echo, priced so each call costs about
/// $0.0001 or more; the budget allows a few calls only.
const CONFIG: &str = r#"
[pricing."pricey"]
input_per_mtok = 10000.0
output_per_mtok = 10000.0

[providers.loop]
kind = "mock"
model = "pricey"
script = [{ tool = "echo", args = { text = "again" } }]

[[agents]]
name = "spender"
providers = ["loop"]
tools = ["echo"]
max_steps = 100
budget_usd = 0.5
"#;

#[tokio::test]
async fn a_spent_budget_fails_the_run_before_the_next_model_call() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("spender", "go").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert: failed with budget_exceeded, having spent at least the budget
    // but never starting a model call after it was spent.
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.clone().expect("an error");
    assert_eq!(error.code, ErrorCode::BudgetExceeded, "{error:?}");
    assert!(run.cost_usd >= 0.5, "{}", run.cost_usd);
    let steps = t.steps(run.id).await?;
    assert!(steps.len() < 100, "the budget did not stop the loop");
    // The last step is a tool step: the model was not called once spent.
    assert_eq!(kinds(&steps).last(), Some(&StepKind::Tool));
    let before_last_llm: f64 = run.cost_usd;
    assert!(
        before_last_llm < 0.5 + 0.5,
        "overspent by more than one call"
    );
    Ok(())
}
