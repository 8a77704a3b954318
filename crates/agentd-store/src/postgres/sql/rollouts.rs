//! The statements of rollout state (`postgres/rollout.rs`).

macro_rules! rollout_cols {
    () => {
        "agent, base, stable, canary, percent, phase, reason, actor, started_at, updated_at"
    };
}

/// Inserts `$1`'s rollout state, or replaces one made for another split; either way
/// answers the stored state. The second branch reads the snapshot from
/// before the insert, so it answers only when the insert changed nothing.
pub(in crate::postgres) const SYNC_ROLLOUT: &str = concat!(
    "WITH up AS (INSERT INTO rollouts (agent, base, stable, canary, percent, phase, reason, \
     actor, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', NULL, $6, ",
    now!(),
    ", ",
    now!(),
    ") ON CONFLICT (agent) DO UPDATE SET base = excluded.base, stable = excluded.stable, \
     canary = excluded.canary, percent = excluded.percent, phase = 'active', reason = NULL, \
     actor = excluded.actor, started_at = excluded.started_at, updated_at = excluded.updated_at \
     WHERE rollouts.base <> excluded.base RETURNING ",
    rollout_cols!(),
    ") SELECT ",
    rollout_cols!(),
    " FROM up UNION ALL SELECT ",
    rollout_cols!(),
    " FROM rollouts WHERE agent = $1 AND NOT EXISTS (SELECT 1 FROM up)"
);

pub(in crate::postgres) const CHANGE_ROLLOUT: &str = concat!(
    "UPDATE rollouts SET stable = $1, canary = NULL, percent = 0, phase = $2, reason = $3, \
     actor = $4, updated_at = ",
    now!(),
    " WHERE agent = $5 AND base = $6 AND phase = 'active' AND canary IS NOT NULL RETURNING ",
    rollout_cols!()
);

/// Finished runs of agent `$1` updated at or after `$2`, by version and
/// status: count, summed duration and summed cost.
pub(in crate::postgres) const VERSION_STATS: &str = "SELECT agent_version, status, \
     COUNT(*)::int8, COALESCE(SUM(updated_at - created_at), 0)::float8, \
     COALESCE(SUM(cost_usd), 0)::float8 FROM runs WHERE agent = $1 \
     AND agent_version IS NOT NULL AND updated_at >= $2 \
     AND status IN ('succeeded', 'failed', 'dead', 'cancelled') \
     GROUP BY agent_version, status ORDER BY agent_version";

/// Of the latest `$4` runs of agent `$1` at version `$2` that finished
/// (not cancelled) at or after `$3`: how many, and how many failed or died.
pub(in crate::postgres) const VERSION_OUTCOMES: &str = "SELECT COUNT(*)::int8, \
     COUNT(*) FILTER (WHERE status IN ('failed', 'dead'))::int8 FROM \
     (SELECT status FROM runs WHERE agent = $1 AND agent_version = $2 AND updated_at >= $3 \
     AND status IN ('succeeded', 'failed', 'dead') ORDER BY updated_at DESC LIMIT $4) r";
