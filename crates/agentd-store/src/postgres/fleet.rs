//! PostgreSQL's fleet tables: the worker registry and the backups taken
//! (see [`crate::fleet`]). Times are the database's clock, so processes on
//! different machines agree on who was seen when.

use super::*;
use crate::fleet::ago;
use crate::{Backup, NewBackup, WorkerProcess, WorkerRegistration};

/// Epoch ms on the database's clock (as `sql::now!`).
macro_rules! db_now {
    () => {
        "(floor(extract(epoch FROM now()) * 1000)::int8)"
    };
}

/// Takes the node id unless a live other process holds it (`$7` forces;
/// `$8` is the window in ms); returns the node id when it was taken.
const REGISTER: &str = concat!(
    "INSERT INTO workers AS w (node_id, host, pid, started_at, last_seen, slots, version) \
     VALUES ($1, $2, $3, ",
    db_now!(),
    ", ",
    db_now!(),
    ", $4, $5) ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
     started_at = excluded.started_at, last_seen = excluded.last_seen, \
     slots = excluded.slots, version = excluded.version \
     WHERE $7 OR (w.host = excluded.host AND w.pid = excluded.pid) \
     OR w.last_seen < ",
    db_now!(),
    " - $6 RETURNING node_id"
);

/// A registered process and how many ms ago it was seen.
const SELECT: &str = concat!(
    "SELECT node_id, host, pid, slots, version, started_at, last_seen, ",
    db_now!(),
    " - last_seen FROM workers"
);

fn worker(r: &PgRow) -> Result<WorkerProcess> {
    Ok(WorkerProcess {
        node_id: r.try_get(0)?,
        host: r.try_get(1)?,
        pid: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
        slots: u32::try_from(r.try_get::<i32, _>(3)?).unwrap_or(0),
        version: r.try_get(4)?,
        started_at: r.try_get(5)?,
        last_seen: r.try_get(6)?,
        seen_ago: ago(r.try_get(7)?),
    })
}

/// [`Store::register_worker`](crate::Store::register_worker) on this backend.
pub(super) async fn register_worker(
    store: &PgStore,
    w: &WorkerRegistration,
    live_within: Option<Duration>,
) -> Result<Option<WorkerProcess>> {
    let mut tx = store.pool.begin().await?;
    // A refused upsert still locks the holder's row, so the read below
    // sees the holder that refused it.
    let taken = sqlx::query(REGISTER)
        .bind(&w.node_id)
        .bind(&w.host)
        .bind(i64::from(w.pid))
        .bind(int::<i32, _>(w.slots))
        .bind(&w.version)
        .bind(live_within.map_or(0, lease_ms))
        .bind(live_within.is_none())
        .fetch_optional(&mut *tx)
        .await?;
    let holder = match taken {
        Some(_) => None,
        None => sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE node_id = $1")))
            .bind(&w.node_id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(worker)
            .transpose()?,
    };
    tx.commit().await?;
    if holder.is_none() {
        store.committed();
    }
    Ok(holder)
}

/// [`Store::touch_worker`](crate::Store::touch_worker) on this backend.
pub(super) async fn touch_worker(store: &PgStore, w: &WorkerRegistration) -> Result<bool> {
    let done = sqlx::query(concat!(
        "UPDATE workers SET last_seen = ",
        db_now!(),
        " WHERE node_id = $1 AND host = $2 AND pid = $3"
    ))
    .bind(&w.node_id)
    .bind(&w.host)
    .bind(i64::from(w.pid))
    .execute(&store.pool)
    .await?;
    store.committed();
    Ok(done.rows_affected() > 0)
}

/// [`Store::deregister_worker`](crate::Store::deregister_worker) on this
/// backend.
pub(super) async fn deregister_worker(store: &PgStore, w: &WorkerRegistration) -> Result<()> {
    sqlx::query("DELETE FROM workers WHERE node_id = $1 AND host = $2 AND pid = $3")
        .bind(&w.node_id)
        .bind(&w.host)
        .bind(i64::from(w.pid))
        .execute(&store.pool)
        .await?;
    store.committed();
    Ok(())
}

/// [`Store::list_workers`](crate::Store::list_workers) on this backend.
pub(super) async fn list_workers(
    store: &PgStore,
    seen_within: Duration,
) -> Result<Vec<WorkerProcess>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE last_seen >= {} - $1 ORDER BY node_id",
        db_now!()
    )))
    .bind(lease_ms(seen_within))
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(worker).collect()
}

/// [`Store::record_backup`](crate::Store::record_backup) on this backend.
pub(super) async fn record_backup(store: &PgStore, backup: &NewBackup) -> Result<()> {
    sqlx::query(concat!(
        "INSERT INTO backups (taken_at, backend, bytes, file) VALUES (",
        db_now!(),
        ", $1, $2, $3)"
    ))
    .bind(&backup.backend)
    .bind(i64::try_from(backup.bytes).unwrap_or(i64::MAX))
    .bind(&backup.file)
    .execute(&store.pool)
    .await?;
    store.committed();
    Ok(())
}

/// [`Store::last_backup`](crate::Store::last_backup) on this backend.
pub(super) async fn last_backup(store: &PgStore) -> Result<Option<Backup>> {
    let row = sqlx::query(concat!(
        "SELECT taken_at, backend, bytes, file, ",
        db_now!(),
        " - taken_at FROM backups ORDER BY taken_at DESC, id DESC LIMIT 1"
    ))
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| {
        Ok(Backup {
            taken_at: r.try_get(0)?,
            backend: r.try_get(1)?,
            bytes: u64::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
            file: r.try_get(3)?,
            age: ago(r.try_get(4)?),
        })
    })
    .transpose()
}
