//! The fleet: the processes that run workers on a store, and the backups
//! taken of it. **Operator data, not a tenant's:** the [`Store`](crate::Store)
//! methods reading and writing it take no [`TenantId`](agentd_core::TenantId)
//! and are never reachable from a tenant's request (the worker pool
//! registers itself, `agentd backup` records, `agentd check` reads).

use agentd_core::Millis;
use std::time::Duration;

/// What a process that runs workers registers under its node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistration {
    /// The lease owner name the process claims runs as (`queue.node_id`).
    pub node_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Runs it may execute at once (`queue.workers`).
    pub slots: u32,
    /// The agentd version it runs.
    pub version: String,
}

impl WorkerRegistration {
    /// Whether `other` is this very process (same host and pid).
    pub fn same_process(&self, other: &WorkerProcess) -> bool {
        self.host == other.host && self.pid == other.pid
    }
}

/// A registered process, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProcess {
    pub node_id: String,
    pub host: String,
    pub pid: u32,
    pub slots: u32,
    pub version: String,
    /// When it registered (epoch ms, the store's clock).
    pub started_at: Millis,
    /// When it last refreshed its row (epoch ms, the store's clock).
    pub last_seen: Millis,
    /// How long ago that was, on the store's clock.
    pub seen_ago: Duration,
}

/// A backup to record (`agentd backup`, after the file is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBackup {
    /// The backend backed up (`sqlite`, `postgres`).
    pub backend: String,
    /// Bytes of the backup file.
    pub bytes: u64,
    /// The file written, as the operator named it.
    pub file: String,
}

/// A recorded backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// When it was recorded (epoch ms, the store's clock).
    pub taken_at: Millis,
    /// How long ago that was, on the store's clock.
    pub age: Duration,
    pub backend: String,
    pub bytes: u64,
    pub file: String,
}

/// Epoch ms `d` before `now`, for "seen within" bounds.
pub(crate) fn ms_before(now: Millis, d: Duration) -> Millis {
    now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A non-negative ms difference as a duration.
pub(crate) fn ago(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
