//! One module per step kind, mini-redis style: each executes its step
//! against a [`crate::ctx::RunCtx`], records a finished step in the
//! [`crate::state::RunState`] and returns what happened. The run loop
//! (`crate::run`) commits pauses and endings.

pub(crate) mod approval;
pub(crate) mod guard;
pub(crate) mod llm;
pub(crate) mod tool;

use agentd_core::{Pause, RunError, Step};
use agentd_store::Outcome;

/// What a step did.
pub(crate) enum Happened {
    /// The step is done and recorded in the state, not yet committed: ask
    /// the state what comes next.
    Recorded,
    /// The run waits for a human on this waiting step.
    Paused { step: Step, pause: Pause },
    /// The step failed; a retryable failure ends only this attempt.
    Failed {
        step: Step,
        error: RunError,
        retryable: bool,
    },
    /// The run ends without a step of its own (a spent tenant budget).
    Ended(Outcome),
}
