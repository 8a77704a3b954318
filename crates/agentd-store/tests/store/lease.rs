//! Writes under a lease, fencing, expiry and release.

use crate::harness::{Ctx, claim, new_run, pause, principal, running, step, tenant, waiting};
use agentd_core::{ErrorCode, RunError, RunStatus, StepKind};
use agentd_store::{ClaimRequest, Lease, Outcome, Store, StoreError, Transition};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_secs(2);

fn lost<T: std::fmt::Debug>(r: agentd_store::Result<T>, run: agentd_core::RunId) {
    match r {
        Err(StoreError::LeaseLost { run: r }) => assert_eq!(r, run),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}

/// Every write a worker can make with `lease` fails and changes nothing.
async fn fenced_out(s: &dyn Store, lease: &Lease) {
    let t = &lease.tenant;
    let before = s.get_run(t, lease.run_id).await.unwrap().unwrap();
    let steps_before = s
        .list_steps(t, lease.run_id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    let commits = s.commits();
    let next = before.steps;
    lost(
        s.append_steps(lease, &[step(next, StepKind::Llm)], LEASE)
            .await,
        lease.run_id,
    );
    lost(s.append_steps(lease, &[], LEASE).await, lease.run_id);
    lost(
        s.pause_run(lease, &[waiting(next)], &pause("?", next))
            .await,
        lease.run_id,
    );
    lost(s.pause_run(lease, &[], &pause("?", 0)).await, lease.run_id);
    lost(
        s.finish_run(
            lease,
            &[step(next, StepKind::Llm)],
            &Outcome::Succeeded {
                output_json: None,
                output: serde_json::json!("x"),
                messages: vec![],
            },
        )
        .await,
        lease.run_id,
    );
    lost(
        s.finish_run(
            lease,
            &[],
            &Outcome::Failed {
                error: RunError::new(ErrorCode::Internal, "x"),
            },
        )
        .await,
        lease.run_id,
    );
    // Releasing a lost lease is a no-op.
    s.release(lease).await.unwrap();
    assert_eq!(s.get_run(t, lease.run_id).await.unwrap().unwrap(), before);
    let steps_after = s
        .list_steps(t, lease.run_id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(steps_after, steps_before);
    assert_eq!(s.commits(), commits);
}

pub async fn journal_under_lease(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let c = s.claim_run(&t, id, &claim("w")).await.unwrap().unwrap();
    let l = &c.lease;

    let w0 = step(0, StepKind::Llm);
    s.append_steps(l, std::slice::from_ref(&w0), LEASE)
        .await
        .unwrap();
    let run = s.get_run(&t, id).await.unwrap().unwrap();
    assert_eq!(run.steps, 1);
    assert_eq!((run.usage.input_tokens, run.usage.output_tokens), (10, 5));
    assert!((run.cost_usd - 0.25).abs() < 1e-9);
    // An empty append only checks the lease.
    s.append_steps(l, &[], LEASE).await.unwrap();

    let (w1, w2) = (step(1, StepKind::Tool), step(2, StepKind::Llm));
    s.append_steps(l, &[w1.clone(), w2.clone()], LEASE)
        .await
        .unwrap();
    let all = s.list_steps(&t, id, None, 100).await.unwrap().unwrap();
    assert_eq!(all.items, vec![w0.step, w1.step.clone(), w2.step]);
    assert_eq!(all.next_cursor, None);
    let page = s.list_steps(&t, id, Some(0), 1).await.unwrap().unwrap();
    assert_eq!(page.items, vec![w1.step]);
    assert_eq!(page.next_cursor.as_deref(), Some("1"));
    let run = s.get_run(&t, id).await.unwrap().unwrap();
    assert_eq!(run.steps, 3);
    assert_eq!((run.usage.input_tokens, run.usage.output_tokens), (30, 15));

    let w3 = step(3, StepKind::Llm);
    let done = s
        .finish_run(
            l,
            std::slice::from_ref(&w3),
            &Outcome::Succeeded {
                output_json: None,
                output: serde_json::json!({ "answer": 42 }),
                messages: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(serde_json::json!({ "answer": 42 })));
    assert_eq!(done.error, None);
    assert_eq!(done.steps, 4);
    assert!((done.cost_usd - 1.0).abs() < 1e-9);
    assert_eq!(s.get_run(&t, id).await.unwrap(), Some(done));
    // The lease ended with the run.
    fenced_out(s.as_ref(), l).await;

    // A failed run keeps its error, and the audit says why.
    let c = running(s, &t).await;
    let error = RunError::new(ErrorCode::BudgetExceeded, "spent");
    let failed = s
        .finish_run(
            &c.lease,
            &[step(0, StepKind::Llm)],
            &Outcome::Failed {
                error: error.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error, Some(error.clone()));
    assert_eq!(failed.output, None);
    assert_eq!(failed.steps, 1);
    let audit = s.list_audit(&t, failed.id).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor.as_str()),
        ("failed", "agent")
    );
    assert_eq!(
        last.detail,
        serde_json::json!({ "error": serde_json::to_value(&error).unwrap() })
    );
}

pub async fn fencing_after_cancel(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let c = running(s, &t).await;
    s.append_steps(&c.lease, &[step(0, StepKind::Llm)], LEASE)
        .await
        .unwrap();
    let t2 = s
        .cancel_run(&t, c.lease.run_id, &principal("bob"))
        .await
        .unwrap();
    let Transition::Done(run, None) = t2 else {
        panic!("cancel: {t2:?}");
    };
    assert_eq!(run.status, RunStatus::Cancelled);
    fenced_out(s.as_ref(), &c.lease).await;
    let run = s.get_run(&t, c.lease.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.steps, 1);
}

pub async fn lease_expiry_reclaim(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    // PostgreSQL's clock cannot be moved: its test waits the lease out.
    let short = ClaimRequest::new("w1", SHORT);
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let first = s.claim_next(&short).await.unwrap().unwrap();
    assert_eq!(first.lease.run_id, id);
    s.append_steps(&first.lease, &[step(0, StepKind::Llm)], SHORT)
        .await
        .unwrap();
    // Not before the lease runs out.
    assert!(s.claim_next(&claim("w2")).await.unwrap().is_none());
    assert!(s.claim_run(&t, id, &claim("w2")).await.unwrap().is_none());

    ctx.advance(SHORT + Duration::from_millis(300)).await;
    let second = s
        .claim_next(&claim("w2"))
        .await
        .unwrap()
        .expect("reclaimed");
    assert_eq!(second.lease.run_id, id);
    assert!(second.lease.token > first.lease.token);
    assert_eq!(second.journal.run.attempt, 2);
    assert_eq!(second.journal.run.status, RunStatus::Running);
    // The journal written under the old lease is kept.
    assert_eq!(second.journal.steps.len(), 1);
    assert_eq!(second.journal.steps[0], step(0, StepKind::Llm).step);

    // The old worker is fenced out; the new one writes.
    fenced_out(s.as_ref(), &first.lease).await;
    s.append_steps(&second.lease, &[step(1, StepKind::Tool)], LEASE)
        .await
        .unwrap();
    let done = s
        .finish_run(
            &second.lease,
            &[],
            &Outcome::Succeeded {
                output_json: None,
                output: serde_json::json!("ok"),
                messages: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.steps, done.attempt),
        (RunStatus::Succeeded, 2, 2)
    );
    let events: Vec<_> = s
        .list_audit(&t, id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor))
        .collect();
    let want = [
        ("created", "alice"),
        ("claimed", "w1"),
        ("reclaimed", "w2"),
        ("succeeded", "agent"),
    ]
    .map(|(e, a)| (e.to_string(), a.to_string()));
    assert_eq!(events, want);
}

pub async fn release_and_release_owner(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let c = s.claim_next(&claim("w1")).await.unwrap().unwrap();
    let commits = s.commits();
    s.release(&c.lease).await.unwrap();
    assert_eq!(s.commits(), commits + 1);
    let run = s.get_run(&t, id).await.unwrap().unwrap();
    assert_eq!((run.status, run.attempt), (RunStatus::Queued, 1));
    fenced_out(s.as_ref(), &c.lease).await;
    // Due at once; a graceful release is not a new attempt.
    let again = s.claim_next(&claim("w2")).await.unwrap().unwrap();
    assert_eq!(again.lease.run_id, id);
    assert_eq!(again.journal.run.attempt, 1);
    assert!(again.lease.token > c.lease.token);

    // release_owner frees every lease of one owner, as a new attempt.
    let mut mine = Vec::new();
    for _ in 0..2 {
        let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
        let c = s.claim_run(&t, id, &claim("w1")).await.unwrap().unwrap();
        mine.push(c);
    }
    let theirs = s
        .create_run(&t, &new_run("a"), Some(&claim("w3")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    let commits = s.commits();
    assert_eq!(s.release_owner("w1").await.unwrap(), 2);
    assert_eq!(s.commits(), commits + 1);
    for c in &mine {
        let run = s.get_run(&t, c.lease.run_id).await.unwrap().unwrap();
        assert_eq!((run.status, run.attempt), (RunStatus::Queued, 2));
        fenced_out(s.as_ref(), &c.lease).await;
    }
    let run = s.get_run(&t, theirs.lease.run_id).await.unwrap().unwrap();
    assert_eq!((run.status, run.attempt), (RunStatus::Running, 1));
    assert_eq!(s.release_owner("w1").await.unwrap(), 0);
    assert_eq!(s.release_owner("nobody").await.unwrap(), 0);
    assert_eq!(s.commits(), commits + 1);
    // The released runs are claimable again, in order.
    for c in &mine {
        let next = s.claim_next(&claim("w4")).await.unwrap().unwrap();
        assert_eq!(next.lease.run_id, c.lease.run_id);
        assert_eq!(next.journal.run.attempt, 2);
    }
}

/// A heartbeat extends a held lease and fails once the lease is gone.
pub async fn heartbeat_extends_only_a_held_lease(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let claimed = running(s, &t).await;
    s.heartbeat(&claimed.lease, LEASE).await.unwrap();
    s.cancel_run(&t, claimed.lease.run_id, &principal("bob"))
        .await
        .unwrap();
    let after = s.heartbeat(&claimed.lease, LEASE).await;
    assert!(
        matches!(after, Err(StoreError::LeaseLost { .. })),
        "{after:?}"
    );
}
