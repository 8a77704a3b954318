//! Agent versions: a run records the version it started on and finishes on
//! it; `[rollout]` splits new runs between stable and a canary, the same
//! way for a conversation; promote and rollback change the split for every
//! process; the automatic rollback sends runs back to stable when the
//! canary fails; a reload swaps definitions without touching runs.

use crate::helpers::{events, identity, spawn_engine};
use agentd_config::Config;
use agentd_core::{Identity, RunStatus};
use agentd_engine::EngineError;
use agentd_store::rollout::RolloutPhase;
use serde_json::json;
use std::time::Duration;

/// `bot` at v1 (answers) and v2 (its provider fails), with `rollout`.
fn config(rollout: &str) -> String {
    format!(
        r#"
[queue]
max_attempts = 1

[providers.good]
kind = "mock"
script = [{{ reply = "v1 answers {{{{input}}}}" }}]

[providers.bad]
kind = "mock"
script = [{{ error = "server" }}]

[[agents]]
name = "bot"
version = "v1"
providers = ["good"]

[[agents]]
name = "bot"
version = "v2"
providers = ["bad"]

[rollout.bot]
{rollout}
"#
    )
}

fn operator() -> anyhow::Result<Identity> {
    Ok(Identity {
        roles: vec!["operator".into()],
        ..identity("t1")?
    })
}

#[tokio::test]
async fn runs_split_by_conversation_and_keep_their_version() -> anyhow::Result<()> {
    let t = spawn_engine(&config("stable = \"v1\"\ncanary = \"v2\"\npercent = 50")).await?;
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..40 {
        let conv = format!("c-{i}");
        let run = t.submit_as(&t.who, "bot", "hi", Some(&conv)).await?;
        let version = run.agent_version.clone().expect("a versioned run");
        *seen.entry(version.clone()).or_insert(0) += 1;
        // The next run of the conversation starts on the same version.
        let next = t.submit_as(&t.who, "bot", "again", Some(&conv)).await?;
        assert_eq!(next.agent_version, Some(version));
    }
    assert_eq!(seen.len(), 2, "both versions get runs: {seen:?}");

    // Each finishes on its own version's definition.
    let v1 = loop {
        let run = t.submit("bot", "x").await?;
        if run.agent_version.as_deref() == Some("v1") {
            break run;
        }
    };
    let v1 = t.drive(v1.id).await?;
    assert_eq!(v1.status, RunStatus::Succeeded);
    assert_eq!(v1.output, Some(json!("v1 answers x")));
    assert_eq!(v1.agent_version.as_deref(), Some("v1"));
    Ok(())
}

#[tokio::test]
async fn promote_and_rollback_change_the_split_once() -> anyhow::Result<()> {
    let t = spawn_engine(&config("stable = \"v1\"\ncanary = \"v2\"\npercent = 10")).await?;
    let op = operator()?;

    // Only an operator may change a rollout.
    let refused = t
        .engine
        .promote(Some(&t.who), &t.who.tenant, "bot", None)
        .await;
    assert!(
        matches!(refused, Err(EngineError::Forbidden(_))),
        "{refused:?}"
    );
    let missing = t.engine.rollout(Some(&op), "nobody").await;
    assert!(
        matches!(missing, Err(EngineError::UnknownAgent(_))),
        "{missing:?}"
    );

    let status = t.engine.rollout(Some(&op), "bot").await?;
    assert_eq!(status.phase, RolloutPhase::Active);
    assert_eq!(status.versions, ["v1", "v2"]);
    assert_eq!((status.stable.as_str(), status.percent), ("v1", 10.0));

    let promoted = t
        .engine
        .promote(Some(&op), &t.who.tenant, "bot", Some("looks good".into()))
        .await?;
    assert_eq!(promoted.phase, RolloutPhase::Promoted);
    assert_eq!(promoted.stable, "v2");
    assert_eq!(promoted.canary, None);
    assert_eq!(promoted.updated_by, op.principal.as_str());
    for _ in 0..20 {
        let run = t.submit("bot", "x").await?;
        assert_eq!(run.agent_version.as_deref(), Some("v2"));
    }
    // Nothing left to promote or roll back until the config starts a new
    // trial.
    let again = t
        .engine
        .rollback(Some(&op), &t.who.tenant, "bot", None)
        .await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");

    // The change is in the tenant's audit log.
    let log = t
        .store
        .list_audit_log(
            &t.who.tenant,
            &agentd_store::AuditFilter {
                kind: Some("rollout_promoted".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0].detail["reason"], "looks good");
    Ok(())
}

#[tokio::test]
async fn a_failing_canary_is_rolled_back_automatically() -> anyhow::Result<()> {
    let t = spawn_engine(&config(
        "stable = \"v1\"\ncanary = \"v2\"\npercent = 100\n\
         auto_rollback = { window = 3, max_failure_rate = 0.5 }",
    ))
    .await?;
    let mut last = None;
    for _ in 0..3 {
        let run = t.submit("bot", "x").await?;
        assert_eq!(run.agent_version.as_deref(), Some("v2"));
        let run = t.drive(run.id).await?;
        assert_eq!(run.status, RunStatus::Dead, "{run:?}");
        last = Some(run.id);
    }
    // The verdict is reached off the run's path; wait for it.
    let op = operator()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = t.engine.rollout(Some(&op), "bot").await?;
        if status.phase != RolloutPhase::Active || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.phase, RolloutPhase::RolledBack, "{status:?}");
    assert_eq!(status.stable, "v1");
    assert_eq!(status.updated_by, "auto_rollback");
    assert!(
        status
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("3 of the canary's last 3"),
        "{status:?}"
    );
    let v2 = status
        .stats
        .iter()
        .find(|s| s.version == "v2")
        .expect("v2 stats");
    assert_eq!((v2.runs, v2.failed), (3, 3));
    // The run that tipped it carries the audit record.
    let audit = t.audit(last.expect("ran")).await?;
    assert!(events(&audit).contains(&"rollout_rolled_back"), "{audit:?}");
    let run = t.submit("bot", "after").await?;
    assert_eq!(run.agent_version.as_deref(), Some("v1"));
    assert_eq!(t.drive(run.id).await?.status, RunStatus::Succeeded);
    Ok(())
}

const ASKER: &str = r#"
[providers.m1]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "ok?" } },
  { reply = "v1 says {{tool_result}}" },
]

[providers.m2]
kind = "mock"
script = [{ reply = "v2 here" }]
"#;

#[tokio::test]
async fn a_reload_changes_new_runs_and_leaves_pinned_ones_alone() -> anyhow::Result<()> {
    let before = format!(
        "{ASKER}[[agents]]\nname = \"bot\"\nversion = \"v1\"\nproviders = [\"m1\"]\n\
         tools = [\"ask_human\"]\n"
    );
    let t = spawn_engine(&before).await?;
    let paused = t.submit("bot", "x").await?;
    assert_eq!(paused.agent_version.as_deref(), Some("v1"));
    assert_eq!(t.drive(paused.id).await?.status, RunStatus::Paused);

    // A config the engine cannot build is refused; the old one stays.
    let broken = Config::from_toml_str(&format!(
        "{ASKER}[[agents]]\nname = \"bot\"\nproviders = [\"m2\"]\ntools = [\"no_such_tool\"]\n"
    ))?;
    let refused = t.engine.reload(&broken).await;
    assert!(
        matches!(refused, Err(EngineError::Config(_))),
        "{refused:?}"
    );
    let still = t.submit("bot", "x").await?;
    assert_eq!(still.agent_version.as_deref(), Some("v1"));

    // v1 is gone from the new config: new runs start on v2.
    let after = Config::from_toml_str(&format!(
        "{ASKER}[[agents]]\nname = \"bot\"\nversion = \"v2\"\nproviders = [\"m2\"]\n\
         [[agents]]\nname = \"fresh\"\nproviders = [\"m2\"]\n\
         [server]\nlisten = \"127.0.0.1:9999\"\n"
    ))?;
    let reloaded = t.engine.reload(&after).await?;
    assert_eq!(reloaded.agents, ["bot@v2", "fresh"]);
    assert_eq!(reloaded.restart_required, ["server.listen"]);
    assert!(!reloaded.tools_rebuilt);
    assert_eq!(t.engine.agent_names(), ["bot", "fresh"]);
    let new = t.submit("bot", "y").await?;
    assert_eq!(new.agent_version.as_deref(), Some("v2"));
    assert_eq!(t.drive(new.id).await?.output, Some(json!("v2 here")));

    // The paused run finishes on v1, the definition it started with.
    t.engine.resume(&t.who, paused.id, &json!("yes")).await?;
    let done = t.drive(paused.id).await?;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(json!("v1 says yes")));
    assert_eq!(done.agent_version.as_deref(), Some("v1"));
    Ok(())
}
