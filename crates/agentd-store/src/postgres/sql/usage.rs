//! The usage report's statements.

/// The tenant's (`$1`) runs created in `[$2, $3)` with the columns the
/// report reads. Runs that paused or ended come from `runs_usage`, a
/// covering index a run enters once, when it leaves the queue; runs in
/// flight (written at every step, so kept out of it) come from the queue's
/// indexes, which hold only them: `runs_queued`, and `runs_leased` (a
/// running run holds a lease).
macro_rules! tenant_runs {
    () => {
        "(SELECT id, agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE tenant = $1 AND created_at >= $2 AND created_at < $3 \
         AND status NOT IN ('queued', 'running') \
         UNION ALL \
         SELECT id, agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE status = 'queued' AND tenant = $1 AND created_at >= $2 \
         AND created_at < $3 \
         UNION ALL \
         SELECT id, agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE lease_owner IS NOT NULL AND status = 'running' \
         AND tenant = $1 AND created_at >= $2 AND created_at < $3)"
    };
}

/// The report grouped by a column of the run.
macro_rules! by_run {
    ($key:literal) => {
        concat!(
            "SELECT ",
            $key,
            ", COUNT(*)::int8, COUNT(*) FILTER (WHERE status IN ('failed', 'dead'))::int8, \
             COALESCE(SUM(input_tokens), 0)::int8, COALESCE(SUM(output_tokens), 0)::int8, \
             COALESCE(SUM(cost_usd), 0)::float8 FROM ",
            tenant_runs!(),
            " r GROUP BY 1"
        )
    };
}

/// Grouped by agent.
pub(in crate::postgres) const USAGE_BY_AGENT: &str = by_run!("agent");
/// Grouped by principal.
pub(in crate::postgres) const USAGE_BY_PRINCIPAL: &str = by_run!("principal");
/// Grouped by UTC day number since the epoch.
pub(in crate::postgres) const USAGE_BY_DAY: &str = by_run!("created_at / 86400000");

/// One source of runs of the tenant (`$1`) created in `[$2, $3)` (`{where}`
/// narrows it), joined with their model steps and summed per run and
/// provider.
macro_rules! provider_calls {
    ($failed:literal, $where:literal) => {
        concat!(
            "SELECT s.name, ",
            $failed,
            " AS failed, SUM(s.input_tokens) AS i, SUM(s.output_tokens) AS o \
             FROM runs r JOIN steps s ON s.run_id = r.id AND s.kind = 'llm' WHERE ",
            $where,
            " AND r.tenant = $1 AND r.created_at >= $2 AND r.created_at < $3 \
             GROUP BY r.id, r.status, s.name"
        )
    };
}

/// Grouped by provider: each run's model steps summed per provider, then
/// the runs per provider. Runs that paused or ended, and each kind of run
/// in flight, are summed apart (see `tenant_runs!`), so that over a long
/// range the first can merge the runs' key with `steps_llm`, both in run
/// order, instead of hashing two sides that do not fit in memory.
pub(in crate::postgres) const USAGE_BY_PROVIDER: &str = concat!(
    "SELECT name, COUNT(*)::int8, COUNT(*) FILTER (WHERE failed)::int8, \
     COALESCE(SUM(i), 0)::int8, COALESCE(SUM(o), 0)::int8, NULL::float8 FROM (",
    provider_calls!(
        "r.status IN ('failed', 'dead')",
        "r.status NOT IN ('queued', 'running')"
    ),
    " UNION ALL ",
    provider_calls!("false", "r.status = 'queued'"),
    " UNION ALL ",
    provider_calls!(
        "false",
        "r.lease_owner IS NOT NULL AND r.status = 'running'"
    ),
    ") p GROUP BY name"
);
