//! The PostgreSQL backend: a pool of connections shared by any number of
//! agentd processes. The queue is the `runs` table: workers claim with
//! `SELECT … FOR UPDATE SKIP LOCKED`, and every lease write is fenced by the
//! run's `lease_token`. Leases and timestamps use the database's clock, so
//! workers on different machines agree on when a lease expires.
//!
//! Its semantics are those of the SQLite backend; the conformance suite in
//! `tests/store` runs against both.

mod batch;
mod rows;
mod sql;

use crate::codec::{Codec, Field, corrupt, in_page, migration_prefix, page};
use crate::status::{admit, cancelled_by, done, no_waiting_step, waiting_step};
use crate::{
    AuditEntry, BudgetLimit, ClaimRequest, Claimed, ConversationMessage, Created, Journal, Keyring,
    Lease, Outcome, Page, Reservation, Result, RunFilter, StepWrite, Store, StoreError, Transition,
};
use agentd_core::{
    ConversationId, Message, NewRun, Pause, PrincipalId, Run, RunId, RunStatus, Step, TenantId,
    checkpoint::migrate_journal, run::Change,
};
use batch::{AppendRow, Batcher, CreateRow, FinishRow};
use rows::{StepColumns, Totals, WriteColumns, int};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections a store opens at most unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// A pooled connection idle longer than this is pinged before use, so a
/// connection the server dropped is replaced instead of failing a request.
const PING_IDLE_AFTER: Duration = Duration::from_secs(30);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A `postgres://` URL as sqlx understands it (without agentd's own
    /// `schema=` and `max_connections=` parameters).
    pub url: String,
    /// The schema agentd's tables live in, created if missing and put on
    /// every connection's `search_path`. `None`: the server's default
    /// (`public`).
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
}

impl PgOptions {
    /// Parses a store URL. Besides sqlx's parameters it understands
    /// `schema=NAME` (lower-case letters, digits and `_`) and
    /// `max_connections=N`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact(url),
            reason,
        };
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut schema = None;
        let mut max_connections = DEFAULT_MAX_CONNECTIONS;
        let mut rest = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("schema", s)) => {
                    check_schema(s).map_err(bad)?;
                    schema = Some(s.to_string());
                }
                Some(("max_connections", n)) => {
                    max_connections = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        bad(format!("max_connections={n} is not a positive number"))
                    })?;
                }
                _ if pair.is_empty() => {}
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(Self {
            url,
            schema,
            max_connections,
        })
    }
}

/// `url` with its password, if any, masked: it ends up in error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Schema names are put into DDL, so only plain identifiers are accepted.
fn check_schema(s: &str) -> std::result::Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema {s:?} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        ))
    }
}

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    commits: Arc<AtomicU64>,
    codec: Codec,
    batcher: Batcher,
    /// Runs holding a budget reservation made through this store: only
    /// their writes (and writes that spend) pay for settling budgets. A
    /// reservation whose worker died is not in any process's set; it ends
    /// when it expires, at the run's deadline.
    reserved: Arc<Mutex<HashSet<uuid::Uuid>>>,
}

impl PgStore {
    /// The sealed row of a new run, claimed by `claim` if given.
    fn create_row(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
    ) -> Result<CreateRow> {
        Ok(CreateRow {
            id: run.id.0,
            tenant: tenant.as_str().to_string(),
            agent: run.agent.clone(),
            principal: run.principal.as_str().to_string(),
            conversation: run.conversation_id.as_ref().map(|c| c.as_str().to_string()),
            input: self
                .codec
                .seal_json(Field::of(&run.id, "runs.input"), &run.input)?,
            metadata: self
                .codec
                .seal_opt(Field::of(&run.id, "runs.metadata"), run.metadata.as_ref())?,
            roles: crate::codec::to_json(&run.roles)?,
            claim: claim.map(|req| (req.owner.clone(), lease_ms(req.lease_for))),
        })
    }

    /// Creates a run outside any conversation and without an idempotency
    /// key: runnable at once, so a claim is part of the insert, and the
    /// insert joins the next group commit.
    async fn create_unconversed(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
    ) -> Result<Created> {
        let created = self
            .batcher
            .create(self.create_row(tenant, run, claim)?)
            .await
            .map_err(|e| batch::create_error(e, &run.id.0))?;
        let claimed = claim.map(|_| Claimed {
            lease: Lease {
                run_id: created.id,
                tenant: created.tenant.clone(),
                token: 1,
            },
            journal: Journal {
                run: created.clone(),
                steps: Vec::new(),
                history: Vec::new(),
                roles: run.roles.clone(),
            },
        });
        Ok(Created {
            run: created,
            claimed,
            replayed: false,
        })
    }

    /// Opens a pool on a `postgres://` URL. `schema=NAME` in the query keeps
    /// agentd's tables in that schema (created if missing);
    /// `max_connections=N` sizes the pool (default 16). Connects once to
    /// check the server answers; migrations are not applied.
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(&PgOptions::parse(url)?).await
    }

    /// Opens a pool whose connections all use `schema` (created if missing):
    /// tests and benchmarks get a fresh, isolated set of tables this way.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        let mut opts = PgOptions::parse(url)?;
        check_schema(schema).map_err(|reason| StoreError::BadUrl {
            url: redact(url),
            reason,
        })?;
        opts.schema = Some(schema.to_string());
        Self::connect(&opts).await
    }

    /// Opens a pool as `opts` say.
    pub async fn connect(opts: &PgOptions) -> Result<Self> {
        let mut connect =
            PgConnectOptions::from_str(&opts.url).map_err(|e| StoreError::BadUrl {
                url: redact(&opts.url),
                reason: e.to_string(),
            })?;
        if let Some(schema) = &opts.schema {
            create_schema(&connect, schema).await?;
            // A startup parameter: set on every connection, no extra round
            // trip per connection.
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // Every statement of agentd is written for an index. A plan cached
        // while `runs` was small would scan it whole for ever after (a
        // prepared statement keeps its generic plan), and replanning every
        // execution costs more than executing: so the planner is told to
        // take the index whenever there is one.
        connect = connect.options([("enable_seqscan", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await?;
        let commits = Arc::new(AtomicU64::new(0));
        let codec = Codec::default();
        Ok(Self {
            batcher: Batcher::start(pool.clone(), codec.clone(), commits.clone()),
            pool,
            commits,
            codec,
            reserved: Arc::default(),
        })
    }

    /// Seals payload columns with `keyring` (encryption at rest; see
    /// [`crate::StoreOptions::keyring`]).
    pub fn with_keyring(mut self, keyring: Option<Keyring>) -> Self {
        self.codec = Codec::new(keyring);
        // The writer seals nothing, but it opens the rows it returns.
        self.batcher = Batcher::start(self.pool.clone(), self.codec.clone(), self.commits.clone());
        self
    }

    /// The connection pool (benchmarks count rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Notes whether run `id` holds a reservation from now on; returns
    /// whether it held one before.
    fn set_reserved(&self, id: RunId, holds: bool) -> bool {
        let Ok(mut set) = self.reserved.lock() else {
            // A poisoned set: settle every write, as before it existed.
            return true;
        };
        if holds {
            !set.insert(id.0)
        } else {
            set.remove(&id.0)
        }
    }

    /// Counts one committed write transaction.
    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Commits `tx` and counts it.
    async fn commit(&self, tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<()> {
        tx.commit().await?;
        self.committed();
        Ok(())
    }
}

/// Creates `schema` if it does not exist, on a connection of its own.
async fn create_schema(connect: &PgConnectOptions, schema: &str) -> Result<()> {
    let mut conn = PgConnection::connect_with(connect).await?;
    let exists: bool = sqlx::query_scalar(sql::SCHEMA_EXISTS)
        .bind(schema)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        // `schema` passed `check_schema`: a plain lower-case identifier.
        let ddl = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&mut conn)
            .await
        {
            // Another process may have created it at the same moment.
            let exists: bool = sqlx::query_scalar(sql::SCHEMA_EXISTS)
                .bind(schema)
                .fetch_one(&mut conn)
                .await?;
            if !exists {
                return Err(e.into());
            }
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// True for a unique violation of `constraint`.
fn is_violation_of(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.code().as_deref() == Some(UNIQUE_VIOLATION) && d.constraint() == Some(constraint))
}

/// True for a PostgreSQL error with SQLSTATE `code`.
fn has_code(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some(code))
}

const UNIQUE_VIOLATION: &str = "23505";
const UNDEFINED_TABLE: &str = "42P01";

/// The lease a claim's result row (`reclaim, lease_token, roles, run_cols`)
/// grants.
fn claimed_lease(row: &PgRow) -> Result<Lease> {
    Ok(Lease {
        run_id: RunId(row.try_get(3)?),
        tenant: TenantId::parse(row.try_get::<String, _>(4)?).map_err(corrupt)?,
        token: row.try_get(1)?,
    })
}

/// Reads a claim's result row (`reclaim, lease_token, roles, run_cols`) and
/// the journal. Only the lease holder writes a run's journal, so it may be
/// read after the claim committed.
async fn claimed(
    conn: &mut PgConnection,
    codec: &Codec,
    row: &PgRow,
    req: &ClaimRequest,
) -> Result<Claimed> {
    let token: i64 = row.try_get(1)?;
    let roles: Option<String> = row.try_get(2)?;
    let run = rows::run(codec, row, 3)?;
    let roles: Vec<String> = crate::codec::parse_opt("roles", roles)?.unwrap_or_default();
    let steps = if run.steps > 0 {
        load_steps(conn, codec, &run.id).await?
    } else {
        Vec::new()
    };
    let history = match &run.conversation_id {
        None => Vec::new(),
        Some(conv) => {
            load_history(
                conn,
                codec,
                &run.tenant,
                conv,
                req.history_limits.get(&run.agent).copied(),
            )
            .await?
        }
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

/// Reads and row-locks run `id` of `tenant` for a state change.
async fn lock_run(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    id: RunId,
) -> Result<Option<Run>> {
    sqlx::query(sql::LOCK_RUN)
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| rows::run(codec, &row, 0))
        .transpose()
}

/// Claims run `id` of `tenant` if it is runnable, inside the caller's
/// transaction.
async fn claim_one(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    id: RunId,
    req: &ClaimRequest,
) -> Result<Option<Claimed>> {
    let row = sqlx::query(sql::CLAIM_ONE.as_str())
        .bind(&req.owner)
        .bind(lease_ms(req.lease_for))
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => claimed(conn, codec, &row, req).await.map(Some),
    }
}

async fn load_steps(conn: &mut PgConnection, codec: &Codec, id: &RunId) -> Result<Vec<Step>> {
    let records = sqlx::query(sql::LOAD_STEPS)
        .bind(id.0)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| rows::step(codec, id, row))
        .collect::<Result<Vec<_>>>()?;
    Ok(migrate_journal(*id, records)?)
}

async fn load_history(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    conv: &ConversationId,
    limit: Option<u32>,
) -> Result<Vec<Message>> {
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(sql::LOAD_HISTORY)
        .bind(tenant.as_str())
        .bind(conv.as_str())
        .bind(limit.map(i64::from))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(run, text)| codec.parse(Field::of(&RunId(run), "messages.message"), text))
        .collect()
}

async fn lock_conversation(
    conn: &mut PgConnection,
    tenant: &TenantId,
    conv: &ConversationId,
) -> Result<()> {
    sqlx::query(sql::LOCK_CONVERSATION)
        .bind(tenant.as_str())
        .bind(conv.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

fn lease_ms(d: Duration) -> i64 {
    int::<i64, _>(d.as_millis())
}

fn limit_of(limit: u32) -> (u32, i64) {
    let limit = limit.clamp(1, 1000);
    (limit, i64::from(limit) + 1)
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Processes starting together migrate one after the other.
        sqlx::query(sql::MIGRATE_LOCK).execute(&mut *tx).await?;
        sqlx::query(sql::CREATE_VERSIONS).execute(&mut *tx).await?;
        let applied: i32 = sqlx::query_scalar(sql::APPLIED).fetch_one(&mut *tx).await?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > sql::MIGRATIONS.len() {
            return Err(StoreError::Migrate(format!(
                "the database is at schema version {applied}, newer than this agentd ({}); upgrade agentd",
                sql::MIGRATIONS.len()
            )));
        }
        for (i, ddl) in sql::MIGRATIONS.iter().enumerate().skip(applied) {
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

    async fn ping(&self) -> Result<()> {
        let applied: i32 = match sqlx::query_scalar(sql::APPLIED).fetch_one(&self.pool).await {
            Ok(v) => v,
            Err(e) if has_code(&e, UNDEFINED_TABLE) => 0,
            Err(e) => return Err(e.into()),
        };
        if usize::try_from(applied).unwrap_or(0) < sql::MIGRATIONS.len() {
            return Err(StoreError::Migrate("migrations are not applied".into()));
        }
        Ok(())
    }

    async fn storage_bytes(&self) -> Result<u64> {
        let bytes: i64 = sqlx::query_scalar(sql::STORAGE_BYTES)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    async fn create_run(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
    ) -> Result<Created> {
        let conv = match (&run.conversation_id, &run.idempotency) {
            (Some(conv), _) => Some(conv),
            (None, Some(_)) => None,
            (None, None) => return self.create_unconversed(tenant, run, claim).await,
        };
        // A claim, if asked for, is decided inside the transaction (the
        // conversation may have older runs active).
        let new_row = self.create_row(tenant, run, None)?;
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = &run.idempotency {
            sqlx::query(sql::LOCK_IDEMPOTENCY)
                .bind(tenant.as_str())
                .bind(&idem.key)
                .execute(&mut *tx)
                .await?;
            let seen: Option<(uuid::Uuid, String)> = sqlx::query_as(sql::GET_IDEMPOTENCY)
                .bind(tenant.as_str())
                .bind(&idem.key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((id, fingerprint)) = seen {
                tx.rollback().await?;
                if fingerprint != idem.fingerprint {
                    return Err(StoreError::IdempotencyConflict {
                        key: idem.key.clone(),
                    });
                }
                let run = self.get_run(tenant, RunId(id)).await?.ok_or_else(|| {
                    crate::codec::corrupt(format_args!("idempotent run {id} vanished"))
                })?;
                return Ok(Created {
                    run,
                    claimed: None,
                    replayed: true,
                });
            }
            sqlx::query(sql::INSERT_IDEMPOTENCY)
                .bind(tenant.as_str())
                .bind(&idem.key)
                .bind(run.id.0)
                .bind(&idem.fingerprint)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(conv) = conv {
            lock_conversation(&mut tx, tenant, conv).await?;
        }
        let row = batch::bind_creates(&[&new_row])
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| batch::create_error(e.into(), &run.id.0))?;
        let created = rows::run(&self.codec, &row, 0)?;
        let claimed = match claim {
            Some(req) => claim_one(&mut tx, &self.codec, tenant, run.id, req).await?,
            None => None,
        };
        self.commit(tx).await?;
        Ok(Created {
            run: claimed.as_ref().map_or(created, |c| c.journal.run.clone()),
            claimed,
            replayed: false,
        })
    }
    async fn get_run(&self, tenant: &TenantId, id: RunId) -> Result<Option<Run>> {
        sqlx::query(sql::GET_RUN)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| rows::run(&self.codec, &row, 0))
            .transpose()
    }

    async fn list_runs(&self, tenant: &TenantId, filter: &RunFilter) -> Result<Page<Run>> {
        let (limit, fetch) = limit_of(filter.limit);
        let cursor = match &filter.cursor {
            Some(c) => Some(
                RunId::parse(c)
                    .map_err(|_| StoreError::BadCursor(c.clone()))?
                    .0,
            ),
            None => None,
        };
        let items = sqlx::query(sql::LIST_RUNS)
            .bind(tenant.as_str())
            .bind(cursor)
            .bind(filter.agent.as_deref())
            .bind(filter.status.map(RunStatus::as_str))
            .bind(fetch)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| rows::run(&self.codec, row, 0))
            .collect::<Result<Vec<_>>>()?;
        Ok(page(items, limit, |r| r.id.to_string()))
    }

    async fn list_steps(
        &self,
        tenant: &TenantId,
        id: RunId,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Option<Page<Step>>> {
        let (limit, fetch) = limit_of(limit);
        let exists: bool = sqlx::query_scalar(sql::RUN_EXISTS)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(None);
        }
        let records = sqlx::query(sql::LIST_STEPS)
            .bind(id.0)
            .bind(after.map_or(-1, i64::from))
            .bind(fetch)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| rows::step(&self.codec, &id, row))
            .collect::<Result<Vec<_>>>()?;
        // Older records are migrated with the journal before them.
        let records = match migration_prefix(&records) {
            None => records,
            Some(last) => sqlx::query(sql::STEPS_UP_TO)
                .bind(id.0)
                .bind(int::<i32, _>(last))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| rows::step(&self.codec, &id, row))
                .collect::<Result<Vec<_>>>()?,
        };
        let items = in_page(migrate_journal(id, records)?, after);
        Ok(Some(page(items, limit, |s| s.index.to_string())))
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<ConversationMessage>> {
        let (limit, fetch) = limit_of(limit);
        let items = sqlx::query(sql::LIST_MESSAGES)
            .bind(tenant.as_str())
            .bind(conversation.as_str())
            .bind(after.map_or(0, int::<i64, _>))
            .bind(fetch)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| crate::row::message(&self.codec, row))
            .collect::<Result<Vec<_>>>()?;
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
        sqlx::query(sql::INSERT_AUDIT)
            .bind(id.0)
            .bind(tenant.as_str())
            .bind(actor)
            .bind(event)
            .bind(
                self.codec
                    .seal_json(Field::of(&id, "audit.detail"), detail)?,
            )
            .execute(&self.pool)
            .await?;
        self.committed();
        Ok(())
    }

    async fn list_audit(&self, tenant: &TenantId, id: RunId) -> Result<Vec<AuditEntry>> {
        sqlx::query(sql::LIST_AUDIT)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| crate::row::audit(&self.codec, id, row))
            .collect()
    }

    async fn cancel_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let mut tx = self.pool.begin().await?;
        if let Err(answer) = admit(
            Change::Cancel,
            lock_run(&mut tx, &self.codec, tenant, id).await?,
        ) {
            return Ok(answer);
        }
        let error = cancelled_by(actor);
        // Bumping the token revokes a running run's lease: its worker's next
        // write fails and it stops.
        let row = sqlx::query(sql::CANCEL)
            .bind(id.0)
            .bind(tenant.as_str())
            .bind(self.codec.seal_json(Field::of(&id, "runs.error"), &error)?)
            .bind(actor.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let run = rows::run(&self.codec, &row, 0)?;
        self.commit(tx).await?;
        Ok(Transition::Done(run, None))
    }

    async fn requeue_dead(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let mut tx = self.pool.begin().await?;
        if let Err(answer) = admit(
            Change::Requeue,
            lock_run(&mut tx, &self.codec, tenant, id).await?,
        ) {
            return Ok(answer);
        }
        let row = sqlx::query(sql::REQUEUE.as_str())
            .bind(id.0)
            .bind(tenant.as_str())
            .bind(actor.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let run = rows::run(&self.codec, &row, 0)?;
        self.commit(tx).await?;
        Ok(Transition::Done(run, None))
    }

    async fn resume_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        answer: &serde_json::Value,
        actor: &PrincipalId,
        claim: Option<&ClaimRequest>,
    ) -> Result<Transition> {
        let mut tx = self.pool.begin().await?;
        let step = match waiting_step(lock_run(&mut tx, &self.codec, tenant, id).await?) {
            Ok(step) => step,
            Err(answer) => return Ok(answer),
        };
        let row = sqlx::query(sql::RESUME)
            .bind(id.0)
            .bind(tenant.as_str())
            .bind(int::<i32, _>(step))
            .bind(
                self.codec
                    .seal_json(Field::step(&id, step, "steps.output"), answer)?,
            )
            .bind(actor.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let answered: i64 = row.try_get(0)?;
        if answered != 1 {
            return Err(no_waiting_step(&id, step));
        }
        let resumed = rows::run(&self.codec, &row, 1)?;
        let claimed = match claim {
            Some(req) => claim_one(&mut tx, &self.codec, tenant, id, req).await?,
            None => None,
        };
        self.commit(tx).await?;
        Ok(done(resumed, claimed))
    }

    async fn claim_next(&self, req: &ClaimRequest) -> Result<Option<Claimed>> {
        Ok(self.claim_batch(req, 1).await?.pop())
    }

    async fn claim_batch(&self, req: &ClaimRequest, max: u32) -> Result<Vec<Claimed>> {
        // One statement claims them all and commits; each journal is read
        // after, as only the lease holder writes it.
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(sql::CLAIM_NEXT.as_str())
            .bind(&req.owner)
            .bind(lease_ms(req.lease_for))
            .bind(i64::from(max.clamp(1, crate::MAX_CLAIM_BATCH)))
            .fetch_all(&mut *conn)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.committed();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match claimed(&mut conn, &self.codec, row, req).await {
                Ok(c) => out.push(c),
                Err(e) => {
                    // The claims committed: give the runs back rather than
                    // leave them leased to nobody until the lease expires.
                    drop(conn);
                    for row in &rows {
                        if let Ok(lease) = claimed_lease(row) {
                            let _ = self.release(&lease).await;
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn claim_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        req: &ClaimRequest,
    ) -> Result<Option<Claimed>> {
        let mut tx = self.pool.begin().await?;
        let claimed = claim_one(&mut tx, &self.codec, tenant, id, req).await?;
        if claimed.is_some() {
            self.commit(tx).await?;
        }
        Ok(claimed)
    }

    async fn append_steps(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        lease_for: Duration,
    ) -> Result<()> {
        if writes.is_empty() {
            // Nothing to write; still tell the caller whether it holds the
            // lease.
            let held: bool = sqlx::query_scalar(sql::HOLDS_LEASE.as_str())
                .bind(lease.run_id.0)
                .bind(lease.tenant.as_str())
                .bind(lease.token)
                .fetch_one(&self.pool)
                .await?;
            return if held {
                Ok(())
            } else {
                Err(StoreError::LeaseLost { run: lease.run_id })
            };
        }
        let totals = Totals::of(writes);
        // Spending settles the run's reservation.
        let settles = totals.cost_usd > 0.0;
        if settles {
            self.set_reserved(lease.run_id, false);
        }
        self.batcher
            .append(AppendRow {
                lease: lease.clone(),
                steps: StepColumns::of(&self.codec, &lease.run_id, writes)?,
                totals,
                lease_ms: lease_ms(lease_for),
                settles,
            })
            .await
    }

    async fn pause_run(&self, lease: &Lease, writes: &[StepWrite], pause: &Pause) -> Result<Run> {
        let field = |column| Field::of(&lease.run_id, column);
        let detail = serde_json::json!({ "question": pause.question });
        // The pause settles and releases whatever the run reserved.
        self.set_reserved(lease.run_id, false);
        let mut w = WriteColumns::default();
        w.push(lease, &Totals::of(writes));
        let steps = StepColumns::of(&self.codec, &lease.run_id, writes)?;
        let row = w
            .bind(StepColumns::bind(
                sqlx::query(sql::PAUSE.as_str()),
                &[&steps],
            ))
            .bind([self.codec.seal_json(field("runs.pause"), pause)?])
            .bind([self.codec.seal_json(field("audit.detail"), &detail)?])
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::LeaseLost { run: lease.run_id })?;
        self.committed();
        rows::run(&self.codec, &row, 0)
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        outcome: &Outcome,
    ) -> Result<Run> {
        let codec = &self.codec;
        let field = |column| Field::of(&lease.run_id, column);
        let output = match outcome {
            Outcome::Succeeded { output, .. } => {
                Some(codec.seal_json(field("runs.output"), output)?)
            }
            _ => None,
        };
        let messages = match outcome {
            Outcome::Succeeded { messages, .. } => messages
                .iter()
                .map(|m| codec.seal_json(field("messages.message"), m))
                .collect::<Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        let delay = outcome.retry_delay();
        let totals = Totals::of(writes);
        let settles = self.set_reserved(lease.run_id, false) || totals.cost_usd > 0.0;
        self.batcher
            .finish(FinishRow {
                lease: lease.clone(),
                steps: StepColumns::of(codec, &lease.run_id, writes)?,
                totals,
                settles,
                status: outcome.status().as_str(),
                output,
                error: outcome
                    .error()
                    .map(|e| codec.seal_json(field("runs.error"), e))
                    .transpose()?,
                detail: outcome
                    .audit_detail()
                    .map(|d| codec.seal_json(field("audit.detail"), &d))
                    .transpose()?,
                delay_ms: delay.map(lease_ms),
                attempts: i32::from(delay.is_some()),
                event: outcome.event(),
                messages,
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
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(sql::LEASE_HELD.as_str())
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .fetch_optional(&mut *tx)
            .await?;
        if held.is_none() {
            return Err(StoreError::LeaseLost { run: lease.run_id });
        }
        let spent: f64 = sqlx::query(sql::BUDGET_PERIOD)
            .bind(lease.tenant.as_str())
            .bind(lease_ms(limit.period).max(1))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let reserved: f64 = sqlx::query(sql::BUDGET_RESERVED)
            .bind(lease.tenant.as_str())
            .bind(lease.run_id.0)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let answer = if spent + reserved + estimate_usd > limit.limit_usd {
            sqlx::query(sql::BUDGET_RELEASE)
                .bind(lease.run_id.0)
                .execute(&mut *tx)
                .await?;
            Reservation::Exhausted {
                spent_usd: spent,
                reserved_usd: reserved,
            }
        } else {
            sqlx::query(sql::BUDGET_RESERVE)
                .bind(lease.run_id.0)
                .bind(lease.tenant.as_str())
                .bind(estimate_usd)
                .bind(lease_ms(hold_for))
                .execute(&mut *tx)
                .await?;
            Reservation::Granted
        };
        // Noted before the commit: a reservation that exists is never
        // missing from the set (a spurious entry only costs a settle).
        self.set_reserved(lease.run_id, answer == Reservation::Granted);
        self.commit(tx).await?;
        Ok(answer)
    }

    async fn set_circuit(&self, provider: &str, open_for: Option<Duration>) -> Result<()> {
        match open_for {
            Some(d) => {
                sqlx::query(sql::CIRCUIT_OPEN)
                    .bind(provider)
                    .bind(lease_ms(d))
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(sql::CIRCUIT_CLOSE)
                    .bind(provider)
                    .execute(&self.pool)
                    .await?
            }
        };
        self.committed();
        Ok(())
    }

    async fn open_circuits(&self) -> Result<Vec<(String, Duration)>> {
        let rows = sqlx::query(sql::CIRCUITS_OPEN)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let ms: i64 = r.try_get(1)?;
                Ok((r.try_get(0)?, Duration::from_millis(ms.max(0) as u64)))
            })
            .collect()
    }

    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<()> {
        let n = sqlx::query(sql::HEARTBEAT.as_str())
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .bind(lease_ms(lease_for))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            // The run is no longer ours: its reservation, if any, expires.
            self.set_reserved(lease.run_id, false);
            return Err(StoreError::LeaseLost { run: lease.run_id });
        }
        self.committed();
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let n = sqlx::query(sql::RELEASE.as_str())
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n > 0 {
            self.committed();
        }
        Ok(())
    }

    async fn release_owner(&self, owner: &str) -> Result<u64> {
        let n = sqlx::query(sql::RELEASE_OWNER.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n > 0 {
            self.committed();
        }
        Ok(n)
    }

    async fn purge_finished(&self, older_than: Duration, limit: u32) -> Result<u64> {
        let purged: i64 = sqlx::query_scalar(sql::PURGE_FINISHED.as_str())
            .bind(int::<i64, _>(older_than.as_millis()))
            .bind(i64::from(limit.clamp(1, crate::MAX_PURGE_BATCH)))
            .fetch_one(&self.pool)
            .await?;
        if purged > 0 {
            self.committed();
        }
        Ok(u64::try_from(purged).unwrap_or(0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_carry_schema_and_pool_size() {
        let o = PgOptions::parse("postgres://u@h:5432/db").unwrap();
        assert_eq!(o.url, "postgres://u@h:5432/db");
        assert_eq!(
            (o.schema, o.max_connections),
            (None, DEFAULT_MAX_CONNECTIONS)
        );

        let o = PgOptions::parse(
            "postgresql://u@h/db?sslmode=disable&schema=bench_1&max_connections=4&application_name=x",
        )
        .unwrap();
        assert_eq!(
            o.url,
            "postgresql://u@h/db?sslmode=disable&application_name=x"
        );
        assert_eq!(o.schema.as_deref(), Some("bench_1"));
        assert_eq!(o.max_connections, 4);

        for bad in [
            "postgres://h/db?schema=",
            "postgres://h/db?schema=Public",
            "postgres://h/db?schema=a-b",
            "postgres://h/db?schema=a%3Bdrop",
            "postgres://h/db?max_connections=0",
            "postgres://h/db?max_connections=lots",
        ] {
            assert!(
                matches!(PgOptions::parse(bad), Err(StoreError::BadUrl { .. })),
                "{bad}"
            );
        }
        let Err(StoreError::BadUrl { url, .. }) =
            PgOptions::parse("postgres://agentd:s3cret@db:5432/x?schema=Nope")
        else {
            panic!("a bad schema is a bad url");
        };
        assert_eq!(url, "postgres://agentd:***@db:5432/x?schema=Nope");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a:b@c"), "postgres://h/db?x=a:b@c");
        assert!(check_schema(&"a".repeat(63)).is_ok());
        assert!(check_schema(&"a".repeat(64)).is_err());
    }
}
