//! The usage report's statements.

/// The tenant's (`$1`) runs created in `[$2, $3)` with the columns the
/// report reads. Runs that paused or ended come from `runs_usage`, a
/// covering index a run enters once, when it leaves the queue; runs in
/// flight (written at every step, so kept out of it) come from the queue's
/// indexes, which hold only them: `runs_queued`, and `runs_leased` (a
/// running run holds a lease).
macro_rules! tenant_runs {
    () => {
        "(SELECT agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE tenant = $1 AND created_at >= $2 AND created_at < $3 \
         AND status NOT IN ('queued', 'running') \
         UNION ALL \
         SELECT agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE status = 'queued' AND tenant = $1 AND created_at >= $2 \
         AND created_at < $3 \
         UNION ALL \
         SELECT agent, principal, created_at, status, input_tokens, output_tokens, \
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

/// Grouped by provider: the journal's per-run, per-provider sums
/// (`run_provider_usage`, a range of its covering index), and the failed
/// runs among them (few, through `runs_by_status`).
pub(in crate::postgres) const USAGE_BY_PROVIDER: &str = "SELECT provider, SUM(n)::int8, \
     SUM(f)::int8, COALESCE(SUM(i), 0)::int8, COALESCE(SUM(o), 0)::int8, \
     COALESCE(SUM(c), 0)::float8 FROM (\
     SELECT provider, COUNT(*) AS n, 0 AS f, SUM(input_tokens) AS i, SUM(output_tokens) AS o, \
     SUM(cost_usd) AS c FROM run_provider_usage \
     WHERE tenant = $1 AND created_at >= $2 AND created_at < $3 GROUP BY provider \
     UNION ALL \
     SELECT p.provider, 0, COUNT(*), 0, 0, 0 FROM runs r \
     JOIN run_provider_usage p ON p.run_id = r.id \
     WHERE r.tenant = $1 AND r.status IN ('failed', 'dead') \
     AND r.created_at >= $2 AND r.created_at < $3 GROUP BY p.provider) x GROUP BY provider";
