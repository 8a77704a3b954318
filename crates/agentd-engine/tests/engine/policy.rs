//! `[[policies]]`: a run may call a tool only if one of its creator's roles
//! allows it; a denial is told to the model and recorded in the audit log.

use crate::helpers::{events, spawn_engine};
use agentd_core::{Identity, PrincipalId, RunStatus, StepKind, TenantId};
use serde_json::json;

const CONFIG: &str = r#"
[[policies]]
role = "user"
allow = ["echo"]

[[policies]]
role = "admin"
allow = ["*"]

[providers.asks]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "may I?" } },
  { reply = "saw: {{tool_result}}" },
]

[[agents]]
name = "asks"
providers = ["asks"]
tools = ["echo", "ask_human"]
"#;

#[tokio::test]
async fn a_tool_the_callers_roles_do_not_allow_is_refused_and_audited() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let user = Identity {
        tenant: TenantId::parse("t1")?,
        principal: PrincipalId::parse("u")?,
        roles: vec!["user".into()],
    };

    // Act: the same agent, run by a user and by an admin
    let denied = t.submit_as(&user, "asks", "x", None).await?;
    let denied = t.drive(denied.id).await?;
    let allowed = t.submit("asks", "x").await?;
    let allowed = t.drive(allowed.id).await?;

    // Assert: the user's run was told no and carried on; nothing paused
    assert_eq!(denied.status, RunStatus::Succeeded);
    let out = denied.output.clone().unwrap().to_string();
    assert!(out.contains("not permitted"), "{out}");
    let steps = t.steps(denied.id).await?;
    assert_eq!(steps[1].kind, StepKind::Tool);
    assert_eq!(steps[1].name, "ask_human");
    let audit = t.audit(denied.id).await?;
    assert!(events(&audit).contains(&"tool_denied"), "{audit:?}");
    let record = audit.iter().find(|a| a.event == "tool_denied").unwrap();
    assert_eq!(record.detail["tool"], json!("ask_human"));
    assert_eq!(record.detail["roles"], json!(["user"]));

    // The admin's run may ask: it pauses.
    assert_eq!(allowed.status, RunStatus::Paused);
    assert!(!events(&t.audit(allowed.id).await?).contains(&"tool_denied"));
    Ok(())
}
