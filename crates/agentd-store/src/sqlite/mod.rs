//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so a
//! commit is on disk before it returns. One thread owns the write connection
//! and commits the jobs that are ready together (group commit, see
//! [`writer`]); reads go to a pool of read-only connections.

mod read;
mod rows;
mod writer;

use crate::codec::{Codec, Field, in_page, migration_prefix, page};
use crate::status::{admit, cancelled_by, done, no_waiting_step, waiting_step};
use crate::{
    AuditEntry, BudgetLimit, ClaimRequest, Claimed, ConversationMessage, Created, Journal, Keyring,
    Lease, Outcome, Page, Reservation, Result, RunFilter, StepWrite, Store, StoreError, Transition,
};
use agentd_core::{
    ConversationId, Message, Millis, NewRun, Pause, PrincipalId, Run, RunId, SCHEMA_VERSION, Step,
    TenantId,
    checkpoint::{StepRecord, migrate_journal},
    run::Change,
};
use read::Readers;
use rows::{corrupt, to_json};
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Params, params};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use writer::Writer;

/// A clock in epoch milliseconds. Injectable so lease and TTL logic can be
/// tested without waiting; SQLite is embedded, so the process clock is the
/// database's clock.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_roles.sql"),
    include_str!("../../migrations/sqlite/0003_idempotency.sql"),
    include_str!("../../migrations/sqlite/0004_step_calls.sql"),
    include_str!("../../migrations/sqlite/0005_retention.sql"),
    include_str!("../../migrations/sqlite/0006_budgets.sql"),
    include_str!("../../migrations/sqlite/0007_circuits.sql"),
    include_str!("../../migrations/sqlite/0008_audit_ids.sql"),
];

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
enum Location {
    File(PathBuf),
    /// A named in-memory database shared by this process's connections.
    Memory(String),
}

fn parse_url(url: &str) -> Result<Location> {
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
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

// ---- statements shared by the operations (all run inside a transaction) ----

fn fetch_run(conn: &Connection, codec: &Codec, tenant: &str, id: &RunId) -> Result<Option<Run>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ?1 AND tenant = ?2"
    ))?;
    let mut rows = stmt.query(params![id.0.as_bytes(), tenant])?;
    match rows.next()? {
        Some(row) => Ok(Some(rows::run(codec, row, 0)?)),
        None => Ok(None),
    }
}

/// A run id that is already taken is the caller's conflict, not a store
/// failure.
fn duplicate_run(e: rusqlite::Error, id: &RunId) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Duplicate {
                what: format!("run {id}"),
            }
        }
        e => StoreError::Sqlite(e),
    }
}

#[allow(clippy::too_many_arguments)] // one audit row's columns
fn insert_audit(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    run: &RunId,
    at: Millis,
    actor: &str,
    event: &str,
    detail: Option<&serde_json::Value>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (tenant, run_id, at, actor, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        tenant,
        run.0.as_bytes(),
        at,
        actor,
        event,
        codec.seal_opt(Field::of(run, "audit.detail"), detail)?
    ])?;
    Ok(())
}

fn insert_step(conn: &Connection, codec: &Codec, run: &RunId, step: &Step) -> Result<()> {
    let field = |column| Field::step(run, step.index, column);
    conn.prepare_cached(
        "INSERT INTO steps (run_id, idx, kind, name, status, attempt, started_at, duration_ms, \
         input, output, error, input_tokens, output_tokens, v, call_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        run.0.as_bytes(),
        step.index,
        step.kind.as_str(),
        step.name,
        step.status.as_str(),
        step.attempt,
        step.started_at,
        step.duration_ms as i64,
        codec.seal_json(field("steps.input"), &step.input)?,
        codec.seal_json(field("steps.output"), &step.output)?,
        codec.seal_opt(field("steps.error"), step.error.as_ref())?,
        step.usage.map(|u| u.input_tokens as i64),
        step.usage.map(|u| u.output_tokens as i64),
        SCHEMA_VERSION,
        step.call_id,
    ])?;
    Ok(())
}

/// Journals `writes` under the lease and adds their totals to the run; fails
/// with `LeaseLost` if the lease token moved on. `lease_until` extends the
/// lease; `None` means the attempt ends with this write (pause or finish).
///
/// Model spending goes to the tenant's budget period in the same
/// transaction, and the run's budget reservation ends once what it covered
/// is spent or the attempt is over.
fn journal_steps(
    conn: &Connection,
    codec: &Codec,
    lease: &Lease,
    writes: &[StepWrite],
    now: Millis,
    lease_until: Option<Millis>,
) -> Result<()> {
    let cost = add_steps(conn, codec, lease, writes, now, lease_until)?;
    if cost > 0.0 {
        conn.prepare_cached(
            "UPDATE tenant_budgets SET spent_usd = spent_usd + ?1 WHERE tenant = ?2",
        )?
        .execute(params![cost, lease.tenant.as_str()])?;
    }
    if cost > 0.0 || lease_until.is_none() {
        release_reservation(conn, &lease.run_id)?;
    }
    Ok(())
}

/// Ends run `id`'s budget reservation, if it has one.
fn release_reservation(conn: &Connection, id: &RunId) -> Result<()> {
    conn.prepare_cached("DELETE FROM budget_reservations WHERE run_id = ?1")?
        .execute(params![id.0.as_bytes()])?;
    Ok(())
}

/// Inserts the steps and adds their totals to the fenced run; returns what
/// they cost.
fn add_steps(
    conn: &Connection,
    codec: &Codec,
    lease: &Lease,
    writes: &[StepWrite],
    now: Millis,
    lease_until: Option<Millis>,
) -> Result<f64> {
    let Some(last) = writes.last() else {
        // Still check the lease: callers rely on it.
        check_lease(conn, lease)?;
        return Ok(0.0);
    };
    let (i, o, c) = writes.iter().fold((0i64, 0i64, 0f64), |(i, o, c), w| {
        (
            i + w.usage.input_tokens as i64,
            o + w.usage.output_tokens as i64,
            c + w.cost_usd,
        )
    });
    let n = conn.prepare_cached(&ADD_STEPS)?.execute(params![
        i64::from(last.step.index) + 1,
        i,
        o,
        c,
        now,
        lease_until,
        lease.run_id.0.as_bytes(),
        lease.tenant.as_str(),
        lease.token
    ])?;
    if n == 0 {
        return Err(StoreError::LeaseLost { run: lease.run_id });
    }
    for w in writes {
        insert_step(conn, codec, &lease.run_id, &w.step)?;
    }
    Ok(c)
}

rendered! {
    /// Adds a write's steps and totals to the run under its lease.
    static ADD_STEPS = "UPDATE runs SET steps = ?1, input_tokens = input_tokens + ?2, \
        output_tokens = output_tokens + ?3, cost_usd = cost_usd + ?4, updated_at = ?5, \
        lease_until = COALESCE(?6, lease_until) \
        WHERE id = ?7 AND tenant = ?8 AND lease_token = ?9 AND status {journal}";
}

rendered! {
    /// Whether a lease is held.
    static LEASE_HELD = "SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2 AND lease_token = ?3 \
        AND status {journal}";
}

fn check_lease(conn: &Connection, lease: &Lease) -> Result<()> {
    let held: Option<i64> = conn
        .prepare_cached(&LEASE_HELD)?
        .query_row(
            params![
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ],
            |r| r.get(0),
        )
        .optional()?;
    held.map(|_| ())
        .ok_or(StoreError::LeaseLost { run: lease.run_id })
}

/// Runs that may be claimed: due and queued, or running on an expired lease;
/// a conversation's runs wait for its older active runs.
macro_rules! runnable {
    () => {
        concat!(
            "((r.status = 'queued' AND r.available_at <= ?1) \
             OR (r.status = 'running' AND r.lease_until < ?1)) AND ",
            conversation_turn!()
        )
    };
}

rendered! {
    /// The next runnable run, oldest first.
    static NEXT_RUNNABLE = concat!(
        "SELECT r.id, r.status FROM runs r WHERE ",
        runnable!(),
        " ORDER BY r.available_at, r.id LIMIT 1"
    );
}

rendered! {
    /// Run `?2` of tenant `?3`, if it is runnable.
    static RUNNABLE = concat!(
        "SELECT r.status FROM runs r WHERE r.id = ?2 AND r.tenant = ?3 AND ",
        runnable!()
    );
}

/// Claims run `id` (already known runnable) and reads its journal.
fn take_lease(
    conn: &Connection,
    codec: &Codec,
    id: &[u8],
    was_running: bool,
    req: &ClaimRequest,
    now: Millis,
) -> Result<Claimed> {
    let mut stmt = conn.prepare_cached(concat!(
        "UPDATE runs SET status = 'running', lease_owner = ?1, lease_until = ?2, \
         lease_token = lease_token + 1, attempt = attempt + ?3, updated_at = ?4 \
         WHERE id = ?5 RETURNING lease_token, ",
        run_cols!()
    ))?;
    let mut rows = stmt.query(params![
        req.owner,
        now + req.lease_for.as_millis() as i64,
        i64::from(was_running),
        now,
        id
    ])?;
    let row = rows
        .next()?
        .ok_or_else(|| corrupt("claimed run vanished"))?;
    let token: i64 = row.get(0)?;
    let run = rows::run(codec, row, 1)?;
    drop(rows);
    // A run found `running` had its lease expire: its worker died mid-run.
    let event = if was_running { "reclaimed" } else { "running" };
    insert_audit(
        conn,
        codec,
        run.tenant.as_str(),
        &run.id,
        now,
        &req.owner,
        event,
        None,
    )?;
    let steps = load_steps(conn, codec, &run.id)?;
    let roles = load_roles(conn, &run.id)?;
    let history = match &run.conversation_id {
        None => Vec::new(),
        Some(conv) => load_history(
            conn,
            codec,
            run.tenant.as_str(),
            conv,
            req.history_limits.get(&run.agent).copied(),
        )?,
    };
    Ok(Claimed {
        lease: Lease {
            run_id: run.id,
            tenant: run.tenant.clone(),
            token,
        },
        journal: Journal {
            run,
            steps,
            history,
            roles,
        },
    })
}

/// Claims run `id` of `tenant` if it is runnable now.
fn claim_one(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    id: &RunId,
    req: &ClaimRequest,
    now: Millis,
) -> Result<Option<Claimed>> {
    let candidate: Option<String> = conn
        .prepare_cached(&RUNNABLE)?
        .query_row(params![now, id.0.as_bytes(), tenant], |r| r.get(0))
        .optional()?;
    match candidate {
        None => Ok(None),
        Some(status) => {
            take_lease(conn, codec, id.0.as_bytes(), status == "running", req, now).map(Some)
        }
    }
}

fn load_roles(conn: &Connection, id: &RunId) -> Result<Vec<String>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT roles FROM runs WHERE id = ?1")?
        .query_row(params![id.0.as_bytes()], |r| r.get(0))?;
    match text {
        Some(t) => serde_json::from_str(&t).map_err(corrupt),
        None => Ok(Vec::new()),
    }
}

fn load_steps(conn: &Connection, codec: &Codec, id: &RunId) -> Result<Vec<Step>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        step_cols!(),
        " FROM steps WHERE run_id = ?1 ORDER BY idx"
    ))?;
    let records = read_steps(&mut stmt, codec, id, params![id.0.as_bytes()])?;
    Ok(migrate_journal(*id, records)?)
}

/// Reads the step records of run `run` a `SELECT step_cols!()` statement
/// returns.
fn read_steps(
    stmt: &mut CachedStatement<'_>,
    codec: &Codec,
    run: &RunId,
    params: impl Params,
) -> Result<Vec<StepRecord>> {
    let mut rows = stmt.query(params)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(rows::step(codec, run, row)?);
    }
    Ok(records)
}

fn load_history(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    conv: &ConversationId,
    limit: Option<u32>,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, message FROM (SELECT seq, run_id, message FROM messages \
         WHERE tenant = ?1 AND conversation_id = ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![tenant, conv.as_str(), limit.map_or(-1, i64::from)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let run = rows::run_id(&row.get::<_, Vec<u8>>(0)?)?;
        out.push(codec.parse(Field::of(&run, "messages.message"), row.get(1)?)?);
    }
    Ok(out)
}

fn migrate(conn: &Connection) -> Result<()> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Migrate(format!(
            "the database is at schema version {applied}, newer than this agentd ({}); upgrade agentd",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        conn.execute_batch(sql)
            .map_err(|e| StoreError::Migrate(format!("migration {}: {e}", i + 1)))?;
        conn.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    Ok(())
}

rendered! {
    /// Ends an attempt under its lease.
    static FINISH = concat!(
        "UPDATE runs SET status = ?1, output = ?2, error = ?3, lease_owner = NULL, \
         lease_until = NULL, updated_at = ?4, available_at = COALESCE(?8, available_at), \
         attempt = attempt + ?9 \
         WHERE id = ?5 AND tenant = ?6 AND lease_token = ?7 AND status {finish} RETURNING ",
        run_cols!()
    );
}

rendered! {
    /// Extends a held lease.
    static HEARTBEAT = "UPDATE runs SET lease_until = ?1 \
        WHERE id = ?2 AND tenant = ?3 AND lease_token = ?4 AND status {journal}";
}

rendered! {
    /// Gives a leased run back to the queue.
    static RELEASE = "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
        available_at = ?1, updated_at = ?1 \
        WHERE id = ?2 AND tenant = ?3 AND lease_token = ?4 AND status {release}";
}

rendered! {
    /// Gives every lease of an owner back to the queue.
    static RELEASE_OWNER = "UPDATE runs SET status = 'queued', lease_owner = NULL, \
        lease_until = NULL, available_at = ?1, updated_at = ?1, attempt = attempt + 1 \
        WHERE lease_owner = ?2 AND status {release}";
}

rendered! {
    /// Runs retention may delete, oldest first.
    static PURGEABLE = "SELECT id, tenant FROM runs \
        WHERE status {purge} AND updated_at < ?1 ORDER BY updated_at LIMIT ?2";
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn commits(&self) -> u64 {
        self.writer.commits()
    }

    async fn migrate(&self) -> Result<()> {
        // DDL is not counted as changes by the batch writer, so migrations
        // run in their own explicit transaction.
        self.writer
            .exclusive(|conn| {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                match migrate(conn) {
                    Ok(()) => Ok(conn.execute_batch("COMMIT")?),
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        let version: i64 = self
            .readers
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await?;
        if version < MIGRATIONS.len() as i64 {
            return Err(StoreError::Migrate("migrations are not applied".into()));
        }
        Ok(())
    }

    async fn storage_bytes(&self) -> Result<u64> {
        self.writer
            .exclusive(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                Ok((pages * size) as u64)
            })
            .await
            .map(|bytes| match &self.path {
                Some(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(bytes),
                None => bytes,
            })
    }

    async fn create_run(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
    ) -> Result<Created> {
        let tenant = tenant.clone();
        let new = run.clone();
        let claim = claim.cloned();
        self.write(move |conn, now, codec| {
            if let Some(idem) = &new.idempotency {
                let seen: Option<(Vec<u8>, String)> = conn
                    .prepare_cached(
                        "SELECT run_id, fingerprint FROM idempotency_keys \
                         WHERE tenant = ?1 AND key = ?2",
                    )?
                    .query_row(params![tenant.as_str(), idem.key], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((id, fingerprint)) = seen {
                    if fingerprint != idem.fingerprint {
                        return Err(StoreError::IdempotencyConflict {
                            key: idem.key.clone(),
                        });
                    }
                    let id = rows::run_id(&id)?;
                    let run = fetch_run(conn, codec, tenant.as_str(), &id)?
                        .ok_or_else(|| corrupt(format_args!("idempotent run {id} vanished")))?;
                    return Ok(Created {
                        run,
                        claimed: None,
                        replayed: true,
                    });
                }
                conn.prepare_cached(
                    "INSERT INTO idempotency_keys (tenant, key, run_id, fingerprint, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    tenant.as_str(),
                    idem.key,
                    new.id.0.as_bytes(),
                    idem.fingerprint,
                    now
                ])?;
            }
            let mut stmt = conn.prepare_cached(concat!(
                "INSERT INTO runs (id, tenant, agent, principal, conversation_id, status, input, \
                 metadata, created_at, updated_at, available_at, v, roles) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?8, ?8, ?9, ?10) \
                 RETURNING ",
                run_cols!()
            ))?;
            let created = stmt
                .query_row(
                    params![
                        new.id.0.as_bytes(),
                        tenant.as_str(),
                        new.agent,
                        new.principal.as_str(),
                        new.conversation_id.as_ref().map(|c| c.as_str()),
                        codec.seal_json(Field::of(&new.id, "runs.input"), &new.input)?,
                        codec
                            .seal_opt(Field::of(&new.id, "runs.metadata"), new.metadata.as_ref())?,
                        now,
                        SCHEMA_VERSION,
                        to_json(&new.roles)?,
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )
                .map_err(|e| duplicate_run(e, &new.id))??;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &new.id,
                now,
                new.principal.as_str(),
                "created",
                None,
            )?;
            let claimed = match &claim {
                Some(req) => claim_one(conn, codec, tenant.as_str(), &new.id, req, now)?,
                None => None,
            };
            Ok(Created {
                run: claimed.as_ref().map_or(created, |c| c.journal.run.clone()),
                claimed,
                replayed: false,
            })
        })
        .await
    }

    async fn get_run(&self, tenant: &TenantId, id: RunId) -> Result<Option<Run>> {
        let tenant = tenant.clone();
        self.read(move |c, codec| fetch_run(c, codec, tenant.as_str(), &id))
            .await
    }

    async fn list_runs(&self, tenant: &TenantId, filter: &RunFilter) -> Result<Page<Run>> {
        let limit = filter.limit.clamp(1, 1000);
        let cursor = match &filter.cursor {
            Some(c) => Some(
                RunId::parse(c)
                    .map_err(|_| StoreError::BadCursor(c.clone()))?
                    .0,
            ),
            None => None,
        };
        let tenant = tenant.clone();
        let agent = filter.agent.clone();
        let status = filter.status.map(|s| s.as_str());
        let items = self
            .read(move |c, codec| {
                let mut stmt = c.prepare_cached(concat!(
                    "SELECT ",
                    run_cols!(),
                    " FROM runs WHERE tenant = ?1 \
                     AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR agent = ?3) \
                     AND (?4 IS NULL OR status = ?4) ORDER BY id DESC LIMIT ?5"
                ))?;
                let mut rows = stmt.query(params![
                    tenant.as_str(),
                    cursor.as_ref().map(|u| u.as_bytes().to_vec()),
                    agent,
                    status,
                    i64::from(limit) + 1
                ])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(rows::run(codec, row, 0)?);
                }
                Ok(out)
            })
            .await?;
        Ok(page(items, limit, |r| r.id.to_string()))
    }

    async fn list_steps(
        &self,
        tenant: &TenantId,
        id: RunId,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Option<Page<Step>>> {
        let limit = limit.clamp(1, 1000);
        let tenant = tenant.clone();
        let items = self
            .read(move |c, codec| {
                let exists: Option<i64> = c
                    .prepare_cached("SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2")?
                    .query_row(params![id.0.as_bytes(), tenant.as_str()], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Ok(None);
                }
                let mut stmt = c.prepare_cached(concat!(
                    "SELECT ",
                    step_cols!(),
                    " FROM steps WHERE run_id = ?1 AND idx > ?2 \
                     ORDER BY idx LIMIT ?3"
                ))?;
                let page = read_steps(
                    &mut stmt,
                    codec,
                    &id,
                    params![
                        id.0.as_bytes(),
                        after.map_or(-1, i64::from),
                        i64::from(limit) + 1
                    ],
                )?;
                // Older records are migrated with the journal before them.
                let page = match migration_prefix(&page) {
                    None => page,
                    Some(last) => read_steps(
                        &mut c.prepare_cached(concat!(
                            "SELECT ",
                            step_cols!(),
                            " FROM steps WHERE run_id = ?1 AND idx <= ?2 ORDER BY idx"
                        ))?,
                        codec,
                        &id,
                        params![id.0.as_bytes(), last],
                    )?,
                };
                Ok(Some(in_page(migrate_journal(id, page)?, after)))
            })
            .await?;
        Ok(items.map(|items| page(items, limit, |s| s.index.to_string())))
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<ConversationMessage>> {
        let limit = limit.clamp(1, 1000);
        let tenant = tenant.clone();
        let conversation = conversation.clone();
        let items = self
            .read(move |c, codec| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, run_id, message, created_at FROM messages \
                     WHERE tenant = ?1 AND conversation_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                )?;
                let mut rows = stmt.query(params![
                    tenant.as_str(),
                    conversation.as_str(),
                    i64::try_from(after.unwrap_or(0)).unwrap_or(i64::MAX),
                    i64::from(limit) + 1
                ])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(crate::row::message(codec, row)?);
                }
                Ok(out)
            })
            .await?;
        Ok(page(items, limit, |m| m.seq.to_string()))
    }

    async fn audit(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &str,
        event: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let tenant = tenant.clone();
        let actor = actor.to_string();
        let event = event.to_string();
        let detail = detail.clone();
        self.write(move |conn, now, codec| {
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                &actor,
                &event,
                Some(&detail),
            )
        })
        .await
    }

    async fn list_audit(&self, tenant: &TenantId, id: RunId) -> Result<Vec<AuditEntry>> {
        let tenant = tenant.clone();
        self.read(move |c, codec| {
            let mut stmt = c.prepare_cached(
                "SELECT at, actor, event, detail FROM audit \
                     WHERE tenant = ?1 AND run_id = ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![tenant.as_str(), id.0.as_bytes()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::row::audit(codec, id, row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn cancel_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let tenant = tenant.clone();
        let actor = actor.clone();
        self.write(move |conn, now, codec| {
            if let Err(answer) = admit(
                Change::Cancel,
                fetch_run(conn, codec, tenant.as_str(), &id)?,
            ) {
                return Ok(answer);
            }
            let error = cancelled_by(&actor);
            // Bumping the token revokes a running run's lease: its worker's
            // next write fails and it stops.
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'cancelled', error = ?1, pause = NULL, \
                     lease_owner = NULL, lease_until = NULL, lease_token = lease_token + 1, \
                     updated_at = ?2 WHERE id = ?3 AND tenant = ?4 RETURNING ",
                    run_cols!()
                ))?
                .query_row(
                    params![
                        codec.seal_json(Field::of(&id, "runs.error"), &error)?,
                        now,
                        id.0.as_bytes(),
                        tenant.as_str()
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )??;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                actor.as_str(),
                "cancelled",
                None,
            )?;
            Ok(Transition::Done(run, None))
        })
        .await
    }

    async fn requeue_dead(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let tenant = tenant.clone();
        let actor = actor.clone();
        self.write(move |conn, now, codec| {
            if let Err(answer) = admit(
                Change::Requeue,
                fetch_run(conn, codec, tenant.as_str(), &id)?,
            ) {
                return Ok(answer);
            }
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'queued', error = NULL, attempt = 1, \
                     available_at = ?1, updated_at = ?1 WHERE id = ?2 AND tenant = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(params![now, id.0.as_bytes(), tenant.as_str()], |row| {
                    Ok(rows::run(codec, row, 0))
                })??;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                actor.as_str(),
                "requeued",
                None,
            )?;
            Ok(Transition::Done(run, None))
        })
        .await
    }

    async fn resume_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        answer: &serde_json::Value,
        actor: &PrincipalId,
        claim: Option<&ClaimRequest>,
    ) -> Result<Transition> {
        let tenant = tenant.clone();
        let actor = actor.clone();
        let answer = answer.clone();
        let claim = claim.cloned();
        self.write(move |conn, now, codec| {
            let step = match waiting_step(fetch_run(conn, codec, tenant.as_str(), &id)?) {
                Ok(step) => step,
                Err(answer) => return Ok(answer),
            };
            let n = conn
                .prepare_cached(
                    "UPDATE steps SET status = 'completed', output = ?1, \
                     duration_ms = MAX(0, ?2 - started_at) \
                     WHERE run_id = ?3 AND idx = ?4 AND status = 'waiting'",
                )?
                .execute(params![
                    codec.seal_json(Field::step(&id, step, "steps.output"), &answer)?,
                    now,
                    id.0.as_bytes(),
                    step
                ])?;
            if n != 1 {
                return Err(no_waiting_step(&id, step));
            }
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'queued', pause = NULL, available_at = ?1, \
                     updated_at = ?1 WHERE id = ?2 AND tenant = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(params![now, id.0.as_bytes(), tenant.as_str()], |row| {
                    Ok(rows::run(codec, row, 0))
                })??;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                actor.as_str(),
                "resumed",
                None,
            )?;
            let claimed = match &claim {
                Some(req) => claim_one(conn, codec, tenant.as_str(), &id, req, now)?,
                None => None,
            };
            Ok(done(run, claimed))
        })
        .await
    }

    async fn claim_next(&self, req: &ClaimRequest) -> Result<Option<Claimed>> {
        Ok(self.claim_batch(req, 1).await?.pop())
    }

    async fn claim_batch(&self, req: &ClaimRequest, max: u32) -> Result<Vec<Claimed>> {
        let req = req.clone();
        let max = max.clamp(1, crate::MAX_CLAIM_BATCH) as usize;
        self.write(move |conn, now, codec| {
            let mut claimed = Vec::new();
            // A claimed run is no longer runnable, so each pass finds the
            // next one.
            while claimed.len() < max {
                let candidate: Option<(Vec<u8>, String)> = conn
                    .prepare_cached(&NEXT_RUNNABLE)?
                    .query_row(params![now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((id, status)) = candidate else { break };
                claimed.push(take_lease(
                    conn,
                    codec,
                    &id,
                    status == "running",
                    &req,
                    now,
                )?);
            }
            Ok(claimed)
        })
        .await
    }

    async fn claim_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        req: &ClaimRequest,
    ) -> Result<Option<Claimed>> {
        let tenant = tenant.clone();
        let req = req.clone();
        self.write(move |conn, now, codec| claim_one(conn, codec, tenant.as_str(), &id, &req, now))
            .await
    }

    async fn append_steps(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        lease_for: Duration,
    ) -> Result<()> {
        let lease = lease.clone();
        let writes = writes.to_vec();
        self.write(move |conn, now, codec| {
            journal_steps(
                conn,
                codec,
                &lease,
                &writes,
                now,
                Some(now + lease_for.as_millis() as i64),
            )
        })
        .await
    }

    async fn pause_run(&self, lease: &Lease, writes: &[StepWrite], pause: &Pause) -> Result<Run> {
        let lease = lease.clone();
        let writes = writes.to_vec();
        let pause = pause.clone();
        self.write(move |conn, now, codec| {
            journal_steps(conn, codec, &lease, &writes, now, None)?;
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'paused', pause = ?1, lease_owner = NULL, \
                     lease_until = NULL, updated_at = ?2 WHERE id = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(
                    params![
                        codec.seal_json(Field::of(&lease.run_id, "runs.pause"), &pause)?,
                        now,
                        lease.run_id.0.as_bytes()
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )??;
            let detail = serde_json::json!({ "question": pause.question });
            insert_audit(
                conn,
                codec,
                lease.tenant.as_str(),
                &lease.run_id,
                now,
                "agent",
                "paused",
                Some(&detail),
            )?;
            Ok(run)
        })
        .await
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        outcome: &Outcome,
    ) -> Result<Run> {
        let lease = lease.clone();
        let writes = writes.to_vec();
        let outcome = outcome.clone();
        self.write(move |conn, now, codec| {
            journal_steps(conn, codec, &lease, &writes, now, None)?;
            let field = |column| Field::of(&lease.run_id, column);
            let output = match &outcome {
                Outcome::Succeeded { output, .. } => {
                    Some(codec.seal_json(field("runs.output"), output)?)
                }
                _ => None,
            };
            let error = outcome
                .error()
                .map(|e| codec.seal_json(field("runs.error"), e))
                .transpose()?;
            // A retry is due after its delay, as the next attempt.
            let delay = outcome.retry_delay();
            let available_at = delay.map(|d| now + d.as_millis() as i64);
            let run = conn
                .prepare_cached(&FINISH)?
                .query_row(
                    params![
                        outcome.status().as_str(),
                        output,
                        error,
                        now,
                        lease.run_id.0.as_bytes(),
                        lease.tenant.as_str(),
                        lease.token,
                        available_at,
                        i64::from(delay.is_some()),
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )
                .optional()?
                .ok_or(StoreError::LeaseLost { run: lease.run_id })??;
            if let (Outcome::Succeeded { messages, .. }, Some(conv)) =
                (&outcome, &run.conversation_id)
            {
                let next: i64 = conn
                    .prepare_cached(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages \
                         WHERE tenant = ?1 AND conversation_id = ?2",
                    )?
                    .query_row(params![lease.tenant.as_str(), conv.as_str()], |r| r.get(0))?;
                let mut insert = conn.prepare_cached(
                    "INSERT INTO messages (tenant, conversation_id, seq, run_id, message, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (i, m) in messages.iter().enumerate() {
                    insert.execute(params![
                        lease.tenant.as_str(),
                        conv.as_str(),
                        next + i as i64,
                        lease.run_id.0.as_bytes(),
                        codec.seal_json(field("messages.message"), m)?,
                        now
                    ])?;
                }
            }
            insert_audit(
                conn,
                codec,
                lease.tenant.as_str(),
                &lease.run_id,
                now,
                "agent",
                outcome.event(),
                outcome.audit_detail().as_ref(),
            )?;
            Ok(run)
        })
        .await
    }

    async fn reserve_budget(
        &self,
        lease: &Lease,
        limit: &BudgetLimit,
        estimate_usd: f64,
        hold_for: Duration,
    ) -> Result<Reservation> {
        let lease = lease.clone();
        let limit = *limit;
        self.write(move |conn, now, _| {
            check_lease(conn, &lease)?;
            let period = (limit.period.as_millis() as i64).max(1);
            let period_start = now - now.rem_euclid(period);
            // A new period starts from nothing spent.
            let spent: f64 = conn
                .prepare_cached(
                    "INSERT INTO tenant_budgets (tenant, period_start, spent_usd) VALUES (?1, ?2, 0) \
                     ON CONFLICT (tenant) DO UPDATE SET \
                     spent_usd = CASE WHEN period_start < excluded.period_start THEN 0 ELSE spent_usd END, \
                     period_start = MAX(period_start, excluded.period_start) \
                     RETURNING spent_usd",
                )?
                .query_row(params![lease.tenant.as_str(), period_start], |r| r.get(0))?;
            let id = lease.run_id.0.as_bytes();
            let reserved: f64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations \
                     WHERE tenant = ?1 AND expires_at > ?2 AND run_id <> ?3",
                )?
                .query_row(params![lease.tenant.as_str(), now, id], |r| r.get(0))?;
            if spent + reserved + estimate_usd > limit.limit_usd {
                release_reservation(conn, &lease.run_id)?;
                return Ok(Reservation::Exhausted {
                    spent_usd: spent,
                    reserved_usd: reserved,
                });
            }
            conn.prepare_cached(
                "INSERT INTO budget_reservations (run_id, tenant, amount_usd, expires_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id) DO UPDATE SET \
                 amount_usd = excluded.amount_usd, expires_at = excluded.expires_at",
            )?
            .execute(params![
                id,
                lease.tenant.as_str(),
                estimate_usd,
                now + hold_for.as_millis() as i64
            ])?;
            Ok(Reservation::Granted)
        })
        .await
    }

    async fn set_circuit(&self, provider: &str, open_for: Option<Duration>) -> Result<()> {
        let provider = provider.to_string();
        self.write(move |conn, now, _| {
            match open_for {
                Some(d) => conn
                    .prepare_cached(
                        "INSERT INTO circuits (provider, open_until) VALUES (?1, ?2) \
                         ON CONFLICT (provider) DO UPDATE SET \
                         open_until = MAX(open_until, excluded.open_until)",
                    )?
                    .execute(params![provider, now + d.as_millis() as i64])?,
                None => conn
                    .prepare_cached("DELETE FROM circuits WHERE provider = ?1")?
                    .execute(params![provider])?,
            };
            Ok(())
        })
        .await
    }

    async fn open_circuits(&self) -> Result<Vec<(String, Duration)>> {
        let now = (self.clock)();
        self.read(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT provider, open_until - ?1 FROM circuits WHERE open_until > ?1",
            )?;
            let rows = stmt.query_map(params![now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut open = Vec::new();
            for row in rows {
                let (provider, ms) = row?;
                open.push((provider, Duration::from_millis(ms.max(0) as u64)));
            }
            Ok(open)
        })
        .await
    }

    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<()> {
        let lease = lease.clone();
        self.write(move |conn, now, _| {
            let n = conn.prepare_cached(&HEARTBEAT)?.execute(params![
                now + lease_for.as_millis() as i64,
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ])?;
            if n == 0 {
                return Err(StoreError::LeaseLost { run: lease.run_id });
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.write(move |conn, now, _| {
            conn.prepare_cached(&RELEASE)?.execute(params![
                now,
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ])?;
            Ok(())
        })
        .await
    }

    async fn release_owner(&self, owner: &str) -> Result<u64> {
        let owner = owner.to_string();
        self.write(move |conn, now, _| {
            let n = conn
                .prepare_cached(&RELEASE_OWNER)?
                .execute(params![now, owner])?;
            Ok(n as u64)
        })
        .await
    }

    async fn purge_finished(&self, older_than: Duration, limit: u32) -> Result<u64> {
        let limit = limit.clamp(1, crate::MAX_PURGE_BATCH);
        let older_than = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        self.write(move |conn, now, _| {
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
            for (id, tenant) in &runs {
                steps.execute(params![id])?;
                audit.execute(params![tenant, id])?;
                keys.execute(params![id])?;
                run.execute(params![id])?;
            }
            Ok(runs.len() as u64)
        })
        .await
    }
}
