//! Forking a run from a step: the copied journal prefix, the link to the
//! original, validation, tenant scoping and sealed values.

use crate::harness::{Ctx, claim, keyring, new_run, pause, principal, step, tenant, waiting};
use agentd_core::{ForkOrigin, RunStatus, StepKind, Usage};
use agentd_store::{Outcome, Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

/// A succeeded run of tenant `acme` with steps llm 0, tool 1, llm 2.
async fn finished_run(s: &Arc<dyn Store>) -> agentd_core::Run {
    let t = tenant("acme");
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let c = s.claim_run(&t, id, &claim("w")).await.unwrap().unwrap();
    s.append_steps(
        &c.lease,
        &[step(0, StepKind::Llm), step(1, StepKind::Tool)],
        LEASE,
    )
    .await
    .unwrap();
    s.finish_run(
        &c.lease,
        &[step(2, StepKind::Llm)],
        &Outcome::Succeeded {
            output_json: None,
            output: json!("done"),
            messages: vec![],
        },
    )
    .await
    .unwrap()
}

fn bad_fork<T: std::fmt::Debug>(r: agentd_store::Result<T>) -> String {
    match r {
        Err(e @ StoreError::BadFork(_)) => e.to_string(),
        other => panic!("expected BadFork, got {other:?}"),
    }
}

pub async fn fork_copies_a_journal_prefix(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let source = finished_run(s).await;
    let source_steps = s
        .list_steps(&t, source.id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(source_steps.len(), 3);

    let mut new = new_run("a");
    new.principal = principal("bob");
    new.input = json!({ "text": "try again" });
    let fork = s.fork_run(&t, source.id, 2, &new).await.unwrap().unwrap();
    assert_eq!(fork.id, new.id);
    assert_eq!(fork.status, RunStatus::Queued);
    assert_eq!(fork.steps, 2);
    assert_eq!(fork.input, json!({ "text": "try again" }));
    assert_eq!(fork.conversation_id, None);
    assert_eq!(
        fork.forked_from,
        Some(ForkOrigin {
            run_id: source.id,
            step: 2
        })
    );
    // The copied steps were paid for by the original.
    assert_eq!(fork.usage, Usage::default());
    assert_eq!(fork.cost_usd, 0.0);
    assert_eq!(s.get_run(&t, fork.id).await.unwrap(), Some(fork.clone()));
    let kept = s
        .list_steps(&t, fork.id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(kept, source_steps[..2].to_vec());

    // The original is untouched and links nowhere.
    let after = s.get_run(&t, source.id).await.unwrap().unwrap();
    assert_eq!(after, source);
    assert_eq!(after.forked_from, None);
    let steps_after = s
        .list_steps(&t, source.id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(steps_after, source_steps);

    // The fork's audit trail says who forked what, from where.
    let audit = s.list_audit(&t, fork.id).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(events, vec![("created", "bob"), ("forked", "bob")]);
    assert_eq!(
        audit[1].detail,
        json!({ "from_run": source.id, "from_step": 2 })
    );

    // The fork is queued like any run: a worker claims it with the kept
    // journal and continues at step 2.
    let c = s.claim_next(&claim("w2")).await.unwrap().unwrap();
    assert_eq!(c.journal.run.id, fork.id);
    assert_eq!(c.journal.steps, source_steps[..2].to_vec());
    s.append_steps(&c.lease, &[step(2, StepKind::Llm)], LEASE)
        .await
        .unwrap();
    let grown = s.get_run(&t, fork.id).await.unwrap().unwrap();
    assert_eq!(grown.steps, 3);
    assert_eq!(grown.forked_from, fork.forked_from);

    // From step 0 and from the very end are both forks; past it is not.
    let zero = s
        .fork_run(&t, source.id, 0, &new_run("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zero.steps, 0);
    assert!(
        s.list_steps(&t, zero.id, None, 10)
            .await
            .unwrap()
            .unwrap()
            .items
            .is_empty()
    );
    let end = s
        .fork_run(&t, source.id, 3, &new_run("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.steps, 3);
    let past = new_run("a");
    let message = bad_fork(s.fork_run(&t, source.id, 4, &past).await);
    assert!(message.contains("from_step 4"), "{message}");
    assert_eq!(
        s.get_run(&t, past.id).await.unwrap(),
        None,
        "nothing written"
    );

    // Another tenant's run, or no run, is not found, and nothing is written.
    let other = new_run("a");
    assert_eq!(
        s.fork_run(&tenant("evil"), source.id, 1, &other)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.fork_run(&t, agentd_core::RunId::new(), 0, &other)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_run(&tenant("evil"), other.id).await.unwrap(), None);
    assert_eq!(s.get_run(&t, other.id).await.unwrap(), None);
}

pub async fn fork_keeps_no_waiting_step(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let c = s.claim_run(&t, id, &claim("w")).await.unwrap().unwrap();
    s.pause_run(
        &c.lease,
        &[step(0, StepKind::Llm), waiting(1)],
        &pause("ok?", 1),
    )
    .await
    .unwrap();
    let message = bad_fork(s.fork_run(&t, id, 2, &new_run("a")).await);
    assert!(
        message.contains("step 1") && message.contains("waiting"),
        "{message}"
    );
    // Up to the waiting step is fine: the fork asks again.
    let fork = s.fork_run(&t, id, 1, &new_run("a")).await.unwrap().unwrap();
    assert_eq!(fork.steps, 1);
    assert_eq!(
        s.get_run(&t, id).await.unwrap().unwrap().status,
        RunStatus::Paused
    );
}

pub async fn a_running_run_forks_from_its_completed_steps(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    let c = s.claim_run(&t, id, &claim("w")).await.unwrap().unwrap();
    s.append_steps(&c.lease, &[step(0, StepKind::Llm)], LEASE)
        .await
        .unwrap();
    // Step 1 is in flight (not journaled): only step 0 can be kept.
    bad_fork(s.fork_run(&t, id, 2, &new_run("a")).await);
    let fork = s.fork_run(&t, id, 1, &new_run("a")).await.unwrap().unwrap();
    assert_eq!(fork.steps, 1);
    // The original's worker still holds its lease and goes on.
    s.append_steps(&c.lease, &[step(1, StepKind::Tool)], LEASE)
        .await
        .unwrap();
    let original = s.get_run(&t, id).await.unwrap().unwrap();
    assert_eq!((original.status, original.steps), (RunStatus::Running, 2));
    assert_eq!(s.get_run(&t, fork.id).await.unwrap().unwrap().steps, 1);
}

pub async fn fork_reseals_copied_steps(ctx: &Ctx) {
    // Sealed values are bound to their run: the copies must be sealed for
    // the fork, or they would not open.
    let s = ctx.reopen(Some(keyring(&[("k1", 1)]))).await;
    let t = tenant("acme");
    let source = finished_run(&s).await;
    let fork = s
        .fork_run(&t, source.id, 3, &new_run("a"))
        .await
        .unwrap()
        .unwrap();
    let source_steps = s
        .list_steps(&t, source.id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    let kept = s
        .list_steps(&t, fork.id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(kept, source_steps);
}
