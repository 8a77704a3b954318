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
#[macro_use]
mod delivery;
mod error;
mod feed;
mod fleet;
mod fork;
mod meter;
pub mod rollout;
mod schedule;
#[macro_use]
mod keys;
#[macro_use]
mod audit;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod types;
mod usage;

pub use audit::{AUDIT_KINDS, AuditEntry, AuditFilter};
pub use backup::BackupError;
pub use copy::CopyError;
pub use crypt::{Keyring, KeyringError};
pub use delivery::{AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus};
pub use error::{Result, StoreError};
pub use feed::{ChangeFeed, FeedItem, Notice, RunChange};
pub use fleet::{Backup, NewBackup, WorkerProcess, WorkerRegistration};
pub use keys::{ApiKey, KeyChanges, KeyCredential, NewApiKey};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
pub use schedule::ScheduleTick;
#[cfg(feature = "sqlite")]
pub use sqlite::{Clock, SqliteStore};
pub use types::{
    BudgetAlert, BudgetLimit, BudgetLimits, BudgetOwner, ClaimRequest, Claimed,
    ConversationMessage, Created, Journal, Lease, Outcome, Page, QueueCounts, Reservation,
    RunFilter, StepWrite, Transition,
};
pub use usage::{UsageGroup, UsageQuery, UsageReport, UsageRow, UsageTotals};

use agentd_core::{
    ConversationId, KeyId, Millis, NewRun, Pause, PrincipalId, Run, RunId, Step, TenantId,
};
use std::sync::Arc;
use std::time::Duration;

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
    /// [`Store::create_run_capped`] for tick `tick_at` (epoch ms) of the
    /// tenant's schedule `schedule`: the tick is recorded as the
    /// schedule's latest in the creating transaction, and only if it is
    /// later than the one recorded. `None` (nothing written) when this
    /// tick or a later one already started a run, so concurrent callers
    /// of every process sharing the store start one run per tick.
    async fn create_scheduled_run(
        &self,
        tenant: &TenantId,
        schedule: &str,
        tick_at: Millis,
        run: &NewRun,
        claim: Option<&ClaimRequest>,
        max_active: Option<u32>,
    ) -> Result<Option<Created>>;
    /// The latest tick that started a run of each of the tenant's
    /// schedules, by schedule name.
    async fn schedule_ticks(&self, tenant: &TenantId) -> Result<Vec<ScheduleTick>>;
    /// Records a budget alert unless it was recorded already (by any
    /// process): true if this call recorded it, so it is announced once.
    /// Its webhook, if any, is queued in the same transaction.
    async fn record_budget_alert(&self, tenant: &TenantId, alert: &BudgetAlert) -> Result<bool>;
    /// Stores run `run`'s PII vault (its placeholders and their values),
    /// sealed with the store's keyring, replacing the one stored. May be
    /// written before the run exists (its values must be kept before the
    /// redacted input is); deleted with the run by retention.
    async fn save_vault(
        &self,
        tenant: &TenantId,
        run: RunId,
        vault: &serde_json::Value,
    ) -> Result<()>;
    /// Run `run`'s PII vault, if one was saved in `tenant`.
    async fn load_vault(&self, tenant: &TenantId, run: RunId) -> Result<Option<serde_json::Value>>;
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
    /// The tenant's usage report: runs created in the query's range,
    /// grouped, with their failures, tokens and cost, ordered by key. Read
    /// from a covering index of the runs (finished and paused ones) plus
    /// the runs in flight (see [`UsageQuery`]).
    async fn usage(&self, tenant: &TenantId, query: &UsageQuery) -> Result<Vec<UsageRow>>;
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

    /// A run's completion-webhook deliveries, oldest first, after
    /// `cursor`; `None` if the run does not exist for this tenant.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        run: RunId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Option<Page<Delivery>>>;

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
    /// Reserves `estimate_usd` of the lease's tenant's budget and of its
    /// principal's (whichever `limits` has) for the model call the run is
    /// about to make, if in each the period's spending, the other calls in
    /// flight and this estimate stay within the limit. The reservation
    /// ends when the step's cost is journaled (which adds it to the
    /// periods' spending in the same transaction), when the run ends, or
    /// after `hold_for`. Serialized per tenant across processes, so
    /// concurrent runs cannot together overspend by more than their
    /// estimates fall short.
    async fn reserve_budget(
        &self,
        lease: &Lease,
        limits: &BudgetLimits<'_>,
        estimate_usd: f64,
        hold_for: Duration,
    ) -> Result<Reservation>;
    /// What `tenant` (or one principal within it) spent in the budget
    /// period of length `period` that holds now (0 when nothing was
    /// journaled in it): the `agentd_budget_spent_usd` gauge and budget
    /// alerts. A read only; reservations in flight are not included.
    async fn budget_spent(
        &self,
        tenant: &TenantId,
        owner: BudgetOwner<'_>,
        period: Duration,
    ) -> Result<f64>;
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

    /// Leases up to `max` due deliveries (pending, due, and not leased or
    /// leased by a process whose lease expired) to `owner` for `lease_for`,
    /// oldest due first. The delivery worker's queue is fleet-wide like the
    /// run queue (a documented operator query, not a tenant's): each
    /// delivery carries its tenant. On PostgreSQL concurrent claimers skip
    /// each other's rows (`FOR UPDATE SKIP LOCKED`).
    async fn claim_deliveries(
        &self,
        owner: &str,
        lease_for: Duration,
        max: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records an attempt and its outcome and ends the lease, in one
    /// transaction; `false` (nothing written) when `owner` no longer holds
    /// the delivery's lease.
    async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<bool>;

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

    /// Records `seed` as `seed.agent`'s rollout state unless the stored
    /// one was made for the same split (`base`); answers the stored state.
    /// Agents are fleet-wide, so rollouts are not scoped by a tenant (see
    /// [`rollout`]).
    async fn sync_rollout(&self, seed: &rollout::RolloutState) -> Result<rollout::RolloutState>;

    /// Applies a promote or rollback to `agent`'s rollout if it is still
    /// the active split `base` with a canary, and writes `change`'s audit
    /// record with it; `None` (nothing written) otherwise, so of several
    /// processes reaching the same verdict only one records it.
    async fn change_rollout(
        &self,
        agent: &str,
        base: &str,
        change: &rollout::RolloutChange,
    ) -> Result<Option<rollout::RolloutState>>;

    /// Finished runs of each version of `agent` last updated at or after
    /// `since`, across tenants (counts and means only).
    async fn version_stats(&self, agent: &str, since: Millis)
    -> Result<Vec<rollout::VersionStats>>;

    /// How many of the latest `last` runs of `agent` at `version`, finished
    /// (not cancelled) at or after `since`, failed or died.
    async fn version_outcomes(
        &self,
        agent: &str,
        version: &str,
        since: Millis,
        last: u32,
    ) -> Result<rollout::Outcomes>;

    // ---- the fleet: an operator's, across tenants (see `fleet`) ----

    /// Registers a process that runs workers under `w.node_id`, with
    /// `started_at` and `last_seen` now on the store's clock. With
    /// `live_within`, refused when another process (another host or pid)
    /// holds the node id and was seen within that window: the holder is
    /// returned and nothing changes. With `None` any holder is replaced.
    /// One atomic statement, so two processes starting together cannot
    /// both get one node id. Fleet-wide: node ids are the deployment's, not
    /// a tenant's.
    async fn register_worker(
        &self,
        w: &WorkerRegistration,
        live_within: Option<Duration>,
    ) -> Result<Option<WorkerProcess>>;
    /// Sets `last_seen` of `w`'s row to now; `false` when the node id is no
    /// longer held by this process (its row was removed or taken over).
    async fn touch_worker(&self, w: &WorkerRegistration) -> Result<bool>;
    /// Removes `w`'s row (graceful shutdown), if this process still holds it.
    async fn deregister_worker(&self, w: &WorkerRegistration) -> Result<()>;
    /// The processes running workers on this store that were seen within
    /// `seen_within`, by node id: the documented operator query behind
    /// `agentd check`'s worker count. Not scoped by a tenant.
    async fn list_workers(&self, seen_within: Duration) -> Result<Vec<WorkerProcess>>;
    /// Records a backup `agentd backup` took of this store, now on the
    /// store's clock. An operator's record, not a tenant's.
    async fn record_backup(&self, backup: &NewBackup) -> Result<()>;
    /// The newest recorded backup, if any (`agentd check`).
    async fn last_backup(&self) -> Result<Option<Backup>>;
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
