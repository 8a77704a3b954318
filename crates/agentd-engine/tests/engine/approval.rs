//! Tools marked `approval = true` pause the run before they execute.

use crate::helpers::{kinds, spawn_engine};
use agentd_core::{RunStatus, StepKind, StepStatus};
use agentd_engine::EngineError;
use serde_json::json;

const CONFIG: &str = r#"
[tools.echo]
approval = true

[providers.careful]
kind = "mock"
script = [
  { tool = "echo", args = { text = "deploy {{input}}" } },
  { reply = "result: {{tool_result}}" },
]

[[agents]]
name = "careful"
providers = ["careful"]
tools = ["echo"]
"#;

#[tokio::test]
async fn an_approved_call_runs_after_the_pause_and_a_rejected_one_never_runs() -> anyhow::Result<()>
{
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let approved = t.submit("careful", "v1").await?;
    let rejected = t.submit("careful", "v2").await?;

    // Act: both pause before echo runs
    let paused = t.drive(approved.id).await?;
    t.drive(rejected.id).await?;

    // Assert: the pause names the tool and its arguments; nothing ran yet
    assert_eq!(paused.status, RunStatus::Paused);
    let pause = paused.pause.clone().expect("an approval pause");
    assert_eq!(pause.tool.as_deref(), Some("echo"));
    assert_eq!(pause.args, Some(json!({ "text": "deploy v1" })));
    assert!(pause.question.contains("echo"), "{}", pause.question);
    let steps = t.steps(approved.id).await?;
    assert_eq!(kinds(&steps), [StepKind::Llm, StepKind::Human]);
    assert_eq!(steps[1].status, StepStatus::Waiting);

    // An answer that is not a decision is refused and changes nothing.
    let bad = t.engine.resume(&t.who, approved.id, &json!("sure")).await;
    assert!(matches!(bad, Err(EngineError::BadAnswer(_))), "{bad:?}");
    assert_eq!(t.run(approved.id).await?.status, RunStatus::Paused);

    // Approve one, reject the other.
    t.engine
        .resume(&t.who, approved.id, &json!({ "approve": true }))
        .await?;
    t.engine
        .resume(
            &t.who,
            rejected.id,
            &json!({ "approve": false, "reason": "not today" }),
        )
        .await?;
    let approved = t.drive(approved.id).await?;
    let rejected = t.drive(rejected.id).await?;

    assert_eq!(approved.status, RunStatus::Succeeded);
    assert_eq!(approved.output, Some(json!("result: deploy v1")));
    let steps = t.steps(approved.id).await?;
    assert_eq!(
        kinds(&steps),
        [
            StepKind::Llm,
            StepKind::Human,
            StepKind::Tool,
            StepKind::Llm
        ]
    );
    assert_eq!(steps[2].output, json!("deploy v1"));

    assert_eq!(rejected.status, RunStatus::Succeeded);
    let out = rejected.output.unwrap().to_string();
    assert!(
        out.contains("rejected") && out.contains("not today"),
        "{out}"
    );
    let steps = t.steps(rejected.id).await?;
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Human, StepKind::Llm]
    );
    Ok(())
}
