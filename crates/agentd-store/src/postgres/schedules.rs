//! PostgreSQL's schedule ticks (see [`crate::schedule`]).

use super::*;
use crate::ScheduleTick;
use crate::schedule::Tick;

/// Records `$3` as the schedule's latest tick unless one as late is
/// recorded. Concurrent upserts of one schedule serialize on its row; the
/// later one re-checks the `WHERE` against the committed row, so it
/// affects no row when the other recorded the same tick.
const RECORD_TICK: &str = "INSERT INTO schedule_ticks (tenant, schedule, tick_at, run_id) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (tenant, schedule) DO UPDATE SET tick_at = excluded.tick_at, \
    run_id = excluded.run_id WHERE schedule_ticks.tick_at < excluded.tick_at";

/// Records `tick` for run `run` in the caller's transaction; false if this
/// tick or a later one is recorded already.
pub(super) async fn record_tick(
    conn: &mut PgConnection,
    tenant: &TenantId,
    tick: Tick<'_>,
    run: RunId,
) -> Result<bool> {
    let done = sqlx::query(RECORD_TICK)
        .bind(tenant.as_str())
        .bind(tick.schedule)
        .bind(tick.at)
        .bind(run.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// [`Store::schedule_ticks`](crate::Store::schedule_ticks) on this backend.
pub(super) async fn schedule_ticks(
    store: &PgStore,
    tenant: &TenantId,
) -> Result<Vec<ScheduleTick>> {
    let rows: Vec<(String, i64, uuid::Uuid)> = sqlx::query_as(
        "SELECT schedule, tick_at, run_id FROM schedule_ticks \
         WHERE tenant = $1 ORDER BY schedule",
    )
    .bind(tenant.as_str())
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(schedule, tick_at, id)| ScheduleTick {
            schedule,
            tick_at,
            run_id: RunId(id),
        })
        .collect())
}
