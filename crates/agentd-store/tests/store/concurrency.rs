//! Claimers racing for one queue.

use crate::harness::{Ctx, claim, new_run, tenant};
use agentd_core::RunStatus;
use agentd_store::RunFilter;
use std::collections::HashSet;

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
        assert_eq!(events, ["created", "running"]);
    }
}
