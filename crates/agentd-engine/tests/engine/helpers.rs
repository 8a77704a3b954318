//! Shared arrangement: an engine on a fresh SQLite file and shortcuts to
//! submit, drive and inspect runs; identities, scripts and PostgreSQL come
//! from `agentd-test-support`.

use agentd_config::Config;
use agentd_core::{ConversationId, Identity, Run, RunId, Step, StepKind, TenantId, Usage};
use agentd_engine::{Engine, Submit};
use agentd_store::{AuditEntry, Store};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use agentd_test_support::{W1_SCRIPT, drop_schema, identity, postgres_url};

/// How long a test waits for a run to settle before giving up.
pub const SETTLE: Duration = Duration::from_secs(20);

/// Opens and migrates the SQLite store in `dir`.
pub async fn open_store(dir: &TempDir) -> Result<Arc<dyn Store>> {
    let store = agentd_store::open(&agentd_test_support::sqlite_url(dir.path())).await?;
    store.migrate().await?;
    Ok(store)
}

/// An engine with its store and the directory that holds the database.
pub struct TestEngine {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    /// Identity of tenant `t1`, the tenant most tests act as.
    pub who: Identity,
    pub _dir: TempDir,
}

/// Builds an engine from `toml` on a fresh database.
pub async fn spawn_engine(toml: &str) -> Result<TestEngine> {
    let dir = tempfile::tempdir()?;
    let store = open_store(&dir).await?;
    let engine = build_engine(toml, store.clone()).await?;
    Ok(TestEngine {
        engine,
        store,
        who: identity("t1")?,
        _dir: dir,
    })
}

/// Builds an engine from `toml` on an existing store.
pub async fn build_engine(toml: &str, store: Arc<dyn Store>) -> Result<Engine> {
    let config = Config::from_toml_str(toml)?;
    Ok(Engine::new(&config, store).await?)
}

/// A worker pool running in the background until stopped.
pub struct Workers {
    pub token: CancellationToken,
    pub handle: JoinHandle<()>,
}

impl Workers {
    /// Asks the pool to stop and waits until every worker has returned.
    pub async fn stop(self) -> Result<()> {
        self.token.cancel();
        tokio::time::timeout(SETTLE, self.handle)
            .await
            .context("workers did not stop")??;
        Ok(())
    }
}

/// Starts `engine.run_workers` in a spawned task.
pub fn start_workers(engine: &Engine) -> Workers {
    let token = CancellationToken::new();
    let engine = engine.clone();
    let t = token.clone();
    let handle = tokio::spawn(async move { engine.run_workers(t).await });
    Workers { token, handle }
}

impl TestEngine {
    /// Queues a run of `agent` for tenant `t1`.
    pub async fn submit(&self, agent: &str, input: &str) -> Result<Run> {
        self.submit_as(&self.who, agent, input, None).await
    }

    /// Queues a run of `agent` for `who`, optionally in a conversation.
    pub async fn submit_as(
        &self,
        who: &Identity,
        agent: &str,
        input: &str,
        conversation: Option<&str>,
    ) -> Result<Run> {
        let req = Submit {
            input: serde_json::json!(input),
            conversation_id: conversation.map(ConversationId::parse).transpose()?,
            metadata: None,
            idempotency_key: None,
            origin: Default::default(),
            if_busy: Default::default(),
            callback_url: None,
        };
        Ok(self.engine.submit(who, agent, req).await?)
    }

    /// Executes a run of tenant `t1` in this task until it settles.
    pub async fn drive(&self, id: RunId) -> Result<Run> {
        self.drive_as(&self.who.tenant, id).await
    }

    /// Executes a run of `tenant` in this task until it settles.
    pub async fn drive_as(&self, tenant: &TenantId, id: RunId) -> Result<Run> {
        let token = CancellationToken::new();
        tokio::time::timeout(SETTLE, self.engine.drive(tenant, id, &token))
            .await
            .context("run did not settle in time")??
            .context("driven run does not exist")
    }

    /// Waits (workers elsewhere execute it) until a run of `t1` settles.
    pub async fn settle(&self, id: RunId) -> Result<Run> {
        let run = self
            .engine
            .wait(&self.who.tenant, id, SETTLE)
            .await?
            .context("waited-for run does not exist")?;
        anyhow::ensure!(
            agentd_engine::settled(run.status),
            "run {id} still {} after {SETTLE:?}",
            run.status
        );
        Ok(run)
    }

    /// The run as stored for tenant `t1`.
    pub async fn run(&self, id: RunId) -> Result<Run> {
        self.store
            .get_run(&self.who.tenant, id)
            .await?
            .context("run not found")
    }

    /// The whole journal of a run of tenant `t1`.
    pub async fn steps(&self, id: RunId) -> Result<Vec<Step>> {
        Ok(self
            .store
            .list_steps(&self.who.tenant, id, None, 1000)
            .await?
            .context("journal not found")?
            .items)
    }

    /// The audit events of a run of tenant `t1`, oldest first.
    pub async fn audit(&self, id: RunId) -> Result<Vec<AuditEntry>> {
        Ok(self.store.list_audit(&self.who.tenant, id).await?)
    }

    /// Polls until the run has at least `n` journaled steps.
    pub async fn wait_for_steps(&self, id: RunId, n: usize) -> Result<Vec<Step>> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let steps = self.steps(id).await?;
            if steps.len() >= n {
                return Ok(steps);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "run {id} has {} steps, waited for {n}",
                steps.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Step kinds in journal order.
pub fn kinds(steps: &[Step]) -> Vec<StepKind> {
    steps.iter().map(|s| s.kind).collect()
}

/// Step indexes in journal order.
pub fn indexes(steps: &[Step]) -> Vec<u32> {
    steps.iter().map(|s| s.index).collect()
}

/// Sum of the usage recorded on the steps.
pub fn step_usage(steps: &[Step]) -> Usage {
    steps
        .iter()
        .filter_map(|s| s.usage)
        .fold(Usage::default(), |sum, u| sum + u)
}

/// Audit event names in order.
pub fn events(audit: &[AuditEntry]) -> Vec<&str> {
    audit.iter().map(|a| a.event.as_str()).collect()
}

/// A store clock that follows tokio's clock, so under
/// `tokio::time::pause()` leases and backoffs expire in virtual time.
pub fn tokio_clock() -> agentd_store::Clock {
    let base = agentd_core::now_millis();
    let start = tokio::time::Instant::now();
    Arc::new(move || base + start.elapsed().as_millis() as i64)
}

/// Moves paused time forward by itself, 100 ms per ~1 ms of real time,
/// until the runtime ends.
///
/// Left to itself, a paused runtime jumps straight to its next timer
/// whenever no task is ready; a task waiting on SQLite's writer thread does
/// not count as busy, so every store write could skip to, say, a test's
/// timeout. A running blocking task holds auto-advance off, so the clock
/// moves only here, at a pace that leaves each write a few virtual ms.
pub fn drive_paused_clock() {
    tokio::spawn(async {
        loop {
            let _ =
                tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1))).await;
            tokio::time::advance(Duration::from_millis(100)).await;
        }
    });
}

/// Builds an engine from `toml` on a fresh database whose clock is
/// tokio's (see [`tokio_clock`]); call it under a paused runtime: it starts
/// [`drive_paused_clock`].
pub async fn spawn_engine_on_tokio_time(toml: &str) -> Result<TestEngine> {
    drive_paused_clock();
    let dir = tempfile::tempdir()?;
    let url = agentd_test_support::sqlite_url(dir.path());
    let store = agentd_store::SqliteStore::open(&url)
        .await?
        .with_clock(tokio_clock());
    store.migrate().await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let engine = build_engine(toml, store.clone()).await?;
    Ok(TestEngine {
        engine,
        store,
        who: identity("t1")?,
        _dir: dir,
    })
}
