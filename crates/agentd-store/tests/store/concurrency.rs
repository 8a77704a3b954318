//! Claimers racing for one queue.

use crate::harness::{Ctx, claim, new_run, principal, running, step, tenant};
use agentd_core::{RunStatus, StepKind};
use agentd_store::{Outcome, RunFilter, StoreError};
use futures::future::join_all;
use std::collections::HashSet;
use std::time::Duration;

const RUNS: usize = 200;
const CLAIMERS: usize = 8;

pub async fn parallel_claims_are_exclusive(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let mut created = HashSet::new();
    for _ in 0..RUNS {
        created.insert(s.create_run(&t, &new_run("a"), None).await.unwrap().run.id);
    }
    let mut tasks = Vec::new();
    for i in 0..CLAIMERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let req = claim(&format!("w{i}"));
            let mut mine = Vec::new();
            while let Some(c) = s.claim_next(&req).await.unwrap() {
                assert_eq!(c.journal.run.attempt, 1);
                mine.push(c.lease);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    let mut busy = 0;
    for task in tasks {
        let mine = task.await.unwrap();
        busy += usize::from(!mine.is_empty());
        claimed.extend(mine);
    }
    let ids: HashSet<_> = claimed.iter().map(|l| l.run_id).collect();
    assert_eq!(claimed.len(), RUNS, "every run claimed exactly once");
    assert_eq!(ids, created);
    assert!(busy >= 1);
    // Each run was claimed once: first token, first attempt, running.
    let all = s
        .list_runs(
            &t,
            &RunFilter {
                limit: 1000,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), RUNS);
    assert!(
        all.items
            .iter()
            .all(|r| r.status == RunStatus::Running && r.attempt == 1)
    );
    assert!(claimed.iter().all(|l| l.token == 1));
    for l in claimed.iter().take(20) {
        let events: Vec<_> = s
            .list_audit(&t, l.run_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(events, ["created", "claimed"]);
    }
}

const WRITERS: usize = 32;

/// Writes of many runs at once share commits (group commit), and one
/// write's failure (a lost lease, a run id used twice) leaves the others in
/// the same batch untouched.
pub async fn group_commit_batches_and_isolates_writes(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let req = claim("w");

    // Creates at once share commits.
    let c0 = s.commits();
    let runs: Vec<_> = (0..WRITERS).map(|_| new_run("a")).collect();
    let created = join_all(runs.iter().map(|r| s.create_run(&t, r, Some(&req)))).await;
    let mut leases: Vec<_> = created
        .into_iter()
        .map(|c| c.unwrap().claimed.unwrap().lease)
        .collect();
    assert!(
        s.commits() - c0 < WRITERS as u64,
        "{WRITERS} creates took {} commits",
        s.commits() - c0
    );

    // One of them with an id that exists already fails alone.
    let mut runs: Vec<_> = (0..WRITERS).map(|_| new_run("a")).collect();
    runs[WRITERS / 2].id = leases[0].run_id;
    let created = join_all(runs.iter().map(|r| s.create_run(&t, r, Some(&req)))).await;
    for (i, c) in created.into_iter().enumerate() {
        if i == WRITERS / 2 {
            assert!(
                matches!(c, Err(StoreError::Duplicate { .. })),
                "the reused id fails alone: {c:?}"
            );
        } else {
            leases.push(c.unwrap().claimed.unwrap().lease);
        }
    }
    assert_eq!(leases.len(), 2 * WRITERS - 1);

    // Appends at once, one of them on a run cancelled meanwhile.
    let cancelled = leases[3].clone();
    s.cancel_run(&t, cancelled.run_id, &principal("bob"))
        .await
        .unwrap();
    let c1 = s.commits();
    let writes = [step(0, StepKind::Llm), step(1, StepKind::Tool)];
    let appended = join_all(
        leases
            .iter()
            .map(|l| s.append_steps(l, &writes, Duration::from_secs(60))),
    )
    .await;
    for (l, r) in leases.iter().zip(&appended) {
        if l.run_id == cancelled.run_id {
            assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");
        } else {
            assert!(r.is_ok(), "{r:?}");
        }
    }
    assert!(s.commits() - c1 < leases.len() as u64 - 1);

    // Finishes and new creates at once: kinds mixed in one batch.
    let live: Vec<_> = leases
        .iter()
        .filter(|l| l.run_id != cancelled.run_id)
        .collect();
    let outcome = Outcome::Succeeded {
        output_json: None,
        output: serde_json::json!("done"),
        messages: Vec::new(),
    };
    let more: Vec<_> = (0..8).map(|_| new_run("b")).collect();
    let last = [step(2, StepKind::Llm)];
    let (finished, created) = tokio::join!(
        join_all(live.iter().map(|l| s.finish_run(l, &last, &outcome))),
        join_all(more.iter().map(|r| s.create_run(&t, r, None))),
    );
    for (l, r) in live.iter().zip(finished) {
        let run = r.unwrap();
        assert_eq!(
            (run.id, run.status, run.steps),
            (l.run_id, RunStatus::Succeeded, 3)
        );
        assert_eq!(run.output, Some(serde_json::json!("done")));
        assert_eq!(run.usage.input_tokens, 30);
        assert!((run.cost_usd - 0.75).abs() < 1e-9);
        let steps = s.list_steps(&t, l.run_id, None, 10).await.unwrap().unwrap();
        let idx: Vec<u32> = steps.items.iter().map(|s| s.index).collect();
        assert_eq!(idx, [0, 1, 2]);
    }
    for r in created {
        assert_eq!(r.unwrap().run.status, RunStatus::Queued);
    }
    // The cancelled run kept nothing from the refused write.
    let gone = s.get_run(&t, cancelled.run_id).await.unwrap().unwrap();
    assert_eq!((gone.status, gone.steps), (RunStatus::Cancelled, 0));
}

/// `claim_batch` claims up to its limit, oldest first, each run once.
pub async fn claim_batch_fills_free_slots(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(s.create_run(&t, &new_run("a"), None).await.unwrap().run.id);
    }
    let req = claim("w");
    let first = s.claim_batch(&req, 4).await.unwrap();
    let got: Vec<_> = first.iter().map(|c| c.journal.run.id).collect();
    assert_eq!(got, ids[..4]);
    assert!(first.iter().all(|c| c.lease.token == 1
        && c.journal.run.status == RunStatus::Running
        && c.journal.roles == ["user"]));
    let rest = s.claim_batch(&req, 64).await.unwrap();
    let got: Vec<_> = rest.iter().map(|c| c.journal.run.id).collect();
    assert_eq!(got, ids[4..]);
    assert!(s.claim_batch(&req, 64).await.unwrap().is_empty());
}

/// A claimed run whose journal cannot be read is not left leased to
/// nobody: the claim fails and the run is claimable again.
pub async fn a_claim_whose_journal_fails_to_read_gives_the_run_back(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let first = running(s, &t).await;
    s.append_steps(
        &first.lease,
        &[step(0, StepKind::Llm)],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    s.release(&first.lease).await.unwrap();
    ctx.exec(&format!(
        "UPDATE steps SET input = 'not json' WHERE run_id = {}",
        ctx.id_sql(first.lease.run_id)
    ))
    .await;
    assert!(matches!(
        s.claim_batch(&claim("w2"), 8).await,
        Err(StoreError::Corrupt(_))
    ));
    let run = s.get_run(&t, first.lease.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Queued, "given back, not left leased");
}
