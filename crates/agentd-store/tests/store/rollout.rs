//! Rollout state and per-version outcomes: the state is created once per
//! split and reset by a new one; a promote or rollback applies once, with
//! its audit record; stats and outcomes count each version's finished
//! runs across tenants.

use crate::harness::{Ctx, claim, new_run, step, tenant};
use agentd_core::{ErrorCode, Role, RunError, StepKind, TenantId};
use agentd_store::rollout::{RolloutChange, RolloutPhase, RolloutState};
use agentd_store::{AuditFilter, Outcome, Store};

fn seed(base: &str, canary: Option<&str>, percent: f64) -> RolloutState {
    RolloutState {
        agent: "bot".into(),
        base: base.into(),
        stable: "v1".into(),
        canary: canary.map(Into::into),
        percent,
        phase: RolloutPhase::Active,
        reason: None,
        actor: "config".into(),
        started_at: 0,
        updated_at: 0,
    }
}

fn rollback(tenant: &TenantId) -> RolloutChange {
    RolloutChange {
        phase: RolloutPhase::RolledBack,
        stable: "v1".into(),
        reason: Some("too many failures".into()),
        actor: "alice".into(),
        audit_tenant: tenant.clone(),
        audit_run: None,
        audit_kind: "rollout_rolled_back",
        audit_detail: serde_json::json!({ "agent": "bot", "from": "v2" }),
    }
}

pub async fn state_per_split(ctx: &Ctx) {
    let s = ctx.store.as_ref();
    let t = tenant("acme");
    let first = s.sync_rollout(&seed("a", Some("v2"), 10.0)).await.unwrap();
    assert_eq!(first.phase, RolloutPhase::Active);
    assert_eq!(first.canary.as_deref(), Some("v2"));
    assert!(first.started_at > 0);

    // Another process syncing the same split reads the stored state.
    let changed = s.change_rollout("bot", "a", &rollback(&t)).await.unwrap();
    let changed = changed.expect("an active split with a canary changes");
    assert_eq!(changed.phase, RolloutPhase::RolledBack);
    assert_eq!(changed.canary, None);
    assert_eq!(changed.percent, 0.0);
    let again = s.sync_rollout(&seed("a", Some("v2"), 10.0)).await.unwrap();
    assert_eq!(again, changed);

    // A verdict reached twice is recorded once; one for a stale split not at all.
    assert!(
        s.change_rollout("bot", "a", &rollback(&t))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.change_rollout("bot", "old", &rollback(&t))
            .await
            .unwrap()
            .is_none()
    );
    let log = s
        .list_audit_log(
            &t,
            &AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    let kinds: Vec<&str> = log.items.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["rollout_rolled_back"]);
    assert_eq!(log.items[0].detail["from"], "v2");
    assert_eq!(log.items[0].run_id, None);

    // A new split starts afresh.
    let fresh = s.sync_rollout(&seed("b", Some("v3"), 50.0)).await.unwrap();
    assert_eq!(fresh.phase, RolloutPhase::Active);
    assert_eq!(fresh.canary.as_deref(), Some("v3"));
    assert_eq!(fresh.percent, 50.0);
}

async fn finish(s: &dyn Store, t: &TenantId, version: &str, failed: bool) {
    let new = agentd_core::NewRun {
        agent: "bot".into(),
        agent_version: Some(version.into()),
        ..new_run("bot")
    };
    let c = s
        .create_run(t, &new, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    assert_eq!(c.journal.run.agent_version.as_deref(), Some(version));
    let outcome = if failed {
        Outcome::Failed {
            error: RunError::new(ErrorCode::ToolError, "boom"),
        }
    } else {
        Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("ok"),
            messages: vec![crate::harness::msg(Role::Assistant, "ok")],
        }
    };
    s.finish_run(&c.lease, &[step(0, StepKind::Llm)], &outcome)
        .await
        .unwrap();
}

pub async fn outcomes_by_version(ctx: &Ctx) {
    let s = ctx.store.as_ref();
    let (a, b) = (tenant("acme"), tenant("other"));
    for failed in [false, false, true] {
        finish(s, &a, "v1", failed).await;
    }
    finish(s, &b, "v2", true).await;
    finish(s, &a, "v2", true).await;
    finish(s, &b, "v2", false).await;
    // Unversioned runs and other agents are not counted.
    let plain = s.create_run(&a, &new_run("bot"), None).await.unwrap().run;
    assert_eq!(plain.agent_version, None);

    let stats = s.version_stats("bot", 0).await.unwrap();
    let by: Vec<(&str, u64, u64, u64)> = stats
        .iter()
        .map(|v| (v.version.as_str(), v.runs, v.succeeded, v.failed))
        .collect();
    assert_eq!(by, [("v1", 3, 2, 1), ("v2", 3, 1, 2)]);
    let v1 = &stats[0];
    assert!((v1.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!(v1.mean_cost_usd > 0.0, "{v1:?}");

    // The latest two of v2: one failure, one success.
    let o = s.version_outcomes("bot", "v2", 0, 2).await.unwrap();
    assert_eq!((o.finished, o.failed), (2, 1));
    let o = s.version_outcomes("bot", "v2", 0, 50).await.unwrap();
    assert_eq!((o.finished, o.failed), (3, 2));
    // Only runs since the split started count.
    let later = agentd_core::now_millis() + 60_000;
    let o = s.version_outcomes("bot", "v2", later, 50).await.unwrap();
    assert_eq!((o.finished, o.failed), (0, 0));
    assert!(s.version_stats("bot", later).await.unwrap().is_empty());
}
