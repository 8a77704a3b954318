//! The [`Store`](crate::Store) implementation both backends share: every
//! method goes to the backend's module for its role (`runs`, `fork`, `audit`,
//! `queue`, `journal`, `budget`, `keys`, `rollout`, `maintenance`, `fleet`, `schedules`, `deliveries`, `usage`), which each backend has with the
//! same functions. The trait's signatures are written here once more,
//! not once per backend.

/// Implements `Store` for `$store` by role; invoked in the backend's
/// `mod.rs`, next to its role modules.
macro_rules! store_by_role {
    ($store:ty, $backend:literal) => {
        const _: () = {
            use agentd_core::{
                ConversationId, KeyId, Millis, NewRun, Pause, PrincipalId, Run, RunId, Step,
                TenantId,
            };
            use std::time::Duration;
            use $crate::{
                ApiKey, AuditEntry, AuditFilter, BudgetLimits, BudgetOwner, ClaimRequest, Claimed,
                ConversationMessage, Created, KeyChanges, KeyCredential, Lease, NewApiKey, Outcome,
                Page, QueueCounts, Reservation, Result, RunFilter, StepWrite, Store, Transition,
            };

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $backend
                }

                fn commits(&self) -> u64 {
                    maintenance::commits(self)
                }

                async fn migrate(&self) -> Result<()> {
                    maintenance::migrate(self).await
                }

                async fn ping(&self) -> Result<()> {
                    maintenance::ping(self).await
                }

                async fn storage_bytes(&self) -> Result<u64> {
                    maintenance::storage_bytes(self).await
                }

                fn feed(&self) -> Option<std::sync::Arc<dyn $crate::ChangeFeed>> {
                    maintenance::feed(self)
                }

                async fn create_run_capped(
                    &self,
                    tenant: &TenantId,
                    run: &NewRun,
                    claim: Option<&ClaimRequest>,
                    max_active: Option<u32>,
                ) -> Result<Created> {
                    runs::create_ticked(self, tenant, run, claim, max_active, None)
                        .await?
                        .ok_or_else(|| {
                            $crate::codec::corrupt("a run without a schedule tick was not created")
                        })
                }

                async fn create_scheduled_run(
                    &self,
                    tenant: &TenantId,
                    schedule: &str,
                    tick_at: Millis,
                    run: &NewRun,
                    claim: Option<&ClaimRequest>,
                    max_active: Option<u32>,
                ) -> Result<Option<Created>> {
                    let tick = $crate::schedule::Tick {
                        schedule,
                        at: tick_at,
                    };
                    runs::create_ticked(self, tenant, run, claim, max_active, Some(tick)).await
                }

                async fn schedule_ticks(
                    &self,
                    tenant: &TenantId,
                ) -> Result<Vec<$crate::ScheduleTick>> {
                    schedules::schedule_ticks(self, tenant).await
                }

                async fn record_budget_alert(
                    &self,
                    tenant: &TenantId,
                    alert: &$crate::BudgetAlert,
                ) -> Result<bool> {
                    alerts::record_budget_alert(self, tenant, alert).await
                }

                async fn save_vault(
                    &self,
                    tenant: &TenantId,
                    run: RunId,
                    vault: &serde_json::Value,
                ) -> Result<()> {
                    vault::save_vault(self, tenant, run, vault).await
                }

                async fn load_vault(
                    &self,
                    tenant: &TenantId,
                    run: RunId,
                ) -> Result<Option<serde_json::Value>> {
                    vault::load_vault(self, tenant, run).await
                }

                async fn list_deliveries(
                    &self,
                    tenant: &TenantId,
                    run: RunId,
                    limit: u32,
                    cursor: Option<&str>,
                ) -> Result<Option<Page<$crate::Delivery>>> {
                    deliveries::list_deliveries(self, tenant, run, limit, cursor).await
                }

                async fn claim_deliveries(
                    &self,
                    owner: &str,
                    lease_for: Duration,
                    max: u32,
                ) -> Result<Vec<$crate::Delivery>> {
                    deliveries::claim_deliveries(self, owner, lease_for, max).await
                }

                async fn record_delivery(&self, attempt: &$crate::DeliveryAttempt) -> Result<bool> {
                    deliveries::record_delivery(self, attempt).await
                }

                async fn get_run(&self, tenant: &TenantId, id: RunId) -> Result<Option<Run>> {
                    runs::get_run(self, tenant, id).await
                }

                async fn list_runs(
                    &self,
                    tenant: &TenantId,
                    filter: &RunFilter,
                ) -> Result<Page<Run>> {
                    runs::list_runs(self, tenant, filter).await
                }

                async fn list_steps(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    after: Option<u32>,
                    limit: u32,
                ) -> Result<Option<Page<Step>>> {
                    runs::list_steps(self, tenant, id, after, limit).await
                }

                async fn list_messages(
                    &self,
                    tenant: &TenantId,
                    conversation: &ConversationId,
                    after: Option<u64>,
                    limit: u32,
                ) -> Result<Page<ConversationMessage>> {
                    runs::list_messages(self, tenant, conversation, after, limit).await
                }

                async fn audit(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    actor: &str,
                    event: &str,
                    detail: &serde_json::Value,
                ) -> Result<()> {
                    audit::audit(self, tenant, id, actor, event, detail).await
                }

                async fn list_audit(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                ) -> Result<Vec<AuditEntry>> {
                    audit::list_audit(self, tenant, id).await
                }

                async fn list_audit_log(
                    &self,
                    tenant: &TenantId,
                    filter: &AuditFilter,
                ) -> Result<Page<AuditEntry>> {
                    audit::list_audit_log(self, tenant, filter).await
                }

                async fn cancel_run(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    actor: &PrincipalId,
                ) -> Result<Transition> {
                    runs::cancel_run(self, tenant, id, actor).await
                }

                async fn requeue_dead(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    actor: &PrincipalId,
                ) -> Result<Transition> {
                    runs::requeue_dead(self, tenant, id, actor).await
                }

                async fn fork_run(
                    &self,
                    tenant: &TenantId,
                    from: RunId,
                    from_step: u32,
                    run: &NewRun,
                ) -> Result<Option<Run>> {
                    fork::fork_run(self, tenant, from, from_step, run).await
                }

                async fn resume_run(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    answer: &serde_json::Value,
                    actor: &PrincipalId,
                    claim: Option<&ClaimRequest>,
                ) -> Result<Transition> {
                    runs::resume_run(self, tenant, id, answer, actor, claim).await
                }

                async fn claim_next(&self, req: &ClaimRequest) -> Result<Option<Claimed>> {
                    // A batch of one: the same claim in one place.
                    Ok(self.claim_batch(req, 1).await?.pop())
                }

                async fn claim_batch(&self, req: &ClaimRequest, max: u32) -> Result<Vec<Claimed>> {
                    queue::claim_batch(self, req, max).await
                }

                async fn claim_run(
                    &self,
                    tenant: &TenantId,
                    id: RunId,
                    req: &ClaimRequest,
                ) -> Result<Option<Claimed>> {
                    queue::claim_run(self, tenant, id, req).await
                }

                async fn append_steps(
                    &self,
                    lease: &Lease,
                    writes: &[StepWrite],
                    lease_for: Duration,
                ) -> Result<()> {
                    journal::append_steps(self, lease, writes, lease_for).await
                }

                async fn pause_run(
                    &self,
                    lease: &Lease,
                    writes: &[StepWrite],
                    pause: &Pause,
                ) -> Result<Run> {
                    journal::pause_run(self, lease, writes, pause).await
                }

                async fn finish_run(
                    &self,
                    lease: &Lease,
                    writes: &[StepWrite],
                    outcome: &Outcome,
                ) -> Result<Run> {
                    journal::finish_run(self, lease, writes, outcome).await
                }

                async fn reserve_budget(
                    &self,
                    lease: &Lease,
                    limits: &BudgetLimits<'_>,
                    estimate_usd: f64,
                    hold_for: Duration,
                ) -> Result<Reservation> {
                    budget::reserve_budget(self, lease, limits, estimate_usd, hold_for).await
                }

                async fn set_circuit(
                    &self,
                    provider: &str,
                    open_for: Option<Duration>,
                ) -> Result<()> {
                    budget::set_circuit(self, provider, open_for).await
                }

                async fn budget_spent(
                    &self,
                    tenant: &TenantId,
                    owner: BudgetOwner<'_>,
                    period: Duration,
                ) -> Result<f64> {
                    budget::budget_spent(self, tenant, owner, period).await
                }

                async fn open_circuits(&self) -> Result<Vec<(String, Duration)>> {
                    budget::open_circuits(self).await
                }

                async fn heartbeat(&self, lease: &Lease, lease_for: Duration) -> Result<()> {
                    queue::heartbeat(self, lease, lease_for).await
                }

                async fn release(&self, lease: &Lease) -> Result<()> {
                    queue::release(self, lease).await
                }

                async fn release_owner(&self, owner: &str) -> Result<u64> {
                    queue::release_owner(self, owner).await
                }

                async fn create_key(
                    &self,
                    tenant: &TenantId,
                    key: &NewApiKey,
                    actor: &str,
                ) -> Result<ApiKey> {
                    keys::create_key(self, tenant, key, actor).await
                }

                async fn list_keys(
                    &self,
                    tenant: Option<&TenantId>,
                    limit: u32,
                    cursor: Option<&str>,
                ) -> Result<Page<ApiKey>> {
                    keys::list_keys(self, tenant, limit, cursor).await
                }

                async fn revoke_key(
                    &self,
                    tenant: Option<&TenantId>,
                    id: &KeyId,
                    actor: &str,
                ) -> Result<Option<ApiKey>> {
                    keys::revoke_key(self, tenant, id, actor).await
                }

                async fn key_credential(&self, id: &KeyId) -> Result<Option<KeyCredential>> {
                    keys::key_credential(self, id).await
                }

                async fn key_changes(&self, since: Option<Millis>) -> Result<KeyChanges> {
                    keys::key_changes(self, since).await
                }

                async fn touch_keys(&self, used: &[(KeyId, Millis)]) -> Result<()> {
                    keys::touch_keys(self, used).await
                }

                async fn purge_finished(&self, older_than: Duration, limit: u32) -> Result<u64> {
                    maintenance::purge_finished(self, older_than, limit).await
                }

                async fn count_queue_all_tenants(&self) -> Result<QueueCounts> {
                    maintenance::count_queue_all_tenants(self).await
                }

                async fn sync_rollout(
                    &self,
                    seed: &$crate::rollout::RolloutState,
                ) -> Result<$crate::rollout::RolloutState> {
                    rollout::sync_rollout(self, seed).await
                }

                async fn change_rollout(
                    &self,
                    agent: &str,
                    base: &str,
                    change: &$crate::rollout::RolloutChange,
                ) -> Result<Option<$crate::rollout::RolloutState>> {
                    rollout::change_rollout(self, agent, base, change).await
                }

                async fn usage(
                    &self,
                    tenant: &TenantId,
                    query: &$crate::UsageQuery,
                ) -> Result<Vec<$crate::UsageRow>> {
                    usage::usage(self, tenant, query).await
                }

                async fn version_stats(
                    &self,
                    agent: &str,
                    since: Millis,
                ) -> Result<Vec<$crate::rollout::VersionStats>> {
                    rollout::version_stats(self, agent, since).await
                }

                async fn version_outcomes(
                    &self,
                    agent: &str,
                    version: &str,
                    since: Millis,
                    last: u32,
                ) -> Result<$crate::rollout::Outcomes> {
                    rollout::version_outcomes(self, agent, version, since, last).await
                }

                async fn register_worker(
                    &self,
                    w: &$crate::WorkerRegistration,
                    live_within: Option<Duration>,
                ) -> Result<Option<$crate::WorkerProcess>> {
                    fleet::register_worker(self, w, live_within).await
                }

                async fn touch_worker(&self, w: &$crate::WorkerRegistration) -> Result<bool> {
                    fleet::touch_worker(self, w).await
                }

                async fn deregister_worker(&self, w: &$crate::WorkerRegistration) -> Result<()> {
                    fleet::deregister_worker(self, w).await
                }

                async fn list_workers(
                    &self,
                    seen_within: Duration,
                ) -> Result<Vec<$crate::WorkerProcess>> {
                    fleet::list_workers(self, seen_within).await
                }

                async fn record_backup(&self, backup: &$crate::NewBackup) -> Result<()> {
                    fleet::record_backup(self, backup).await
                }

                async fn last_backup(&self) -> Result<Option<$crate::Backup>> {
                    fleet::last_backup(self).await
                }
            }
        };
    };
}
