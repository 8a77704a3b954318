//! SQLite's schedule ticks (see [`crate::schedule`]).

use super::*;
use crate::ScheduleTick;

/// Records `at` as the schedule's latest tick unless one as late is
/// recorded; `changes()` is 0 when the upsert's `WHERE` refuses it.
const RECORD_TICK: &str = "INSERT INTO schedule_ticks (tenant, schedule, tick_at, run_id) \
    VALUES (?1, ?2, ?3, ?4) \
    ON CONFLICT (tenant, schedule) DO UPDATE SET tick_at = excluded.tick_at, \
    run_id = excluded.run_id WHERE schedule_ticks.tick_at < excluded.tick_at";

/// Records tick `at` of `schedule` for run `run` (in the caller's write
/// transaction); false if this tick or a later one is recorded already.
pub(super) fn record_tick(
    conn: &Connection,
    tenant: &TenantId,
    schedule: &str,
    at: Millis,
    run: &RunId,
) -> Result<bool> {
    let changed = conn.prepare_cached(RECORD_TICK)?.execute(params![
        tenant.as_str(),
        schedule,
        at,
        run.0.as_bytes()
    ])?;
    Ok(changed == 1)
}

/// [`Store::schedule_ticks`](crate::Store::schedule_ticks) on this backend.
pub(super) async fn schedule_ticks(
    store: &SqliteStore,
    tenant: &TenantId,
) -> Result<Vec<ScheduleTick>> {
    let tenant = tenant.clone();
    store
        .read(move |c, _| {
            let mut stmt = c.prepare_cached(
                "SELECT schedule, tick_at, run_id FROM schedule_ticks \
                 WHERE tenant = ?1 ORDER BY schedule",
            )?;
            let mut rows = stmt.query(params![tenant.as_str()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let id: Vec<u8> = row.get(2)?;
                let run_id = uuid::Uuid::from_slice(&id)
                    .map(RunId)
                    .map_err(|_| corrupt(format_args!("schedule_ticks.run_id {id:?}")))?;
                out.push(ScheduleTick {
                    schedule: row.get(0)?,
                    tick_at: row.get(1)?,
                    run_id,
                });
            }
            Ok(out)
        })
        .await
}
