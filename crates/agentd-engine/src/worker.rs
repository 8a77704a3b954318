//! The worker pool: `queue.workers` tasks that claim runs and execute them.

use crate::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

impl Engine {
    /// Runs the worker pool until `shutdown` fires. A worker stops claiming
    /// at once; a run in flight finishes its current step and goes back to
    /// the queue.
    pub async fn run_workers(&self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        for n in 0..self.inner.settings.workers {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move { engine.worker_loop(n, shutdown).await });
        }
        tracker.close();
        tracker.wait().await;
    }

    async fn worker_loop(&self, n: u32, shutdown: CancellationToken) {
        let s = &self.inner.settings;
        let mut error_backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.inner.store.claim_next(&s.owner, s.lease).await {
                Ok(Some(claimed)) => {
                    error_backoff = Duration::from_millis(100);
                    self.execute(claimed, &shutdown).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.inner.wake.notified() => {}
                        _ = tokio::time::sleep(s.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(worker = n, error = %e, "claiming a run failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(error_backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
