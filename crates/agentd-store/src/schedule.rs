//! Schedule ticks: the latest tick of each `[[schedules]]` entry that
//! started a run (see [`Store::create_scheduled_run`](crate::Store::create_scheduled_run)).

use agentd_core::{Millis, RunId};

/// The latest tick of one schedule that started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    /// The schedule's name (`[[schedules]] name`).
    pub schedule: String,
    /// The tick (epoch ms).
    pub tick_at: Millis,
    /// The run it started.
    pub run_id: RunId,
}

/// A tick to record with the run it creates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick<'a> {
    pub(crate) schedule: &'a str,
    pub(crate) at: Millis,
}
