//! What the engine rejects up front: a config naming an unknown tool, a run
//! of an unknown agent.

use crate::helpers::{W1_SCRIPT, open_store, spawn_engine};
use agentd_config::Config;
use agentd_engine::{Engine, EngineError, Submit};
use agentd_store::RunFilter;

fn config(first_tools: &str, second_tools: &str) -> String {
    format!(
        r#"
[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "first"
providers = ["m"]
tools = {first_tools}

[[agents]]
name = "second"
providers = ["m"]
tools = {second_tools}
"#
    )
}

async fn config_error(toml: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let store = open_store(&dir).await?;
    let config = Config::from_toml_str(toml)?;
    match Engine::new(&config, store).await {
        Err(EngineError::Config(message)) => Ok(message),
        Err(other) => anyhow::bail!("expected a config error, got {other:?}"),
        Ok(_) => anyhow::bail!("an unknown tool was accepted"),
    }
}

#[tokio::test]
async fn an_unknown_tool_is_a_config_error_naming_the_key_and_the_tool() -> anyhow::Result<()> {
    // Act
    let first = config_error(&config(r#"["echo", "teleport"]"#, r#"["echo"]"#)).await?;
    let second = config_error(&config(r#"["echo"]"#, r#"["ask_human", "warp"]"#)).await?;

    // Assert
    assert!(first.contains("agents[0].tools"), "{first}");
    assert!(first.contains("teleport"), "{first}");
    assert!(second.contains("agents[1].tools"), "{second}");
    assert!(second.contains("warp"), "{second}");
    Ok(())
}

#[tokio::test]
async fn a_run_of_an_unknown_agent_is_rejected_and_nothing_is_queued() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(&config(r#"["echo"]"#, r#"["echo"]"#)).await?;

    // Act
    let res = t
        .engine
        .submit(
            &t.who,
            "ghost",
            Submit {
                input: serde_json::json!("hi"),
                ..Submit::default()
            },
        )
        .await;

    // Assert
    match res {
        Err(EngineError::UnknownAgent(name)) => assert_eq!(name, "ghost"),
        other => panic!("expected UnknownAgent, got {other:?}"),
    }
    let filter = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    assert!(
        t.store
            .list_runs(&t.who.tenant, &filter)
            .await?
            .items
            .is_empty()
    );
    assert_eq!(t.engine.agent_names(), ["first", "second"]);
    Ok(())
}
