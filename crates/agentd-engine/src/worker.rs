//! The worker pool: `queue.workers` slots. Runs submitted in this process
//! take a free slot directly; a claimer fills the others from the queue
//! (runs from other processes, retries, expired leases).

use crate::Engine;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Runs the worker pool until `shutdown` fires. Claiming stops at once;
    /// a run in flight finishes its current step and goes back to the queue.
    /// A step still running after `queue.shutdown_grace` is abandoned (not
    /// journaled) and its run released, so another process redoes it at
    /// once; this returns soon after.
    pub async fn run_workers(&self, shutdown: CancellationToken) {
        let abort = CancellationToken::new();
        if let Ok(mut a) = self.inner.abort.lock() {
            *a = abort.clone();
        }
        if let Ok(mut live) = self.inner.live.lock() {
            *live = Some(shutdown.clone());
        }
        let circuits = {
            let e = self.clone();
            let t = shutdown.clone();
            tokio::spawn(async move { e.share_circuits(t).await })
        };
        self.claim_loop(&shutdown).await;
        let _ = circuits.await;
        if let Ok(mut live) = self.inner.live.lock() {
            *live = None;
        }
        self.inner.tracker.close();
        let grace = self.inner.settings.shutdown_grace;
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "steps still running after the shutdown grace; releasing their runs"
            );
            abort.cancel();
            self.inner.tracker.wait().await;
        }
        self.inner.tracker.reopen();
    }

    /// Claims queued runs while there are any and a slot is free, then
    /// sleeps until this process queues a run, a slot frees up while runs
    /// wait, or the poll interval passes (runs queued by other processes).
    /// It does not hold a slot while it looks, so a free slot stays free for
    /// a run submitted here to start in its creating commit.
    async fn claim_loop(&self, shutdown: &CancellationToken) {
        let s = &self.inner.settings;
        let mut error_backoff = Duration::from_millis(100);
        loop {
            self.inner.backlog.store(false, Ordering::Relaxed);
            loop {
                if self.inner.slots.available_permits() == 0 {
                    // A run finishing will wake us.
                    self.inner.backlog.store(true, Ordering::Relaxed);
                    break;
                }
                // Fill every free slot in one claim.
                let free = self.inner.slots.available_permits() as u32;
                match self.inner.store.claim_batch(&self.inner.claim, free).await {
                    Ok(claimed) if claimed.is_empty() => break,
                    Ok(claimed) => {
                        error_backoff = Duration::from_millis(100);
                        let mut claimed = claimed.into_iter();
                        while let Some(run) = claimed.next() {
                            // A run submitted here may have taken a free
                            // slot meanwhile: the claimed run waits for the
                            // next one.
                            let permit = tokio::select! {
                                p = self.inner.slots.clone().acquire_owned() => match p {
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
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(s.poll_interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
