//! The SQLite usage report ([`Store::usage`](crate::Store::usage)).

use super::*;
use crate::usage::{GroupKey, GroupSums, bounds, finish};
use crate::{UsageGroup, UsageQuery, UsageRow};

/// The tenant's (`?1`) runs created in `[?2, ?3)` with the columns the
/// report reads. Runs that paused or ended come from `runs_usage`, a
/// covering index that a run enters once, when it leaves the queue; runs in
/// flight, written at every step, are kept out of it and read through the
/// queue's index instead, which holds only them.
macro_rules! tenant_runs {
    () => {
        "(SELECT agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs INDEXED BY runs_usage WHERE tenant = ?1 AND created_at >= ?2 \
         AND created_at < ?3 AND status NOT IN ('queued', 'running') \
         UNION ALL \
         SELECT agent, principal, created_at, status, input_tokens, output_tokens, \
         cost_usd FROM runs WHERE status IN ('queued', 'running') AND tenant = ?1 \
         AND created_at >= ?2 AND created_at < ?3)"
    };
}

/// The report grouped by a column of the run (`{key}`).
macro_rules! by_run {
    ($key:literal) => {
        concat!(
            "SELECT ",
            $key,
            ", COUNT(*), SUM(status IN ('failed', 'dead')), SUM(input_tokens), \
             SUM(output_tokens), SUM(cost_usd) FROM ",
            tenant_runs!(),
            " GROUP BY 1"
        )
    };
}

const BY_AGENT: &str = by_run!("agent");
const BY_PRINCIPAL: &str = by_run!("principal");
const BY_DAY: &str = by_run!("created_at / 86400000");

/// The report by provider: the journal's per-run, per-provider sums
/// (`run_provider_usage`, a range of its covering index), and the failed
/// runs among them: the range of `runs_usage` (whose predicate the query
/// states so SQLite can use it), each failed run then looked up by key.
const BY_PROVIDER: &str = "SELECT provider, SUM(n), SUM(f), SUM(i), SUM(o), SUM(c) FROM (\
     SELECT provider, COUNT(*) AS n, 0 AS f, SUM(input_tokens) AS i, SUM(output_tokens) AS o, \
     SUM(cost_usd) AS c FROM run_provider_usage INDEXED BY run_provider_usage_report \
     WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY provider \
     UNION ALL \
     SELECT p.provider, 0, COUNT(*), 0, 0, 0 FROM runs r INDEXED BY runs_usage \
     JOIN run_provider_usage p ON p.run_id = r.id \
     WHERE r.tenant = ?1 AND r.created_at >= ?2 AND r.created_at < ?3 \
     AND r.status NOT IN ('queued', 'running') AND r.status IN ('failed', 'dead') \
     GROUP BY p.provider) GROUP BY provider";

/// [`Store::usage`](crate::Store::usage) on this backend.
pub(super) async fn usage(
    store: &SqliteStore,
    tenant: &TenantId,
    q: &UsageQuery,
) -> Result<Vec<UsageRow>> {
    let tenant = tenant.as_str().to_owned();
    let (since, until) = bounds(q);
    let group = q.group_by;
    store
        .read(move |conn, _| {
            let sql = match group {
                UsageGroup::Agent => BY_AGENT,
                UsageGroup::Principal => BY_PRINCIPAL,
                UsageGroup::Day => BY_DAY,
                UsageGroup::Provider => BY_PROVIDER,
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![tenant, since, until], |r| {
                Ok(GroupSums {
                    key: match group {
                        UsageGroup::Day => GroupKey::Day(r.get(0)?),
                        _ => GroupKey::Name(r.get(0)?),
                    },
                    runs: r.get(1)?,
                    failed: r.get(2)?,
                    input_tokens: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    output_tokens: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    cost_usd: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                })
            })?;
            Ok(finish(rows.collect::<rusqlite::Result<_>>()?))
        })
        .await
}
