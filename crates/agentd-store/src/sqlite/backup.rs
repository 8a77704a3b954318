//! Backup and restore of a SQLite store (operator operations over every
//! tenant; see [`crate::backup`]).
//!
//! The backup is `VACUUM INTO` on a read-only connection of its own: one
//! read transaction, so the copy is a consistent snapshot, and in WAL mode
//! readers never block the writer, so a serving process keeps committing.
//! Its cost: it reads the whole database once, and while it runs the WAL
//! cannot be checkpointed past its snapshot (the WAL grows by what is
//! written meanwhile and is checkpointed after).

use super::maintenance::MIGRATIONS;
use super::{Location, configure, parse_url};
use crate::backup::common::{BackupError, Done, commit_file, discard, io_at, temp_beside};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// The database file a `sqlite:` URL names; in-memory stores have none.
fn file_of(url: &str) -> Result<PathBuf, BackupError> {
    match parse_url(url)? {
        Location::File(path) => Ok(path),
        Location::Memory(_) => Err(BackupError::Unsupported {
            url: url.to_string(),
            reason: "an in-memory database lives only inside its process".into(),
        }),
    }
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Refuses `other` when it is the database file itself: a backup written
/// over it, or a restore from it, would replace the live data.
fn not_the_database(db: &Path, other: &Path) -> Result<(), BackupError> {
    let same = match (db.canonicalize(), other.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(BackupError::Unsupported {
            url: other.display().to_string(),
            reason: "it is the store's own database file".into(),
        });
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| BackupError::Store(crate::StoreError::Closed))?
}

/// [`crate::backup::backup`] on SQLite.
pub(crate) async fn backup(url: &str, out: &Path) -> Result<Done, BackupError> {
    let db = file_of(url)?;
    let out = out.to_path_buf();
    blocking(move || {
        if !db.is_file() {
            return Err(BackupError::Unsupported {
                url: db.display().to_string(),
                reason: "no database file there".into(),
            });
        }
        not_the_database(&db, &out)?;
        let conn = open_read_only(&db).map_err(crate::StoreError::from)?;
        // No integrity check of a live database: it would read it all
        // once more; the restore checks the copy.
        verify(&conn, &db, false)?;
        let tmp = temp_beside(&out);
        let target = tmp.to_str().ok_or_else(|| BackupError::Unsupported {
            url: out.display().to_string(),
            reason: "the output path is not UTF-8".into(),
        })?;
        if let Err(e) = conn.execute("VACUUM INTO ?1", [target]) {
            discard(&tmp);
            return Err(crate::StoreError::from(e).into());
        }
        drop(conn);
        let bytes = commit_file(&tmp, &out).inspect_err(|_| discard(&tmp))?;
        Ok(Done {
            target: out.display().to_string(),
            bytes,
        })
    })
    .await
}

/// Checks that `conn` is an agentd database this build can open: with the
/// `runs` table, at a schema version no newer than its migrations, and
/// (`integrity`) passing SQLite's quick check.
fn verify(conn: &Connection, path: &Path, integrity: bool) -> Result<(), BackupError> {
    let bad = |reason: String| BackupError::NotABackup {
        path: path.to_path_buf(),
        reason,
    };
    if integrity {
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| bad(e.to_string()))?;
        if check != "ok" {
            return Err(bad(format!("integrity check failed: {check}")));
        }
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    let runs: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| bad(e.to_string()))?;
    if version < 1 || runs.is_none() {
        return Err(bad("a SQLite database without agentd's tables".into()));
    }
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    crate::codec::check_schema_version(version, MIGRATIONS.len())
        .map_err(|e| bad(e.to_string()))?;
    Ok(())
}

/// [`crate::backup::restore`] on SQLite: verify, copy next to the target,
/// fsync, drop the target's WAL, rename.
pub(crate) async fn restore(url: &str, file: &Path, force: bool) -> Result<Done, BackupError> {
    let db = file_of(url)?;
    let file = file.to_path_buf();
    blocking(move || {
        not_the_database(&db, &file)?;
        let conn = open_read_only(&file).map_err(|e| BackupError::NotABackup {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        verify(&conn, &file, true)?;
        drop(conn);
        let occupied = std::fs::metadata(&db).is_ok_and(|m| m.len() > 0);
        if occupied && !force {
            return Err(BackupError::TargetNotEmpty {
                target: db.display().to_string(),
            });
        }
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        }
        let tmp = temp_beside(&db);
        std::fs::copy(&file, &tmp)
            .map_err(io_at(&tmp))
            .inspect_err(|_| discard(&tmp))?;
        // The old database's WAL would be replayed onto the new file (and
        // corrupt it), so it goes first; the old data is being replaced.
        for suffix in ["-wal", "-shm"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            let side = PathBuf::from(side);
            match std::fs::remove_file(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    discard(&tmp);
                    return Err(io_at(&side)(e));
                }
            }
        }
        let bytes = commit_file(&tmp, &db).inspect_err(|_| discard(&tmp))?;
        Ok(Done {
            target: db.display().to_string(),
            bytes,
        })
    })
    .await
}
