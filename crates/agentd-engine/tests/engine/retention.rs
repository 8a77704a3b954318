//! The retention task: its schedule under paused time with a fake purge,
//! and one pass on a real store.

use crate::helpers::{W1_SCRIPT, spawn_engine};
use agentd_engine::retention::{Retention, run_purger, run_retention};
use agentd_store::StoreError;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A purge that records when it was called and with what, answering from
/// a script (then `Ok(0)`), each call taking `latency`.
#[derive(Clone)]
struct FakePurge {
    start: Instant,
    latency: Duration,
    calls: Arc<Mutex<Vec<(Duration, Duration, u32)>>>,
    script: Arc<Mutex<VecDeque<Result<u64, StoreError>>>>,
}

impl FakePurge {
    fn new(latency: Duration, script: Vec<Result<u64, StoreError>>) -> Self {
        Self {
            start: Instant::now(),
            latency,
            calls: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        }
    }

    fn purge(
        &self,
    ) -> impl FnMut(Duration, u32) -> futures::future::BoxFuture<'static, Result<u64, StoreError>> + use<>
    {
        let this = self.clone();
        move |older_than, batch| {
            let this = this.clone();
            Box::pin(async move {
                let at = this.start.elapsed();
                lock(&this.calls).push((at, older_than, batch));
                tokio::time::sleep(this.latency).await;
                lock(&this.script).pop_front().unwrap_or(Ok(0))
            })
        }
    }

    /// Seconds since the start at which purge calls began.
    fn times(&self) -> Vec<u64> {
        lock(&self.calls)
            .iter()
            .map(|(at, _, _)| at.as_secs())
            .collect()
    }
}

/// The mutex's data; a panicked holder already failed the test.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn the_schedule_is_a_tenth_of_the_ttl_between_a_second_and_an_hour() {
    let day = Duration::from_secs(86_400);
    assert_eq!(Retention::for_ttl(7 * day).every, Duration::from_secs(3600));
    assert_eq!(
        Retention::for_ttl(Duration::from_secs(100)).every,
        Duration::from_secs(10)
    );
    assert_eq!(
        Retention::for_ttl(Duration::from_secs(5)).every,
        Duration::from_secs(1)
    );
    let r = Retention::for_ttl(day);
    assert_eq!(
        (r.ttl, r.batch),
        (day, agentd_engine::retention::DEFAULT_BATCH)
    );
}

#[tokio::test(start_paused = true)]
async fn passes_run_at_start_then_every_interval_in_batches_until_shutdown() {
    // Arrange: the first pass finds 5 runs (batches of 2), the second fails.
    let fake = FakePurge::new(
        Duration::ZERO,
        vec![Ok(2), Ok(2), Ok(1), Err(StoreError::Closed)],
    );
    let retention = Retention {
        ttl: Duration::from_secs(100),
        every: Duration::from_secs(10),
        batch: 2,
    };
    let token = CancellationToken::new();
    let task = tokio::spawn(run_purger(retention, fake.purge(), token.clone()));

    // Act + Assert: a pass at once, batch after batch until one is short.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(fake.times(), [0, 0, 0]);
    assert!(
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .all(|(_, older_than, batch)| (*older_than, *batch) == (retention.ttl, 2))
    );
    // Nothing until the interval passes; then one call per pass (the
    // failure does not stop the schedule).
    tokio::time::sleep(Duration::from_millis(9_990)).await;
    assert_eq!(fake.times().len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fake.times(), [0, 0, 0, 10]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(fake.times(), [0, 0, 0, 10, 20]);

    // Shutdown ends the task; no pass runs after it.
    token.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("the purger stops on shutdown")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fake.times().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_a_long_pass_between_batches() {
    // Every batch is full and takes a second: the pass would never end.
    let fake = FakePurge::new(Duration::from_secs(1), (0..1000).map(|_| Ok(2)).collect());
    let retention = Retention {
        ttl: Duration::from_secs(60),
        every: Duration::from_secs(6),
        batch: 2,
    };
    let token = CancellationToken::new();
    let task = tokio::spawn(run_purger(retention, fake.purge(), token.clone()));

    tokio::time::sleep(Duration::from_millis(3_500)).await;
    token.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the purger stops after the batch in flight")
        .unwrap();
    // Batches began at 0, 1, 2 and 3 s; the one in flight finished, no more.
    assert_eq!(fake.times(), [0, 1, 2, 3]);
}

#[tokio::test]
async fn the_task_purges_finished_runs_from_a_real_store() -> anyhow::Result<()> {
    let t = spawn_engine(&format!(
        "[providers.m]\nkind = \"mock\"\nscript = {W1_SCRIPT}\n\n\
         [[agents]]\nname = \"w1\"\nproviders = [\"m\"]\ntools = [\"echo\"]\n"
    ))
    .await?;
    let done = t.submit("w1", "x").await?;
    t.drive(done.id).await?;
    let queued = t.submit("w1", "y").await?;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let token = CancellationToken::new();
    let retention = Retention {
        ttl: Duration::from_millis(10),
        every: Duration::from_secs(3600),
        batch: 10,
    };
    let task = tokio::spawn(run_retention(t.store.clone(), retention, token.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.store.get_run(&t.who.tenant, done.id).await?.is_some() {
        anyhow::ensure!(Instant::now() < deadline, "the finished run was not purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    task.await?;
    // The queued run is not finished: it stays.
    assert!(t.store.get_run(&t.who.tenant, queued.id).await?.is_some());
    Ok(())
}
