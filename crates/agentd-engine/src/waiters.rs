//! Callers waiting for a run to stop moving (`wait`, `submit_wait`,
//! `resume_wait`): told at once when the run settles in this process, by
//! polling the store when another process runs it.

use crate::{Engine, Result, RunEventKind, settled};
use agentd_core::{Run, RunId, TenantId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// Callers of `wait`, by run, told when their run pauses or ends.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<HashMap<RunId, Vec<oneshot::Sender<Run>>>>);

impl Waiters {
    /// A new waiter of run `id`.
    fn register(&self, id: RunId) -> oneshot::Receiver<Run> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.0.lock() {
            w.entry(id).or_default().push(tx);
        }
        rx
    }

    /// Drops a finished wait's registration (and any other abandoned one
    /// for the run).
    fn unregister(&self, id: RunId) {
        if let Ok(mut w) = self.0.lock()
            && let Some(list) = w.get_mut(&id)
        {
            list.retain(|s| !s.is_closed());
            if list.is_empty() {
                w.remove(&id);
            }
        }
    }

    /// Hands `run` to everyone waiting for it.
    fn notify(&self, run: &Run) {
        let waiting = self.0.lock().ok().and_then(|mut w| w.remove(&run.id));
        for tx in waiting.into_iter().flatten() {
            let _ = tx.send(run.clone());
        }
    }
}

impl Engine {
    /// Tells waiters and listeners that `run` paused or ended.
    pub(crate) fn settle(&self, run: &Run) {
        self.inner.waiters.notify(run);
        self.emit(run, || RunEventKind::Finished {
            run: Box::new(run.clone()),
        });
    }

    /// Waits until the run stops moving (paused or finished) or `timeout`
    /// passes; returns the run as it is then, `None` if it does not exist.
    pub async fn wait(
        &self,
        tenant: &TenantId,
        id: RunId,
        timeout: Duration,
    ) -> Result<Option<Run>> {
        let mut rx = self.register_waiter(id);
        let result = self
            .wait_registered(tenant, id, timeout, &mut rx, None)
            .await;
        self.unregister_waiter(id);
        result
    }

    pub(crate) fn register_waiter(&self, id: RunId) -> oneshot::Receiver<Run> {
        self.inner.waiters.register(id)
    }

    /// Drops a finished wait's registration (and any other abandoned one for
    /// the run).
    pub(crate) fn unregister_waiter(&self, id: RunId) {
        self.inner.waiters.unregister(id);
    }

    /// Waits on a registered waiter. `known` is the run's state when the
    /// waiter was registered, if the caller has it; otherwise the store is
    /// read first.
    pub(crate) async fn wait_registered(
        &self,
        tenant: &TenantId,
        id: RunId,
        timeout: Duration,
        rx: &mut oneshot::Receiver<Run>,
        mut known: Option<Run>,
    ) -> Result<Option<Run>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Local settlement arrives through `rx`; the store poll covers runs
        // executed by another process.
        let poll = self
            .inner
            .settings
            .poll_interval
            .max(Duration::from_millis(50));
        loop {
            let run = match known.take() {
                Some(run) => run,
                None => match self.inner.store.get_run(tenant, id).await? {
                    Some(run) => run,
                    None => return Ok(None),
                },
            };
            if settled(run.status) || tokio::time::Instant::now() >= deadline {
                return Ok(Some(run));
            }
            let next_poll = (tokio::time::Instant::now() + poll).min(deadline);
            tokio::select! {
                r = &mut *rx => {
                    if let Ok(run) = r && run.tenant == *tenant {
                        return Ok(Some(run));
                    }
                    // The sender was dropped: poll until the deadline.
                    tokio::time::sleep_until(next_poll).await;
                }
                _ = tokio::time::sleep_until(next_poll) => {}
            }
        }
    }
}
