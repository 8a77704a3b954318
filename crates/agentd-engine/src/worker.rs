//! The worker pool: `queue.workers` slots. Runs submitted in this process
//! take a free slot directly; a claimer fills the others from the queue
//! (runs from other processes, retries, expired leases).

use crate::Engine;
use agentd_store::Claimed;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The worker pool's state: slots, the tasks running in them and the
/// signals between the claimer, submitters and finishing runs.
pub(crate) struct Pool {
    /// One permit per run this process may execute at once.
    pub(crate) slots: Arc<Semaphore>,
    /// Set while `run_workers` runs: its shutdown token. A run submitted or
    /// resumed here then starts at once, claimed in the creating commit.
    pub(crate) live: Mutex<Option<CancellationToken>>,
    /// Fired when shutdown's grace runs out: steps still in flight are
    /// dropped and their runs released. Replaced by each `run_workers`.
    pub(crate) abort: Mutex<CancellationToken>,
    pub(crate) tracker: TaskTracker,
    /// Wakes the claimer when this process queues a run it could not start,
    /// or another process announces one (the store's change feed).
    pub(crate) wake: Arc<Notify>,
    /// Set while runs may wait in the queue for a free slot here: a slot
    /// that frees up then wakes the claimer.
    pub(crate) backlog: AtomicBool,
}

impl Pool {
    /// A pool of `workers` slots, not yet running.
    pub(crate) fn new(workers: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(workers as usize)),
            live: Mutex::new(None),
            abort: Mutex::new(CancellationToken::new()),
            tracker: TaskTracker::new(),
            wake: Arc::new(Notify::new()),
            backlog: AtomicBool::new(false),
        }
    }
}

impl Engine {
    /// Runs the worker pool until `shutdown` fires. Claiming stops at once;
    /// a run in flight finishes its current step and goes back to the queue.
    /// A step still running after `queue.shutdown_grace` is abandoned (not
    /// journaled) and its run released, so another process redoes it at
    /// once; this returns soon after.
    pub async fn run_workers(&self, shutdown: CancellationToken) {
        let abort = CancellationToken::new();
        if let Ok(mut a) = self.inner.pool.abort.lock() {
            *a = abort.clone();
        }
        if let Ok(mut live) = self.inner.pool.live.lock() {
            *live = Some(shutdown.clone());
        }
        // Runs other processes queue wake the claimer at once.
        self.inner.events.start_remote();
        let circuits = {
            let e = self.clone();
            let t = shutdown.clone();
            tokio::spawn(async move { e.share_circuits(t).await })
        };
        // `[[schedules]]`: every process running workers computes the
        // ticks; the store lets one of them start each tick's run.
        let scheduler = {
            let e = self.clone();
            let t = shutdown.clone();
            tokio::spawn(async move { e.run_schedules(t).await })
        };
        // Completion webhooks: every process running workers delivers
        // them; leases in the store keep one delivery to one process.
        let webhooks = {
            let e = self.clone();
            let t = shutdown.clone();
            tokio::spawn(async move { e.deliver_webhooks(t).await })
        };
        // This process in the worker registry while its workers run, steps
        // finishing after the shutdown included: a process that took the
        // node id meanwhile would release their leases.
        let registered = CancellationToken::new();
        let registry = {
            let e = self.clone();
            let t = registered.clone();
            tokio::spawn(async move { e.keep_registered(t).await })
        };
        self.claim_loop(&shutdown).await;
        let _ = circuits.await;
        let _ = scheduler.await;
        let _ = webhooks.await;
        if let Ok(mut live) = self.inner.pool.live.lock() {
            *live = None;
        }
        self.inner.pool.tracker.close();
        let grace = self.inner.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.inner.pool.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "steps still running after the shutdown grace; releasing their runs"
            );
            abort.cancel();
            self.inner.pool.tracker.wait().await;
        }
        // Removed from the registry once no step runs here any more.
        registered.cancel();
        let _ = registry.await;
        self.inner.pool.tracker.reopen();
    }

    /// Claims queued runs while there are any and a slot is free, then
    /// sleeps until this process queues a run, another process announces
    /// one (the store's change feed), a slot frees up while runs wait, or
    /// the poll interval passes (retries coming due, expired leases, and
    /// whatever a lost notice did not announce).
    /// It does not hold a slot while it looks, so a free slot stays free for
    /// a run submitted here to start in its creating commit.
    async fn claim_loop(&self, shutdown: &CancellationToken) {
        let s = &self.inner.settings;
        let mut error_backoff = Duration::from_millis(100);
        loop {
            self.inner.pool.backlog.store(false, Ordering::Relaxed);
            loop {
                if self.inner.pool.slots.available_permits() == 0 {
                    // A run finishing will wake us.
                    self.inner.pool.backlog.store(true, Ordering::Relaxed);
                    break;
                }
                // Fill every free slot in one claim.
                let free = self.inner.pool.slots.available_permits() as u32;
                match self
                    .inner
                    .store
                    .claim_batch(&self.claim_request(), free)
                    .await
                {
                    Ok(claimed) if claimed.is_empty() => break,
                    Ok(claimed) => {
                        error_backoff = Duration::from_millis(100);
                        let mut claimed = claimed.into_iter();
                        while let Some(run) = claimed.next() {
                            // A run submitted here may have taken a free
                            // slot meanwhile: the claimed run waits for the
                            // next one.
                            let permit = tokio::select! {
                                p = self.inner.pool.slots.clone().acquire_owned() => match p {
                                    Ok(p) => p,
                                    Err(_) => return,
                                },
                                _ = shutdown.cancelled() => {
                                    for unstarted in std::iter::once(run).chain(claimed) {
                                        let _ = self.inner.store.release(&unstarted.lease).await;
                                    }
                                    return;
                                }
                            };
                            self.spawn_execute(run, permit, shutdown.clone());
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming a run failed; backing off");
                        tokio::select! {
                            _ = tokio::time::sleep(error_backoff) => {}
                            _ = shutdown.cancelled() => return,
                        }
                        error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            tokio::select! {
                _ = self.inner.pool.wake.notified() => {}
                _ = tokio::time::sleep(s.poll_interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// The token that abandons steps in flight when shutdown's grace ends.
    pub(crate) fn abort_token(&self) -> CancellationToken {
        self.inner
            .pool
            .abort
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// A permit to start a run here at once, if workers run and one is free.
    pub(crate) fn free_slot(&self) -> Option<(OwnedSemaphorePermit, CancellationToken)> {
        let token = self.inner.pool.live.lock().ok()?.clone()?;
        let permit = self.inner.pool.slots.clone().try_acquire_owned().ok()?;
        Some((permit, token))
    }

    /// Executes a claimed run on the worker pool, holding its slot.
    pub(crate) fn spawn_execute(
        &self,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        let engine = self.clone();
        self.inner.pool.tracker.spawn(async move {
            engine.execute(claimed, &shutdown, Some(permit)).await;
            if engine.inner.pool.backlog.load(Ordering::Relaxed) {
                engine.inner.pool.wake.notify_one();
            }
        });
    }

    /// A run was queued that this process did not start: wake the claimer.
    pub(crate) fn queued(&self) {
        self.inner.pool.backlog.store(true, Ordering::Relaxed);
        self.inner.pool.wake.notify_one();
    }
}
