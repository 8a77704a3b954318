//! Live run events, broadcast in-process to the API (SSE, `wait`) and the
//! CLI, and across processes through the store's change feed (see
//! [`crate::remote`]).

use crate::remote::Remote;
use crate::run_event::{RunEvent, RunEventKind};
use agentd_core::{Run, RunId, TenantId};
use agentd_store::{ChangeFeed, StepWrite};
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};

/// The broadcast of run events: to this process's listeners, and to the
/// change feed for runs another process follows. Payloads are built only
/// when someone listens, so an unwatched run pays for no event.
pub(crate) struct EventBus {
    local: broadcast::Sender<RunEvent>,
    /// The cross-process half, on a store with a change feed.
    remote: Option<Arc<Remote>>,
}

impl EventBus {
    /// A bus keeping up to `capacity` events for slow listeners; with a
    /// change feed, also publishing and receiving events of other processes
    /// (a queued run they announce wakes `wake`, the claimer).
    pub(crate) fn new(
        capacity: usize,
        feed: Option<Arc<dyn ChangeFeed>>,
        wake: Arc<Notify>,
    ) -> Self {
        let local = broadcast::channel(capacity).0;
        let remote = feed.map(|feed| Remote::new(feed, local.clone(), wake));
        Self { local, remote }
    }

    /// The cross-process half, if the store has a change feed.
    pub(crate) fn remote(&self) -> Option<&Arc<Remote>> {
        self.remote.as_ref()
    }

    /// Starts receiving other processes' notices (idempotent): the worker
    /// pool and the first listener call it.
    pub(crate) fn start_remote(&self) {
        if let Some(r) = &self.remote {
            r.start();
        }
    }

    /// A new listener: events of this process, and of runs other processes
    /// execute that [`crate::Follow`] asked for.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.start_remote();
        self.local.subscribe()
    }

    /// True while someone in this process listens.
    fn listening(&self) -> bool {
        self.local.receiver_count() > 0
    }

    /// True while another process follows `run`.
    fn watched(&self, run: RunId) -> bool {
        self.remote.as_ref().is_some_and(|r| r.watched(run))
    }

    /// True while someone, here or elsewhere, listens to `run`: its model
    /// text is then streamed.
    pub(crate) fn streaming(&self, run: RunId) -> bool {
        self.listening() || self.watched(run)
    }

    /// Publishes an event of `run`; `kind` runs only if someone listens.
    pub(crate) fn emit(&self, run: &Run, kind: impl FnOnce() -> RunEventKind) {
        self.send(run.id, &run.tenant, kind);
    }

    fn send(&self, run_id: RunId, tenant: &TenantId, kind: impl FnOnce() -> RunEventKind) {
        let (local, watched) = (self.listening(), self.watched(run_id));
        if !local && !watched {
            return;
        }
        let kind = kind();
        if watched && let Some(r) = &self.remote {
            r.publish(run_id, tenant, &kind);
        }
        if local {
            // A receiver may drop between the check and the send: harmless.
            let _ = self.local.send(RunEvent {
                run_id,
                tenant: tenant.clone(),
                kind,
            });
        }
    }

    /// Forwards streamed model text of step `index` to listeners.
    pub(crate) fn token(&self, run_id: RunId, tenant: &TenantId, index: u32, text: &str) {
        self.send(run_id, tenant, || RunEventKind::Token {
            index,
            text: text.to_string(),
        });
    }

    /// Announces steps just journaled: each to this process's listeners,
    /// one notice for all to other processes (they read the steps).
    pub(crate) fn completed(&self, run: &Run, writes: Vec<StepWrite>) {
        if self.watched(run.id)
            && let Some(r) = &self.remote
        {
            r.publish(run.id, &run.tenant, &RunEventKind::Changed);
        }
        if !self.listening() {
            return;
        }
        for w in writes {
            let _ = self.local.send(RunEvent {
                run_id: run.id,
                tenant: run.tenant.clone(),
                kind: RunEventKind::StepCompleted { step: w.step },
            });
        }
    }
}
