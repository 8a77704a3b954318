//! `if_busy` at run creation ("double-texting"): `enqueue` waits behind the
//! conversation's unfinished runs, `reject` refuses, `interrupt` cancels
//! them in the creating transaction (a running one loses its lease) so the
//! new run can start at once.

use crate::harness::{Ctx, claim, conv_run, pause, step, tenant, waiting};
use agentd_core::{ErrorCode, IfBusy, RunStatus, StepKind};
use agentd_store::{StoreError, Transition};

pub async fn if_busy_rejects_or_interrupts(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let busy = |mode| agentd_core::NewRun {
        if_busy: mode,
        ..conv_run("a", "c")
    };

    // Nothing unfinished: every mode creates.
    let running = s
        .create_run(&t, &busy(IfBusy::Reject), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .expect("claimed at creation");
    // A queued run behind it, and a paused run in another conversation.
    let queued = s
        .create_run(&t, &conv_run("a", "c"), None)
        .await
        .unwrap()
        .run;
    assert_eq!(queued.status, RunStatus::Queued);

    // reject: refused, nothing written.
    let refused = s.create_run(&t, &busy(IfBusy::Reject), None).await;
    match refused {
        Err(StoreError::ConversationBusy {
            conversation, run, ..
        }) => {
            assert_eq!(conversation, "c");
            assert_eq!(run, running.lease.run_id);
        }
        other => panic!("expected ConversationBusy, got {other:?}"),
    }
    // Another tenant's conversation of the same name is not busy.
    let other = s
        .create_run(&tenant("other"), &busy(IfBusy::Reject), None)
        .await
        .unwrap();
    assert!(other.interrupted.is_empty());

    // interrupt: both unfinished runs are cancelled; the new one is claimed
    // in its creating commit.
    let created = s
        .create_run(&t, &busy(IfBusy::Interrupt), Some(&claim("w2")))
        .await
        .unwrap();
    let mut ids: Vec<_> = created.interrupted.iter().map(|r| r.id).collect();
    ids.sort();
    let mut want = vec![running.lease.run_id, queued.id];
    want.sort();
    assert_eq!(ids, want);
    for r in &created.interrupted {
        assert_eq!(r.status, RunStatus::Cancelled);
        let error = r.error.as_ref().expect("an error");
        assert_eq!(error.code, ErrorCode::Cancelled);
        assert!(error.message.contains("interrupted by run"), "{error:?}");
    }
    assert!(created.claimed.is_some(), "the new run starts at once");
    // The interrupted worker's lease is gone: its next write fails.
    let late = s
        .append_steps(
            &running.lease,
            &[step(0, StepKind::Llm)],
            std::time::Duration::from_secs(60),
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
}

pub async fn interrupt_cancels_a_paused_run(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let c = s
        .create_run(&t, &conv_run("a", "p"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    let paused = s
        .pause_run(&c.lease, &[waiting(0)], &pause("ok?", 0))
        .await
        .unwrap();
    assert_eq!(paused.status, RunStatus::Paused);
    let new = agentd_core::NewRun {
        if_busy: IfBusy::Interrupt,
        ..conv_run("a", "p")
    };
    let created = s.create_run(&t, &new, None).await.unwrap();
    assert_eq!(created.interrupted.len(), 1);
    let answered = s
        .resume_run(
            &t,
            c.lease.run_id,
            &serde_json::json!("yes"),
            &c.journal.run.principal,
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(answered, Transition::Conflict(RunStatus::Cancelled)),
        "{answered:?}"
    );
}
