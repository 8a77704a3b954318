//! The agentd engine: the durable run loop, the worker pool that claims runs
//! from the store's queue, the calls the API and the CLI make (submit,
//! wait, resume, cancel) and the retention task. It knows nothing of HTTP.

mod agent;
mod circuits;
pub mod contract;
mod events;
pub mod reads;
pub mod retention;
mod run_loop;
mod worker;

pub use agent::Agent;
pub use events::{RunEvent, RunEventKind};

use agentd_config::{Config, MemoryStrategy};
use agentd_core::{ConversationId, Identity, NewRun, Run, RunId, RunStatus, TenantId};
use agentd_store::{ClaimRequest, Claimed, Store, StoreError, Transition};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// The answer does not fit the pause (an approval needs
    /// `{"approve": bool}`).
    #[error("{0}")]
    BadAnswer(String),
    /// The caller lacks the role the operation needs.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The role that may requeue dead runs.
pub const ADMIN_ROLE: &str = "admin";

fn require_admin(who: &Identity, what: &str) -> Result<()> {
    if who.has_role(ADMIN_ROLE) {
        Ok(())
    } else {
        Err(EngineError::Forbidden(format!(
            "{what} needs role {ADMIN_ROLE:?}"
        )))
    }
}

/// What `/ready` reports beyond the store: provider circuits and MCP
/// servers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub circuits: Vec<CircuitStatus>,
    pub mcp: Vec<agentd_tools::McpServerStatus>,
    /// Agents none of whose providers would take a call now (every circuit
    /// open).
    pub unavailable_agents: Vec<String>,
}

impl Readiness {
    /// Ready when every MCP server is connected and every agent has a
    /// provider to call.
    pub fn is_ready(&self) -> bool {
        self.unavailable_agents.is_empty() && self.mcp.iter().all(|m| m.healthy)
    }
}

/// One provider's circuit breaker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CircuitStatus {
    pub provider: String,
    pub state: agentd_llm::BreakerState,
}

/// A request to start a run.
#[derive(Debug, Clone, Default)]
pub struct Submit {
    pub input: serde_json::Value,
    pub conversation_id: Option<ConversationId>,
    pub metadata: Option<serde_json::Value>,
    /// The caller's `Idempotency-Key`: the same key and request return the
    /// run it created; the same key with another request is a conflict.
    pub idempotency_key: Option<String>,
}

impl Submit {
    /// A stable digest of what the request asks for, compared when an
    /// idempotency key is reused.
    fn fingerprint(&self, agent: &str) -> String {
        use sha2::Digest;
        // serde_json objects are ordered maps, so equal requests serialize
        // equally.
        let canonical = serde_json::json!({
            "agent": agent,
            "input": self.input,
            "conversation_id": self.conversation_id,
            "metadata": self.metadata,
        });
        hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Queue and execution settings the engine needs from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub workers: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// Lease owner name of this process (the node id).
    pub owner: String,
    /// Attempts of a run before it is dead (`queue.max_attempts`).
    pub max_attempts: u32,
    /// Delay between a run's attempts (`queue.backoff`).
    pub backoff: agentd_core::Backoff,
    /// How long steps in flight may finish at shutdown.
    pub shutdown_grace: Duration,
}

/// The engine. Cheap to clone: all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    agents: HashMap<String, Agent>,
    /// Kept for the life of the engine: it owns the MCP connections.
    tools: agentd_tools::Registry,
    /// Which roles may call which tools (`[[policies]]`).
    policies: agentd_tools::Policies,
    breakers: Arc<agentd_llm::BreakerRegistry>,
    /// Transitions of this process's breakers, to share through the store
    /// (taken by the task `run_workers` starts).
    circuit_events: Mutex<Option<circuits::Events>>,
    /// Spending limits of tenants with a `[tenants."ID"] budget_usd`.
    budgets: HashMap<String, agentd_store::BudgetLimit>,
    settings: EngineSettings,
    claim: ClaimRequest,
    events: broadcast::Sender<RunEvent>,
    /// One permit per run this process may execute at once.
    slots: Arc<Semaphore>,
    /// Set while `run_workers` runs: its shutdown token. A run submitted or
    /// resumed here then starts at once, claimed in the creating commit.
    live: Mutex<Option<CancellationToken>>,
    /// Fired when shutdown's grace runs out: steps still in flight are
    /// dropped and their runs released. Replaced by each `run_workers`.
    abort: Mutex<CancellationToken>,
    tracker: TaskTracker,
    /// Wakes the claimer when this process queues a run it could not start.
    wake: Notify,
    /// Set while runs may wait in the queue for a free slot here: a slot
    /// that frees up then wakes the claimer.
    backlog: AtomicBool,
    /// Callers of `wait`, told when their run pauses or ends.
    waiters: Mutex<HashMap<RunId, Vec<oneshot::Sender<Run>>>>,
}

impl Engine {
    /// Builds the engine: starts the configured tools (MCP servers
    /// included) and resolves every agent's providers and tools.
    pub async fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self> {
        let tools = agentd_tools::Registry::from_config(config)
            .await
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let policies = agentd_tools::Policies::from_config(&config.policies)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let (shared, circuit_events) = circuits::ShareTransitions::channel();
        let breakers = Arc::new(agentd_llm::BreakerRegistry::with_observers(vec![Arc::new(
            shared,
        )]));
        let mut agents = HashMap::new();
        for (i, a) in config.agents.iter().enumerate() {
            let agent = Agent::build(i, a, config, &tools, &breakers)?;
            agents.insert(a.name.clone(), agent);
        }
        let owner = config.queue.node_id.clone().unwrap_or_else(default_node_id);
        let settings = EngineSettings {
            workers: config.queue.workers.max(1),
            lease: config.queue.lease.get(),
            poll_interval: config.queue.poll_interval.get(),
            owner,
            max_attempts: config.queue.max_attempts.max(1),
            backoff: agentd_core::Backoff {
                initial: config.queue.backoff.initial.get(),
                max: config.queue.backoff.max.get(),
                jitter: config.queue.backoff.jitter,
            },
            shutdown_grace: config.queue.shutdown_grace.get(),
        };
        let history_limits = config
            .agents
            .iter()
            .filter(|a| a.memory.strategy == MemoryStrategy::Window)
            .filter_map(|a| a.memory.max_messages.map(|m| (a.name.clone(), m)))
            .collect();
        let claim = ClaimRequest {
            owner: settings.owner.clone(),
            lease_for: settings.lease,
            history_limits: Arc::new(history_limits),
        };
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                agents,
                tools,
                policies,
                breakers,
                circuit_events: Mutex::new(Some(circuit_events)),
                budgets: config
                    .tenants
                    .iter()
                    .filter_map(|(id, t)| {
                        let limit = agentd_store::BudgetLimit {
                            limit_usd: t.budget_usd?,
                            period: t.period.get(),
                        };
                        Some((id.clone(), limit))
                    })
                    .collect(),
                slots: Arc::new(Semaphore::new(settings.workers as usize)),
                settings,
                claim,
                events,
                live: Mutex::new(None),
                abort: Mutex::new(CancellationToken::new()),
                tracker: TaskTracker::new(),
                wake: Notify::new(),
                backlog: AtomicBool::new(false),
                waiters: Mutex::new(HashMap::new()),
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

    /// Provider circuits and MCP servers, for `/ready`.
    pub fn readiness(&self) -> Readiness {
        let circuits: Vec<CircuitStatus> = self
            .inner
            .breakers
            .breaker_states()
            .into_iter()
            .map(|(provider, state)| CircuitStatus { provider, state })
            .collect();
        let open = |p: &str| {
            circuits
                .iter()
                .any(|c| c.provider == p && c.state == agentd_llm::BreakerState::Open)
        };
        let mut unavailable_agents: Vec<String> = self
            .inner
            .agents
            .values()
            .filter(|a| a.chain.provider_names().all(open))
            .map(|a| a.config.name.clone())
            .collect();
        unavailable_agents.sort();
        Readiness {
            circuits,
            mcp: self.inner.tools.mcp_status(),
            unavailable_agents,
        }
    }

    /// Stops the MCP servers this engine started.
    pub async fn shutdown_tools(&self) {
        self.inner.tools.shutdown().await;
    }

    /// Names of the configured agents.
    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.inner.agents.keys().map(String::as_str)
    }

    /// Live events of every run this process executes or changes.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Publishes an event; the payload is built only if someone listens.
    fn emit(&self, run: &Run, kind: impl FnOnce() -> RunEventKind) {
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        // A receiver may drop between the check and the send: harmless.
        let _ = self.inner.events.send(RunEvent {
            run_id: run.id,
            tenant: run.tenant.clone(),
            kind: kind(),
        });
    }

    /// Forwards streamed model text to listeners.
    fn emit_token(&self, run_id: RunId, tenant: &TenantId, index: u32, text: &str) {
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        let _ = self.inner.events.send(RunEvent {
            run_id,
            tenant: tenant.clone(),
            kind: RunEventKind::Token {
                index,
                text: text.to_string(),
            },
        });
    }

    /// Tells waiters and listeners that `run` paused or ended.
    fn settle(&self, run: &Run) {
        let waiting = self
            .inner
            .waiters
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&run.id));
        for tx in waiting.into_iter().flatten() {
            let _ = tx.send(run.clone());
        }
        self.emit(run, || RunEventKind::Finished {
            run: Box::new(run.clone()),
        });
    }

    /// The token that abandons steps in flight when shutdown's grace ends.
    fn abort_token(&self) -> CancellationToken {
        self.inner
            .abort
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// A permit to start a run here at once, if workers run and one is free.
    fn free_slot(&self) -> Option<(OwnedSemaphorePermit, CancellationToken)> {
        let token = self.inner.live.lock().ok()?.clone()?;
        let permit = self.inner.slots.clone().try_acquire_owned().ok()?;
        Some((permit, token))
    }

    /// Executes a claimed run on the worker pool, holding its slot.
    fn spawn_execute(
        &self,
        claimed: Claimed,
        permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            engine.execute(claimed, &shutdown, Some(permit)).await;
            if engine.inner.backlog.load(Ordering::Relaxed) {
                engine.inner.wake.notify_one();
            }
        });
    }

    /// A run was queued that this process did not start: wake the claimer.
    fn queued(&self) {
        self.inner.backlog.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
    }

    /// Queues a run of `agent` for `who`; it starts at once if a worker of
    /// this process is free.
    pub async fn submit(&self, who: &Identity, agent: &str, req: Submit) -> Result<Run> {
        self.submit_with_id(who, agent, req, RunId::new()).await
    }

    /// Submits a run and waits until it pauses or ends (or `timeout`
    /// passes). Cheaper than `submit` + `wait`: the waiter is registered
    /// before the run exists, so no store read is needed to close the race.
    pub async fn submit_wait(
        &self,
        who: &Identity,
        agent: &str,
        req: Submit,
        timeout: Duration,
    ) -> Result<Run> {
        let id = RunId::new();
        let mut rx = self.register_waiter(id);
        let result = match self.submit_with_id(who, agent, req, id).await {
            // A replayed idempotency key names an older run: wait for that.
            Ok(run) if run.id != id => self
                .wait(&who.tenant, run.id, timeout)
                .await
                .map(|waited| waited.unwrap_or(run)),
            Ok(run) => self
                .wait_registered(&who.tenant, id, timeout, &mut rx, Some(run.clone()))
                .await
                .map(|waited| waited.unwrap_or(run)),
            Err(e) => Err(e),
        };
        self.unregister_waiter(id);
        result
    }

    async fn submit_with_id(
        &self,
        who: &Identity,
        agent: &str,
        req: Submit,
        id: RunId,
    ) -> Result<Run> {
        if !self.inner.agents.contains_key(agent) {
            return Err(EngineError::UnknownAgent(agent.to_string()));
        }
        let idempotency = req
            .idempotency_key
            .as_ref()
            .map(|key| agentd_core::IdempotencyKey {
                key: key.clone(),
                fingerprint: req.fingerprint(agent),
            });
        let new = NewRun {
            id,
            agent: agent.to_string(),
            principal: who.principal.clone(),
            input: req.input,
            conversation_id: req.conversation_id,
            metadata: req.metadata,
            roles: who.roles.clone(),
            idempotency,
        };
        let slot = self.free_slot();
        let created = self
            .inner
            .store
            .create_run(&who.tenant, &new, slot.as_ref().map(|_| &self.inner.claim))
            .await?;
        let run = created.run;
        if created.replayed {
            return Ok(run);
        }
        self.emit(&run, || RunEventKind::Status { status: run.status });
        match (created.claimed, slot) {
            (Some(claimed), Some((permit, token))) => self.spawn_execute(claimed, permit, token),
            _ => self.queued(),
        }
        Ok(run)
    }

    /// Answers a paused run; it continues at once if a worker is free.
    pub async fn resume(
        &self,
        who: &Identity,
        id: RunId,
        answer: &serde_json::Value,
    ) -> Result<Transition> {
        // An approval pause takes only a decision: check its shape before it
        // is journaled as the answer.
        if let Some(run) = self.inner.store.get_run(&who.tenant, id).await?
            && let Some(pause) = &run.pause
            && pause.tool.is_some()
        {
            agentd_tools::ApprovalDecision::from_answer(answer).map_err(EngineError::BadAnswer)?;
        }
        let slot = self.free_slot();
        let t = self
            .inner
            .store
            .resume_run(
                &who.tenant,
                id,
                answer,
                &who.principal,
                slot.as_ref().map(|_| &self.inner.claim),
            )
            .await?;
        if let Transition::Done(run, claimed) = t {
            self.emit(&run, || RunEventKind::Status { status: run.status });
            match (claimed, slot) {
                (Some(claimed), Some((permit, token))) => {
                    self.spawn_execute(*claimed, permit, token)
                }
                _ => self.queued(),
            }
            return Ok(Transition::Done(run, None));
        }
        Ok(t)
    }

    /// Answers a paused run, then waits until it stops moving again (paused
    /// or finished) or `timeout` passes. The waiter is registered before
    /// the answer is journaled, so the wait needs no read of the store when
    /// the run continues in this process.
    pub async fn resume_wait(
        &self,
        who: &Identity,
        id: RunId,
        answer: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Transition> {
        let mut rx = self.register_waiter(id);
        let result = match self.resume(who, id, answer).await {
            Ok(Transition::Done(run, _)) => self
                .wait_registered(&who.tenant, id, timeout, &mut rx, Some(run.clone()))
                .await
                .map(|waited| Transition::Done(waited.unwrap_or(run), None)),
            other => other,
        };
        self.unregister_waiter(id);
        result
    }

    /// Cancels a queued, running or paused run.
    pub async fn cancel(&self, who: &Identity, id: RunId) -> Result<Transition> {
        let t = self
            .inner
            .store
            .cancel_run(&who.tenant, id, &who.principal)
            .await?;
        if let Transition::Done(run, _) = &t {
            self.settle(run);
        }
        Ok(t)
    }

    /// The tenant's dead runs (retries exhausted), newest first, for any
    /// identity of the tenant: see [`reads::Reads::dead_letters`].
    pub async fn dead_letters(
        &self,
        who: &Identity,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<agentd_store::Page<Run>> {
        self.reads().dead_letters(who, limit, cursor).await
    }

    /// Queues a dead run again as a first attempt; it continues from its
    /// journal. Needs role `admin`.
    pub async fn requeue_dead(&self, who: &Identity, id: RunId) -> Result<Transition> {
        require_admin(who, "requeueing a dead run")?;
        let t = self
            .inner
            .store
            .requeue_dead(&who.tenant, id, &who.principal)
            .await?;
        if let Transition::Done(run, _) = &t {
            self.emit(run, || RunEventKind::Status { status: run.status });
            self.queued();
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
        let mut rx = self.register_waiter(id);
        let result = self
            .wait_registered(tenant, id, timeout, &mut rx, None)
            .await;
        self.unregister_waiter(id);
        result
    }

    fn register_waiter(&self, id: RunId) -> oneshot::Receiver<Run> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.inner.waiters.lock() {
            w.entry(id).or_default().push(tx);
        }
        rx
    }

    /// Drops a finished wait's registration (and any other abandoned one for
    /// the run).
    fn unregister_waiter(&self, id: RunId) {
        if let Ok(mut w) = self.inner.waiters.lock()
            && let Some(list) = w.get_mut(&id)
        {
            list.retain(|s| !s.is_closed());
            if list.is_empty() {
                w.remove(&id);
            }
        }
    }

    /// Waits on a registered waiter. `known` is the run's state when the
    /// waiter was registered, if the caller has it; otherwise the store is
    /// read first.
    async fn wait_registered(
        &self,
        tenant: &TenantId,
        id: RunId,
        timeout: Duration,
        rx: &mut oneshot::Receiver<Run>,
        mut known: Option<Run>,
    ) -> Result<Option<Run>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Local settlement arrives through `rx`; the store poll covers runs
        // executed by another process.
        let poll = self
            .inner
            .settings
            .poll_interval
            .max(Duration::from_millis(50));
        loop {
            let run = match known.take() {
                Some(run) => run,
                None => match self.inner.store.get_run(tenant, id).await? {
                    Some(run) => run,
                    None => return Ok(None),
                },
            };
            if settled(run.status) || tokio::time::Instant::now() >= deadline {
                return Ok(Some(run));
            }
            let next_poll = (tokio::time::Instant::now() + poll).min(deadline);
            tokio::select! {
                r = &mut *rx => {
                    if let Ok(run) = r && run.tenant == *tenant {
                        return Ok(Some(run));
                    }
                    // The sender was dropped: poll until the deadline.
                    tokio::time::sleep_until(next_poll).await;
                }
                _ = tokio::time::sleep_until(next_poll) => {}
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
        loop {
            if let Some(claimed) = self
                .inner
                .store
                .claim_run(tenant, id, &self.inner.claim)
                .await?
            {
                self.execute(claimed, shutdown, None).await;
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
