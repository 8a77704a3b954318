//! The queue: claim order, conversation serialization, claims in the
//! creating transaction.

use crate::harness::{Ctx, claim, conv_run, msg, new_run, pause, tenant, waiting};
use agentd_core::{PrincipalId, Role, RunStatus};
use agentd_store::{Outcome, Transition};

pub async fn claim_next_order(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    let mut ids = Vec::new();
    for agent in ["a", "b", "c"] {
        ids.push(
            s.create_run(&t, &new_run(agent), None)
                .await
                .unwrap()
                .run
                .id,
        );
    }
    // Another tenant's run, created last, comes last: the queue is shared.
    let other = s
        .create_run(&tenant("globex"), &new_run("z"), None)
        .await
        .unwrap()
        .run
        .id;
    ids.push(other);
    for want in &ids {
        let c = s.claim_next(&claim("w1")).await.unwrap().expect("a run");
        assert_eq!(c.lease.run_id, *want);
        assert_eq!(c.journal.run.id, *want);
        assert_eq!(c.lease.tenant, c.journal.run.tenant);
        assert_eq!(c.journal.run.status, RunStatus::Running);
        assert_eq!(c.journal.run.attempt, 1);
        assert!(c.lease.token >= 1);
        assert!(c.journal.steps.is_empty());
        assert!(c.journal.history.is_empty());
        let run = s.get_run(&c.lease.tenant, *want).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Running);
    }
    assert!(s.claim_next(&claim("w1")).await.unwrap().is_none());
    // A run already claimed is not claimable by id either.
    assert!(
        s.claim_run(&t, ids[0], &claim("w2"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn conversation_serialization(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let who = PrincipalId::parse("bob").unwrap();
    let x1 = s
        .create_run(&t, &conv_run("a", "x"), None)
        .await
        .unwrap()
        .run
        .id;
    let free = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let x2 = s
        .create_run(&t, &conv_run("a", "x"), None)
        .await
        .unwrap()
        .run
        .id;
    let y1 = s
        .create_run(&t, &conv_run("a", "y"), None)
        .await
        .unwrap()
        .run
        .id;

    let next = || async { s.claim_next(&claim("w")).await.unwrap() };
    let first = next().await.unwrap();
    assert_eq!(first.lease.run_id, x1);
    assert_eq!(next().await.unwrap().lease.run_id, free);
    // x2 waits for x1; y1 is another conversation.
    assert_eq!(next().await.unwrap().lease.run_id, y1);
    assert!(next().await.is_none());
    assert!(s.claim_run(&t, x2, &claim("w")).await.unwrap().is_none());

    // x1 finishes: x2 runs, with x1's messages as its history.
    let said = vec![msg(Role::User, "q1"), msg(Role::Assistant, "a1")];
    s.finish_run(
        &first.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("a1"),
            messages: said.clone(),
        },
    )
    .await
    .unwrap();
    let second = next().await.unwrap();
    assert_eq!(second.lease.run_id, x2);
    assert_eq!(second.journal.history, said);

    // A paused run holds its conversation too: x3 waits, even when created
    // with a claim.
    s.pause_run(&second.lease, &[waiting(0)], &pause("?", 0))
        .await
        .unwrap();
    let x3 = s
        .create_run(&t, &conv_run("a", "x"), Some(&claim("w")))
        .await
        .unwrap();
    assert!(x3.claimed.is_none());
    assert_eq!(x3.run.status, RunStatus::Queued);
    assert!(next().await.is_none());

    // Cancelling x2 lets x3 go.
    assert!(matches!(
        s.cancel_run(&t, x2, &who).await.unwrap(),
        Transition::Done(..)
    ));
    let third = next().await.unwrap();
    assert_eq!(third.lease.run_id, x3.run.id);
    assert_eq!(third.journal.history, said);
}

/// Ids are minted before the insert, so two submits racing on one
/// conversation can commit out of id order: a run with an older id that
/// lands while a newer one is running must still wait for it.
pub async fn conversation_waits_for_a_newer_running_run(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let older = conv_run("a", "z");
    let newer = conv_run("a", "z");
    assert!(older.id < newer.id);

    let running = s
        .create_run(&t, &newer, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .expect("the first run of the conversation starts at once");
    // The creator's roles travel with the claim (tool policies need them).
    assert_eq!(running.journal.roles, vec!["user".to_string()]);
    let late = s.create_run(&t, &older, Some(&claim("w"))).await.unwrap();

    assert!(
        late.claimed.is_none(),
        "two runs of one conversation ran at once"
    );
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    s.finish_run(
        &running.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("done"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.claim_next(&claim("w"))
            .await
            .unwrap()
            .unwrap()
            .lease
            .run_id,
        older.id
    );
}

pub async fn create_with_claim(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let req = claim("node-1");

    // Outside a conversation: claimed at once, in the creating commit.
    let commits = s.commits();
    let new = new_run("a");
    let created = s.create_run(&t, &new, Some(&req)).await.unwrap();
    assert_eq!(s.commits(), commits + 1);
    let c = created.claimed.expect("claimed");
    assert_eq!(created.run.status, RunStatus::Running);
    assert_eq!(c.journal.run, created.run);
    assert_eq!(c.lease.run_id, new.id);
    assert_eq!(c.lease.tenant, t);
    assert_eq!(c.lease.token, 1);
    assert!(c.journal.steps.is_empty() && c.journal.history.is_empty());
    assert_eq!(
        s.get_run(&t, new.id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let audit = s.list_audit(&t, new.id).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(events, [("created", "alice"), ("claimed", "node-1")]);
    // Nothing left to claim.
    assert!(s.claim_next(&req).await.unwrap().is_none());

    // In an idle conversation: claimed at once.
    let first = s
        .create_run(&t, &conv_run("a", "chat"), Some(&req))
        .await
        .unwrap();
    let first = first.claimed.expect("first of its conversation");
    assert_eq!(first.journal.run.status, RunStatus::Running);
    // Behind an active run of its conversation: queued, not claimed.
    let second = s
        .create_run(&t, &conv_run("a", "chat"), Some(&req))
        .await
        .unwrap();
    assert!(second.claimed.is_none());
    assert_eq!(second.run.status, RunStatus::Queued);
    assert!(s.claim_next(&req).await.unwrap().is_none());
    s.finish_run(
        &first.lease,
        &[],
        &Outcome::Failed {
            error: agentd_core::RunError::new(agentd_core::ErrorCode::ToolError, "boom"),
        },
    )
    .await
    .unwrap();
    let next = s.claim_next(&req).await.unwrap().unwrap();
    assert_eq!(next.lease.run_id, second.run.id);
    // A failed run adds nothing to the conversation.
    assert!(next.journal.history.is_empty());
}

/// A run's origin (request id, trace context) comes back with every claim:
/// in the creating commit, from the queue, and for a run without one.
pub async fn origin_travels_with_the_run(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let req = claim("node-1");
    let origin = agentd_core::RunOrigin {
        request_id: Some("req-42".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: Some("vendor=1".into()),
    };
    let traced = |conv: Option<&str>| agentd_core::NewRun {
        origin: origin.clone(),
        ..match conv {
            Some(c) => conv_run("a", c),
            None => new_run("a"),
        }
    };

    // Claimed as it is created (PostgreSQL's batched insert).
    let created = s.create_run(&t, &traced(None), Some(&req)).await.unwrap();
    assert_eq!(created.claimed.unwrap().journal.origin, origin);
    // Claimed from the queue, in whichever process, later: read back.
    let queued = s.create_run(&t, &traced(Some("c")), None).await.unwrap();
    assert!(queued.claimed.is_none());
    let claimed = s.claim_next(&req).await.unwrap().expect("queued run");
    assert_eq!(claimed.lease.run_id, queued.run.id);
    assert_eq!(claimed.journal.origin, origin);
    // None stored, none read.
    s.create_run(&t, &new_run("a"), None).await.unwrap();
    let plain = s.claim_next(&req).await.unwrap().expect("plain run");
    assert_eq!(plain.journal.origin, agentd_core::RunOrigin::default());
}

/// `count_queue_all_tenants`, the `/metrics` gauge: queued and running runs
/// of every tenant; paused and finished ones are not counted.
pub async fn queue_counts_span_tenants(ctx: &Ctx) {
    let s = &ctx.store;
    assert_eq!(
        s.count_queue_all_tenants().await.unwrap(),
        agentd_store::QueueCounts::default()
    );
    for (t, agent) in [
        ("acme", "a"),
        ("acme", "b"),
        ("globex", "c"),
        ("globex", "d"),
    ] {
        s.create_run(&tenant(t), &new_run(agent), None)
            .await
            .unwrap();
    }
    let first = s.claim_next(&claim("w")).await.unwrap().unwrap();
    let second = s.claim_next(&claim("w")).await.unwrap().unwrap();
    s.pause_run(&second.lease, &[waiting(0)], &pause("ok?", 0))
        .await
        .unwrap();
    let counts = s.count_queue_all_tenants().await.unwrap();
    assert_eq!((counts.queued, counts.running), (2, 1));
    s.finish_run(
        &first.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("done"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    let counts = s.count_queue_all_tenants().await.unwrap();
    assert_eq!((counts.queued, counts.running), (2, 0));
}
