//! The journal fixture of the store's schema-versioning tests: a small
//! SQLite database written by the engine of the version being captured.
//!
//! `crates/agentd-store/tests/fixtures/journal-v1.db` was written by
//! `write_store_fixture` at the last commit whose records were schema v1:
//!
//! ```text
//! cargo test -p agentd-engine --test engine fixture::write_store_fixture -- --ignored
//! ```
//!
//! Run at a later commit, the same test writes `journal-v<N>.db` for that
//! version's records (`agentd_core::SCHEMA_VERSION`), the fixture the next
//! version's migration is tested against.

use crate::helpers::{build_engine, identity};
use agentd_core::{ConversationId, RunStatus};
use agentd_engine::Submit;
use anyhow::Context;
use serde_json::json;
use std::path::PathBuf;

/// The agents that wrote the fixture; tests that resume its runs use it too.
pub const FIXTURE_CONFIG: &str = r#"
[tools.http_get]
approval = true

[providers.helper]
kind = "mock"
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]

[providers.asker]
kind = "mock"
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { tool = "ask_human", args = { question = "Ship {{tool_result}}?" } },
  { reply = "human said: {{tool_result}}" },
]

[providers.careful]
kind = "mock"
script = [
  { tool = "http_get", args = { url = "http://127.0.0.1:9/{{input}}" } },
  { reply = "fetched: {{tool_result}}" },
]

[[agents]]
name = "helper"
providers = ["helper"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["echo", "ask_human"]

[[agents]]
name = "careful"
providers = ["careful"]
tools = ["http_get"]
"#;

/// Writes the fixture: tenant `t1` with a finished run of `helper` in
/// conversation `c-1` (input "alpha"), a run of `asker` paused on
/// `ask_human` after an `echo` (input "beta"), and a run of `careful`
/// paused for approval of an `http_get` (input "gamma").
#[tokio::test]
#[ignore = "writes the store's journal fixture; run by hand, see the module docs"]
async fn write_store_fixture() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("t.db");
    let store = agentd_store::open(&format!("sqlite://{}", db.display())).await?;
    store.migrate().await?;
    let engine = build_engine(FIXTURE_CONFIG, store.clone()).await?;
    let who = identity("t1")?;
    let submit = |input: &str, conversation: Option<&str>| -> anyhow::Result<Submit> {
        Ok(Submit {
            input: json!(input),
            conversation_id: conversation.map(ConversationId::parse).transpose()?,
            metadata: Some(json!({ "fixture": true })),
            idempotency_key: None,
            origin: Default::default(),
            if_busy: Default::default(),
            callback_url: None,
        })
    };
    let token = tokio_util::sync::CancellationToken::new();
    for (agent, input, conversation, expect) in [
        ("helper", "alpha", Some("c-1"), RunStatus::Succeeded),
        ("asker", "beta", None, RunStatus::Paused),
        ("careful", "gamma", None, RunStatus::Paused),
    ] {
        let run = engine
            .submit(&who, agent, submit(input, conversation)?)
            .await?;
        let done = engine
            .drive(&who.tenant, run.id, &token)
            .await?
            .context("driven run vanished")?;
        anyhow::ensure!(done.status == expect, "{agent}: {:?}", done.status);
    }
    // Checkpoints the WAL into the file.
    store.storage_bytes().await?;

    let out = std::env::var_os("AGENTD_FIXTURE_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
                "../agentd-store/tests/fixtures/journal-v{}.db",
                agentd_core::SCHEMA_VERSION
            ))
        });
    if out.exists() {
        std::fs::remove_file(&out)?;
    }
    // A compact copy without the WAL: VACUUM INTO writes a fresh file.
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute("VACUUM INTO ?1", [out.to_string_lossy().as_ref()])?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The runs a v1 agentd paused continue under this one: their journals are
/// migrated on claim, and the run loop pairs the migrated call ids with the
/// model's calls.
#[tokio::test]
async fn runs_paused_by_a_v1_agentd_resume_and_finish() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("v1.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../agentd-store/tests/fixtures/journal-v1.db"
        ),
        &db,
    )?;
    let store = agentd_store::open(&format!("sqlite://{}", db.display())).await?;
    store.migrate().await?;
    let engine = build_engine(FIXTURE_CONFIG, store.clone()).await?;
    let who = identity("t1")?;
    let runs = store
        .list_runs(
            &who.tenant,
            &agentd_store::RunFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await?
        .items;
    let run_of = |agent: &str| {
        runs.iter()
            .find(|r| r.agent == agent)
            .map(|r| r.id)
            .context("fixture run missing")
    };
    let token = tokio_util::sync::CancellationToken::new();
    for (agent, answer, output) in [
        ("asker", json!("yes"), json!("human said: yes")),
        (
            "careful",
            json!({ "approve": false, "reason": "not today" }),
            json!("fetched: {\"error\":\"a human rejected this tool call: not today\"}"),
        ),
    ] {
        let id = run_of(agent)?;
        engine.resume(&who, id, &answer).await?;
        let done = engine
            .drive(&who.tenant, id, &token)
            .await?
            .context("run vanished")?;
        assert_eq!(
            done.status,
            RunStatus::Succeeded,
            "{agent}: {:?}",
            done.error
        );
        assert_eq!(done.output, Some(output), "{agent}");
        let steps = store
            .list_steps(&who.tenant, id, None, 100)
            .await?
            .context("journal")?
            .items;
        // Old and new steps alike name the call they answer.
        let last_model = steps
            .iter()
            .rev()
            .find(|s| s.kind == agentd_core::StepKind::Llm);
        assert!(last_model.is_some_and(|s| s.call_id.is_none()));
        assert!(
            steps
                .iter()
                .filter(|s| s.kind != agentd_core::StepKind::Llm)
                .all(|s| s.call_id.is_some()),
            "{agent}: {steps:?}"
        );
    }
    Ok(())
}
