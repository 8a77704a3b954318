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

/// A provider's circuit opened by one process is open in every process on
/// the same PostgreSQL within a second or so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_opened_in_one_engine_opens_in_every_engine_on_the_store() -> anyhow::Result<()> {
    use crate::helpers::{build_engine, drop_schema, postgres_url, start_workers};
    use agentd_llm::BreakerState;
    let Some(pg) = postgres_url() else {
        return Ok(());
    };
    let schema = format!("circuits_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    let toml = format!(
        r#"
[providers.down]
kind = "mock"
script = [{{ error = "server" }}]

[providers.good]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "chain"
providers = ["down", "good"]
tools = ["echo"]
circuit_breaker = {{ failures = 1, reset = "60s" }}
"#
    );
    let mut engines = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = agentd_store::open(&url).await?;
        store.migrate().await?;
        let engine = build_engine(&toml, store).await?;
        workers.push(start_workers(&engine));
        engines.push(engine);
    }
    let state = |e: &agentd_engine::Engine| {
        e.readiness()
            .circuits
            .iter()
            .find(|c| c.provider == "down")
            .map(|c| c.state)
    };
    assert_eq!(state(&engines[1]), Some(BreakerState::Closed));

    // Act: engine 0 finds `down` down (and falls back to `good`).
    let who = crate::helpers::identity("t1")?;
    let run = engines[0]
        .submit_wait(
            &who,
            "chain",
            agentd_engine::Submit {
                input: json!("hi"),
                ..Default::default()
            },
            crate::helpers::SETTLE,
        )
        .await?;

    // Assert: engine 1 adopts the open circuit without calling `down`.
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(state(&engines[0]), Some(BreakerState::Open));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while state(&engines[1]) != Some(BreakerState::Open) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "engine 1 never saw the open circuit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        engines[1].readiness().unavailable_agents,
        Vec::<String>::new()
    );
    for w in workers {
        w.stop().await?;
    }
    drop(engines);
    drop_schema(&pg, &schema).await?;
    Ok(())
}
