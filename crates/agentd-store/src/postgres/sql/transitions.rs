//! The statements of a caller's transitions of one run (`postgres/runs.rs`):
//! lock it, cancel, requeue a dead run, answer a waiting step. Each audits
//! itself in the same statement.

/// Locks a run for a caller's transition.
pub(in crate::postgres) const LOCK_RUN: &str = concat!(
    "SELECT ",
    run_cols!(),
    " FROM runs WHERE id = $1 AND tenant = $2 FOR UPDATE"
);

/// The unfinished runs of conversation `$2` of tenant `$1`, oldest first,
/// row-locked: what `if_busy` decides about.
pub(in crate::postgres) const BUSY_IN_CONVERSATION: &str = "SELECT id, status FROM runs \
     WHERE tenant = $1 AND conversation_id = $2 AND status IN ('queued', 'running', 'paused') \
     ORDER BY id FOR UPDATE";

/// Cancels a run, revoking its lease: `$1` id, `$2` tenant, `$3` error,
/// `$4` actor.
pub(in crate::postgres) const CANCEL: &str = concat!(
    "WITH u AS (UPDATE runs SET status = 'cancelled', error = $3, pause = NULL, \
     lease_owner = NULL, lease_until = NULL, lease_token = lease_token + 1, updated_at = ",
    now!(),
    " WHERE id = $1 AND tenant = $2 RETURNING ",
    run_cols!(),
    "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event) \
     SELECT id, updated_at, tenant, $4, 'cancelled' FROM u) SELECT ",
    run_cols!(),
    " FROM u"
);

rendered! {
/// Queues a dead run again as a first attempt: `$1` id, `$2` tenant, `$3`
/// actor. The caller checked (under a row lock) that it is dead.
pub(in crate::postgres) static REQUEUE = concat!(
    "WITH u AS (UPDATE runs SET status = 'queued', error = NULL, attempt = 1, available_at = ",
    now!(),
    ", updated_at = ",
    now!(),
    " WHERE id = $1 AND tenant = $2 AND status {requeue} RETURNING ",
    run_cols!(),
    "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event) \
     SELECT id, updated_at, tenant, $3, 'requeued' FROM u) SELECT ",
    run_cols!(),
    " FROM u"
);
}

/// Answers the waiting step `$3` and queues the run again: `$1` id, `$2`
/// tenant, `$4` answer, `$5` actor. Returns how many steps were answered
/// (must be 1), then the run.
pub(in crate::postgres) const RESUME: &str = concat!(
    "WITH s AS (UPDATE steps SET status = 'completed', output = $4, \
     duration_ms = GREATEST(0, ",
    now!(),
    " - started_at) WHERE run_id = $1 AND idx = $3 AND status = 'waiting' RETURNING idx), \
     u AS (UPDATE runs SET status = 'queued', pause = NULL, available_at = ",
    now!(),
    ", updated_at = ",
    now!(),
    " WHERE id = $1 AND tenant = $2 RETURNING ",
    run_cols!(),
    "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event) \
     SELECT id, updated_at, tenant, $5, 'resumed' FROM u) \
     SELECT (SELECT count(*) FROM s), ",
    run_cols!(),
    " FROM u"
);
