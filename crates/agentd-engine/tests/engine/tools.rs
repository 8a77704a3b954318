//! Bad tool calls by the model are reported back to it, not fatal.

use crate::helpers::{kinds, spawn_engine};
use agentd_core::{RunStatus, StepKind, StepStatus};
use serde_json::json;

const CONFIG: &str = r#"
[providers.badargs]
kind = "mock"
script = [
  { tool = "echo", args = { wrong = 1 } },
  { reply = "saw: {{tool_result}}" },
]

[providers.overreach]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "may I?" } },
  { reply = "saw: {{tool_result}}" },
]

[[agents]]
name = "badargs"
providers = ["badargs"]
tools = ["echo"]

[[agents]]
name = "overreach"
providers = ["overreach"]
tools = ["echo"]
"#;

#[tokio::test]
async fn invalid_tool_arguments_become_an_error_result_the_model_sees() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("badargs", "hi").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let steps = t.steps(run.id).await?;
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    let tool = &steps[1];
    assert_eq!(tool.name, "echo");
    assert_eq!(tool.status, StepStatus::Completed);
    assert_eq!(tool.input, json!({ "wrong": 1 }));
    let message = tool.output["error"]
        .as_str()
        .expect("the tool step's output is {\"error\": string}");
    assert!(message.contains("text"), "{message}");
    let reply = run
        .output
        .as_ref()
        .and_then(|o| o.as_str())
        .unwrap_or_default();
    assert!(reply.starts_with("saw: "), "{reply}");
    assert!(reply.contains("error"), "{reply}");
    Ok(())
}

#[tokio::test]
async fn a_call_to_a_tool_the_agent_lacks_is_refused_without_pausing() -> anyhow::Result<()> {
    // Arrange: the model calls ask_human, which this agent does not have
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("overreach", "hi").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.pause, None);
    let steps = t.steps(run.id).await?;
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    let tool = &steps[1];
    assert_eq!(tool.name, "ask_human");
    assert_eq!(tool.status, StepStatus::Completed);
    let message = tool.output["error"]
        .as_str()
        .expect("the tool step's output is {\"error\": string}");
    assert!(message.contains("ask_human"), "{message}");
    let reply = run
        .output
        .as_ref()
        .and_then(|o| o.as_str())
        .unwrap_or_default();
    assert!(reply.contains("error"), "{reply}");
    Ok(())
}
