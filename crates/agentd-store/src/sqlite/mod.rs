//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so a
//! commit is on disk before it returns. One thread owns the write connection
//! and commits the jobs that are ready together (group commit, see
//! [`writer`]); reads go to a pool of read-only connections.

mod alerts;
mod audit;
pub(crate) mod backup;
mod budget;
mod deliveries;
mod fleet;
mod fork;
mod journal;
mod keys;
mod lists;
pub(crate) mod maintenance;
mod queue;
mod read;
mod rollout;
mod rows;
mod runs;
mod schedules;
mod usage;
mod vault;
mod writer;

use crate::codec::{Codec, Field, in_page, migration_prefix, page};
use crate::status::{
    admit, cancelled_by, conversation_busy, done, interrupted_by, no_waiting_step, waiting_step,
};
use crate::{
    AuditEntry, AuditFilter, BudgetLimit, BudgetLimits, BudgetOwner, ClaimRequest, Claimed,
    ConversationMessage, Created, Journal, Keyring, Lease, Outcome, Page, Reservation, Result,
    RunFilter, StepWrite, StoreError, Transition,
};
use agentd_core::{
    ConversationId, IfBusy, Message, Millis, NewRun, Pause, PrincipalId, Run, RunId,
    SCHEMA_VERSION, Step, TenantId,
    checkpoint::{StepRecord, migrate_journal},
    run::Change,
};
use audit::*;
use budget::*;
use lists::*;
use queue::*;
use read::Readers;
use rows::{corrupt, to_json};
use runs::*;
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Params, params};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use writer::Writer;

impl From<rusqlite::Error> for StoreError {
    /// A SQLite error. SQLite is a file: there is no "unavailable" beyond
    /// a busy database, which waits out its busy timeout first.
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend {
            backend: "sqlite",
            source: Arc::new(e),
        }
    }
}

/// A clock in epoch milliseconds. Injectable so lease and TTL logic can be
/// tested without waiting; SQLite is embedded, so the process clock is the
/// database's clock.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
    clock: Clock,
    codec: Codec,
    path: Option<PathBuf>,
}

/// Opens one more read connection.
type OpenReader = Box<dyn Fn() -> rusqlite::Result<Connection> + Send + Sync>;

/// Where a `sqlite:` URL points.
pub(crate) enum Location {
    File(PathBuf),
    /// A named in-memory database shared by this process's connections.
    Memory(String),
}

pub(crate) fn parse_url(url: &str) -> Result<Location> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::BadUrl {
            url: url.to_string(),
            reason: "expected sqlite://PATH".into(),
        })?;
    let path = rest.split('?').next().unwrap_or_default();
    if path == ":memory:" || rest.contains("mode=memory") {
        return Ok(Location::Memory(format!(
            "file:agentd-{}?mode=memory&cache=shared",
            uuid::Uuid::new_v4()
        )));
    }
    if path.is_empty() {
        return Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: "no database file named".into(),
        });
    }
    Ok(Location::File(PathBuf::from(path)))
}

pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite:` URL names.
    pub async fn open(url: &str) -> Result<Self> {
        let location = parse_url(url)?;
        let (write_conn, open_reader, path): (Connection, OpenReader, Option<PathBuf>) =
            match location {
                Location::File(path) => {
                    let conn = Connection::open(&path)?;
                    configure(&conn)?;
                    conn.pragma_update(None, "journal_mode", "WAL")?;
                    conn.pragma_update(None, "synchronous", "FULL")?;
                    let p = path.clone();
                    let open = move || {
                        let c = Connection::open_with_flags(
                            &p,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )?;
                        configure(&c)?;
                        Ok(c)
                    };
                    (conn, Box::new(open), Some(path))
                }
                Location::Memory(uri) => {
                    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_CREATE
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    let conn = Connection::open_with_flags(&uri, flags)?;
                    configure(&conn)?;
                    let open = move || {
                        let c = Connection::open_with_flags(&uri, flags)?;
                        configure(&c)?;
                        Ok(c)
                    };
                    (conn, Box::new(open), None)
                }
            };
        let writer = Writer::start(write_conn).map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(Self {
            writer,
            readers: Readers::new(open_reader),
            clock: Arc::new(agentd_core::now_millis),
            codec: Codec::default(),
            path,
        })
    }

    /// The plans of the list statements, by name (tests: each must read a
    /// range of an index). Not part of the API.
    #[doc(hidden)]
    pub async fn list_query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        maintenance::list_query_plans(self).await
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Seals payload columns with `keyring` (encryption at rest; see
    /// [`crate::StoreOptions::keyring`]).
    pub fn with_keyring(mut self, keyring: Option<Keyring>) -> Self {
        self.codec = Codec::new(keyring);
        self
    }

    /// Runs `f` in the writer's next transaction with the time and the
    /// column codec.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Millis, &Codec) -> Result<T> + Send + 'static,
    {
        // Read on the caller's task, not the writer thread: an injected
        // clock may follow the caller's (e.g. paused tokio) time.
        let now = (self.clock)();
        let codec = self.codec.clone();
        self.writer.write(move |conn| f(conn, now, &codec)).await
    }

    /// Runs `f` on a read connection with the column codec.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Codec) -> Result<T> + Send + 'static,
    {
        let codec = self.codec.clone();
        self.readers.read(move |conn| f(conn, &codec)).await
    }
}

store_by_role!(SqliteStore, "sqlite");
