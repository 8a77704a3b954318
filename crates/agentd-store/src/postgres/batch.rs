//! Group commit on PostgreSQL. The writes on a run's hot path (creating
//! it, journaling its steps, ending its attempt) go through one queue per
//! process; a writer task takes every write that is ready and commits them
//! together, one statement per kind of write over arrays, in one
//! transaction. At 64 runs in flight, their steps share a few statement
//! executions and one WAL flush instead of paying one each, and the server
//! wakes a handful of backends instead of one per run. A caller hears back
//! only once its batch is durable, so no step's result is used before its
//! own write is.
//!
//! A batch that fails as a whole (a run id used twice, a deadlock with
//! another process on a budget row, a conversation's message numbers taken
//! by a concurrent writer) is split and retried half by half, so one
//! write's error never fails another.

use super::rows::{self, StepColumns, Totals, WriteColumns};
use super::{UNIQUE_VIOLATION, db_error, has_code, is_violation_of, sql};
use crate::codec::{Codec, corrupt};
use crate::{Lease, Result, StoreError};
use agentd_core::{Run, SCHEMA_VERSION};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most writes one batch carries: bounds the statement size and the
/// latency a batch adds to its first write.
const MAX_BATCH: usize = 256;

/// Writes waiting for a batch; senders wait when it is full.
const QUEUE: usize = 4096;

/// How often a conversation's message numbering is retried when another
/// process numbered the same messages first.
const MESSAGE_TRIES: usize = 5;

/// A run to insert, sealed: queued, or already claimed by `owner`.
#[derive(Debug)]
pub(super) struct CreateRow {
    pub id: Uuid,
    pub tenant: String,
    pub agent: String,
    pub agent_version: Option<String>,
    pub principal: String,
    pub conversation: Option<String>,
    pub input: String,
    pub metadata: Option<String>,
    pub roles: String,
    /// The run's [`agentd_core::RunOrigin`] as JSON, if it has one.
    pub origin: Option<String>,
    /// The run's completion webhooks as JSON, if it has any.
    pub callbacks: Option<String>,
    /// The lease owner and lease length in ms of a run created claimed.
    pub claim: Option<(String, i64)>,
}

/// Steps to journal under a lease, which is extended by `lease_ms`.
#[derive(Debug)]
pub(super) struct AppendRow {
    pub lease: Lease,
    pub steps: StepColumns,
    pub totals: Totals,
    pub lease_ms: i64,
    /// The steps spent: settle the tenant's budget.
    pub settles: bool,
}

/// The last steps of an attempt and how it ended, sealed.
#[derive(Debug)]
pub(super) struct FinishRow {
    pub lease: Lease,
    pub steps: StepColumns,
    pub totals: Totals,
    pub status: &'static str,
    pub output: Option<String>,
    pub output_json: Option<String>,
    pub error: Option<String>,
    pub detail: Option<String>,
    pub delay_ms: Option<i64>,
    /// Attempts the outcome adds (1 for a retry).
    pub attempts: i32,
    pub event: &'static str,
    /// Messages for the run's conversation, if it has one.
    pub messages: Vec<String>,
    /// The attempt spent or reserved budget: settle and release it.
    pub settles: bool,
}

#[derive(Debug)]
enum Write {
    Create(CreateRow),
    Append(AppendRow),
    Finish(FinishRow),
}

/// What a write produced.
#[allow(clippy::large_enum_variant)] // one per write in flight, moved once
enum Done {
    /// The run as the write left it (create, finish).
    Run(Run),
    /// Steps journaled (append).
    Appended,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Done>>,
}

/// The queue of hot-path writes and its writer task. Cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the writer task on `pool`. It ends when every handle is
    /// dropped.
    pub(super) fn start(pool: PgPool, codec: Codec, commits: Arc<AtomicU64>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(
            Shared {
                pool,
                codec,
                commits,
            },
            rx,
        ));
        Self { tx }
    }

    /// Inserts a run; `Duplicate`-worthy failures come back as the
    /// database's unique violation.
    pub(super) async fn create(&self, row: CreateRow) -> Result<Run> {
        match self.submit(Write::Create(row)).await? {
            Done::Run(run) => Ok(run),
            Done::Appended => Err(corrupt("a create returned no run")),
        }
    }

    /// Journals steps; `LeaseLost` if the lease is gone.
    pub(super) async fn append(&self, row: AppendRow) -> Result<()> {
        self.submit(Write::Append(row)).await.map(|_| ())
    }

    /// Ends an attempt; `LeaseLost` if the lease is gone.
    pub(super) async fn finish(&self, row: FinishRow) -> Result<Run> {
        match self.submit(Write::Finish(row)).await? {
            Done::Run(run) => Ok(run),
            Done::Appended => Err(corrupt("a finish returned no run")),
        }
    }

    async fn submit(&self, write: Write) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// What the writer works with.
struct Shared {
    pool: PgPool,
    codec: Codec,
    commits: Arc<AtomicU64>,
}

/// Commits one batch at a time: the writes that arrive while a batch
/// commits make up the next one. (Two batches in flight measured slower at
/// 64 runs: twice the statements for the same writes.)
async fn writer(shared: Shared, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&shared, batch).await;
    }
}

async fn commit(shared: &Shared, batch: Vec<Job>) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        batch.into_iter().map(|j| (j.write, j.reply)).unzip();
    let all: Vec<&Write> = writes.iter().collect();
    let results = isolating(shared, &all).await;
    for (reply, result) in replies.into_iter().zip(results) {
        // The caller may have gone away (a cancelled request).
        let _ = reply.send(result);
    }
}

/// Commits `writes` together; if that fails, each half on its own, down to
/// single writes, which get their own error. One bad write in a batch of
/// n costs about 2·log2(n) extra statements, not n.
fn isolating<'a>(
    shared: &'a Shared,
    writes: &'a [&'a Write],
) -> Pin<Box<dyn Future<Output = Vec<Result<Done>>> + Send + 'a>> {
    Box::pin(async move {
        let mut tries = 0;
        loop {
            let started = std::time::Instant::now();
            match execute(shared, writes).await {
                Ok(results) => {
                    // Refused writes (leases lost) change nothing: no commit.
                    if results.iter().any(|r| r.is_ok()) {
                        shared.commits.fetch_add(1, Ordering::Relaxed);
                        crate::meter::committed("postgres", writes.len(), started.elapsed());
                    }
                    return results;
                }
                // Another process numbered the conversation's messages
                // first: number them again.
                Err(e)
                    if writes.len() == 1
                        && tries + 1 < MESSAGE_TRIES
                        && db_error(&e).is_some_and(|e| is_violation_of(e, "messages_pkey")) =>
                {
                    tries += 1
                }
                Err(e) if writes.len() == 1 => return vec![Err(e)],
                Err(e) => {
                    tracing::debug!(error = %e, writes = writes.len(), "batch failed; splitting it");
                    let (a, b) = writes.split_at(writes.len() / 2);
                    let mut results = isolating(shared, a).await;
                    results.extend(isolating(shared, b).await);
                    return results;
                }
            }
        }
    })
}

/// The writes of a batch by kind, with their places in the batch.
struct Kinds<'a> {
    creates: Vec<(usize, &'a CreateRow)>,
    appends: Vec<(usize, &'a AppendRow)>,
    finishes: Vec<(usize, &'a FinishRow)>,
}

impl<'a> Kinds<'a> {
    fn of(writes: &[&'a Write]) -> Self {
        let mut k = Self {
            creates: Vec::new(),
            appends: Vec::new(),
            finishes: Vec::new(),
        };
        for (i, w) in writes.iter().enumerate() {
            match w {
                Write::Create(r) => k.creates.push((i, r)),
                Write::Append(r) => k.appends.push((i, r)),
                Write::Finish(r) => k.finishes.push((i, r)),
            }
        }
        k
    }

    /// How many statements the batch takes.
    fn statements(&self) -> usize {
        usize::from(!self.creates.is_empty())
            + usize::from(!self.appends.is_empty())
            + usize::from(!self.finishes.is_empty())
    }
}

/// Runs `writes` in one transaction (one statement, when they are all of
/// one kind); the result of each write, or the error that undid them all.
async fn execute(shared: &Shared, writes: &[&Write]) -> Result<Vec<Result<Done>>> {
    let kinds = Kinds::of(writes);
    let mut out: Vec<Option<Result<Done>>> = writes.iter().map(|_| None).collect();
    if kinds.statements() > 1 {
        let mut tx = shared.pool.begin().await?;
        run_all(&mut tx, &shared.codec, &kinds, &mut out).await?;
        tx.commit().await?;
    } else {
        let mut conn = shared.pool.acquire().await?;
        run_all(&mut conn, &shared.codec, &kinds, &mut out).await?;
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(corrupt("a write produced no result"))))
        .collect())
}

async fn run_all(
    conn: &mut PgConnection,
    codec: &Codec,
    kinds: &Kinds<'_>,
    out: &mut [Option<Result<Done>>],
) -> Result<()> {
    if !kinds.creates.is_empty() {
        run_creates(conn, codec, &kinds.creates, out).await?;
    }
    if !kinds.appends.is_empty() {
        run_appends(conn, &kinds.appends, out).await?;
    }
    if !kinds.finishes.is_empty() {
        run_finishes(conn, codec, &kinds.finishes, out).await?;
    }
    Ok(())
}

/// Inserts the batch's new runs in one statement.
async fn run_creates(
    conn: &mut PgConnection,
    codec: &Codec,
    creates: &[(usize, &CreateRow)],
    out: &mut [Option<Result<Done>>],
) -> Result<()> {
    let rows: Vec<&CreateRow> = creates.iter().map(|(_, r)| *r).collect();
    let mut runs = by_id(bind_creates(&rows).fetch_all(&mut *conn).await?)?;
    for (i, r) in creates {
        out[*i] = Some(match runs.remove(&r.id) {
            Some(row) => rows::run(codec, &row, 0).map(Done::Run),
            None => Err(corrupt(format_args!("run {} was not created", r.id))),
        });
    }
    Ok(())
}

/// Journals the batch's steps in one statement.
async fn run_appends(
    conn: &mut PgConnection,
    appends: &[(usize, &AppendRow)],
    out: &mut [Option<Result<Done>>],
) -> Result<()> {
    let mut steps = Vec::with_capacity(appends.len());
    let mut w = WriteColumns::default();
    let mut lease_ms = Vec::with_capacity(appends.len());
    for (_, r) in appends {
        steps.push(&r.steps);
        w.push(&r.lease, &r.totals);
        lease_ms.push(r.lease_ms);
    }
    let statement = if appends.iter().any(|(_, r)| r.settles) {
        sql::APPEND_SETTLING.as_str()
    } else {
        sql::APPEND.as_str()
    };
    let q = w
        .bind(StepColumns::bind(sqlx::query(statement), &steps))
        .bind(lease_ms);
    let q = StepColumns::bind_costs(q, &steps);
    let written: HashSet<Uuid> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<Uuid, _>(0))
        .collect::<Result<_, _>>()?;
    for (i, r) in appends {
        out[*i] = Some(if written.contains(&r.lease.run_id.0) {
            Ok(Done::Appended)
        } else {
            Err(StoreError::LeaseLost {
                run: r.lease.run_id,
            })
        });
    }
    Ok(())
}

/// Ends the batch's attempts in one statement.
async fn run_finishes(
    conn: &mut PgConnection,
    codec: &Codec,
    finishes: &[(usize, &FinishRow)],
    out: &mut [Option<Result<Done>>],
) -> Result<()> {
    let n = finishes.len();
    let mut steps = Vec::with_capacity(n);
    let mut w = WriteColumns::default();
    let (mut status, mut output, mut error, mut detail) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut delay, mut attempts, mut event) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut msg_run, mut msg_ord, mut msg) = (Vec::new(), Vec::new(), Vec::new());
    let mut output_json = Vec::with_capacity(n);
    for (_, r) in finishes {
        output_json.push(r.output_json.as_deref());
        steps.push(&r.steps);
        w.push(&r.lease, &r.totals);
        status.push(r.status);
        output.push(r.output.as_deref());
        error.push(r.error.as_deref());
        detail.push(r.detail.as_deref());
        delay.push(r.delay_ms);
        attempts.push(r.attempts);
        event.push(r.event);
        for (ord, m) in r.messages.iter().enumerate() {
            msg_run.push(r.lease.run_id.0);
            msg_ord.push(ord as i64 + 1);
            msg.push(m.as_str());
        }
    }
    let statement = if finishes.iter().any(|(_, r)| r.settles) {
        sql::FINISH_SETTLING.as_str()
    } else {
        sql::FINISH.as_str()
    };
    let q = w
        .bind(StepColumns::bind(sqlx::query(statement), &steps))
        .bind(status)
        .bind(output)
        .bind(error)
        .bind(detail)
        .bind(delay)
        .bind(attempts)
        .bind(event)
        .bind(msg_run)
        .bind(msg_ord)
        .bind(msg)
        .bind(output_json);
    let q = StepColumns::bind_costs(q, &steps);
    let mut runs = by_id(q.fetch_all(&mut *conn).await?)?;
    for (i, r) in finishes {
        out[*i] = Some(match runs.remove(&r.lease.run_id.0) {
            Some(row) => rows::run(codec, &row, 0).map(Done::Run),
            None => Err(StoreError::LeaseLost {
                run: r.lease.run_id,
            }),
        });
    }
    Ok(())
}

/// The `CREATE` statement for `rows`.
pub(super) fn bind_creates<'q>(rows: &[&'q CreateRow]) -> rows::Query<'q> {
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut tenant = Vec::with_capacity(n);
    let mut agent = Vec::with_capacity(n);
    let mut principal = Vec::with_capacity(n);
    let mut conversation = Vec::with_capacity(n);
    let mut input = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut roles = Vec::with_capacity(n);
    let mut origin = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut callbacks = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut lease_ms = Vec::with_capacity(n);
    for r in rows {
        id.push(r.id);
        tenant.push(r.tenant.as_str());
        agent.push(r.agent.as_str());
        principal.push(r.principal.as_str());
        conversation.push(r.conversation.as_deref());
        input.push(r.input.as_str());
        metadata.push(r.metadata.as_deref());
        roles.push(r.roles.as_str());
        origin.push(r.origin.as_deref());
        version.push(r.agent_version.as_deref());
        callbacks.push(r.callbacks.as_deref());
        owner.push(r.claim.as_ref().map(|(o, _)| o.as_str()));
        lease_ms.push(r.claim.as_ref().map(|(_, ms)| *ms));
    }
    sqlx::query(sql::CREATE)
        .bind(id)
        .bind(tenant)
        .bind(agent)
        .bind(principal)
        .bind(conversation)
        .bind(input)
        .bind(metadata)
        .bind(roles)
        .bind(owner)
        .bind(lease_ms)
        .bind(rows::int::<i16, _>(SCHEMA_VERSION))
        .bind(origin)
        .bind(version)
        .bind(callbacks)
}

/// Rows keyed by their first column, a run id.
fn by_id(rows: Vec<PgRow>) -> Result<HashMap<Uuid, PgRow>> {
    rows.into_iter()
        .map(|row| Ok((row.try_get::<Uuid, _>(0)?, row)))
        .collect()
}

/// A create's failure as the caller reports it: a run id used twice is
/// `Duplicate`.
pub(super) fn create_error(e: StoreError, id: &Uuid) -> StoreError {
    match e {
        e if db_error(&e).is_some_and(|db| has_code(db, UNIQUE_VIOLATION)) => {
            StoreError::Duplicate {
                what: format!("run {id}"),
            }
        }
        e => e,
    }
}
