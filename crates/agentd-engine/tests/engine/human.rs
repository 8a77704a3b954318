//! Human in the loop: `ask_human` pauses a run, `resume` answers it.

use crate::helpers::{events, identity, indexes, kinds, spawn_engine};
use agentd_core::{RunStatus, StepKind, StepStatus};
use agentd_store::Transition;
use serde_json::json;

const CONFIG: &str = r#"
[providers.m]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "Ship {{input}}?" } },
  { reply = "human said: {{tool_result}}" },
]

[[agents]]
name = "asker"
providers = ["m"]
tools = ["ask_human"]
"#;

#[tokio::test]
async fn ask_human_pauses_the_run_and_resume_continues_it_with_the_answer() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("asker", "v2").await?;

    // Act 1: the run pauses
    let paused = t.drive(run.id).await?;

    // Assert 1
    assert_eq!(paused.status, RunStatus::Paused);
    let pause = paused.pause.clone().expect("a paused run has a pause");
    assert_eq!(pause.question, "Ship v2?");
    assert_eq!(pause.step, 1);
    assert_eq!(paused.output, None);
    let steps = t.steps(run.id).await?;
    assert_eq!(kinds(&steps), [StepKind::Llm, StepKind::Human]);
    assert_eq!(steps[0].status, StepStatus::Completed);
    assert_eq!(steps[1].status, StepStatus::Waiting);
    assert_eq!(steps[1].name, "ask_human");
    assert_eq!(steps[1].input, json!({ "question": "Ship v2?" }));

    // Act 2: answer it
    let resumed = t.engine.resume(&t.who, run.id, &json!("yes")).await?;

    // Assert 2
    let Transition::Done(resumed, _) = resumed else {
        panic!("resume of a paused run: {resumed:?}");
    };
    assert_eq!(resumed.status, RunStatus::Queued);
    assert_eq!(resumed.pause, None);

    // Act 3: continue it
    let done = t.drive(run.id).await?;

    // Assert 3
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!("human said: yes")));
    assert_eq!(done.steps, 3);
    let steps = t.steps(run.id).await?;
    assert_eq!(indexes(&steps), [0, 1, 2]);
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Human, StepKind::Llm]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    assert_eq!(steps[1].output, json!("yes"));
    assert_eq!(
        events(&t.audit(run.id).await?),
        [
            "created",
            "claimed",
            "paused",
            "resumed",
            "claimed",
            "succeeded"
        ]
    );

    // Act 4 + Assert 4: a finished run cannot be resumed, another tenant
    // cannot see it at all
    let again = t.engine.resume(&t.who, run.id, &json!("no")).await?;
    assert!(
        matches!(again, Transition::Conflict(RunStatus::Succeeded)),
        "{again:?}"
    );
    let stranger = identity("t2")?;
    let foreign = t.engine.resume(&stranger, run.id, &json!("no")).await?;
    assert!(matches!(foreign, Transition::NotFound), "{foreign:?}");
    assert_eq!(t.steps(run.id).await?[1].output, json!("yes"));
    Ok(())
}

#[tokio::test]
async fn a_queued_run_cannot_be_resumed() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("asker", "v3").await?;

    // Act
    let res = t.engine.resume(&t.who, run.id, &json!("yes")).await?;

    // Assert
    assert!(
        matches!(res, Transition::Conflict(RunStatus::Queued)),
        "{res:?}"
    );
    assert_eq!(t.run(run.id).await?.status, RunStatus::Queued);
    Ok(())
}

#[tokio::test]
async fn a_run_paused_longer_than_its_timeout_can_still_be_resumed() -> anyhow::Result<()> {
    // Arrange: a run timeout of 1s, and a human who answers after 1.5s
    let t = spawn_engine(&CONFIG.replace(
        "tools = [\"ask_human\"]",
        "tools = [\"ask_human\"]\ntimeout = \"1s\"",
    ))
    .await?;
    let run = t.submit("asker", "v4").await?;
    let paused = t.drive(run.id).await?;
    assert_eq!(paused.status, RunStatus::Paused);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // Act
    let resumed = t.engine.resume(&t.who, run.id, &json!("later")).await?;
    assert!(matches!(resumed, Transition::Done(..)), "{resumed:?}");
    let done = t.drive(run.id).await?;

    // Assert: waiting for a human is not the run working
    assert_eq!(done.error, None);
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!("human said: later")));
    Ok(())
}
