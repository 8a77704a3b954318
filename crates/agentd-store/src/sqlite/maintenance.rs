//! SQLite maintenance: schema migrations, health, size and retention.

use super::*;

/// Write transactions committed so far.
pub(super) fn commits(store: &SqliteStore) -> u64 {
    store.writer.commits()
}

/// No change feed: a SQLite store is one process's, and the engine's
/// in-process signals (a queued run wakes the claimer, events go to this
/// process's listeners) cover it.
pub(super) fn feed(_: &SqliteStore) -> Option<std::sync::Arc<dyn crate::ChangeFeed>> {
    None
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran. A new table or column must also be listed in
/// [`crate::copy::TABLES`]: `agentd store copy` refuses what it does not know.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_roles.sql"),
    include_str!("../../migrations/sqlite/0003_idempotency.sql"),
    include_str!("../../migrations/sqlite/0004_step_calls.sql"),
    include_str!("../../migrations/sqlite/0005_retention.sql"),
    include_str!("../../migrations/sqlite/0006_budgets.sql"),
    include_str!("../../migrations/sqlite/0007_circuits.sql"),
    include_str!("../../migrations/sqlite/0008_audit_ids.sql"),
    include_str!("../../migrations/sqlite/0009_list_indexes.sql"),
    include_str!("../../migrations/sqlite/0010_api_keys.sql"),
    include_str!("../../migrations/sqlite/0011_active_runs.sql"),
    include_str!("../../migrations/sqlite/0012_audit_log.sql"),
    include_str!("../../migrations/sqlite/0013_run_origin.sql"),
    include_str!("../../migrations/sqlite/0014_audit_claimed.sql"),
    include_str!("../../migrations/sqlite/0015_fork.sql"),
    include_str!("../../migrations/sqlite/0016_agent_versions.sql"),
    include_str!("../../migrations/sqlite/0017_fleet.sql"),
    include_str!("../../migrations/sqlite/0018_schedules.sql"),
    include_str!("../../migrations/sqlite/0019_deliveries.sql"),
    include_str!("../../migrations/sqlite/0020_usage_index.sql"),
    include_str!("../../migrations/sqlite/0021_output_json.sql"),
    include_str!("../../migrations/sqlite/0022_pii_vaults.sql"),
    include_str!("../../migrations/sqlite/0023_budget_alerts.sql"),
    include_str!("../../migrations/sqlite/0024_delivery_payload.sql"),
    include_str!("../../migrations/sqlite/0025_principal_budgets.sql"),
    include_str!("../../migrations/sqlite/0026_run_provider_usage.sql"),
];

pub(super) fn apply_migrations(conn: &Connection) -> Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    crate::codec::check_schema_version(applied, MIGRATIONS.len())?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        conn.execute_batch(sql)
            .map_err(|e| StoreError::Migrate(format!("migration {}: {e}", i + 1)))?;
        conn.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    Ok(())
}

rendered! {
    /// Runs retention may delete, oldest first.
    pub(super) static PURGEABLE = "SELECT id, tenant FROM runs \
        WHERE status {purge} AND updated_at < ?1 ORDER BY updated_at LIMIT ?2";
}

/// [`Store::migrate`](crate::Store::migrate) on this backend.
pub(super) async fn migrate(store: &SqliteStore) -> Result<()> {
    // DDL is not counted as changes by the batch writer, so migrations
    // run in their own explicit transaction.
    store
        .writer
        .exclusive(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            match apply_migrations(conn) {
                Ok(()) => Ok(conn.execute_batch("COMMIT")?),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
}

/// [`Store::ping`](crate::Store::ping) on this backend.
pub(super) async fn ping(store: &SqliteStore) -> Result<()> {
    let version: i64 = store
        .readers
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await?;
    if version < MIGRATIONS.len() as i64 {
        return Err(StoreError::Migrate("migrations are not applied".into()));
    }
    Ok(())
}

/// [`Store::storage_bytes`](crate::Store::storage_bytes) on this backend.
pub(super) async fn storage_bytes(store: &SqliteStore) -> Result<u64> {
    store
        .writer
        .exclusive(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((pages * size) as u64)
        })
        .await
        .map(|bytes| match &store.path {
            Some(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(bytes),
            None => bytes,
        })
}

/// [`Store::count_queue_all_tenants`](crate::Store::count_queue_all_tenants)
/// on this backend: the statuses of the `runs_runnable` partial index.
pub(super) async fn count_queue_all_tenants(store: &SqliteStore) -> Result<crate::QueueCounts> {
    store
        .read(|conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT status, COUNT(*) FROM runs WHERE status IN ('queued', 'running') GROUP BY status",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut counts = crate::QueueCounts::default();
            for row in rows {
                let (status, n) = row?;
                let n = u64::try_from(n).unwrap_or(0);
                match status.as_str() {
                    "queued" => counts.queued = n,
                    _ => counts.running = n,
                }
            }
            Ok(counts)
        })
        .await
}

/// [`Store::purge_finished`](crate::Store::purge_finished) on this backend.
pub(super) async fn purge_finished(
    store: &SqliteStore,
    older_than: Duration,
    limit: u32,
) -> Result<u64> {
    let limit = limit.clamp(1, crate::MAX_PURGE_BATCH);
    let older_than = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    store
        .write(move |conn, now, _| {
            let mut stmt = conn.prepare_cached(&PURGEABLE)?;
            let runs = stmt
                .query_map(params![now.saturating_sub(older_than), limit], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut steps = conn.prepare_cached("DELETE FROM steps WHERE run_id = ?1")?;
            let mut audit =
                conn.prepare_cached("DELETE FROM audit WHERE tenant = ?1 AND run_id = ?2")?;
            let mut keys = conn.prepare_cached("DELETE FROM idempotency_keys WHERE run_id = ?1")?;
            let mut run = conn.prepare_cached("DELETE FROM runs WHERE id = ?1")?;
            let mut vault = conn.prepare_cached("DELETE FROM pii_vaults WHERE run_id = ?1")?;
            let mut usage =
                conn.prepare_cached("DELETE FROM run_provider_usage WHERE run_id = ?1")?;
            for (id, tenant) in &runs {
                vault.execute(params![id])?;
                usage.execute(params![id])?;
                steps.execute(params![id])?;
                audit.execute(params![tenant, id])?;
                keys.execute(params![id])?;
                run.execute(params![id])?;
            }
            Ok(runs.len() as u64)
        })
        .await
}

/// The plans (`EXPLAIN QUERY PLAN`) of the list statements, by name: the
/// plan test checks each reads a range of an index.
pub(super) async fn list_query_plans(store: &SqliteStore) -> Result<Vec<(&'static str, String)>> {
    store
        .read(|c, _| {
            let audit = crate::audit::plan_samples(|n| format!("?{n}"))?;
            let lists = [
                ("runs", list_runs_sql(0)),
                ("runs by agent", list_runs_sql(1)),
                ("runs by status", list_runs_sql(2)),
                ("runs by agent and status", list_runs_sql(3)),
                ("runs by active status", list_runs_sql(4)),
                ("runs by agent and active status", list_runs_sql(5)),
                ("runs of a conversation", LIST_BY_CONVERSATION),
                ("steps of a run", LIST_STEPS),
                ("messages of a conversation", LIST_MESSAGES),
                ("audit of a run", LIST_AUDIT),
                // Not a list, but every idle worker runs it every poll.
                ("runnable runs", super::queue::NEXT_RUNNABLE.as_str()),
            ];
            let lists = lists
                .into_iter()
                .map(|(name, sql)| (name, sql.to_string()))
                .chain(audit.into_iter().map(|(name, sql, _)| (name, sql)));
            let mut plans = Vec::new();
            for (name, sql) in lists {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                // Planned without values: parameters stay unbound.
                let mut rows = stmt.raw_query();
                let mut plan = Vec::new();
                while let Some(row) = rows.next()? {
                    plan.push(row.get::<_, String>(3)?);
                }
                plans.push((name, plan.join("\n")));
            }
            Ok(plans)
        })
        .await
}
