//! A whole run on the mock: result, journal, usage, cost and audit trail.

use crate::helpers::{W1_SCRIPT, events, indexes, kinds, spawn_engine, step_usage};
use agentd_core::{RunStatus, StepKind, StepStatus, Usage};
use serde_json::json;

const SYSTEM: &str = "Be brief.";
const INPUT_PER_MTOK: f64 = 1000.0;
const OUTPUT_PER_MTOK: f64 = 2000.0;

fn config() -> String {
    format!(
        r#"
[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[pricing."mock"]
input_per_mtok = {INPUT_PER_MTOK:?}
output_per_mtok = {OUTPUT_PER_MTOK:?}

[[agents]]
name = "w1"
providers = ["m"]
system_prompt = "{SYSTEM}"
tools = ["echo"]
"#
    )
}

/// Tokens the mock reports for `chars` characters.
fn tokens(chars: usize) -> u64 {
    (chars / 4) as u64
}

#[tokio::test]
async fn a_run_on_the_mock_succeeds_with_a_complete_journal_usage_cost_and_audit()
-> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(&config()).await?;
    let input = "hello world";
    let run = t.submit("w1", input).await?;
    assert_eq!(run.status, RunStatus::Queued);

    // Act
    let run = t.drive(run.id).await?;

    // Assert: the run object
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!(format!("done: {input}"))));
    assert_eq!(run.error, None);
    assert_eq!(run.pause, None);
    assert_eq!(run.steps, 3);
    assert_eq!(run.attempt, 1);

    // Assert: the journal
    let steps = t.steps(run.id).await?;
    assert_eq!(indexes(&steps), [0, 1, 2]);
    assert_eq!(
        kinds(&steps),
        [StepKind::Llm, StepKind::Tool, StepKind::Llm]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
    assert!(steps.iter().all(|s| s.error.is_none()));
    assert_eq!(steps[0].name, "m");
    assert_eq!(steps[1].name, "echo");
    assert_eq!(steps[1].input, json!({ "text": input }));
    assert_eq!(steps[1].output, json!(input));
    assert_eq!(steps[0].output["tool_calls"][0]["name"], json!("echo"));
    assert_eq!(steps[2].output["content"], json!(format!("done: {input}")));

    // Assert: usage is characters / 4, per model call and in total
    let call_chars = "echo".len() + json!({ "text": input }).to_string().len();
    let reply_chars = format!("done: {input}").len();
    let first = Usage {
        input_tokens: tokens(SYSTEM.len() + input.len()),
        output_tokens: tokens(call_chars),
    };
    let second = Usage {
        input_tokens: tokens(SYSTEM.len() + input.len() + call_chars + input.len()),
        output_tokens: tokens(reply_chars),
    };
    assert_eq!(steps[0].usage, Some(first));
    assert_eq!(steps[1].usage, None);
    assert_eq!(steps[2].usage, Some(second));
    assert_eq!(run.usage, first + second);
    assert_eq!(step_usage(&steps), run.usage);
    assert!(run.usage.input_tokens > 0 && run.usage.output_tokens > 0);

    // Assert: cost from the pricing table
    let expected_cost = (run.usage.input_tokens as f64 * INPUT_PER_MTOK
        + run.usage.output_tokens as f64 * OUTPUT_PER_MTOK)
        / 1_000_000.0;
    assert!(run.cost_usd > 0.0);
    assert!(
        (run.cost_usd - expected_cost).abs() < 1e-12,
        "cost {} != {expected_cost}",
        run.cost_usd
    );

    // Assert: the audit trail
    let audit = t.audit(run.id).await?;
    assert_eq!(events(&audit), ["created", "claimed", "succeeded"]);
    assert_eq!(audit[0].actor, "p");
    assert!(audit.iter().all(|a| a.run_id == Some(run.id)));
    assert!(audit.windows(2).all(|w| w[0].at <= w[1].at));
    Ok(())
}

#[tokio::test]
async fn a_model_without_a_pricing_entry_costs_nothing_but_still_counts_tokens()
-> anyhow::Result<()> {
    // Arrange: the same agent, with no [pricing] table
    let toml = format!(
        r#"
[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "w1"
providers = ["m"]
tools = ["echo"]
"#
    );
    let t = spawn_engine(&toml).await?;
    let run = t.submit("w1", "abcdefgh").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.usage.input_tokens > 0);
    assert_eq!(run.cost_usd, 0.0);
    Ok(())
}
