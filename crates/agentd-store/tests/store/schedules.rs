//! Schedule ticks: a tick starts one run, recorded with it in one
//! transaction, however many handles (processes) claim it at once.

use crate::harness::{Ctx, claim, new_run, tenant};
use agentd_core::RunStatus;
use agentd_store::{RunFilter, ScheduleTick, Store};
use std::sync::Arc;

const T0: i64 = 1_800_000_000_000;

async fn runs_of(s: &Arc<dyn Store>, t: &str) -> usize {
    s.list_runs(
        &tenant(t),
        &RunFilter {
            limit: 100,
            ..RunFilter::default()
        },
    )
    .await
    .unwrap()
    .items
    .len()
}

/// One run per (schedule, tick): the same tick again, or an older one,
/// creates nothing; a later tick, another schedule and another tenant's
/// schedule of the same name each create theirs. Ticks are listed per
/// tenant with the run each started.
pub async fn a_tick_starts_one_run(ctx: &Ctx) {
    let s = &ctx.store;
    let (acme, other) = (tenant("acme"), tenant("other"));
    let first = new_run("a");
    let created = s
        .create_scheduled_run(&acme, "nightly", T0, &first, Some(&claim("w")), None)
        .await
        .unwrap()
        .expect("the first claim of a tick creates its run");
    assert_eq!(created.run.id, first.id);
    assert_eq!(
        created.run.status,
        RunStatus::Running,
        "claimed in the commit"
    );
    assert!(created.claimed.is_some());

    for at in [T0, T0 - 60_000] {
        let again = s
            .create_scheduled_run(&acme, "nightly", at, &new_run("a"), None, None)
            .await
            .unwrap();
        assert!(again.is_none(), "tick {at} created a second run");
    }
    assert_eq!(runs_of(s, "acme").await, 1, "a refused tick left a run");

    let later = new_run("a");
    s.create_scheduled_run(&acme, "nightly", T0 + 60_000, &later, None, None)
        .await
        .unwrap()
        .expect("a later tick");
    s.create_scheduled_run(&acme, "hourly", T0, &new_run("a"), None, None)
        .await
        .unwrap()
        .expect("another schedule's tick");
    let theirs = new_run("a");
    s.create_scheduled_run(&other, "nightly", T0, &theirs, None, None)
        .await
        .unwrap()
        .expect("another tenant's schedule");

    let ticks = s.schedule_ticks(&acme).await.unwrap();
    assert_eq!(ticks.len(), 2, "{ticks:?}");
    assert_eq!(ticks[1].schedule, "nightly");
    assert_eq!(ticks[1].tick_at, T0 + 60_000);
    assert_eq!(ticks[1].run_id, later.id);
    assert_eq!(
        s.schedule_ticks(&other).await.unwrap(),
        vec![ScheduleTick {
            schedule: "nightly".into(),
            tick_at: T0,
            run_id: theirs.id,
        }]
    );
    assert!(
        s.schedule_ticks(&tenant("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Many handles on one store (three, as three processes would hold)
/// claiming the same ticks at once: each tick creates exactly one run.
pub async fn concurrent_claims_of_a_tick_create_one_run(ctx: &Ctx) {
    let handles = [
        ctx.store.clone(),
        ctx.reopen(None).await,
        ctx.reopen(None).await,
    ];
    for tick in 0..3i64 {
        let mut tasks = Vec::new();
        for i in 0..12 {
            let s = handles[i % handles.len()].clone();
            let claim = (i % 2 == 0).then(|| claim("w"));
            tasks.push(tokio::spawn(async move {
                s.create_scheduled_run(
                    &tenant("acme"),
                    "every",
                    T0 + tick * 1000,
                    &new_run("a"),
                    claim.as_ref(),
                    None,
                )
                .await
            }));
        }
        let mut created = Vec::new();
        for task in tasks {
            if let Some(c) = task.await.unwrap().unwrap() {
                created.push(c.run.id);
            }
        }
        assert_eq!(created.len(), 1, "tick {tick}: {created:?}");
        let ticks = handles[0].schedule_ticks(&tenant("acme")).await.unwrap();
        assert_eq!(ticks[0].run_id, created[0]);
        assert_eq!(ticks[0].tick_at, T0 + tick * 1000);
    }
    assert_eq!(runs_of(&handles[0], "acme").await, 3);
}
