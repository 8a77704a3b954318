//! Tenant isolation at the engine and store level: another tenant's run is
//! "not found", never data.

use crate::helpers::{W1_SCRIPT, identity, spawn_engine};
use agentd_core::{ConversationId, RunStatus};
use agentd_store::{ClaimRequest, RunFilter, Transition};
use serde_json::json;
use std::time::Duration;

fn config() -> String {
    format!(
        r#"
[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[providers.asker]
kind = "mock"
script = [
  {{ tool = "ask_human", args = {{ question = "ok?" }} }},
  {{ reply = "got {{{{tool_result}}}}" }},
]

[[agents]]
name = "w1"
providers = ["m"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]
"#
    )
}

fn all() -> RunFilter {
    RunFilter {
        limit: 100,
        ..RunFilter::default()
    }
}

#[tokio::test]
async fn another_tenants_runs_are_invisible_and_untouchable() -> anyhow::Result<()> {
    // Arrange: tenant t1 has a finished and a paused run in conversation "c"
    let t = spawn_engine(&config()).await?;
    let a = t.who.clone();
    let b = identity("t2")?;
    let conv = ConversationId::parse("c")?;
    let done = t.submit_as(&a, "w1", "secret", Some("c")).await?;
    let done = t.drive(done.id).await?;
    let paused = t.submit_as(&a, "asker", "secret", Some("c")).await?;
    let paused = t.drive(paused.id).await?;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(paused.status, RunStatus::Paused);

    // Act + Assert: tenant t2 sees and changes nothing
    for id in [done.id, paused.id] {
        assert!(t.store.get_run(&b.tenant, id).await?.is_none());
        assert!(
            t.store
                .list_steps(&b.tenant, id, None, 100)
                .await?
                .is_none()
        );
        assert!(t.store.list_audit(&b.tenant, id).await?.is_empty());
        let cancel = t.engine.cancel(&b, id).await?;
        assert!(matches!(cancel, Transition::NotFound), "{cancel:?}");
        let resume = t.engine.resume(&b, id, &json!("yes")).await?;
        assert!(matches!(resume, Transition::NotFound), "{resume:?}");
        let claim = t
            .store
            .claim_run(
                &b.tenant,
                id,
                &ClaimRequest::new("intruder", Duration::from_secs(30)),
            )
            .await?;
        assert!(claim.is_none());
    }
    assert!(t.store.list_runs(&b.tenant, &all()).await?.items.is_empty());
    let b_messages = t.store.list_messages(&b.tenant, &conv, None, 100).await?;
    assert!(b_messages.items.is_empty());

    // Assert: tenant t1's runs are untouched
    assert_eq!(t.run(paused.id).await?.status, RunStatus::Paused);
    assert_eq!(t.run(done.id).await?, done);
    let a_runs = t.store.list_runs(&a.tenant, &all()).await?.items;
    assert_eq!(a_runs.len(), 2);
    let own = t.engine.resume(&a, done.id, &json!("yes")).await?;
    assert!(
        matches!(own, Transition::Conflict(RunStatus::Succeeded)),
        "{own:?}"
    );

    // Act + Assert: t2's run in a conversation of the same name neither
    // waits for t1's paused run nor sees t1's messages
    let theirs = t.submit_as(&b, "w1", "secret", Some("c")).await?;
    let theirs = t.drive_as(&b.tenant, theirs.id).await?;
    assert_eq!(theirs.status, RunStatus::Succeeded);
    let b_steps = t
        .store
        .list_steps(&b.tenant, theirs.id, None, 100)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let a_steps = t.steps(done.id).await?;
    assert_eq!(
        b_steps[0].usage, a_steps[0].usage,
        "same input, same prompt: no history leaked across tenants"
    );
    let b_messages = t.store.list_messages(&b.tenant, &conv, None, 100).await?;
    assert_eq!(b_messages.items.len(), 4);
    assert!(b_messages.items.iter().all(|m| m.run_id == theirs.id));
    assert_eq!(t.store.list_runs(&a.tenant, &all()).await?.items.len(), 2);
    Ok(())
}
