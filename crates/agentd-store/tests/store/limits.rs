//! `rate_limit.max_concurrent_runs_per_tenant`: a capped create counts the
//! tenant's queued and running runs in its own transaction.

use crate::harness::{Ctx, claim, conv_run, new_run, pause, principal, tenant, waiting};
use agentd_core::{IdempotencyKey, NewRun};
use agentd_store::{Created, Result, Store, StoreError, Transition};
use std::sync::Arc;

async fn capped(s: &Arc<dyn Store>, t: &str, run: &NewRun, max: u32) -> Result<Created> {
    s.create_run_capped(&tenant(t), run, None, Some(max)).await
}

fn refused(r: Result<Created>, max: u32) {
    match r {
        Err(StoreError::TooManyActiveRuns { limit }) => assert_eq!(limit, max),
        other => panic!("expected TooManyActiveRuns, got {other:?}"),
    }
}

/// Queued and running runs count, paused and finished ones do not; other
/// tenants are not affected; a refused create leaves nothing behind (not
/// even its idempotency key), and a replayed key is answered at the cap.
pub async fn active_runs_are_capped_per_tenant(ctx: &Ctx) {
    let s = &ctx.store;
    let acme = tenant("acme");
    let keyed = |key: &str| NewRun {
        idempotency: Some(IdempotencyKey {
            key: key.into(),
            fingerprint: "f".into(),
        }),
        ..new_run("a")
    };
    // Arrange: one running, one queued in a conversation, one keyed queued.
    let running = s
        .create_run_capped(&acme, &new_run("a"), Some(&claim("w")), Some(3))
        .await
        .unwrap()
        .claimed
        .unwrap();
    capped(s, "acme", &conv_run("a", "c1"), 3).await.unwrap();
    let first = capped(s, "acme", &keyed("k-1"), 3).await.unwrap();

    // Act + Assert: the fourth is refused, whatever path it takes.
    refused(capped(s, "acme", &new_run("a"), 3).await, 3);
    refused(capped(s, "acme", &conv_run("a", "c2"), 3).await, 3);
    refused(capped(s, "acme", &keyed("k-2"), 3).await, 3);
    let replay = capped(s, "acme", &keyed("k-1"), 3).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.run.id, first.run.id);
    // Another tenant, and an uncapped create, still go through.
    capped(s, "other", &new_run("a"), 3).await.unwrap();
    s.create_run(&acme, &new_run("a"), None).await.unwrap();
    // Four active now: a cap of 5 admits one more, then refuses.
    capped(s, "acme", &new_run("a"), 5).await.unwrap();
    refused(capped(s, "acme", &new_run("a"), 5).await, 5);

    // A paused run leaves the active set: one slot frees.
    s.pause_run(&running.lease, &[waiting(0)], &pause("?", 0))
        .await
        .unwrap();
    let after_pause = capped(s, "acme", &keyed("k-2"), 5).await.unwrap();
    assert!(!after_pause.replayed, "the refused create kept its key");
    refused(capped(s, "acme", &new_run("a"), 5).await, 5);
    // So does a cancelled one.
    let t = s
        .cancel_run(&acme, first.run.id, &principal("bob"))
        .await
        .unwrap();
    assert!(matches!(t, Transition::Done(..)), "{t:?}");
    capped(s, "acme", &new_run("a"), 5).await.unwrap();
    refused(capped(s, "acme", &new_run("a"), 5).await, 5);
    // Answering the paused run queues it again: it counts once more.
    let t = s
        .resume_run(
            &acme,
            running.journal.run.id,
            &serde_json::json!("yes"),
            &principal("bob"),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(t, Transition::Done(..)), "{t:?}");
    refused(capped(s, "acme", &new_run("a"), 6).await, 6);
    capped(s, "acme", &new_run("a"), 7).await.unwrap();
}

/// Capped creates racing through two handles on one store (two processes)
/// never overshoot the cap.
pub async fn concurrent_capped_creates_do_not_overshoot(ctx: &Ctx) {
    const MAX: u32 = 5;
    let handles = [ctx.store.clone(), ctx.reopen(None).await];
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = handles[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            capped(&s, "acme", &new_run("a"), MAX).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::TooManyActiveRuns { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, MAX);
}
