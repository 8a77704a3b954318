//! The SQLite backend: one file, WAL, `synchronous=FULL`, so every commit is
//! durable before it returns. All writes go through one connection (SQLite
//! has one writer anyway) and start with `BEGIN IMMEDIATE`, so a transaction
//! never fails half-way on a lock upgrade when several processes share a file.

use crate::{
    AuditEntry, Claimed, ConversationMessage, Journal, Lease, Outcome, Page, Result, RunFilter,
    StepWrite, Store, StoreError, Transition,
};
use agentd_core::{
    ConversationId, ErrorCode, Message, Millis, NewRun, Pause, PrincipalId, Run, RunError, RunId,
    RunStatus, SCHEMA_VERSION, Step, StepKind, StepStatus, TenantId, Usage,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A clock in epoch milliseconds. Injectable so lease and TTL logic can be
/// tested without waiting; SQLite is embedded, so the process clock is the
/// database's clock.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

const RUN_COLS: &str = "id, tenant, agent, principal, conversation_id, status, input, output, \
    error, pause, metadata, steps, attempt, input_tokens, output_tokens, cost_usd, created_at, \
    updated_at";

const STEP_COLS: &str = "idx, kind, name, status, attempt, started_at, duration_ms, input, output, \
    error, input_tokens, output_tokens";

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    clock: Clock,
    commits: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite:` URL names.
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        // An in-memory database exists only on its one connection.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self {
            writer,
            reader,
            clock: Arc::new(agentd_core::now_millis),
            commits: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn commit(&self, tx: Transaction<'static, Sqlite>) -> Result<()> {
        tx.commit().await?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn opt_json<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>> {
    v.map(|v| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

fn parse_json<T: serde::de::DeserializeOwned>(col: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn parse_opt_json<T: serde::de::DeserializeOwned>(
    col: &str,
    s: Option<String>,
) -> Result<Option<T>> {
    s.map(|s| parse_json(col, &s)).transpose()
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

fn run_from_row(row: &SqliteRow) -> Result<Run> {
    let status: String = row.try_get("status")?;
    let conversation: Option<String> = row.try_get("conversation_id")?;
    Ok(Run {
        id: RunId(row.try_get("id")?),
        tenant: TenantId::parse(row.try_get::<String, _>("tenant")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        agent: row.try_get("agent")?,
        principal: PrincipalId::parse(row.try_get::<String, _>("principal")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        conversation_id: conversation
            .map(ConversationId::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        input: parse_json("input", &row.try_get::<String, _>("input")?)?,
        output: parse_opt_json("output", row.try_get("output")?)?,
        error: parse_opt_json("error", row.try_get("error")?)?,
        pause: parse_opt_json("pause", row.try_get("pause")?)?,
        metadata: parse_opt_json("metadata", row.try_get("metadata")?)?,
        steps: row.try_get::<i64, _>("steps")? as u32,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        usage: Usage {
            input_tokens: row.try_get::<i64, _>("input_tokens")? as u64,
            output_tokens: row.try_get::<i64, _>("output_tokens")? as u64,
        },
        cost_usd: row.try_get("cost_usd")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn step_from_row(row: &SqliteRow) -> Result<Step> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let input_tokens: Option<i64> = row.try_get("input_tokens")?;
    let output_tokens: Option<i64> = row.try_get("output_tokens")?;
    Ok(Step {
        index: row.try_get::<i64, _>("idx")? as u32,
        kind: StepKind::parse(&kind).ok_or_else(|| corrupt("step kind", &kind))?,
        name: row.try_get("name")?,
        status: StepStatus::parse(&status).ok_or_else(|| corrupt("step status", &status))?,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get::<i64, _>("duration_ms")? as u64,
        input: parse_json("input", &row.try_get::<String, _>("input")?)?,
        output: parse_json("output", &row.try_get::<String, _>("output")?)?,
        error: parse_opt_json("error", row.try_get("error")?)?,
        usage: match (input_tokens, output_tokens) {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: i.unwrap_or(0) as u64,
                output_tokens: o.unwrap_or(0) as u64,
            }),
        },
    })
}

async fn fetch_run(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &TenantId,
    id: RunId,
) -> Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1 AND tenant = ?2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

async fn insert_audit(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &TenantId,
    run: RunId,
    at: Millis,
    actor: &str,
    event: &str,
    detail: Option<&serde_json::Value>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (tenant, run_id, at, actor, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(tenant.as_str())
    .bind(run.0)
    .bind(at)
    .bind(actor)
    .bind(event)
    .bind(detail.map(json_text))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_step(tx: &mut Transaction<'static, Sqlite>, run: RunId, step: &Step) -> Result<()> {
    sqlx::query(
        "INSERT INTO steps (run_id, idx, kind, name, status, attempt, started_at, duration_ms, \
         input, output, error, input_tokens, output_tokens, v) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .bind(run.0)
    .bind(i64::from(step.index))
    .bind(step.kind.as_str())
    .bind(step.name.as_str())
    .bind(step.status.as_str())
    .bind(i64::from(step.attempt))
    .bind(step.started_at)
    .bind(step.duration_ms as i64)
    .bind(json_text(&step.input))
    .bind(json_text(&step.output))
    .bind(opt_json(step.error.as_ref())?)
    .bind(step.usage.map(|u| u.input_tokens as i64))
    .bind(step.usage.map(|u| u.output_tokens as i64))
    .bind(i64::from(SCHEMA_VERSION))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies a step's totals to its run under the lease; fails with
/// `LeaseLost` if the lease token moved on.
async fn advance_run(
    tx: &mut Transaction<'static, Sqlite>,
    lease: &Lease,
    write: &StepWrite,
    now: Millis,
    lease_until: Option<Millis>,
) -> Result<()> {
    let res = sqlx::query(
        "UPDATE runs SET steps = ?1, input_tokens = input_tokens + ?2, \
         output_tokens = output_tokens + ?3, cost_usd = cost_usd + ?4, updated_at = ?5, \
         lease_until = COALESCE(?6, lease_until) \
         WHERE id = ?7 AND tenant = ?8 AND lease_token = ?9 AND status = 'running'",
    )
    .bind(i64::from(write.step.index) + 1)
    .bind(write.usage.input_tokens as i64)
    .bind(write.usage.output_tokens as i64)
    .bind(write.cost_usd)
    .bind(now)
    .bind(lease_until)
    .bind(lease.run_id.0)
    .bind(lease.tenant.as_str())
    .bind(lease.token)
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(StoreError::LeaseLost { run: lease.run_id });
    }
    Ok(())
}

/// Marks a run claimed by `owner`; `candidate` was selected in the same
/// transaction, so no other writer can have moved it.
async fn take_lease(
    tx: &mut Transaction<'static, Sqlite>,
    candidate: &SqliteRow,
    owner: &str,
    now: Millis,
    lease_for: Duration,
) -> Result<Claimed> {
    let id: uuid::Uuid = candidate.try_get("id")?;
    let prev_status: String = candidate.try_get("status")?;
    // A run found `running` had its lease expire: its worker died mid-run.
    let reclaimed = prev_status == "running";
    let sql = format!(
        "UPDATE runs SET status = 'running', lease_owner = ?1, lease_until = ?2, \
         lease_token = lease_token + 1, attempt = attempt + ?3, updated_at = ?4 \
         WHERE id = ?5 RETURNING lease_token, {RUN_COLS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now + lease_for.as_millis() as i64)
        .bind(i64::from(reclaimed))
        .bind(now)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    let run = run_from_row(&row)?;
    let token: i64 = row.try_get("lease_token")?;
    let event = if reclaimed { "reclaimed" } else { "running" };
    insert_audit(tx, &run.tenant, run.id, now, owner, event, None).await?;
    Ok(Claimed {
        lease: Lease {
            run_id: run.id,
            tenant: run.tenant.clone(),
            token,
        },
        run,
    })
}

/// Runs that may be claimed: due and queued, or running on an expired lease;
/// a conversation's runs wait for its older active runs.
const RUNNABLE: &str = "((r.status = 'queued' AND r.available_at <= ?1) \
      OR (r.status = 'running' AND r.lease_until < ?1)) \
    AND (r.conversation_id IS NULL OR NOT EXISTS ( \
      SELECT 1 FROM runs o WHERE o.tenant = r.tenant AND o.conversation_id = r.conversation_id \
      AND o.id < r.id AND o.status IN ('queued', 'running', 'paused')))";

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.reader)
            .await?;
        if (applied as usize) < MIGRATOR.iter().count() {
            return Err(StoreError::Corrupt("migrations are not applied".into()));
        }
        Ok(())
    }

    async fn create_run(&self, tenant: &TenantId, run: &NewRun) -> Result<Run> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO runs (id, tenant, agent, principal, conversation_id, status, input, \
             metadata, created_at, updated_at, available_at, v) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?8, ?8, ?9) RETURNING {RUN_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run.id.0)
            .bind(tenant.as_str())
            .bind(run.agent.as_str())
            .bind(run.principal.as_str())
            .bind(run.conversation_id.as_ref().map(|c| c.as_str()))
            .bind(json_text(&run.input))
            .bind(run.metadata.as_ref().map(json_text))
            .bind(now)
            .bind(i64::from(SCHEMA_VERSION))
            .fetch_one(&mut *tx)
            .await?;
        let created = run_from_row(&row)?;
        insert_audit(
            &mut tx,
            tenant,
            run.id,
            now,
            run.principal.as_str(),
            "created",
            None,
        )
        .await?;
        self.commit(tx).await?;
        Ok(created)
    }

    async fn get_run(&self, tenant: &TenantId, id: RunId) -> Result<Option<Run>> {
        let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1 AND tenant = ?2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_runs(&self, tenant: &TenantId, filter: &RunFilter) -> Result<Page<Run>> {
        let limit = filter.limit.clamp(1, 1000);
        let cursor = match &filter.cursor {
            Some(c) => Some(
                RunId::parse(c)
                    .map_err(|_| StoreError::Corrupt(format!("bad cursor {c:?}")))?
                    .0,
            ),
            None => None,
        };
        let sql = format!(
            "SELECT {RUN_COLS} FROM runs WHERE tenant = ?1 \
             AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR agent = ?3) \
             AND (?4 IS NULL OR status = ?4) ORDER BY id DESC LIMIT ?5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(cursor)
            .bind(filter.agent.as_deref())
            .bind(filter.status.map(|s| s.as_str()))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let mut items = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_steps(
        &self,
        tenant: &TenantId,
        id: RunId,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Option<Page<Step>>> {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2")
                .bind(id.0)
                .bind(tenant.as_str())
                .fetch_optional(&self.reader)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let limit = limit.clamp(1, 1000);
        let sql = format!(
            "SELECT {STEP_COLS} FROM steps WHERE run_id = ?1 AND idx > ?2 ORDER BY idx LIMIT ?3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .bind(after.map_or(-1, i64::from))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
            .await?;
        let mut items = rows.iter().map(step_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|s| s.index.to_string())
        } else {
            None
        };
        Ok(Some(Page { items, next_cursor }))
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<ConversationMessage>> {
        let limit = limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT seq, run_id, message, created_at FROM messages \
             WHERE tenant = ?1 AND conversation_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        )
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .bind(after.map_or(0, |a| a as i64))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
        .await?;
        let mut items = rows
            .iter()
            .map(|row| {
                Ok(ConversationMessage {
                    seq: row.try_get::<i64, _>("seq")? as u64,
                    run_id: RunId(row.try_get("run_id")?),
                    message: parse_json("message", &row.try_get::<String, _>("message")?)?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|m| m.seq.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn list_audit(&self, tenant: &TenantId, id: RunId) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT run_id, at, actor, event, detail FROM audit \
             WHERE tenant = ?1 AND run_id = ?2 ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    run_id: RunId(row.try_get("run_id")?),
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    event: row.try_get("event")?,
                    detail: parse_opt_json("detail", row.try_get("detail")?)?
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    async fn cancel_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let Some(run) = fetch_run(&mut tx, tenant, id).await? else {
            return Ok(Transition::NotFound);
        };
        if !run.status.can_transition(RunStatus::Cancelled) {
            return Ok(Transition::Conflict(run.status));
        }
        let error = RunError::new(ErrorCode::Cancelled, format!("cancelled by {actor}"));
        // Bumping the token revokes a running run's lease: its worker's next
        // write fails and it stops.
        let sql = format!(
            "UPDATE runs SET status = 'cancelled', error = ?1, pause = NULL, lease_owner = NULL, \
             lease_until = NULL, lease_token = lease_token + 1, updated_at = ?2 \
             WHERE id = ?3 AND tenant = ?4 RETURNING {RUN_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(opt_json(Some(&error))?)
            .bind(now)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let run = run_from_row(&row)?;
        insert_audit(&mut tx, tenant, id, now, actor.as_str(), "cancelled", None).await?;
        self.commit(tx).await?;
        Ok(Transition::Done(run))
    }

    async fn resume_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        answer: &serde_json::Value,
        actor: &PrincipalId,
    ) -> Result<Transition> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let Some(run) = fetch_run(&mut tx, tenant, id).await? else {
            return Ok(Transition::NotFound);
        };
        let Some(pause) = run
            .pause
            .as_ref()
            .filter(|_| run.status == RunStatus::Paused)
        else {
            return Ok(Transition::Conflict(run.status));
        };
        let res = sqlx::query(
            "UPDATE steps SET status = 'completed', output = ?1, \
             duration_ms = MAX(0, ?2 - started_at) \
             WHERE run_id = ?3 AND idx = ?4 AND status = 'waiting'",
        )
        .bind(json_text(answer))
        .bind(now)
        .bind(id.0)
        .bind(i64::from(pause.step))
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!(
                "paused run {id} has no waiting step {}",
                pause.step
            )));
        }
        let sql = format!(
            "UPDATE runs SET status = 'queued', pause = NULL, available_at = ?1, updated_at = ?1 \
             WHERE id = ?2 AND tenant = ?3 RETURNING {RUN_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let run = run_from_row(&row)?;
        insert_audit(&mut tx, tenant, id, now, actor.as_str(), "resumed", None).await?;
        self.commit(tx).await?;
        Ok(Transition::Done(run))
    }

    async fn claim_next(&self, owner: &str, lease_for: Duration) -> Result<Option<Claimed>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT r.id, r.status FROM runs r WHERE {RUNNABLE} \
             ORDER BY r.available_at, r.id LIMIT 1"
        );
        let Some(candidate) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let claimed = take_lease(&mut tx, &candidate, owner, now, lease_for).await?;
        self.commit(tx).await?;
        Ok(Some(claimed))
    }

    async fn claim_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<Claimed>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT r.id, r.status FROM runs r WHERE r.id = ?2 AND r.tenant = ?3 AND {RUNNABLE}"
        );
        let Some(candidate) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(id.0)
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let claimed = take_lease(&mut tx, &candidate, owner, now, lease_for).await?;
        self.commit(tx).await?;
        Ok(Some(claimed))
    }

    async fn load_journal(&self, lease: &Lease, history_limit: Option<u32>) -> Result<Journal> {
        let sql = format!(
            "SELECT {RUN_COLS} FROM runs WHERE id = ?1 AND tenant = ?2 AND lease_token = ?3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .fetch_optional(&self.writer)
            .await?
            .ok_or(StoreError::LeaseLost { run: lease.run_id })?;
        let run = run_from_row(&row)?;
        let sql = format!("SELECT {STEP_COLS} FROM steps WHERE run_id = ?1 ORDER BY idx");
        let steps = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease.run_id.0)
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(step_from_row)
            .collect::<Result<Vec<_>>>()?;
        let history = match &run.conversation_id {
            None => Vec::new(),
            Some(conv) => {
                let rows = sqlx::query(
                    "SELECT message FROM (SELECT seq, message FROM messages \
                     WHERE tenant = ?1 AND conversation_id = ?2 ORDER BY seq DESC LIMIT ?3) \
                     ORDER BY seq",
                )
                .bind(lease.tenant.as_str())
                .bind(conv.as_str())
                .bind(history_limit.map_or(-1, i64::from))
                .fetch_all(&self.writer)
                .await?;
                rows.iter()
                    .map(|r| parse_json::<Message>("message", &r.try_get::<String, _>("message")?))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        Ok(Journal {
            run,
            steps,
            history,
        })
    }

    async fn append_step(
        &self,
        lease: &Lease,
        write: &StepWrite,
        lease_for: Duration,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.begin().await?;
        advance_run(
            &mut tx,
            lease,
            write,
            now,
            Some(now + lease_for.as_millis() as i64),
        )
        .await?;
        insert_step(&mut tx, lease.run_id, &write.step).await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn pause_run(&self, lease: &Lease, waiting: &StepWrite, pause: &Pause) -> Result<Run> {
        let now = self.now();
        let mut tx = self.begin().await?;
        advance_run(&mut tx, lease, waiting, now, None).await?;
        insert_step(&mut tx, lease.run_id, &waiting.step).await?;
        let sql = format!(
            "UPDATE runs SET status = 'paused', pause = ?1, lease_owner = NULL, \
             lease_until = NULL, updated_at = ?2 WHERE id = ?3 RETURNING {RUN_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(opt_json(Some(pause))?)
            .bind(now)
            .bind(lease.run_id.0)
            .fetch_one(&mut *tx)
            .await?;
        let run = run_from_row(&row)?;
        let detail = serde_json::json!({ "question": pause.question });
        insert_audit(
            &mut tx,
            &lease.tenant,
            lease.run_id,
            now,
            "agent",
            "paused",
            Some(&detail),
        )
        .await?;
        self.commit(tx).await?;
        Ok(run)
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        last: Option<&StepWrite>,
        outcome: &Outcome,
    ) -> Result<Run> {
        let now = self.now();
        let mut tx = self.begin().await?;
        if let Some(write) = last {
            advance_run(&mut tx, lease, write, now, None).await?;
            insert_step(&mut tx, lease.run_id, &write.step).await?;
        }
        let (status, output, error) = match outcome {
            Outcome::Succeeded { output, .. } => ("succeeded", Some(json_text(output)), None),
            Outcome::Failed { error } => ("failed", None, opt_json(Some(error))?),
        };
        let sql = format!(
            "UPDATE runs SET status = ?1, output = ?2, error = ?3, lease_owner = NULL, \
             lease_until = NULL, updated_at = ?4 \
             WHERE id = ?5 AND tenant = ?6 AND lease_token = ?7 AND status = 'running' \
             RETURNING {RUN_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status)
            .bind(output)
            .bind(error)
            .bind(now)
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::LeaseLost { run: lease.run_id })?;
        let run = run_from_row(&row)?;
        if let (Outcome::Succeeded { messages, .. }, Some(conv)) = (outcome, &run.conversation_id) {
            let next: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages \
                 WHERE tenant = ?1 AND conversation_id = ?2",
            )
            .bind(lease.tenant.as_str())
            .bind(conv.as_str())
            .fetch_one(&mut *tx)
            .await?;
            for (i, m) in messages.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO messages (tenant, conversation_id, seq, run_id, message, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .bind(lease.tenant.as_str())
                .bind(conv.as_str())
                .bind(next + i as i64)
                .bind(lease.run_id.0)
                .bind(opt_json(Some(m))?)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let detail = match outcome {
            Outcome::Failed { error } => Some(serde_json::json!({ "error": error })),
            Outcome::Succeeded { .. } => None,
        };
        insert_audit(
            &mut tx,
            &lease.tenant,
            lease.run_id,
            now,
            "agent",
            status,
            detail.as_ref(),
        )
        .await?;
        self.commit(tx).await?;
        Ok(run)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let now = self.now();
        sqlx::query(
            "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
             available_at = ?1, updated_at = ?1 \
             WHERE id = ?2 AND tenant = ?3 AND lease_token = ?4 AND status = 'running'",
        )
        .bind(now)
        .bind(lease.run_id.0)
        .bind(lease.tenant.as_str())
        .bind(lease.token)
        .execute(&self.writer)
        .await?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn release_owner(&self, owner: &str) -> Result<u64> {
        let now = self.now();
        let res = sqlx::query(
            "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
             available_at = ?1, updated_at = ?1, attempt = attempt + 1 \
             WHERE lease_owner = ?2 AND status = 'running'",
        )
        .bind(now)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(res.rows_affected())
    }
}
