//! Retention: `purge_finished` deletes finished runs older than the TTL,
//! with their journal, audit records and idempotency keys, across tenants,
//! in batches; everything else stays.

use crate::harness::{
    Ctx, claim, conv_run, conversation, msg, new_run, pause, principal, running, step, tenant,
    waiting,
};
use agentd_core::{ErrorCode, IdempotencyKey, Role, RunError, RunId, StepKind, TenantId};
use agentd_store::{Outcome, RunFilter, Store};
use std::collections::BTreeSet;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(1);

async fn ids(s: &dyn Store, t: &TenantId) -> BTreeSet<RunId> {
    let all = RunFilter {
        limit: 100,
        ..RunFilter::default()
    };
    s.list_runs(t, &all)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.id)
        .collect()
}

/// A run of `t` that ran two steps and ended with `outcome`.
async fn finished(
    s: &dyn Store,
    t: &TenantId,
    new: agentd_core::NewRun,
    outcome: Outcome,
) -> RunId {
    let c = s
        .create_run(t, &new, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(
        &c.lease,
        &[step(0, StepKind::Llm), step(1, StepKind::Tool)],
        &outcome,
    )
    .await
    .unwrap();
    c.lease.run_id
}

fn succeeded() -> Outcome {
    Outcome::Succeeded {
        output_json: None,
        output: serde_json::json!("done"),
        messages: vec![msg(Role::User, "hi"), msg(Role::Assistant, "done")],
    }
}

pub async fn purge_finished_runs_older_than_the_ttl(ctx: &Ctx) {
    let s = ctx.store.as_ref();
    let (a, b) = (tenant("acme"), tenant("other"));
    let keyed = agentd_core::NewRun {
        idempotency: Some(IdempotencyKey {
            key: "k-1".into(),
            fingerprint: "f".into(),
        }),
        ..new_run("a")
    };

    // Old: finished in the three ways, and alive in every other state.
    let old_succeeded = finished(s, &a, keyed.clone(), succeeded()).await;
    let old_in_conversation = finished(s, &a, conv_run("a", "c-1"), succeeded()).await;
    let failed = Outcome::Failed {
        error: RunError::new(ErrorCode::ToolError, "boom"),
    };
    let old_failed = finished(s, &a, new_run("a"), failed).await;
    let old_cancelled = s.create_run(&a, &new_run("a"), None).await.unwrap().run.id;
    s.cancel_run(&a, old_cancelled, &principal("bob"))
        .await
        .unwrap();
    let old_other_tenant = finished(s, &b, new_run("b"), succeeded()).await;
    let queued = s.create_run(&a, &new_run("a"), None).await.unwrap().run.id;
    let in_flight = running(&ctx.store, &a).await;
    let paused = running(&ctx.store, &a).await;
    s.pause_run(&paused.lease, &[waiting(0)], &pause("?", 0))
        .await
        .unwrap();
    // Dead runs wait for an operator, however old.
    let dead = finished(s, &a, new_run("a"), succeeded()).await;
    ctx.exec(&format!(
        "UPDATE runs SET status = 'dead' WHERE id = {}",
        ctx.id_sql(dead)
    ))
    .await;

    ctx.advance(TTL + Duration::from_millis(500)).await;
    // Recent: finished within the TTL.
    let recent = finished(s, &a, new_run("a"), succeeded()).await;
    let recent_other_tenant = finished(s, &b, new_run("b"), succeeded()).await;

    let (before_a, before_b) = (ids(s, &a).await, ids(s, &b).await);
    assert_eq!((before_a.len(), before_b.len()), (9, 2));

    // Act: batches of two until one comes back short.
    let mut batches = Vec::new();
    loop {
        let n = s.purge_finished(TTL, 2).await.unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }

    // Five old finished runs, across both tenants, in batches.
    assert_eq!(batches, [2, 2, 1]);
    let gone: BTreeSet<RunId> = [
        old_succeeded,
        old_in_conversation,
        old_failed,
        old_cancelled,
        old_other_tenant,
    ]
    .into();
    let after_a = ids(s, &a).await;
    let after_b = ids(s, &b).await;
    assert_eq!(
        after_a,
        before_a.difference(&gone).copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(after_a.len(), 5);
    assert_eq!(after_b, [recent_other_tenant].into());
    for kept in [
        queued,
        in_flight.lease.run_id,
        paused.lease.run_id,
        dead,
        recent,
    ] {
        assert!(after_a.contains(&kept), "{kept} was purged");
    }

    // Their journal, audit records, idempotency keys and usage went with
    // them.
    for id in &gone {
        let in_table = |table: &str, column: &str| {
            format!(
                "SELECT CAST(count(*) AS TEXT) FROM {table} WHERE {column} = {}",
                ctx.id_sql(*id)
            )
        };
        for (table, column) in [
            ("steps", "run_id"),
            ("audit", "run_id"),
            ("idempotency_keys", "run_id"),
            ("run_provider_usage", "run_id"),
        ] {
            assert_eq!(ctx.texts(&in_table(table, column)).await, ["0"], "{table}");
        }
    }
    assert!(s.list_audit(&a, recent).await.unwrap().len() >= 3);
    assert_eq!(
        ctx.texts(&format!(
            "SELECT CAST(count(*) AS TEXT) FROM run_provider_usage WHERE run_id = {}",
            ctx.id_sql(recent)
        ))
        .await,
        ["1"],
        "a kept run keeps its usage"
    );
    let again = s.create_run(&a, &keyed, None).await.unwrap();
    assert!(!again.replayed, "the purged run's idempotency key is free");
    // The conversation keeps its memory.
    let memory = s
        .list_messages(&a, &conversation("c-1"), None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(memory.len(), 2);
    assert_eq!(memory[0].run_id, old_in_conversation);

    // Nothing more is old enough; a zero TTL takes the recent ones too.
    assert_eq!(s.purge_finished(TTL, 100).await.unwrap(), 0);
    ctx.advance(Duration::from_millis(20)).await;
    assert_eq!(s.purge_finished(Duration::ZERO, 100).await.unwrap(), 2);
    assert_eq!(ids(s, &b).await.len(), 0);
}
