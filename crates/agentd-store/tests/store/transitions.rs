//! Caller transitions: resume and cancel.

use crate::harness::running;
use crate::harness::{Ctx, claim, new_run, pause, principal, step, tenant, waiting};
use agentd_core::{ErrorCode, RunId, RunStatus, StepKind, StepStatus};
use agentd_store::{Outcome, StoreError, Transition};
use std::time::Duration;

pub async fn pause_and_resume(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let bob = principal("bob");
    let c = running(s, &t).await;
    let id = c.lease.run_id;
    let p = pause("ship it?", 1);
    let paused = s
        .pause_run(&c.lease, &[step(0, StepKind::Llm), waiting(1)], &p)
        .await
        .unwrap();
    assert_eq!(paused.status, RunStatus::Paused);
    assert_eq!(paused.pause, Some(p.clone()));
    assert_eq!(paused.steps, 2);
    assert_eq!(s.get_run(&t, id).await.unwrap(), Some(paused));
    // Paused runs are not claimable, and the lease has ended.
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    assert!(matches!(
        s.append_steps(&c.lease, &[step(2, StepKind::Llm)], Duration::from_secs(60))
            .await,
        Err(StoreError::LeaseLost { .. })
    ));

    let answer = serde_json::json!({ "approve": true });
    let t1 = s.resume_run(&t, id, &answer, &bob, None).await.unwrap();
    let Transition::Done(run, None) = t1 else {
        panic!("resume: {t1:?}");
    };
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.pause, None);
    let steps = s.list_steps(&t, id, None, 10).await.unwrap().unwrap().items;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].status, StepStatus::Completed);
    assert_eq!(steps[1].output, answer);
    assert!(steps[1].duration_ms < 60_000);
    assert_eq!(steps[0], step(0, StepKind::Llm).step);

    // Only a paused run can be resumed.
    assert!(matches!(
        s.resume_run(&t, id, &answer, &bob, None).await.unwrap(),
        Transition::Conflict(RunStatus::Queued)
    ));
    assert!(matches!(
        s.resume_run(&t, RunId::new(), &answer, &bob, None)
            .await
            .unwrap(),
        Transition::NotFound
    ));
    let c2 = s.claim_next(&claim("w2")).await.unwrap().unwrap();
    assert_eq!(c2.lease.run_id, id);
    assert_eq!(c2.journal.steps, steps);
    assert_eq!(c2.journal.run.attempt, 1);
    assert!(matches!(
        s.resume_run(&t, id, &answer, &bob, Some(&claim("w3")))
            .await
            .unwrap(),
        Transition::Conflict(RunStatus::Running)
    ));
    let done = s
        .finish_run(
            &c2.lease,
            &[step(2, StepKind::Llm)],
            &Outcome::Succeeded {
                output_json: None,
                output: serde_json::json!("shipped"),
                messages: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(done.steps, 3);
    assert!(matches!(
        s.resume_run(&t, id, &answer, &bob, None).await.unwrap(),
        Transition::Conflict(RunStatus::Succeeded)
    ));
}

pub async fn resume_with_claim(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let c = running(s, &t).await;
    let id = c.lease.run_id;
    s.pause_run(&c.lease, &[waiting(0)], &pause("name?", 0))
        .await
        .unwrap();
    let commits = s.commits();
    let t1 = s
        .resume_run(
            &t,
            id,
            &serde_json::json!("Ada"),
            &principal("bob"),
            Some(&claim("node-2")),
        )
        .await
        .unwrap();
    // One commit for the answer and the claim.
    assert_eq!(s.commits(), commits + 1);
    let Transition::Done(run, Some(claimed)) = t1 else {
        panic!("resume with claim: {t1:?}");
    };
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(claimed.journal.run, run);
    assert_eq!(claimed.lease.run_id, id);
    assert!(claimed.lease.token > c.lease.token);
    assert_eq!(claimed.journal.steps.len(), 1);
    assert_eq!(claimed.journal.steps[0].status, StepStatus::Completed);
    assert_eq!(claimed.journal.steps[0].output, serde_json::json!("Ada"));
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    let events: Vec<_> = s
        .list_audit(&t, id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.event, e.actor))
        .collect();
    assert_eq!(
        events,
        [
            "created:alice",
            "claimed:w",
            "paused:agent",
            "resumed:bob",
            "claimed:node-2"
        ]
    );
    s.finish_run(
        &claimed.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("hi Ada"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
}

pub async fn cancel_states(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let bob = principal("bob");
    let cancelled = |tr: Transition| match tr {
        Transition::Done(run, None) => {
            assert_eq!(run.status, RunStatus::Cancelled);
            let e = run.error.clone().expect("a cancelled run has an error");
            assert_eq!(e.code, ErrorCode::Cancelled);
            assert!(e.message.contains("bob"), "{}", e.message);
            run
        }
        other => panic!("expected a cancel, got {other:?}"),
    };

    // Queued.
    let queued = s.create_run(&t, &new_run("a"), None).await.unwrap().run;
    cancelled(s.cancel_run(&t, queued.id, &bob).await.unwrap());
    assert!(
        s.claim_run(&t, queued.id, &claim("w"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());

    // Running: the lease is revoked.
    let in_flight = running(s, &t).await;
    cancelled(
        s.cancel_run(&t, in_flight.lease.run_id, &bob)
            .await
            .unwrap(),
    );
    assert!(matches!(
        s.append_steps(
            &in_flight.lease,
            &[step(0, StepKind::Llm)],
            Duration::from_secs(60)
        )
        .await,
        Err(StoreError::LeaseLost { .. })
    ));

    // Paused: the pause is gone and it cannot be resumed.
    let paused = running(s, &t).await;
    s.pause_run(&paused.lease, &[waiting(0)], &pause("?", 0))
        .await
        .unwrap();
    let run = cancelled(s.cancel_run(&t, paused.lease.run_id, &bob).await.unwrap());
    assert_eq!(run.pause, None);
    assert_eq!(
        s.get_run(&t, run.id).await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );
    assert!(matches!(
        s.resume_run(&t, run.id, &serde_json::json!("x"), &bob, None)
            .await
            .unwrap(),
        Transition::Conflict(RunStatus::Cancelled)
    ));

    // Finished or already cancelled: conflict, nothing written.
    let done = running(s, &t).await;
    s.finish_run(
        &done.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("ok"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    let commits = s.commits();
    assert!(matches!(
        s.cancel_run(&t, done.lease.run_id, &bob).await.unwrap(),
        Transition::Conflict(RunStatus::Succeeded)
    ));
    assert!(matches!(
        s.cancel_run(&t, queued.id, &bob).await.unwrap(),
        Transition::Conflict(RunStatus::Cancelled)
    ));
    assert!(matches!(
        s.cancel_run(&t, RunId::new(), &bob).await.unwrap(),
        Transition::NotFound
    ));
    assert_eq!(s.commits(), commits);
    let audit = s.list_audit(&t, queued.id).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(events, [("created", "alice"), ("cancelled", "bob")]);
}

pub async fn retry_dead_and_requeue(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let ops = principal("ops");
    let c = running(s, &t).await;
    let id = c.lease.run_id;
    let error = agentd_core::RunError::new(ErrorCode::ProviderError, "provider m: 503");

    // A retry keeps the steps done so far, queues the next attempt after
    // the delay, and ends the lease.
    let retry = Outcome::Retry {
        error: error.clone(),
        delay: Duration::from_millis(400),
    };
    let queued = s
        .finish_run(&c.lease, &[step(0, StepKind::Llm)], &retry)
        .await
        .unwrap();
    assert_eq!(queued.status, RunStatus::Queued);
    assert_eq!(queued.attempt, 2);
    assert_eq!(queued.steps, 1);
    assert_eq!(queued.error, Some(error.clone()));
    assert!(matches!(
        s.heartbeat(&c.lease, Duration::from_secs(60)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // Not due before its delay; due after.
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    ctx.advance(Duration::from_millis(500)).await;
    let c2 = s.claim_next(&claim("w")).await.unwrap().unwrap();
    assert_eq!(c2.lease.run_id, id);
    assert_eq!(c2.journal.run.attempt, 2, "a due retry is not a lost lease");
    assert_eq!(c2.journal.steps.len(), 1);

    // Dead: out of the queue, journal kept; only a dead run is requeued.
    assert!(matches!(
        s.requeue_dead(&t, id, &ops).await.unwrap(),
        Transition::Conflict(RunStatus::Running)
    ));
    let dead = s
        .finish_run(
            &c2.lease,
            &[step(1, StepKind::Tool)],
            &Outcome::Dead {
                error: error.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(dead.status, RunStatus::Dead);
    assert_eq!(dead.steps, 2);
    assert_eq!(dead.error, Some(error));
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    let filter = agentd_store::RunFilter {
        status: Some(RunStatus::Dead),
        limit: 10,
        ..Default::default()
    };
    let listed = s.list_runs(&t, &filter).await.unwrap().items;
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);

    // Another tenant can neither see nor requeue it.
    let other = tenant("other");
    assert!(s.list_runs(&other, &filter).await.unwrap().items.is_empty());
    assert!(matches!(
        s.requeue_dead(&other, id, &ops).await.unwrap(),
        Transition::NotFound
    ));

    let Transition::Done(requeued, None) = s.requeue_dead(&t, id, &ops).await.unwrap() else {
        panic!("requeue refused");
    };
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(requeued.attempt, 1);
    assert_eq!(requeued.error, None);
    assert_eq!(requeued.steps, 2);
    let c3 = s.claim_next(&claim("w")).await.unwrap().unwrap();
    assert_eq!(c3.journal.steps.len(), 2, "continues from its journal");

    let audit = s.list_audit(&t, id).await.unwrap();
    let events: Vec<&str> = audit.iter().map(|a| a.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "created", "claimed", "retry", "claimed", "dead", "requeued", "claimed"
        ]
    );
    assert_eq!(audit[2].detail["delay_ms"], 400);
    assert_eq!(audit[2].detail["error"]["code"], "provider_error");
    assert_eq!(audit[5].actor, "ops");
}
