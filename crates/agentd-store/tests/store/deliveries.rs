//! Completion webhooks' outbox: the status change that ends or pauses a run
//! writes its deliveries in the same transaction; a delivery worker leases
//! due ones, and an attempt is recorded only under its lease.

use crate::harness::{Ctx, claim, conv_run, new_run, pause, principal, tenant, waiting};
use agentd_core::{Callback, ErrorCode, IfBusy, NewRun, RunError, RunId, TenantId};
use agentd_store::{AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus, Outcome, Store};
use std::sync::Arc;
use std::time::Duration;

fn hooked(run: NewRun) -> NewRun {
    NewRun {
        callbacks: vec![
            Callback {
                url: "http://a.test/hook".into(),
                tool: None,
            },
            Callback {
                url: "http://b.test/hook".into(),
                tool: Some("notify".into()),
            },
        ],
        ..run
    }
}

async fn deliveries(s: &Arc<dyn Store>, t: &TenantId, run: RunId) -> Vec<Delivery> {
    s.list_deliveries(t, run, 100, None)
        .await
        .unwrap()
        .expect("the run exists")
        .items
}

/// Each delivery of `ds`'s events, by URL.
fn events(ds: &[Delivery]) -> Vec<(String, String)> {
    let mut v: Vec<_> = ds
        .iter()
        .map(|d| (d.event.clone(), d.url.clone()))
        .collect();
    v.sort();
    v
}

fn both(event: &str) -> Vec<(String, String)> {
    vec![
        (event.to_string(), "http://a.test/hook".to_string()),
        (event.to_string(), "http://b.test/hook".to_string()),
    ]
}

fn failed() -> Outcome {
    Outcome::Failed {
        error: RunError::new(ErrorCode::Internal, "x"),
    }
}

pub async fn deliveries_enqueued_with_status_change(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");

    // Paused, then succeeded: one delivery per webhook and event.
    let c = s
        .create_run(&t, &hooked(new_run("a")), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    let id = c.lease.run_id;
    assert!(
        deliveries(s, &t, id).await.is_empty(),
        "nothing while running"
    );
    let paused = s
        .pause_run(&c.lease, &[waiting(0)], &pause("ok?", 0))
        .await
        .unwrap();
    let ds = deliveries(s, &t, id).await;
    assert_eq!(events(&ds), both("run.paused"));
    for d in &ds {
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.tenant, t);
        assert_eq!(d.run_id, id);
        assert!(d.id.starts_with("msg_"), "{}", d.id);
        // Written by the status change: its time is the run's.
        assert_eq!(d.created_at, paused.updated_at);
        assert_eq!(d.next_attempt_at, Some(paused.updated_at));
    }
    let tools: Vec<_> = ds.iter().filter_map(|d| d.tool.clone()).collect();
    assert_eq!(tools, ["notify"]);
    let resumed = s
        .resume_run(
            &t,
            id,
            &serde_json::json!("yes"),
            &principal("bob"),
            Some(&claim("w")),
        )
        .await
        .unwrap();
    let agentd_store::Transition::Done(_, Some(c)) = resumed else {
        panic!("resumed and claimed: {resumed:?}")
    };
    // A retry is no event.
    s.finish_run(
        &c.lease,
        &[],
        &Outcome::Retry {
            error: RunError::new(ErrorCode::ProviderError, "x"),
            delay: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(deliveries(s, &t, id).await.len(), 2);
    let c = s.claim_run(&t, id, &claim("w")).await.unwrap().unwrap();
    s.finish_run(
        &c.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("done"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    let mut want = both("run.paused");
    want.extend(both("run.succeeded"));
    assert_eq!(events(&deliveries(s, &t, id).await), want);
    // A lost lease writes neither the status nor a delivery.
    assert!(s.finish_run(&c.lease, &[], &failed()).await.is_err());
    assert_eq!(deliveries(s, &t, id).await.len(), 4);

    // failed, dead, cancelled, and cancelled by an interrupting create.
    let c = s
        .create_run(&t, &hooked(new_run("a")), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(&c.lease, &[], &failed()).await.unwrap();
    assert_eq!(
        events(&deliveries(s, &t, c.lease.run_id).await),
        both("run.failed")
    );
    let c = s
        .create_run(&t, &hooked(new_run("a")), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    let dead = Outcome::Dead {
        error: RunError::new(ErrorCode::ProviderError, "x"),
    };
    s.finish_run(&c.lease, &[], &dead).await.unwrap();
    assert_eq!(
        events(&deliveries(s, &t, c.lease.run_id).await),
        both("run.dead")
    );
    let queued = s
        .create_run(&t, &hooked(new_run("a")), None)
        .await
        .unwrap()
        .run;
    s.cancel_run(&t, queued.id, &principal("bob"))
        .await
        .unwrap();
    assert_eq!(
        events(&deliveries(s, &t, queued.id).await),
        both("run.cancelled")
    );
    let busy = s
        .create_run(&t, &hooked(conv_run("a", "c")), None)
        .await
        .unwrap()
        .run;
    let interrupting = NewRun {
        if_busy: IfBusy::Interrupt,
        ..conv_run("a", "c")
    };
    let created = s.create_run(&t, &interrupting, None).await.unwrap();
    assert_eq!(created.interrupted.len(), 1);
    assert_eq!(
        events(&deliveries(s, &t, busy.id).await),
        both("run.cancelled")
    );
    // The interrupting run names no webhook: cancelling it writes none.
    s.cancel_run(&t, created.run.id, &principal("bob"))
        .await
        .unwrap();
    assert!(deliveries(s, &t, created.run.id).await.is_empty());

    // Another tenant sees neither the run nor its deliveries.
    assert!(
        s.list_deliveries(&tenant("other"), id, 100, None)
            .await
            .unwrap()
            .is_none()
    );
    // Paging: oldest first, a cursor while more remain.
    let page = s.list_deliveries(&t, id, 3, None).await.unwrap().unwrap();
    assert_eq!(page.items.len(), 3);
    let rest = s
        .list_deliveries(&t, id, 3, page.next_cursor.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    assert_eq!(rest.items[0].event, "run.succeeded");
}

/// The store's clock now, epoch ms.
fn now(ctx: &Ctx) -> i64 {
    agentd_core::now_millis() + ctx.offset_ms()
}

fn attempt(
    d: &Delivery,
    owner: &str,
    at: i64,
    code: u16,
    outcome: AttemptOutcome,
) -> DeliveryAttempt {
    DeliveryAttempt {
        tenant: d.tenant.clone(),
        id: d.id.clone(),
        owner: owner.into(),
        at,
        duration_ms: 12,
        status_code: Some(code),
        error: (code >= 300).then(|| format!("status {code}")),
        outcome,
    }
}

pub async fn delivery_claim_lease_and_attempts(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let one = || NewRun {
        callbacks: vec![Callback {
            url: "http://a.test/hook".into(),
            tool: None,
        }],
        ..new_run("a")
    };
    let c = s
        .create_run(&t, &one(), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(&c.lease, &[], &failed()).await.unwrap();
    let lease = Duration::from_secs(1);

    let got = s.claim_deliveries("p1", lease, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    let d = got[0].clone();
    assert_eq!((d.tenant.clone(), d.run_id), (t.clone(), c.lease.run_id));
    // Leased: no one else gets it, and only its holder records an attempt.
    assert!(
        s.claim_deliveries("p2", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let at = now(ctx);
    let retry = AttemptOutcome::RetryAt(at + 1_000);
    assert!(
        !s.record_delivery(&attempt(&d, "p2", at, 500, retry))
            .await
            .unwrap()
    );
    assert!(
        s.record_delivery(&attempt(&d, "p1", at, 500, retry))
            .await
            .unwrap()
    );
    // Recorded once: the lease ended with it.
    assert!(
        !s.record_delivery(&attempt(&d, "p1", at, 500, retry))
            .await
            .unwrap()
    );
    let shown = &deliveries(s, &t, c.lease.run_id).await[0];
    assert_eq!(shown.attempts, 1);
    assert_eq!(shown.last_status_code, Some(500));
    assert_eq!(shown.last_error.as_deref(), Some("status 500"));
    assert_eq!(shown.next_attempt_at, Some(at + 1_000));
    // Not due before its retry time.
    assert!(
        s.claim_deliveries("p2", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    ctx.advance(Duration::from_millis(1_100)).await;
    let again = s.claim_deliveries("p2", lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, d.id, "a retry keeps the delivery's id");
    // p2 dies holding it: after the lease expires another process takes it.
    assert!(
        s.claim_deliveries("p3", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    ctx.advance(Duration::from_millis(1_100)).await;
    let taken = s.claim_deliveries("p3", lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, d.id);
    let late = now(ctx);
    assert!(
        !s.record_delivery(&attempt(&d, "p2", late, 200, AttemptOutcome::Delivered))
            .await
            .unwrap()
    );
    assert!(
        s.record_delivery(&attempt(&d, "p3", late, 204, AttemptOutcome::Delivered))
            .await
            .unwrap()
    );
    let shown = &deliveries(s, &t, c.lease.run_id).await[0];
    assert_eq!(shown.status, DeliveryStatus::Delivered);
    assert_eq!(shown.attempts, 2);
    assert_eq!(shown.last_status_code, Some(204));
    assert_eq!(shown.last_error, None);
    assert_eq!(shown.delivered_at, Some(late));
    assert_eq!(shown.next_attempt_at, None);
    ctx.advance(Duration::from_millis(1_100)).await;
    assert!(
        s.claim_deliveries("p1", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Each attempt is kept.
    let codes = ctx
        .texts(&format!(
            "SELECT CAST(status_code AS TEXT) FROM delivery_attempts WHERE delivery_id = '{}' ORDER BY n",
            d.id
        ))
        .await;
    assert_eq!(codes, ["500", "204"]);

    // Out of retries: failed, never claimed again.
    let c = s
        .create_run(&t, &one(), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(&c.lease, &[], &failed()).await.unwrap();
    let d = s.claim_deliveries("p1", lease, 10).await.unwrap().remove(0);
    assert_eq!(d.run_id, c.lease.run_id);
    assert!(
        s.record_delivery(&attempt(&d, "p1", now(ctx), 410, AttemptOutcome::Failed))
            .await
            .unwrap()
    );
    let shown = &deliveries(s, &t, c.lease.run_id).await[0];
    assert_eq!(shown.status, DeliveryStatus::Failed);
    assert_eq!(shown.next_attempt_at, None);
    ctx.advance(Duration::from_millis(1_100)).await;
    assert!(
        s.claim_deliveries("p1", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Claimers on two handles (two processes on PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`; SQLite's single writer) racing over many due deliveries never
/// lease one delivery twice, and together take them all.
pub async fn concurrent_claimers_split_deliveries(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    for _ in 0..12 {
        let c = s
            .create_run(&t, &hooked(new_run("a")), Some(&claim("w")))
            .await
            .unwrap()
            .claimed
            .unwrap();
        s.finish_run(&c.lease, &[], &failed()).await.unwrap();
    }
    let other = ctx.reopen(None).await;
    let take = |store: Arc<dyn Store>, owner: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store
                .claim_deliveries(owner, Duration::from_secs(60), 3)
                .await
                .unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|d| d.id));
        }
    };
    let (a, b) = tokio::join!(take(s.clone(), "p1"), take(other, "p2"));
    let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
    assert_eq!(all.len(), 24, "p1 took {}, p2 {}", a.len(), b.len());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 24, "a delivery was leased twice");
}
