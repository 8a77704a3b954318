//! Live run events, broadcast in-process to the API (SSE, `wait`) and the CLI.

use agentd_core::{Run, RunId, RunStatus, Step, StepKind, TenantId};
use agentd_store::StepWrite;
use serde::Serialize;
use tokio::sync::broadcast;

/// Something that happened to a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunEvent {
    pub run_id: RunId,
    pub tenant: TenantId,
    #[serde(flatten)]
    pub kind: RunEventKind,
}

/// The event's payload.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEventKind {
    /// The run's status changed (queued, running, paused).
    Status { status: RunStatus },
    /// A step began.
    StepStarted {
        index: u32,
        kind: StepKind,
        name: String,
    },
    /// Text streamed by the model during step `index`.
    Token { index: u32, text: String },
    /// A step is journaled.
    StepCompleted { step: Step },
    /// The run paused or ended: the run object as stored.
    Finished { run: Box<Run> },
}

impl RunEvent {
    /// True if after this event the run is paused or done.
    pub fn is_settling(&self) -> bool {
        matches!(self.kind, RunEventKind::Finished { .. })
    }
}

/// The in-process broadcast of run events. Payloads are built only when
/// someone listens, so an unwatched run pays for no event.
pub(crate) struct EventBus(broadcast::Sender<RunEvent>);

impl EventBus {
    /// A bus keeping up to `capacity` events for slow listeners.
    pub(crate) fn new(capacity: usize) -> Self {
        Self(broadcast::channel(capacity).0)
    }

    /// A new listener.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.0.subscribe()
    }

    /// True while someone listens (then model text is streamed).
    pub(crate) fn listening(&self) -> bool {
        self.0.receiver_count() > 0
    }

    /// Publishes an event of `run`; `kind` runs only if someone listens.
    pub(crate) fn emit(&self, run: &Run, kind: impl FnOnce() -> RunEventKind) {
        if !self.listening() {
            return;
        }
        // A receiver may drop between the check and the send: harmless.
        let _ = self.0.send(RunEvent {
            run_id: run.id,
            tenant: run.tenant.clone(),
            kind: kind(),
        });
    }

    /// Forwards streamed model text of step `index` to listeners.
    pub(crate) fn token(&self, run_id: RunId, tenant: &TenantId, index: u32, text: &str) {
        if !self.listening() {
            return;
        }
        let _ = self.0.send(RunEvent {
            run_id,
            tenant: tenant.clone(),
            kind: RunEventKind::Token {
                index,
                text: text.to_string(),
            },
        });
    }

    /// Announces steps just journaled.
    pub(crate) fn completed(&self, run: &Run, writes: Vec<StepWrite>) {
        for w in writes {
            self.emit(run, || RunEventKind::StepCompleted { step: w.step });
        }
    }
}
