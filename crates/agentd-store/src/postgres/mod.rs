//! The PostgreSQL backend: a pool of connections shared by any number of
//! agentd processes. The queue is the `runs` table: workers claim with
//! `SELECT … FOR UPDATE SKIP LOCKED`, and every lease write is fenced by the
//! run's `lease_token`. Leases and timestamps use the database's clock, so
//! workers on different machines agree on when a lease expires.
//!
//! Its semantics are those of the SQLite backend; the conformance suite in
//! `tests/store` runs against both.

mod alerts;
mod audit;
pub(crate) mod backup;
mod batch;
mod budget;
mod deliveries;
mod feed;
mod fleet;
mod fork;
mod journal;
mod keys;
pub(crate) mod maintenance;
mod options;
mod queue;
mod rollout;
mod rows;
mod runs;
mod schedules;
mod sql;
mod usage;
mod vault;

use crate::codec::{Codec, Field, corrupt, in_page, migration_prefix, page};
use crate::status::{
    admit, cancelled_by, conversation_busy, done, interrupted_by, no_waiting_step, waiting_step,
};
use crate::{
    AuditEntry, AuditFilter, BudgetLimits, BudgetOwner, ClaimRequest, Claimed, ConversationMessage,
    Created, Journal, Keyring, Lease, Outcome, Page, Reservation, Result, RunFilter, StepWrite,
    Store, StoreError, Transition,
};
use agentd_core::{
    ConversationId, IfBusy, Message, NewRun, Pause, PrincipalId, Run, RunId, Step, TenantId,
    checkpoint::migrate_journal, run::Change,
};
use batch::{AppendRow, Batcher, CreateRow, FinishRow};
pub use options::PgOptions;
use options::*;
use queue::*;
use rows::{StepColumns, Totals, WriteColumns, int};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A pooled connection idle longer than this is pinged before use, so a
/// connection the server dropped is replaced instead of failing a request.
const PING_IDLE_AFTER: Duration = Duration::from_secs(30);

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
    /// LISTEN/NOTIFY between the processes on this schema.
    feed: Arc<feed::PgFeed>,
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
            agent_version: run.agent_version.clone(),
            principal: run.principal.as_str().to_string(),
            conversation: run.conversation_id.as_ref().map(|c| c.as_str().to_string()),
            input: self
                .codec
                .seal_json(Field::of(&run.id, "runs.input"), &run.input)?,
            metadata: self
                .codec
                .seal_opt(Field::of(&run.id, "runs.metadata"), run.metadata.as_ref())?,
            roles: crate::codec::to_json(&run.roles)?,
            origin: crate::codec::origin_json(&run.origin)?,
            callbacks: crate::codec::callbacks_json(&run.callbacks)?,
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
        if claim.is_none() {
            self.announce_queued();
        }
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
                origin: run.origin.clone(),
            },
        });
        Ok(Created {
            run: created,
            claimed,
            replayed: false,
            interrupted: Vec::new(),
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
            .connect_with(connect.clone())
            .await?;
        let commits = Arc::new(AtomicU64::new(0));
        let codec = Codec::default();
        let feed = feed::PgFeed::new(pool.clone(), connect, opts.schema.as_deref());
        Ok(Self {
            batcher: Batcher::start(pool.clone(), codec.clone(), commits.clone()),
            pool,
            commits,
            codec,
            reserved: Arc::default(),
            feed: Arc::new(feed),
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

    /// The plans of the list statements, by name (tests: each must read a
    /// range of an index). Not part of the API.
    #[doc(hidden)]
    pub async fn list_query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        maintenance::list_query_plans(self).await
    }

    /// The connection pool (benchmarks count rows through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The channel this store's change feed LISTENs on, which is also the
    /// `application_name` of its listening connection (tests end that
    /// connection to show the feed recovers). Not part of the API.
    #[doc(hidden)]
    pub fn feed_channel(&self) -> &str {
        self.feed.channel()
    }

    /// Tells idle workers of every process on this store that a run was
    /// queued without a claim, so they claim it now rather than at their
    /// next poll.
    fn announce_queued(&self) {
        crate::ChangeFeed::publish(&*self.feed, crate::Notice::Queued);
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

impl From<sqlx::Error> for StoreError {
    /// A PostgreSQL error; failing to reach the server is `Unavailable`.
    fn from(e: sqlx::Error) -> Self {
        let unavailable = matches!(
            e,
            sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
        );
        let source = Arc::new(e);
        if unavailable {
            StoreError::Unavailable {
                backend: "postgres",
                source,
            }
        } else {
            StoreError::Backend {
                backend: "postgres",
                source,
            }
        }
    }
}

/// The driver's error inside a store error, if it is one.
fn db_error(e: &StoreError) -> Option<&sqlx::Error> {
    match e {
        StoreError::Backend { source, .. } | StoreError::Unavailable { source, .. } => {
            source.downcast_ref::<sqlx::Error>()
        }
        _ => None,
    }
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

fn lease_ms(d: Duration) -> i64 {
    int::<i64, _>(d.as_millis())
}

fn limit_of(limit: u32) -> (u32, i64) {
    let limit = limit.clamp(1, 1000);
    (limit, i64::from(limit) + 1)
}

store_by_role!(PgStore, "postgres");
