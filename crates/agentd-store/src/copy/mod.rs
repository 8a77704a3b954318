//! Copying a whole store to another one (`agentd store copy`): SQLite to
//! PostgreSQL, back, or between two of the same kind. **An operator
//! operation, not a tenant one:** it moves every tenant's runs, journals,
//! conversations, audit log, API keys, budgets, circuits and idempotency
//! keys at once, so it takes no [`TenantId`](agentd_core::TenantId) and must
//! never be reachable from a tenant's request.
//!
//! How: the source must be at the current schema version (older: run
//! `agentd migrate` on it); the target is migrated. Every table is read in
//! primary-key order with keyset pagination inside one read snapshot of the
//! source, and written one transaction per batch. The columns of each table
//! are listed in `TABLES` with their type, because the backends store them
//! differently (a run id is a 16-byte BLOB in SQLite and a `uuid` in
//! PostgreSQL); a column the list does not know is refused rather than
//! dropped. Finally the row counts of source and target are compared.
//!
//! Values are copied as stored: sealed columns (encryption at rest) stay
//! sealed, so the target must be opened with the same
//! `store.encryption_key_env` keyring.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod tables;

use crate::StoreError;

/// What can go wrong copying.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target holds runs or API keys and `force` was not given.
    #[error(
        "{target} is not empty ({runs} runs, {keys} API keys); pass --force to replace its contents"
    )]
    TargetNotEmpty {
        target: String,
        runs: u64,
        keys: u64,
    },
    /// The source has runs a worker holds a live lease on.
    #[error(
        "{source_url} has {count} runs leased by a worker; stop the workers (or wait for them to \
         finish), or pass --force to copy anyway"
    )]
    Leased { source_url: String, count: u64 },
    /// The source is at an older schema version than this agentd.
    #[error(
        "{source_url} is at schema version {version}, older than this agentd ({current}); run \
         `agentd migrate` on it first"
    )]
    OldSource {
        source_url: String,
        version: usize,
        current: usize,
    },
    /// A table or column the copy does not know how to carry.
    #[error("cannot copy {what} of {url}: it is not in the copy's table list (newer agentd?)")]
    Unknown { url: String, what: String },
    /// The URL names nothing that can be copied.
    #[error("cannot copy {url}: {reason}")]
    Unsupported { url: String, reason: String },
    /// Source and target row counts differ after the copy.
    #[error("row counts differ after the copy: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Options of [`copy`].
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Copy even into a non-empty target (its rows in the copied tables
    /// are deleted first) and even while the source has leased runs.
    pub force: bool,
    /// Rows per batch (one transaction on the target each).
    pub batch: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            force: false,
            batch: 500,
        }
    }
}

/// Progress of one table, reported after each batch.
#[derive(Debug, Clone)]
pub struct Progress {
    pub table: &'static str,
    pub copied: u64,
    pub total: u64,
}

/// Rows of one table in source and target after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// How a column is stored. SQLite keeps every integer as INTEGER;
/// PostgreSQL's width matters to read and bind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    I16,
    I32,
    I64,
    Real,
    Text,
    /// 16-byte BLOB in SQLite, `uuid` in PostgreSQL.
    Uuid,
    /// BLOB / `bytea`.
    Bytes,
}

/// One column value in transit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A table to copy: its columns, the primary key first in key order.
pub(crate) struct Table {
    pub name: &'static str,
    /// How many leading `columns` form the primary key.
    pub key: usize,
    pub columns: &'static [(&'static str, Kind)],
    /// PostgreSQL generates this column (`GENERATED ALWAYS AS IDENTITY`):
    /// inserts override it and its sequence is advanced after the copy.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub identity: Option<&'static str>,
}

pub(crate) use tables::TABLES;

/// Tables a store has that are not copied (see [`TABLES`]): besides the
/// derived ones, the fleet's `workers` (the processes of the source are not
/// the target's) and `backups` (backups of the source store are not backups
/// of the target: `agentd check` should ask for the target's own).
const NOT_COPIED: &[&str] = &["active_runs", "agentd_migrations", "workers", "backups"];

/// One end of a copy: a connection of its own to either backend.
pub(crate) enum Side {
    #[cfg(feature = "sqlite")]
    Lite(sqlite::Lite),
    #[cfg(feature = "postgres")]
    Pg(postgres::Pg),
}

/// Dispatches a method to the backend of a [`Side`].
macro_rules! side {
    ($side:expr, $s:ident => $e:expr) => {
        // By place, so that a build with neither backend (no variant)
        // matches with no arm.
        match *$side {
            #[cfg(feature = "sqlite")]
            Side::Lite(ref mut $s) => $e,
            #[cfg(feature = "postgres")]
            Side::Pg(ref mut $s) => $e,
        }
    };
}

impl Side {
    async fn open(url: &str) -> Result<Self, CopyError> {
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Ok(Side::Lite(sqlite::Lite::open(url)?));
        }
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            #[cfg(feature = "postgres")]
            return Ok(Side::Pg(postgres::Pg::open(url).await?));
        }
        Err(CopyError::Unsupported {
            url: agentd_core::redact_url(url),
            reason: "expected sqlite://PATH or postgres://… (with its backend compiled in)".into(),
        })
    }

    /// Migrations applied, and how many this agentd knows.
    async fn version(&mut self) -> Result<(usize, usize), StoreError> {
        side!(self, s => s.version().await)
    }

    async fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        side!(self, s => s.tables().await)
    }

    /// Each column's name and declared type.
    async fn columns(&mut self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        side!(self, s => s.columns(table).await)
    }

    /// Whether this backend's column type `declared` carries `kind`.
    fn accepts(&self, kind: Kind, declared: &str) -> bool {
        match *self {
            #[cfg(feature = "sqlite")]
            Side::Lite(_) => sqlite::accepts(kind, declared),
            #[cfg(feature = "postgres")]
            Side::Pg(_) => postgres::accepts(kind, declared),
        }
    }

    async fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        side!(self, s => s.count(table).await)
    }

    /// Runs `running` under a lease that has not expired at `now`.
    async fn leased(&mut self, now: i64) -> Result<u64, StoreError> {
        side!(self, s => s.leased(now).await)
    }

    /// Starts the read snapshot every later read of the source sees.
    async fn snapshot(&mut self) -> Result<(), StoreError> {
        side!(self, s => s.snapshot().await)
    }

    /// Up to `limit` rows after the key `after`, in key order.
    async fn page(
        &mut self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        side!(self, s => s.page(table, after, limit).await)
    }

    /// Inserts `rows` in one transaction.
    async fn write(&mut self, table: &Table, rows: &[Vec<Value>]) -> Result<(), StoreError> {
        side!(self, s => s.write(table, rows).await)
    }

    /// Deletes every row of the copied tables in one transaction.
    async fn clear(&mut self) -> Result<(), StoreError> {
        side!(self, s => s.clear().await)
    }

    /// Advances identity sequences past the copied ids (PostgreSQL).
    async fn advance_identities(&mut self) -> Result<(), StoreError> {
        side!(self, s => s.advance_identities().await)
    }
}

/// Copies the store at `from` into the store at `to` (see the module
/// docs), reporting each batch to `progress`. Returns the row counts per
/// table, equal on both sides, or [`CopyError::Mismatch`].
///
/// No agentd may be writing to either store meanwhile: the source is read
/// in one snapshot, and what is written to it after is not copied.
pub async fn copy(
    from: &str,
    to: &str,
    options: &CopyOptions,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Vec<TableCount>, CopyError> {
    let (shown_from, shown_to) = (agentd_core::redact_url(from), agentd_core::redact_url(to));
    if same_store(from, to) {
        return Err(CopyError::Unsupported {
            url: shown_to,
            reason: "it is the source store itself".into(),
        });
    }
    let mut source = Side::open(from).await?;
    let (version, current) = source.version().await?;
    crate::codec::check_schema_version(version, current)?;
    if version < current {
        return Err(CopyError::OldSource {
            source_url: shown_from,
            version,
            current,
        });
    }
    check_tables(&mut source, &shown_from).await?;
    if !options.force {
        let count = source.leased(agentd_core::now_millis()).await?;
        if count > 0 {
            return Err(CopyError::Leased {
                source_url: shown_from,
                count,
            });
        }
    }

    // The target is brought to the current schema through the store
    // itself, then written over a connection of the copy's own.
    let store = crate::open(to).await?;
    store.migrate().await?;
    drop(store);
    let mut target = Side::open(to).await?;
    check_tables(&mut target, &shown_to).await?;
    let (runs, keys) = (target.count("runs").await?, target.count("api_keys").await?);
    if runs + keys > 0 {
        if !options.force {
            return Err(CopyError::TargetNotEmpty {
                target: shown_to,
                runs,
                keys,
            });
        }
        target.clear().await?;
    } else if options.force {
        // Empty of runs and keys, but budgets or circuits may remain.
        target.clear().await?;
    }

    source.snapshot().await?;
    let batch = options.batch.max(1);
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let total = source.count(table.name).await?;
        let mut copied = 0u64;
        let mut after: Option<Vec<Value>> = None;
        progress(&Progress {
            table: table.name,
            copied,
            total,
        });
        loop {
            let rows = source.page(table, after.as_deref(), batch).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key].to_vec());
            target.write(table, &rows).await?;
            copied += rows.len() as u64;
            progress(&Progress {
                table: table.name,
                copied,
                total,
            });
            if rows.len() < batch {
                break;
            }
        }
        counts.push(TableCount {
            table: table.name,
            source: total,
            target: target.count(table.name).await?,
        });
    }
    target.advance_identities().await?;

    let differ: Vec<String> = counts
        .iter()
        .filter(|c| c.source != c.target)
        .map(|c| {
            format!(
                "{}: {} in the source, {} in the target",
                c.table, c.source, c.target
            )
        })
        .collect();
    if !differ.is_empty() {
        return Err(CopyError::Mismatch(differ.join("; ")));
    }
    Ok(counts)
}

/// Whether both URLs name one store: a copy onto itself with `force`
/// would delete the source.
fn same_store(from: &str, to: &str) -> bool {
    #[cfg(feature = "sqlite")]
    if let (Ok(crate::sqlite::Location::File(a)), Ok(crate::sqlite::Location::File(b))) =
        (crate::sqlite::parse_url(from), crate::sqlite::parse_url(to))
    {
        return match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
    }
    #[cfg(feature = "postgres")]
    if let (Ok(a), Ok(b)) = (crate::PgOptions::parse(from), crate::PgOptions::parse(to)) {
        let schema = |o: &crate::PgOptions| o.schema.clone().unwrap_or_else(|| "public".into());
        return a.url == b.url && schema(&a) == schema(&b);
    }
    from == to
}

/// Refuses a store with a table or column [`TABLES`] does not carry: a
/// copy must not silently drop data a newer schema added.
async fn check_tables(side: &mut Side, url: &str) -> Result<(), CopyError> {
    let unknown = |what: String| CopyError::Unknown {
        url: url.to_string(),
        what,
    };
    for name in side.tables().await? {
        if NOT_COPIED.contains(&name.as_str()) {
            continue;
        }
        let Some(table) = TABLES.iter().find(|t| t.name == name) else {
            return Err(unknown(format!("table {name}")));
        };
        for (column, stored) in side.columns(&name).await? {
            let Some((_, kind)) = table.columns.iter().find(|(c, _)| *c == column) else {
                return Err(unknown(format!("column {name}.{column}")));
            };
            if !side.accepts(*kind, &stored) {
                return Err(unknown(format!(
                    "column {name}.{column} of type {stored} (expected {kind:?})"
                )));
            }
        }
    }
    Ok(())
}

/// `Corrupt` for a value that does not fit its column's kind.
pub(crate) fn misfit(table: &Table, column: &str, value: &Value) -> StoreError {
    StoreError::Corrupt(format!(
        "{}.{column}: value {value:?} does not fit the column",
        table.name
    ))
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
