//! SQLite's fleet tables: the worker registry and the backups taken (see
//! [`crate::fleet`]). The process clock is the database's clock.

use super::*;
use crate::fleet::{ago, ms_before};
use crate::{Backup, NewBackup, WorkerProcess, WorkerRegistration};

/// Takes the node id unless a live other process holds it (`?8` forces);
/// returns the node id when it was taken.
const REGISTER: &str = "INSERT INTO workers \
    (node_id, host, pid, started_at, last_seen, slots, version) \
    VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6) \
    ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
    started_at = excluded.started_at, last_seen = excluded.last_seen, \
    slots = excluded.slots, version = excluded.version \
    WHERE ?8 OR (workers.host = excluded.host AND workers.pid = excluded.pid) \
    OR workers.last_seen < ?7 \
    RETURNING node_id";

const COLUMNS: &str = "node_id, host, pid, slots, version, started_at, last_seen";

fn worker(r: &rusqlite::Row<'_>, now: Millis) -> rusqlite::Result<WorkerProcess> {
    let last_seen: i64 = r.get(6)?;
    Ok(WorkerProcess {
        node_id: r.get(0)?,
        host: r.get(1)?,
        pid: r.get(2)?,
        slots: r.get(3)?,
        version: r.get(4)?,
        started_at: r.get(5)?,
        last_seen,
        seen_ago: ago(now - last_seen),
    })
}

/// [`Store::register_worker`](crate::Store::register_worker) on this backend.
pub(super) async fn register_worker(
    store: &SqliteStore,
    w: &WorkerRegistration,
    live_within: Option<Duration>,
) -> Result<Option<WorkerProcess>> {
    let w = w.clone();
    store
        .write(move |conn, now, _| {
            let seen_since = live_within.map_or(now, |d| ms_before(now, d));
            let taken = conn
                .prepare_cached(REGISTER)?
                .query_row(
                    params![
                        w.node_id,
                        w.host,
                        w.pid,
                        now,
                        w.slots,
                        w.version,
                        seen_since,
                        live_within.is_none()
                    ],
                    |_| Ok(()),
                )
                .optional()?;
            if taken.is_some() {
                return Ok(None);
            }
            let holder = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM workers WHERE node_id = ?1"))?
                .query_row(params![w.node_id], |r| worker(r, now))
                .optional()?;
            Ok(holder)
        })
        .await
}

/// [`Store::touch_worker`](crate::Store::touch_worker) on this backend.
pub(super) async fn touch_worker(store: &SqliteStore, w: &WorkerRegistration) -> Result<bool> {
    let w = w.clone();
    store
        .write(move |conn, now, _| {
            let n = conn
                .prepare_cached(
                    "UPDATE workers SET last_seen = ?4 \
                     WHERE node_id = ?1 AND host = ?2 AND pid = ?3",
                )?
                .execute(params![w.node_id, w.host, w.pid, now])?;
            Ok(n > 0)
        })
        .await
}

/// [`Store::deregister_worker`](crate::Store::deregister_worker) on this
/// backend.
pub(super) async fn deregister_worker(store: &SqliteStore, w: &WorkerRegistration) -> Result<()> {
    let w = w.clone();
    store
        .write(move |conn, _, _| {
            conn.prepare_cached(
                "DELETE FROM workers WHERE node_id = ?1 AND host = ?2 AND pid = ?3",
            )?
            .execute(params![w.node_id, w.host, w.pid])?;
            Ok(())
        })
        .await
}

/// [`Store::list_workers`](crate::Store::list_workers) on this backend.
pub(super) async fn list_workers(
    store: &SqliteStore,
    seen_within: Duration,
) -> Result<Vec<WorkerProcess>> {
    let now = (store.clock)();
    store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM workers WHERE last_seen >= ?1 ORDER BY node_id"
            ))?;
            let rows = stmt.query_map(params![ms_before(now, seen_within)], |r| worker(r, now))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
}

/// [`Store::record_backup`](crate::Store::record_backup) on this backend.
pub(super) async fn record_backup(store: &SqliteStore, backup: &NewBackup) -> Result<()> {
    let b = backup.clone();
    store
        .write(move |conn, now, _| {
            conn.prepare_cached(
                "INSERT INTO backups (taken_at, backend, bytes, file) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                now,
                b.backend,
                i64::try_from(b.bytes).unwrap_or(i64::MAX),
                b.file
            ])?;
            Ok(())
        })
        .await
}

/// [`Store::last_backup`](crate::Store::last_backup) on this backend.
pub(super) async fn last_backup(store: &SqliteStore) -> Result<Option<Backup>> {
    let now = (store.clock)();
    store
        .read(move |conn, _| {
            Ok(conn
                .prepare_cached(
                    "SELECT taken_at, backend, bytes, file FROM backups \
                     ORDER BY taken_at DESC, id DESC LIMIT 1",
                )?
                .query_row([], |r| {
                    let taken_at: i64 = r.get(0)?;
                    let bytes: i64 = r.get(2)?;
                    Ok(Backup {
                        taken_at,
                        age: ago(now - taken_at),
                        backend: r.get(1)?,
                        bytes: u64::try_from(bytes).unwrap_or(0),
                        file: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
}
