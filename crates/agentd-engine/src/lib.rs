//! The agentd engine: the durable run loop, the worker pool that claims runs
//! from the store's queue, and the calls the API and the CLI make (submit,
//! wait, resume, cancel). It knows nothing of HTTP.

mod agent;
mod events;
mod run_loop;
mod worker;

pub use agent::Agent;
pub use events::{RunEvent, RunEventKind};

use agentd_config::Config;
use agentd_core::{ConversationId, Identity, NewRun, Run, RunId, RunStatus, TenantId};
use agentd_store::{Store, StoreError, Transition};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// Result alias of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Errors of the engine's API.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config names something this process cannot provide (a provider
    /// kind, a tool). The binary exits with code 2.
    #[error("{0}")]
    Config(String),
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to start a run.
#[derive(Debug, Clone, Default)]
pub struct Submit {
    pub input: serde_json::Value,
    pub conversation_id: Option<ConversationId>,
    pub metadata: Option<serde_json::Value>,
}

/// Queue and execution settings the engine needs from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub workers: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// Lease owner name of this process (the node id).
    pub owner: String,
}

/// The engine. Cheap to clone: all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    agents: HashMap<String, Agent>,
    settings: EngineSettings,
    events: broadcast::Sender<RunEvent>,
    /// Wakes an idle worker when this process queues a run.
    wake: Notify,
}

impl Engine {
    /// Builds the engine: resolves every agent's providers and tools.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self> {
        let tools = agentd_tools::Registry::builtin();
        let mut agents = HashMap::new();
        for (i, a) in config.agents.iter().enumerate() {
            let agent = Agent::build(i, a, config, &tools)?;
            agents.insert(a.name.clone(), agent);
        }
        let owner = config.queue.node_id.clone().unwrap_or_else(default_node_id);
        let settings = EngineSettings {
            workers: config.queue.workers.max(1),
            lease: config.queue.lease.get(),
            poll_interval: config.queue.poll_interval.get(),
            owner,
        };
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                agents,
                settings,
                events,
                wake: Notify::new(),
            }),
        })
    }

    /// The store this engine runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The engine's queue settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Names of the configured agents.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.inner.agents.keys().map(String::as_str)
    }

    /// Live events of every run this process executes or changes.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, run: &Run, kind: RunEventKind) {
        // No subscriber is normal (nobody watching): the send error is moot.
        let _ = self.inner.events.send(RunEvent {
            run_id: run.id,
            tenant: run.tenant.clone(),
            kind,
        });
    }

    /// Queues a run of `agent` for `who`.
    pub async fn submit(&self, who: &Identity, agent: &str, req: Submit) -> Result<Run> {
        if !self.inner.agents.contains_key(agent) {
            return Err(EngineError::UnknownAgent(agent.to_string()));
        }
        let new = NewRun {
            id: RunId::new(),
            agent: agent.to_string(),
            principal: who.principal.clone(),
            input: req.input,
            conversation_id: req.conversation_id,
            metadata: req.metadata,
        };
        let run = self.inner.store.create_run(&who.tenant, &new).await?;
        self.emit(&run, RunEventKind::Status { status: run.status });
        self.inner.wake.notify_one();
        Ok(run)
    }

    /// Answers a paused run and queues it again.
    pub async fn resume(
        &self,
        who: &Identity,
        id: RunId,
        answer: &serde_json::Value,
    ) -> Result<Transition> {
        let t = self
            .inner
            .store
            .resume_run(&who.tenant, id, answer, &who.principal)
            .await?;
        if let Transition::Done(run) = &t {
            self.emit(run, RunEventKind::Status { status: run.status });
            self.inner.wake.notify_one();
        }
        Ok(t)
    }

    /// Cancels a queued, running or paused run.
    pub async fn cancel(&self, who: &Identity, id: RunId) -> Result<Transition> {
        let t = self
            .inner
            .store
            .cancel_run(&who.tenant, id, &who.principal)
            .await?;
        if let Transition::Done(run) = &t {
            self.emit(run, RunEventKind::Finished { run: run.clone() });
        }
        Ok(t)
    }

    /// Waits until the run stops moving (paused or finished) or `timeout`
    /// passes; returns the run as it is then, `None` if it does not exist.
    pub async fn wait(
        &self,
        tenant: &TenantId,
        id: RunId,
        timeout: Duration,
    ) -> Result<Option<Run>> {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        // Events are the fast path; the store poll covers runs executed by
        // another process and a lagging receiver.
        let poll = self
            .inner
            .settings
            .poll_interval
            .max(Duration::from_millis(50));
        loop {
            let Some(run) = self.inner.store.get_run(tenant, id).await? else {
                return Ok(None);
            };
            if settled(run.status) || tokio::time::Instant::now() >= deadline {
                return Ok(Some(run));
            }
            let next_poll = (tokio::time::Instant::now() + poll).min(deadline);
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(ev) if ev.run_id == id && ev.is_settling() => break,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tokio::time::sleep_until(next_poll) => break,
                }
            }
        }
    }

    /// Executes one run in this process if it is runnable (the CLI's
    /// `agentd run`); if another worker holds it, waits for it instead.
    pub async fn drive(
        &self,
        tenant: &TenantId,
        id: RunId,
        shutdown: &CancellationToken,
    ) -> Result<Option<Run>> {
        let s = &self.inner.settings;
        loop {
            if let Some(claimed) = self
                .inner
                .store
                .claim_run(tenant, id, &s.owner, s.lease)
                .await?
            {
                self.execute(claimed, shutdown).await;
            }
            let Some(run) = self.wait(tenant, id, Duration::from_secs(1)).await? else {
                return Ok(None);
            };
            if settled(run.status) || shutdown.is_cancelled() {
                return Ok(Some(run));
            }
        }
    }

    /// Releases leases this node held before a restart, so its runs continue
    /// at once instead of after their leases expire. Call once at start-up of
    /// a process that runs workers.
    pub async fn recover(&self) -> Result<u64> {
        Ok(self
            .inner
            .store
            .release_owner(&self.inner.settings.owner)
            .await?)
    }
}

/// True once a run waits for nobody but a human or is done.
pub fn settled(status: RunStatus) -> bool {
    status == RunStatus::Paused || status.is_terminal()
}

fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agentd".to_string())
}
