//! The single writer: one thread owns the write connection and commits
//! batches of jobs in one transaction each (group commit). Under load, many
//! runs' steps share one fsync; alone, a job commits on its own. A job's
//! caller hears back only after the batch is durable.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Most jobs one transaction takes: bounds the latency a batch adds.
const MAX_BATCH: usize = 256;

/// Work to run inside the writer's transaction.
trait Job: Send {
    /// Runs the job; `false` means it failed and its changes are undone.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the job's result once the batch's fate is known.
    fn deliver(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>);
    /// False for work that must run outside a transaction (a checkpoint).
    fn transactional(&self) -> bool;
}

struct Typed<T, F> {
    f: Option<F>,
    out: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    transactional: bool,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = f(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn deliver(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>) {
        let this = *self;
        let result = match (committed, this.out) {
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(Ok(v))) => Ok(v),
            (Err(e), Some(Ok(_))) => Err(StoreError::Backend {
                backend: "sqlite",
                source: e,
            }),
            (_, None) => Err(StoreError::Closed),
        };
        // The caller may have gone away (a cancelled request): nothing to do.
        let _ = this.reply.send(result);
    }

    fn transactional(&self) -> bool {
        self.transactional
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>(4096);
        let commits = Arc::new(AtomicU64::new(0));
        let c = commits.clone();
        std::thread::Builder::new()
            .name("agentd-sqlite-writer".into())
            .spawn(move || run(conn, rx, c))?;
        Ok(Self { tx, commits })
    }

    /// Runs `f` in the next batch transaction and returns its result once
    /// that transaction is durable. An `Err` from `f` undoes only `f`'s
    /// changes.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f, true).await
    }

    /// Runs `f` on the write connection outside any transaction, between
    /// batches (checkpoints, pragmas that refuse to run in a transaction).
    pub(super) async fn exclusive<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(f, false).await
    }

    async fn submit<T, F>(&self, f: F, transactional: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Typed {
            f: Some(f),
            out: None,
            reply,
            transactional,
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, commits: Arc<AtomicU64>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut held: Option<Box<dyn Job>> = None;
    loop {
        let Some(first) = held.take().or_else(|| rx.blocking_recv()) else {
            return;
        };
        if !first.transactional() {
            // Its own result (Ok or Err) is delivered: nothing to commit.
            let mut job = first;
            let _ = job.run(&conn);
            job.deliver(Ok(()));
            continue;
        }
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) if !job.transactional() => {
                    held = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcome = commit_batch(&conn, &mut batch);
        if let Ok(true) = outcome {
            commits.fetch_add(1, Ordering::Relaxed);
            crate::meter::committed("sqlite", batch.len(), started.elapsed());
        }
        let committed = outcome.map(|_| ()).map_err(Arc::new);
        for job in batch.drain(..) {
            job.deliver(committed.clone());
        }
    }
}

/// Runs the jobs in one transaction. Each job of a multi-job batch runs in
/// its own savepoint, so one job's failure does not undo the others.
/// Returns whether anything was committed.
fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<bool> {
    let changes_before = conn.total_changes();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let single = batch.len() == 1;
    let mut any_ok = false;
    for job in batch.iter_mut() {
        if single {
            any_ok = job.run(conn);
        } else {
            if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
            let ok = job.run(conn);
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            if let Err(e) = conn.execute_batch(end) {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
            any_ok |= ok;
        }
    }
    // Nothing written (failed jobs, claims that found nothing): nothing to
    // make durable, and no fsync to count.
    if !any_ok || conn.total_changes() == changes_before {
        conn.execute_batch("ROLLBACK")?;
        return Ok(false);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(true)
}
