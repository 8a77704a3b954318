//! Durable state of agentd: runs, their journals, the run queue with leases,
//! conversation memory and the audit trail, behind one [`Store`] trait.
//!
//! Every call that reads or writes a tenant's data takes a [`TenantId`] (or a
//! [`Lease`], which carries the tenant of the run it was granted for): there is
//! no default tenant anywhere in this crate.

// A build with neither backend can only report that (see `open`).
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused))]

#[macro_use]
mod by_role;
#[macro_use]
mod status;
#[macro_use]
mod row;
pub mod backup;
mod codec;
pub mod copy;
mod crypt;
mod feed;
mod fork;
mod meter;
#[macro_use]
mod keys;
#[macro_use]
mod audit;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use audit::{AUDIT_KINDS, AuditEntry, AuditFilter};
pub use backup::BackupError;
pub use copy::CopyError;
pub use crypt::{Keyring, KeyringError};
pub use feed::{ChangeFeed, FeedItem, Notice, RunChange};
pub use keys::{ApiKey, KeyChanges, KeyCredential, NewApiKey};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{Clock, SqliteStore};

use agentd_core::{
    ConversationId, KeyId, Message, Millis, NewRun, Pause, PrincipalId, Run, RunError, RunId,
    RunStatus, Step, TenantId, Usage,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed a statement. `source` is the driver's error;
    /// callers see it only as an error, so no driver type leaks out.
    #[error("{backend} error: {source}")]
    Backend {
        backend: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The database could not be reached (connection refused or lost, pool
    /// exhausted past its timeout): the request may succeed later.
    #[error("{backend} is unavailable: {source}")]
    Unavailable {
        backend: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    #[error("applying store migrations failed: {0}")]
    Migrate(String),
    /// The store's background writer is gone (the process is shutting down).
    #[error("the store is closed")]
    Closed,
    /// An idempotency key reused with a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyConflict { key: String },
    /// The tenant already has `limit` runs queued or running
    /// (`rate_limit.max_concurrent_runs_per_tenant`): nothing was created.
    #[error("the tenant already has {limit} runs queued or running; retry when some finish")]
    TooManyActiveRuns { limit: u32 },
    /// A list cursor that this store did not issue.
    #[error("invalid cursor {0:?}")]
    BadCursor(String),
    /// The worker's lease was taken over (expired, cancelled or reclaimed):
    /// it must stop touching the run.
    #[error("lease on run {run} is no longer held by this worker")]
    LeaseLost { run: RunId },
    /// A record with this key exists already (a run id used twice).
    /// A fork's `from_step` does not name a point the journal can resume
    /// from.
    #[error("invalid from_step: {0}")]
    BadFork(String),
    #[error("{what} already exists")]
    Duplicate { what: String },
    #[error("corrupt record in the store: {0}")]
    Corrupt(String),
    /// A sealed value read by a store opened without a keyring.
    #[error(
        "{what} is encrypted with key id {key_id}; set store.encryption_key_env to a keyring \
         that holds it"
    )]
    Encrypted { what: String, key_id: String },
    /// A sealed value the keyring cannot open. Never returned as garbage.
    #[error("cannot decrypt {what} with key {key_id}: {reason}")]
    Decrypt {
        what: String,
        key_id: String,
        reason: &'static str,
    },
    #[error("encrypting {what} failed: {reason}")]
    Encrypt { what: String, reason: &'static str },
    /// A record of a journal version this agentd cannot read.
    #[error(transparent)]
    Checkpoint(#[from] agentd_core::checkpoint::MigrationError),
    #[error("unsupported store url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// The right to execute one run until the lease runs out. `token` fences
/// writes: it grows on every claim, and a write under an old token fails
/// with [`StoreError::LeaseLost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: RunId,
    pub tenant: TenantId,
    pub token: i64,
}

/// Who claims runs and how: the lease owner (node id), the lease length, and
/// the memory window of each agent (conversation messages loaded with the
/// journal; agents not listed see the whole conversation).
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub owner: String,
    pub lease_for: Duration,
    pub history_limits: Arc<HashMap<String, u32>>,
}

impl ClaimRequest {
    /// A claim by `owner` for `lease_for`, loading whole conversations.
    pub fn new(owner: impl Into<String>, lease_for: Duration) -> Self {
        Self {
            owner: owner.into(),
            lease_for,
            history_limits: Arc::default(),
        }
    }
}

/// A run claimed for execution: the lease and everything needed to continue
/// it, read in the claiming transaction.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub lease: Lease,
    pub journal: Journal,
}

/// Everything a worker needs to continue a run: the run, its journal so far,
/// and the earlier messages of its conversation (oldest first).
#[derive(Debug, Clone)]
pub struct Journal {
    pub run: Run,
    pub steps: Vec<Step>,
    pub history: Vec<Message>,
    /// Roles of the identity that created the run.
    pub roles: Vec<String>,
    /// The request that created the run (its id and trace context).
    pub origin: agentd_core::RunOrigin,
}

/// A created run and, if a claim was asked for and the run was runnable at
/// once, the claim: the run starts without a second commit.
#[derive(Debug, Clone)]
pub struct Created {
    pub run: Run,
    pub claimed: Option<Claimed>,
    /// The idempotency key was seen before with the same request: `run` is
    /// the run it created then, and nothing was created now.
    pub replayed: bool,
}

/// A completed step and what it adds to the run's totals.
#[derive(Debug, Clone)]
pub struct StepWrite {
    pub step: Step,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// How an attempt of a run ended.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per run, never stored in bulk
pub enum Outcome {
    /// The model replied; `messages` (this run's user input, tool traffic and
    /// reply) are appended to the conversation, if the run has one.
    Succeeded {
        output: serde_json::Value,
        messages: Vec<Message>,
    },
    Failed {
        error: RunError,
    },
    /// The attempt failed with a retryable error: the run goes back to the
    /// queue as its next attempt, due after `delay`, keeping its journal.
    /// `error` stays on the run so callers see why it waits.
    Retry {
        error: RunError,
        delay: Duration,
    },
    /// Retries are exhausted: the run moves to the dead-letter list, its
    /// journal intact, until an operator requeues it.
    Dead {
        error: RunError,
    },
}

impl Outcome {
    /// The run status this outcome leaves the run in.
    pub fn status(&self) -> RunStatus {
        match self {
            Outcome::Succeeded { .. } => RunStatus::Succeeded,
            Outcome::Failed { .. } => RunStatus::Failed,
            Outcome::Retry { .. } => RunStatus::Queued,
            Outcome::Dead { .. } => RunStatus::Dead,
        }
    }

    /// The audit event that records the outcome.
    pub fn event(&self) -> &'static str {
        match self {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead { .. } => "dead",
        }
    }

    /// The error the run carries afterwards.
    pub fn error(&self) -> Option<&RunError> {
        match self {
            Outcome::Succeeded { .. } => None,
            Outcome::Failed { error } | Outcome::Retry { error, .. } | Outcome::Dead { error } => {
                Some(error)
            }
        }
    }

    /// The audit detail: the error, and for a retry when it is due.
    fn audit_detail(&self) -> Option<serde_json::Value> {
        match self {
            Outcome::Succeeded { .. } => None,
            Outcome::Retry { error, delay } => Some(serde_json::json!({
                "error": error,
                "delay_ms": delay.as_millis() as u64,
            })),
            Outcome::Failed { error } | Outcome::Dead { error } => {
                Some(serde_json::json!({ "error": error }))
            }
        }
    }

    /// For a retry, how long until the run is due again.
    fn retry_delay(&self) -> Option<Duration> {
        match self {
            Outcome::Retry { delay, .. } => Some(*delay),
            _ => None,
        }
    }
}

/// A tenant's spending limit (`[tenants."ID"]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLimit {
    pub limit_usd: f64,
    /// Periods are aligned to the Unix epoch: spending resets at every
    /// multiple of `period`.
    pub period: Duration,
}

/// The answer to a budget reservation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// Reserved: the call may go ahead.
    Granted,
    /// The period's spending plus the calls in flight leave no room for
    /// this call.
    Exhausted { spent_usd: f64, reserved_usd: f64 },
}

/// Runs of every tenant waiting in or taken from the queue, for the
/// `agentd_runs` gauge ([`Store::count_queue_all_tenants`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Runs `queued` (due now or later).
    pub queued: u64,
    /// Runs `running` (leased, including leases that expired).
    pub running: u64,
}

/// Filters for listing a tenant's runs, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub agent: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: u32,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A message stored in a conversation.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ConversationMessage {
    pub seq: u64,
    pub run_id: RunId,
    #[serde(flatten)]
    pub message: Message,
    #[serde(with = "agentd_core::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
}

/// The result of a state change requested by a caller.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // returned once per request, never stored
pub enum Transition {
    /// Applied; the run as it is now, and the claim if one was asked for
    /// and granted in the same transaction.
    Done(Run, Option<Box<Claimed>>),
    /// No such run for this tenant.
    NotFound,
    /// The run's status does not allow it.
    Conflict(RunStatus),
}

/// The durable store. Implemented by SQLite (embedded) and PostgreSQL; the
/// engine and the API see only this trait.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// Write transactions committed by this handle so far (benchmarks and
    /// metrics: each is one durable sync on disk).
    fn commits(&self) -> u64;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks the store answers and its migrations are applied.
    async fn ping(&self) -> Result<()>;
    /// Bytes the store's data occupies (benchmarks: SQLite file size after a
    /// WAL checkpoint; PostgreSQL: `pg_total_relation_size` of agentd's
    /// tables, indexes included).
    async fn storage_bytes(&self) -> Result<u64>;
    /// The change feed between the processes sharing this store (see
    /// [`ChangeFeed`]), or `None` where the store is not shared live:
    /// SQLite is one process's, whose in-process signals suffice.
    /// PostgreSQL's is LISTEN/NOTIFY; it connects on first use. The store
    /// itself announces runs it queued without a claim
    /// ([`Notice::Queued`]).
    fn feed(&self) -> Option<Arc<dyn ChangeFeed>>;

    // ---- caller side: every call is scoped by the caller's tenant ----

    /// Creates a queued run; with `claim`, also claims it in the same
    /// transaction if it is runnable.
    async fn create_run(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
    ) -> Result<Created> {
        self.create_run_capped(tenant, run, claim, None).await
    }
    /// [`Store::create_run`], refused with
    /// [`StoreError::TooManyActiveRuns`] when `max_active` is set and the
    /// tenant already has that many runs queued or running (paused runs do
    /// not count). The count is taken in the creating transaction, under a
    /// per-tenant lock on PostgreSQL and the single writer on SQLite, so
    /// concurrent creates of every process sharing the store cannot
    /// overshoot it. A replayed idempotency key is answered, never refused.
    async fn create_run_capped(
        &self,
        tenant: &TenantId,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
        max_active: Option<u32>,
    ) -> Result<Created>;
    /// One run, or `None` if it does not exist for this tenant.
    async fn get_run(&self, tenant: &TenantId, id: RunId) -> Result<Option<Run>>;
    /// The tenant's runs, newest first.
    async fn list_runs(&self, tenant: &TenantId, filter: &RunFilter) -> Result<Page<Run>>;
    /// A run's journal from index `after + 1`; `None` if the run does not
    /// exist for this tenant.
    async fn list_steps(
        &self,
        tenant: &TenantId,
        id: RunId,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Option<Page<Step>>>;
    /// A conversation's messages, oldest first, after `after` (a seq).
    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<ConversationMessage>>;
    /// Records an event in a run's audit trail (e.g. a denied tool call).
    async fn audit(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &str,
        event: &str,
        detail: &serde_json::Value,
    ) -> Result<()>;
    /// A run's audit trail, oldest first.
    async fn list_audit(&self, tenant: &TenantId, id: RunId) -> Result<Vec<AuditEntry>>;
    /// The tenant's audit log, newest first, as `filter` narrows it; every
    /// filter is served by an index.
    async fn list_audit_log(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
    ) -> Result<Page<AuditEntry>>;
    /// Cancels a queued, running or paused run. A running run's lease is
    /// revoked, so its worker stops at its next write.
    async fn cancel_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition>;
    /// Puts a dead run back in the queue as a fresh first attempt; it
    /// continues from its journal. `Conflict` unless the run is dead.
    async fn requeue_dead(
        &self,
        tenant: &TenantId,
        id: RunId,
        actor: &PrincipalId,
    ) -> Result<Transition>;
    /// Creates `run` (queued, not claimed) as a fork of run `from`: its
    /// journal starts as a copy of `from`'s steps `0..from_step`, so
    /// execution resumes at step `from_step`. Run insert, step copies and
    /// the `created` and `forked` audit records are one transaction.
    /// `None` if `from` does not exist for this tenant; `BadFork` if
    /// `from_step` is past its journal or keeps a step waiting for an
    /// answer. The fork's usage and cost start at zero (the copied steps
    /// were paid for by the original) and it joins no conversation.
    async fn fork_run(
        &self,
        tenant: &TenantId,
        from: RunId,
        from_step: u32,
        run: &NewRun,
    ) -> Result<Option<Run>>;
    /// Answers a paused run: completes its waiting step with `answer` and
    /// queues the run again (claiming it with `claim`), in one transaction.
    async fn resume_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        answer: &serde_json::Value,
        actor: &PrincipalId,
        claim: Option<&ClaimRequest>,
    ) -> Result<Transition>;

    // ---- worker side: a lease carries the tenant of its run ----

    /// Claims the oldest runnable run (queued and due, or running with an
    /// expired lease), keeping runs of one conversation in creation order.
    async fn claim_next(&self, req: &ClaimRequest) -> Result<Option<Claimed>>;
    /// Claims up to `max` runnable runs at once, oldest first, as
    /// [`Store::claim_next`] would one by one (a worker pool filling its
    /// free slots pays one round trip, not one per run).
    async fn claim_batch(&self, req: &ClaimRequest, max: u32) -> Result<Vec<Claimed>>;
    /// Claims one specific run if it is runnable.
    async fn claim_run(
        &self,
        tenant: &TenantId,
        id: RunId,
        req: &ClaimRequest,
    ) -> Result<Option<Claimed>>;
    /// Durably appends completed steps and extends the lease.
    async fn append_steps(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        lease_for: Duration,
    ) -> Result<()>;
    /// Durably appends steps (the last one waiting) and pauses the run; the
    /// lease ends.
    async fn pause_run(&self, lease: &Lease, writes: &[StepWrite], pause: &Pause) -> Result<Run>;
    /// Ends the run's attempt as `outcome` says (finished, failed, back to
    /// the queue for a retry, or dead), appending its last steps in the
    /// same transaction. The lease ends.
    async fn finish_run(
        &self,
        lease: &Lease,
        writes: &[StepWrite],
        outcome: &Outcome,
    ) -> Result<Run>;
    /// Reserves `estimate_usd` of the lease's tenant's budget for the model
    /// call the run is about to make, if the period's spending, the other
    /// calls in flight and this estimate stay within `limit`. The
    /// reservation ends when the step's cost is journaled (which adds it to
    /// the period's spending in the same transaction), when the run ends, or
    /// after `hold_for`. Serialized per tenant across processes, so
    /// concurrent runs cannot together overspend by more than their
    /// estimates fall short.
    async fn reserve_budget(
        &self,
        lease: &Lease,
        limit: &BudgetLimit,
        estimate_usd: f64,
        hold_for: Duration,
    ) -> Result<Reservation>;
    /// What `tenant` spent in the budget period of length `period` that
    /// holds now (0 when nothing was journaled in it): the `agentd_budget_spent_usd`
    /// gauge. A read only; reservations in flight are not included.
    async fn budget_spent(&self, tenant: &TenantId, period: Duration) -> Result<f64>;
    /// Shares a provider's circuit with every process on this store: open
    /// for `open_for` from now (never shortening an open one), or closed
    /// (`None`). Providers are deployment-wide, so this is not scoped by a
    /// tenant.
    async fn set_circuit(&self, provider: &str, open_for: Option<Duration>) -> Result<()>;
    /// Circuits some process opened that are still open, with the time
    /// each stays open (measured on the store's clock).
    async fn open_circuits(&self) -> Result<Vec<(String, Duration)>>;
    /// Extends a lease while a long step runs; `LeaseLost` if it is no
    /// longer held (cancelled, or taken over after expiring).
    async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<()>;
    /// Gives a run back to the queue (graceful shutdown), due at once.
    async fn release(&self, lease: &Lease) -> Result<()>;
    /// Releases every lease held by `owner`: used at start-up, when the
    /// previous process of this node is known to be gone.
    async fn release_owner(&self, owner: &str) -> Result<u64>;

    // ---- API keys ----

    /// Stores a new key of `tenant`; `Duplicate` if its id is taken. The
    /// tenant's audit log records `key_created` by `actor` in the same
    /// transaction.
    async fn create_key(&self, tenant: &TenantId, key: &NewApiKey, actor: &str) -> Result<ApiKey>;
    /// Keys, newest first: `tenant`'s, or with `None` every tenant's (for
    /// operators, who manage keys across tenants).
    async fn list_keys(
        &self,
        tenant: Option<&TenantId>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ApiKey>>;
    /// Revokes a key of `tenant` (`None`: of any tenant, for operators);
    /// the key as it is now, or `None` if no such key is in scope.
    /// Revoking a revoked key keeps its first revocation time. The key's
    /// tenant's audit log records `key_revoked` by `actor` when this call
    /// revoked it (not again for a revoked key).
    async fn revoke_key(
        &self,
        tenant: Option<&TenantId>,
        id: &KeyId,
        actor: &str,
    ) -> Result<Option<ApiKey>>;
    /// A key and its secret's hash, by id alone: the one tenant-less read of
    /// keys, because authentication learns the tenant from the key.
    async fn key_credential(&self, id: &KeyId) -> Result<Option<KeyCredential>>;
    /// Keys created or revoked at or after `since` (epoch ms on the store's
    /// clock), every tenant's; `None` reads every key. For the key caches
    /// of serving processes, which are not tenant-scoped either. Ask again
    /// from somewhat before the returned `read_at`: a write that was in
    /// flight during this read may carry an earlier time.
    async fn key_changes(&self, since: Option<Millis>) -> Result<KeyChanges>;
    /// Records when keys were last used, in one write (never moving a
    /// `last_used_at` back). Unknown ids are ignored.
    async fn touch_keys(&self, used: &[(KeyId, Millis)]) -> Result<()>;

    // ---- maintenance: an operator's, across tenants ----

    /// Retention: deletes up to `limit` runs that finished (`succeeded`,
    /// `failed` or `cancelled`) and were last updated more than
    /// `older_than` ago by the store's clock, oldest first, with their
    /// journal steps, audit records and idempotency keys, in one
    /// transaction. Returns how many runs went; call again until fewer than
    /// `limit` do, so a large purge never holds one huge transaction.
    ///
    /// The one call not scoped by a tenant: it is maintenance across all
    /// tenants, for the operator (`agentd runs purge`, the retention task),
    /// never reachable from a tenant's request. `dead` runs stay until an
    /// operator requeues or removes them; conversation messages stay too:
    /// they are the conversation's memory, not the run's journal.
    async fn purge_finished(&self, older_than: Duration, limit: u32) -> Result<u64>;

    /// How many runs of all tenants are `queued` and `running`: the
    /// operator's view of the whole queue for the `agentd_runs` gauge, like
    /// [`Store::purge_finished`] not scoped by a tenant and never reachable
    /// from a tenant's request. Both statuses are in the partial index of
    /// runnable runs, so the count reads the queue, not the table.
    async fn count_queue_all_tenants(&self) -> Result<QueueCounts>;
}

/// Most runs one [`Store::claim_batch`] call claims.
pub const MAX_CLAIM_BATCH: u32 = 64;

/// Most runs one [`Store::purge_finished`] call deletes.
pub const MAX_PURGE_BATCH: u32 = 10_000;

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Encryption at rest: run inputs, outputs, errors, pauses and metadata,
    /// step inputs, outputs and errors, conversation messages and audit
    /// details are sealed with the keyring's first key (see [`Keyring`]).
    /// `None` writes them plain. Either way, values sealed earlier are read
    /// only with a keyring that holds their key id.
    pub keyring: Option<Keyring>,
}

impl StoreOptions {
    /// The options `[store] encryption_key_env` asks for: with a variable
    /// name, the keyring that variable holds. The variable missing or
    /// malformed is an error naming it; the binary exits with code 2.
    pub fn from_key_env(encryption_key_env: Option<&str>) -> Result<Self, KeyringError> {
        Ok(Self {
            keyring: encryption_key_env.map(Keyring::from_env).transpose()?,
        })
    }
}

/// Opens the store a URL names, with default [`StoreOptions`] (no
/// encryption): `sqlite://PATH`, `sqlite::memory:`, or `postgres://…` /
/// `postgresql://…` (see [`PgStore::open`] for the `schema=` and
/// `max_connections=` query parameters). Migrations are not applied: call
/// [`Store::migrate`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, StoreOptions::default()).await
}

/// Opens the store a URL names (see [`open`]) with `options`.
pub async fn open_with(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>> {
    let StoreOptions { keyring } = options;
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(
            SqliteStore::open(url).await?.with_keyring(keyring),
        ));
        #[cfg(not(feature = "sqlite"))]
        return Err(compiled_out(url, "sqlite"));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(PgStore::open(url).await?.with_keyring(keyring)));
        #[cfg(not(feature = "postgres"))]
        return Err(compiled_out(url, "postgres"));
    }
    Err(StoreError::BadUrl {
        url: url.to_string(),
        reason: "expected sqlite://PATH or postgres://USER@HOST/DB".to_string(),
    })
}

/// A URL of a backend this build left out. The URL is not shown: it may
/// hold a password, and the scheme says enough.
#[allow(dead_code)] // used only when a backend feature is off
fn compiled_out(url: &str, feature: &str) -> StoreError {
    let scheme = url.split(':').next().unwrap_or_default();
    StoreError::BadUrl {
        url: format!("{scheme}:..."),
        reason: format!(
            "this agentd was built without the `{feature}` feature of agentd-store; \
             rebuild with it enabled"
        ),
    }
}
