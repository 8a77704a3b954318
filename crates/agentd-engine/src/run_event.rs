//! What happens to a run, as its live events carry it: the value that
//! [`crate::events`] broadcasts in-process and [`crate::remote`] carries
//! between processes.

use agentd_core::{Run, RunId, RunStatus, Step, StepKind, TenantId};
use serde::Serialize;

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
    /// Another process changed the run in the store (journaled steps,
    /// paused or ended it): read it from the store. The feed carries no
    /// step or run content, so a reader gets it through the tenant-scoped
    /// store API.
    Changed,
}

impl RunEvent {
    /// True if after this event the run is paused or done.
    pub fn is_settling(&self) -> bool {
        matches!(self.kind, RunEventKind::Finished { .. })
    }
}
