//! PostgreSQL maintenance: schema migrations, health, size and retention.

use super::*;

/// Serializes the processes migrating one schema until commit.
const MIGRATE_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('agentd.migrate.' || current_schema(), 0))";

/// The table of applied migrations.
const CREATE_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS agentd_migrations (\
     version integer PRIMARY KEY, applied_at bigint NOT NULL)";

/// How many migrations ran.
const APPLIED: &str = "SELECT COALESCE(max(version), 0) FROM agentd_migrations";

/// What agentd's tables take, indexes included.
const STORAGE_BYTES: &str = "SELECT COALESCE(sum(pg_total_relation_size(to_regclass(t))), 0)::int8 \
     FROM unnest(ARRAY['runs', 'steps', 'messages', 'audit']) AS t";

/// Write transactions committed so far.
pub(super) fn commits(store: &PgStore) -> u64 {
    store.commits.load(Ordering::Relaxed)
}

/// The LISTEN/NOTIFY feed of this store's schema (see [`super::feed`]).
pub(super) fn feed(store: &PgStore) -> Option<Arc<dyn crate::ChangeFeed>> {
    Some(store.feed.clone())
}

/// Schema migrations, applied in order; `agentd_migrations` records how
/// many ran. A new table or column must also be listed in
/// [`crate::copy::TABLES`]: `agentd store copy` refuses what it does not know.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_roles.sql"),
    include_str!("../../migrations/postgres/0003_idempotency.sql"),
    include_str!("../../migrations/postgres/0004_step_calls.sql"),
    include_str!("../../migrations/postgres/0005_retention.sql"),
    include_str!("../../migrations/postgres/0006_budgets.sql"),
    include_str!("../../migrations/postgres/0007_circuits.sql"),
    include_str!("../../migrations/postgres/0008_queue_indexes.sql"),
    include_str!("../../migrations/postgres/0009_list_indexes.sql"),
    include_str!("../../migrations/postgres/0010_api_keys.sql"),
    include_str!("../../migrations/postgres/0011_audit_log.sql"),
    include_str!("../../migrations/postgres/0012_run_origin.sql"),
    include_str!("../../migrations/postgres/0013_audit_claimed.sql"),
    include_str!("../../migrations/postgres/0014_fork.sql"),
    include_str!("../../migrations/postgres/0015_agent_versions.sql"),
    include_str!("../../migrations/postgres/0016_fleet.sql"),
    include_str!("../../migrations/postgres/0017_schedules.sql"),
    include_str!("../../migrations/postgres/0018_deliveries.sql"),
    include_str!("../../migrations/postgres/0019_usage_index.sql"),
    include_str!("../../migrations/postgres/0020_output_json.sql"),
    include_str!("../../migrations/postgres/0021_pii_vaults.sql"),
    include_str!("../../migrations/postgres/0022_budget_alerts.sql"),
    include_str!("../../migrations/postgres/0023_delivery_payload.sql"),
    include_str!("../../migrations/postgres/0024_principal_budgets.sql"),
    include_str!("../../migrations/postgres/0025_run_provider_usage.sql"),
];

/// [`Store::migrate`](crate::Store::migrate) on this backend.
pub(super) async fn migrate(store: &PgStore) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    // Processes starting together migrate one after the other.
    sqlx::query(MIGRATE_LOCK).execute(&mut *tx).await?;
    sqlx::query(CREATE_VERSIONS).execute(&mut *tx).await?;
    let applied: i32 = sqlx::query_scalar(APPLIED).fetch_one(&mut *tx).await?;
    let applied = usize::try_from(applied).unwrap_or(0);
    crate::codec::check_schema_version(applied, MIGRATIONS.len())?;
    for (i, ddl) in MIGRATIONS.iter().enumerate().skip(applied) {
        sqlx::raw_sql(*ddl)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migrate(format!("migration {}: {e}", i + 1)))?;
        sqlx::query(sql::RECORD_MIGRATION)
            .bind(int::<i32, _>(i + 1))
            .execute(&mut *tx)
            .await?;
    }
    // Schema changes are not counted as commits, as in SQLite.
    tx.commit().await?;
    Ok(())
}

/// [`Store::ping`](crate::Store::ping) on this backend.
pub(super) async fn ping(store: &PgStore) -> Result<()> {
    let applied: i32 = match sqlx::query_scalar(APPLIED).fetch_one(&store.pool).await {
        Ok(v) => v,
        Err(e) if has_code(&e, UNDEFINED_TABLE) => 0,
        Err(e) => return Err(e.into()),
    };
    if usize::try_from(applied).unwrap_or(0) < MIGRATIONS.len() {
        return Err(StoreError::Migrate("migrations are not applied".into()));
    }
    Ok(())
}

/// [`Store::storage_bytes`](crate::Store::storage_bytes) on this backend.
pub(super) async fn storage_bytes(store: &PgStore) -> Result<u64> {
    let bytes: i64 = sqlx::query_scalar(STORAGE_BYTES)
        .fetch_one(&store.pool)
        .await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// [`Store::count_queue_all_tenants`](crate::Store::count_queue_all_tenants)
/// on this backend.
pub(super) async fn count_queue_all_tenants(store: &PgStore) -> Result<crate::QueueCounts> {
    let rows = sqlx::query(sql::COUNT_QUEUE).fetch_all(&store.pool).await?;
    let mut counts = crate::QueueCounts::default();
    for row in rows {
        let status: String = row.try_get(0)?;
        let n = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
        match status.as_str() {
            "queued" => counts.queued = n,
            _ => counts.running = n,
        }
    }
    Ok(counts)
}

/// [`Store::purge_finished`](crate::Store::purge_finished) on this backend.
pub(super) async fn purge_finished(
    store: &PgStore,
    older_than: Duration,
    limit: u32,
) -> Result<u64> {
    let purged: i64 = sqlx::query_scalar(sql::PURGE_FINISHED.as_str())
        .bind(int::<i64, _>(older_than.as_millis()))
        .bind(i64::from(limit.clamp(1, crate::MAX_PURGE_BATCH)))
        .fetch_one(&store.pool)
        .await?;
    if purged > 0 {
        store.committed();
    }
    Ok(u64::try_from(purged).unwrap_or(0))
}

/// The plans (`EXPLAIN`) of the list statements, by name, with sample
/// values bound as the store binds them: the plan test checks each reads a
/// range of an index.
pub(super) async fn list_query_plans(store: &PgStore) -> Result<Vec<(&'static str, String)>> {
    let q = |sql: &str| sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")));
    let below = uuid::Uuid::from_bytes(crate::codec::cursor_bound(None));
    let run = uuid::Uuid::nil();
    let lists = [
        (
            "runs",
            q(super::runs::list_runs_sql(0))
                .bind("t")
                .bind(below)
                .bind(51i64),
        ),
        (
            "runs by agent",
            q(super::runs::list_runs_sql(1))
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("a"),
        ),
        (
            "runs by status",
            q(super::runs::list_runs_sql(2))
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("dead"),
        ),
        (
            "runs by agent and status",
            q(super::runs::list_runs_sql(3))
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("a")
                .bind("paused"),
        ),
        (
            "runs by active status",
            q(super::runs::list_runs_sql(4))
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("running"),
        ),
        (
            "runs by agent and active status",
            q(super::runs::list_runs_sql(5))
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("a")
                .bind("queued"),
        ),
        (
            "runs of a conversation",
            q(super::runs::LIST_BY_CONVERSATION)
                .bind("t")
                .bind(below)
                .bind(51i64)
                .bind("c")
                .bind(None::<&str>)
                .bind(None::<&str>),
        ),
        (
            "steps of a run",
            q(sql::LIST_STEPS).bind(run).bind(-1i64).bind(51i64),
        ),
        (
            "messages of a conversation",
            q(sql::LIST_MESSAGES)
                .bind("t")
                .bind("c")
                .bind(0i64)
                .bind(51i64),
        ),
        ("audit of a run", q(sql::LIST_AUDIT).bind(run).bind("t")),
    ];
    let audit = crate::audit::plan_samples(|n| format!("${n}"))?;
    let lists = lists
        .into_iter()
        .chain(audit.iter().map(|(name, sql, args)| {
            let mut query = q(sql);
            for arg in args {
                query = match arg {
                    crate::audit::Arg::Text(t) => query.bind(t.clone()),
                    crate::audit::Arg::Run(r) => query.bind(r.0),
                    crate::audit::Arg::Int(i) => query.bind(*i),
                };
            }
            (*name, query)
        }));
    let mut plans = Vec::new();
    for (name, query) in lists {
        let lines = query
            .fetch_all(&store.pool)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        plans.push((name, lines.join("\n")));
    }
    Ok(plans)
}
