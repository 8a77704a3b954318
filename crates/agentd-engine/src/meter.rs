//! The engine's metrics through the `metrics` facade (names in
//! [`agentd_core::metric`]): runs created and finished, run and step
//! durations, and the worker slots read at scrape time. Labels are the
//! agent (from the config), the status and the step kind: never a run id.
//! Without an installed recorder these are no-ops.

use crate::Engine;
use agentd_core::{Run, StepKind, metric, now_millis};
use std::time::Duration;

/// The worker slots of a process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSlots {
    /// Slots executing a run.
    pub busy: u32,
    /// Slots ready for a run (zero while workers do not run).
    pub free: u32,
}

/// A run was created (not an idempotent replay).
pub(crate) fn run_created(agent: &str) {
    metrics::counter!(metric::RUNS_CREATED, metric::AGENT => agent.to_owned()).increment(1);
}

/// `run` reached a status in this process; counted once it is terminal.
pub(crate) fn run_settled(run: &Run) {
    if !run.status.is_terminal() {
        return;
    }
    let status = run.status.as_str();
    metrics::counter!(metric::RUNS_FINISHED, metric::AGENT => run.agent.clone(), metric::STATUS => status)
        .increment(1);
    metrics::histogram!(metric::RUN_DURATION, metric::AGENT => run.agent.clone(), metric::STATUS => status)
        .record(run_seconds(run.created_at, now_millis()));
}

/// A step of `kind` took `took`.
pub(crate) fn step_took(agent: &str, kind: StepKind, took: Duration) {
    metrics::histogram!(metric::STEP_DURATION, metric::AGENT => agent.to_owned(), "kind" => kind.as_str())
        .record(took.as_secs_f64());
}

/// Seconds from `created` to `ended` (epoch milliseconds), never negative
/// (clocks of two processes may disagree).
fn run_seconds(created: i64, ended: i64) -> f64 {
    (ended.saturating_sub(created)).max(0) as f64 / 1000.0
}

impl Engine {
    /// This process's worker slots now (`agentd_worker_slots`).
    pub fn worker_slots(&self) -> WorkerSlots {
        let pool = &self.inner.pool;
        let running = pool.live.lock().map(|l| l.is_some()).unwrap_or(false);
        if !running {
            return WorkerSlots { busy: 0, free: 0 };
        }
        let free = pool.slots.available_permits() as u32;
        WorkerSlots {
            busy: self.inner.settings.workers.saturating_sub(free),
            free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_seconds_are_from_creation_and_never_negative() {
        assert_eq!(run_seconds(1_000, 3_500), 2.5);
        assert_eq!(run_seconds(5_000, 4_000), 0.0);
    }
}
