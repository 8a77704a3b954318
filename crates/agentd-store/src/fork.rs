//! What both backends share about forking a run: which of the original's
//! steps the fork keeps, checked once here.

use crate::{Result, StoreError};
use agentd_core::{Run, Step, StepStatus};

/// The first `from_step` steps of `source`'s journal (`journal` holds at
/// least those, in order), which a fork of it starts with. Refused when
/// `from_step` is past the journal or a kept step is still waiting for a
/// human answer (the fork would start paused on a question it cannot
/// show). Steps the source is executing right now are not journaled yet,
/// so a running run forks from what it has completed.
pub(crate) fn kept_steps(
    source: &Run,
    mut journal: Vec<Step>,
    from_step: u32,
) -> Result<Vec<Step>> {
    journal.truncate(from_step as usize);
    if from_step > source.steps || journal.len() != from_step as usize {
        return Err(StoreError::BadFork(format!(
            "from_step {from_step} is past the end of run {}'s journal ({} steps)",
            source.id, source.steps
        )));
    }
    if let Some(waiting) = journal.iter().find(|s| s.status == StepStatus::Waiting) {
        return Err(StoreError::BadFork(format!(
            "step {} of run {} is waiting for an answer; from_step must be at most {}",
            waiting.index, source.id, waiting.index
        )));
    }
    Ok(journal)
}
