//! The change feed: SQLite has none; on PostgreSQL, notices of one handle
//! (a process) reach the other handles on the same schema in order, never
//! their sender nor another schema, and survive a lost connection.

use crate::harness::{Backend, Ctx, claim, new_run, tenant};
use agentd_core::{RunId, RunStatus, StepKind};
use agentd_store::{ChangeFeed, FeedItem, Notice, RunChange};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

/// The next item within `within`, or `None`.
async fn next(rx: &mut Receiver<FeedItem>, within: Duration) -> Option<FeedItem> {
    tokio::time::timeout(within, rx.recv())
        .await
        .ok()
        .map(|r| r.unwrap())
}

/// The next notice, skipping gaps and other processes starting to listen;
/// fails after five seconds.
async fn notice(rx: &mut Receiver<FeedItem>) -> Notice {
    loop {
        match next(rx, Duration::from_secs(5)).await {
            Some(FeedItem::Notice(Notice::Listening) | FeedItem::Gap) => {}
            Some(FeedItem::Notice(n)) => return n,
            None => panic!("no notice within 5 s"),
        }
    }
}

/// Asserts no notice (but gaps and processes starting to listen) arrives
/// within `d`.
async fn quiet(rx: &mut Receiver<FeedItem>, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    while let Ok(item) = tokio::time::timeout_at(until, rx.recv()).await {
        match item.unwrap() {
            FeedItem::Notice(Notice::Listening) | FeedItem::Gap => {}
            other => panic!("expected quiet, got {other:?}"),
        }
    }
}

/// Subscribes to `feed` and waits until it listens (its first gap).
async fn listening(feed: &Arc<dyn ChangeFeed>) -> Receiver<FeedItem> {
    let mut rx = feed.subscribe();
    assert_eq!(
        next(&mut rx, Duration::from_secs(10)).await,
        Some(FeedItem::Gap)
    );
    assert!(feed.connected());
    rx
}

fn run_notice(run: RunId, change: RunChange) -> Notice {
    Notice::Run {
        tenant: tenant("acme"),
        run,
        change,
    }
}

pub async fn notices_reach_the_other_processes_of_a_schema_in_order(ctx: &Ctx) {
    if ctx.backend == Backend::Sqlite {
        assert!(ctx.store.feed().is_none());
        return;
    }
    // Arrange: two processes on one schema, one on another schema.
    let a = ctx.store.feed().unwrap();
    let b_store = ctx.reopen(None).await;
    let b = b_store.feed().unwrap();
    let other = ctx.empty_store().await.feed().unwrap();
    let mut at_a = listening(&a).await;
    let mut at_b = listening(&b).await;
    let mut at_other = listening(&other).await;
    let run = RunId::new();
    // Past NOTIFY's 8000 bytes, with multi-byte characters.
    let long: String = "tökens ".chars().cycle().take(6000).collect();

    // Act
    let sent = [
        Notice::Watch {
            tenant: tenant("acme"),
            run,
        },
        run_notice(
            run,
            RunChange::Status {
                status: RunStatus::Running,
            },
        ),
        run_notice(
            run,
            RunChange::StepStarted {
                index: 0,
                kind: StepKind::Llm,
                name: "mock".into(),
            },
        ),
        run_notice(
            run,
            RunChange::Token {
                index: 0,
                text: "the".into(),
            },
        ),
        run_notice(
            run,
            RunChange::Token {
                index: 0,
                text: "the".into(),
            },
        ),
        run_notice(
            run,
            RunChange::Token {
                index: 0,
                text: long.clone(),
            },
        ),
        run_notice(run, RunChange::Stored),
    ];
    for n in sent.iter().cloned() {
        a.publish(n);
    }

    // Assert: all in order at b (equal tokens both; the long one in
    // pieces that concatenate to it), nothing at the sender or elsewhere.
    for want in &sent[..5] {
        assert_eq!(&notice(&mut at_b).await, want);
    }
    let mut joined = String::new();
    while joined.len() < long.len() {
        match notice(&mut at_b).await {
            Notice::Run {
                change: RunChange::Token { index: 0, text },
                ..
            } => joined.push_str(&text),
            other => panic!("expected a token piece, got {other:?}"),
        }
    }
    assert_eq!(joined, long);
    assert_eq!(notice(&mut at_b).await, sent[6]);
    quiet(&mut at_a, Duration::from_millis(300)).await;
    quiet(&mut at_other, Duration::from_millis(10)).await;

    // The store announces a run it queued without a claim, and only then.
    let t = tenant("acme");
    b_store
        .create_run(&t, &new_run("x"), Some(&claim("w")))
        .await
        .unwrap();
    assert_eq!(next(&mut at_a, Duration::from_millis(300)).await, None);
    b_store.create_run(&t, &new_run("x"), None).await.unwrap();
    assert_eq!(notice(&mut at_a).await, Notice::Queued);
}

pub async fn the_listener_recovers_from_a_lost_connection(ctx: &Ctx) {
    let Some(pg) = ctx.pg_store() else {
        return;
    };
    // Arrange: b listens; a listens and publishes.
    let a = ctx.reopen(None).await.feed().unwrap();
    let b = ctx.store.feed().unwrap();
    let mut at_b = listening(&b).await;
    let mut at_a = listening(&a).await;
    a.publish(Notice::Queued);
    assert_eq!(notice(&mut at_b).await, Notice::Queued);

    // Act: the server ends both listening connections (they share the
    // channel's name).
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(pg.feed_channel())
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert_eq!(ended, [true, true]);

    // Assert: both report the gap and listen again; the one back last
    // tells the other (whose own word went out while it was away); then b
    // hears a again.
    let mut told = false;
    for rx in [&mut at_a, &mut at_b] {
        let mut gap = false;
        while let Some(item) = next(rx, Duration::from_secs(if gap { 1 } else { 10 })).await {
            match item {
                FeedItem::Gap => gap = true,
                FeedItem::Notice(Notice::Listening) => told = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(gap);
    }
    assert!(told);
    assert!(a.connected() && b.connected());
    let run = RunId::new();
    a.publish(run_notice(run, RunChange::Stored));
    assert_eq!(notice(&mut at_b).await, run_notice(run, RunChange::Stored));
}
