//! The agentd engine: the durable run loop, the worker pool that claims runs
//! from the store's queue, the calls the API and the CLI make (submit,
//! wait, resume, cancel), the scheduler of `[[schedules]]` and the
//! retention task. It knows nothing of HTTP.
//!
//! Where to read: `calls.rs` (the API: submit, resume, cancel) →
//! `worker.rs` (the pool that claims runs) → `run.rs` (one run's loop) →
//! `state.rs` (the pure `RunState`: `rebuild` from the journal, `next`
//! decides) → `steps/` (one module per step kind, each returning what
//! happened) → `ctx.rs` (what a step borrows: store, agent, lease; the
//! journal writes it ends with).

mod agent;
mod alerts;
mod announced;
mod calls;
mod catalog;
mod circuits;
pub mod contract;
mod ctx;
mod deliveries;
pub mod describe;
mod events;
mod fork;
mod guard;
pub mod keys;
mod meter;
pub mod reads;
mod registry;
mod reload;
pub mod remote;
pub mod retention;
pub mod rollout;
mod run;
mod run_event;
mod schedules;
mod state;
mod steps;
mod trace;
mod waiters;
mod worker;

pub use agent::Agent;
pub use agentd_llm::BreakerState;
pub use agentd_tools::McpServerStatus;
pub use fork::Fork;
pub use keys::OPERATOR_ROLE;
pub use meter::WorkerSlots;
pub use reload::{ReloadError, Reloaded, Reloader};
pub use remote::Follow;
pub use rollout::RolloutReport;
pub use run_event::{RunEvent, RunEventKind};
pub use schedules::ScheduleStatus;
pub use state::CONTEXT_KEY;

use agentd_config::Config;
use agentd_core::{ConversationId, Identity, Run, RunStatus};
use agentd_store::{ClaimRequest, Store, StoreError};
use catalog::Catalog;
use events::EventBus;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;
use waiters::Waiters;
use worker::Pool;

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
    /// The agent has no `[rollout."NAME"]`.
    #[error("agent {0:?} has no rollout: declare `[rollout.\"{0}\"]` with its versions")]
    NoRollout(String),
    /// The operation does not fit the current state; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// The answer does not fit the pause (an approval needs
    /// `{"approve": bool}`).
    #[error("{0}")]
    BadAnswer(String),
    /// The caller lacks the role the operation needs.
    #[error("{0}")]
    Forbidden(String),
    /// A field of the request is not valid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A key could not be minted (the system's RNG failed).
    #[error(transparent)]
    Key(#[from] agentd_core::KeyError),
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

/// An agent as clients are offered it (`GET /v1/models`, MCP tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    pub name: String,
    /// `[[agents]] description`, if set.
    pub description: Option<String>,
    /// The wall-clock limit of one of its runs.
    pub timeout: std::time::Duration,
}

/// What `/ready` reports beyond the store: provider circuits and MCP
/// servers. None of it makes a process unready (circuits are shared through
/// the store, so an outage would take every replica out at once); the
/// server reports it as degraded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub circuits: Vec<CircuitStatus>,
    pub mcp: Vec<McpServerStatus>,
    /// Agents none of whose providers would take a call now (every circuit
    /// open).
    pub unavailable_agents: Vec<String>,
}

/// One provider's circuit breaker.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
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
    /// The creating request's id and trace context, stored with the run.
    pub origin: agentd_core::RunOrigin,
    /// When the conversation already has a run queued, running or paused:
    /// wait (default), refuse, or cancel those runs first.
    pub if_busy: agentd_core::IfBusy,
    /// Where to POST the run when it succeeds, fails, is cancelled, dies
    /// or pauses (besides the agent's `on_finish`); needs `[webhooks]
    /// secret_env`.
    pub callback_url: Option<String>,
}

impl Submit {
    /// A stable digest of what the request asks for, compared when an
    /// idempotency key is reused.
    fn fingerprint(&self, agent: &str) -> String {
        use sha2::Digest;
        // serde_json objects are ordered maps, so equal requests serialize
        // equally.
        let mut canonical = serde_json::json!({
            "agent": agent,
            "input": self.input,
            "conversation_id": self.conversation_id,
            "metadata": self.metadata,
        });
        // Only when set, so keys recorded before `if_busy` existed still
        // match their retries.
        if self.if_busy != agentd_core::IfBusy::Enqueue {
            canonical["if_busy"] = serde_json::json!(self.if_busy);
        }
        if let Some(url) = &self.callback_url {
            canonical["callback_url"] = serde_json::json!(url);
        }
        hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Queue and execution settings the engine needs from the config.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub workers: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// The node id asked for: `queue.node_id`, else the host name. The
    /// lease owner name is this unless [`Engine::join_fleet`] finds it held
    /// by a live process (see [`Engine::node_id`]).
    pub owner: String,
    /// Whether `queue.node_id` was set (a node id held elsewhere is then
    /// an error, not replaced).
    pub node_id_configured: bool,
    /// Attempts of a run before it is dead (`queue.max_attempts`).
    pub max_attempts: u32,
    /// Delay between a run's attempts (`queue.backoff`).
    pub backoff: agentd_core::Backoff,
    /// How long steps in flight may finish at shutdown.
    pub shutdown_grace: Duration,
    /// Most runs a tenant may have queued or running at once
    /// (`rate_limit.max_concurrent_runs_per_tenant`); a create beyond it is
    /// refused by the store.
    pub max_active_runs_per_tenant: Option<u32>,
}

impl EngineSettings {
    /// The settings `[queue]` asks for.
    fn from_config(config: &Config) -> Self {
        let q = &config.queue;
        Self {
            workers: q.workers.max(1),
            lease: q.lease.get(),
            poll_interval: q.poll_interval.get(),
            owner: q.node_id.clone().unwrap_or_else(registry::default_node_id),
            node_id_configured: q.node_id.is_some(),
            max_attempts: q.max_attempts.max(1),
            backoff: agentd_core::Backoff {
                initial: q.backoff.initial.get(),
                max: q.backoff.max.get(),
                jitter: q.backoff.jitter,
            },
            shutdown_grace: q.shutdown_grace.get(),
            max_active_runs_per_tenant: config
                .rate_limit
                .as_ref()
                .and_then(|r| r.max_concurrent_runs_per_tenant),
        }
    }
}

/// The engine. Cheap to clone: all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// The engine's shared state, in three parts: what the config resolved to
/// (store, agents, tools, rules, settings), the worker pool, and the
/// callers waiting for runs.
struct Inner {
    store: Arc<dyn Store>,
    /// Period budget alerts known to be recorded.
    announced: announced::Announced,
    /// Agents, tools, policies, budgets: replaced whole by a reload.
    catalog: RwLock<Arc<Catalog>>,
    /// Rollout states read from the store.
    rollouts: rollout::StateCache,
    /// Serializes reloads.
    reload_lock: tokio::sync::Mutex<()>,
    breakers: Arc<agentd_llm::BreakerRegistry>,
    /// Transitions of this process's breakers, to share through the store
    /// (taken by the task `run_workers` starts).
    circuit_events: Mutex<Option<circuits::Events>>,
    /// Who may manage other tenants' keys (`auth.operators`).
    operators: keys::Operators,
    settings: EngineSettings,
    /// The node id this process claims runs as (the lease owner); replaced
    /// once by [`Engine::join_fleet`] when the node id asked for is taken.
    owner: RwLock<String>,
    /// This process in the store's worker registry, once it joined.
    registration: Mutex<Option<agentd_store::WorkerRegistration>>,
    events: EventBus,
    pool: Pool,
    waiters: Waiters,
    /// When the gauges read from the store were last refreshed.
    store_gauges: meter::StoreGauges,
    /// Wakes the scheduler when a reload may have changed the schedules.
    schedules_changed: tokio::sync::Notify,
}

impl Engine {
    /// Builds the engine: starts the configured tools (MCP servers
    /// included) and resolves every agent's providers and tools.
    pub async fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self> {
        let tools = agentd_tools::Registry::from_config(config)
            .await
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let (shared, circuit_events) = circuits::ShareTransitions::channel();
        let breakers = Arc::new(agentd_llm::BreakerRegistry::with_observers(vec![Arc::new(
            shared,
        )]));
        let catalog = Catalog::build(config, tools, &breakers, None)?;
        let settings = EngineSettings::from_config(config);
        let owner = settings.owner.clone();
        let pool = Pool::new(settings.workers);
        let events = EventBus::new(4096, store.feed(), pool.wake.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                announced: announced::Announced::default(),
                store,
                catalog: RwLock::new(Arc::new(catalog)),
                rollouts: rollout::StateCache::default(),
                reload_lock: tokio::sync::Mutex::new(()),
                breakers,
                circuit_events: Mutex::new(Some(circuit_events)),
                operators: keys::Operators::from_config(config),
                pool,
                settings,
                owner: RwLock::new(owner),
                registration: Mutex::new(None),
                events,
                waiters: Waiters::default(),
                store_gauges: meter::StoreGauges::default(),
                schedules_changed: tokio::sync::Notify::new(),
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

    /// The catalog in force; an attempt keeps the one it started with.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        match self.inner.catalog.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The claim this process makes now.
    pub(crate) fn claim_request(&self) -> ClaimRequest {
        self.catalog()
            .claim(self.node_id(), self.inner.settings.lease)
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
        let catalog = self.catalog();
        let mut unavailable_agents: Vec<String> = catalog
            .configured()
            .filter_map(|(name, v)| Some((name, v.default_agent()?)))
            .filter(|(_, a)| a.chain.provider_names().all(open))
            .map(|(name, _)| name.clone())
            .collect();
        unavailable_agents.sort();
        Readiness {
            circuits,
            mcp: catalog.tools.mcp_status(),
            unavailable_agents,
        }
    }

    /// Stops the MCP servers this engine started.
    pub async fn shutdown_tools(&self) {
        self.catalog().tools.shutdown().await;
    }

    /// Names of the configured agents, sorted.
    pub fn agent_names(&self) -> Vec<String> {
        self.agent_summaries().into_iter().map(|a| a.name).collect()
    }

    /// The configured agents new runs may start on, sorted by name, each
    /// with the description of the definition new runs start on (a
    /// canary's may differ; clients are shown the stable one).
    pub fn agent_summaries(&self) -> Vec<AgentSummary> {
        let mut agents: Vec<AgentSummary> = self
            .catalog()
            .configured()
            .filter_map(|(name, v)| {
                let agent = v.default_agent()?;
                Some(AgentSummary {
                    name: name.clone(),
                    description: agent.config.description.clone(),
                    timeout: agent.config.timeout.get(),
                })
            })
            .collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name));
        agents
    }

    /// Live events of every run this process executes or changes, and of
    /// runs other processes execute that a [`Follow`] asked for.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Follows run `id` of `tenant` from this process (see [`Follow`]):
    /// on a store with a change feed, the process executing the run
    /// publishes its events, which [`Engine::subscribe`] then delivers.
    pub fn follow(&self, tenant: &agentd_core::TenantId, id: agentd_core::RunId) -> Follow {
        self.inner.events.start_remote();
        Follow::new(self.inner.events.remote().cloned(), tenant, id)
    }

    /// Whether events of other processes reach this one now: `None` on a
    /// store without a change feed (SQLite), else whether it listens.
    pub fn feed_connected(&self) -> Option<bool> {
        self.inner.events.remote().map(|r| r.connected())
    }

    /// Publishes an event; the payload is built only if someone listens.
    fn emit(&self, run: &Run, kind: impl FnOnce() -> RunEventKind) {
        self.inner.events.emit(run, kind);
    }
}

/// True once a run waits for nobody but a human or is done.
pub fn settled(status: RunStatus) -> bool {
    status == RunStatus::Paused || status.is_terminal()
}
