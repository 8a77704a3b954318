//! The store conformance suite: every test is written once against
//! `Arc<dyn Store>` and runs on SQLite (a temp file) and on PostgreSQL (a
//! fresh schema on the server at `AGENTD_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Without a reachable PostgreSQL the `postgres::*` tests print why and
//! pass, unless `CI` is set: then they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod audit;
mod budget;
mod busy;
mod concurrency;
mod deliveries;
mod encryption;
mod feed;
mod fixture;
mod fleet;
mod fork;
mod keys;
mod lease;
mod limits;
mod memory;
mod plans;
mod queue;
mod retention;
mod rollout;
mod runs;
mod schedules;
mod transitions;
mod usage;
mod vaults;
mod versions;

/// Instantiates each `module::test` once per backend, as
/// `sqlite::test` and `postgres::test`.
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run(crate::harness::Backend::Sqlite, |ctx| {
                        Box::pin(crate::$module::$name(ctx))
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::run(crate::harness::Backend::Postgres, |ctx| {
                        Box::pin(crate::$module::$name(ctx))
                    })
                    .await;
                }
            )*
        }
    };
}

conformance!(
    usage::usage_by_group_and_range,
    usage::provider_usage_follows_the_journal,
    deliveries::deliveries_enqueued_with_status_change,
    deliveries::delivery_claim_lease_and_attempts,
    deliveries::concurrent_claimers_split_deliveries,
    busy::if_busy_rejects_or_interrupts,
    busy::interrupt_cancels_a_paused_run,
    rollout::state_per_split,
    rollout::outcomes_by_version,
    runs::create_get_list,
    runs::list_by_conversation_and_time,
    runs::idempotency_keys,
    runs::duplicate_run_id,
    runs::tenant_isolation,
    runs::migrate_ping_storage,
    runs::open_by_url,
    queue::claim_next_order,
    queue::conversation_serialization,
    queue::conversation_waits_for_a_newer_running_run,
    queue::create_with_claim,
    queue::origin_travels_with_the_run,
    queue::queue_counts_span_tenants,
    lease::heartbeat_extends_only_a_held_lease,
    lease::journal_under_lease,
    lease::fencing_after_cancel,
    lease::lease_expiry_reclaim,
    lease::release_and_release_owner,
    transitions::pause_and_resume,
    transitions::resume_with_claim,
    transitions::cancel_states,
    transitions::retry_dead_and_requeue,
    fork::fork_copies_a_journal_prefix,
    fork::fork_keeps_no_waiting_step,
    fork::a_running_run_forks_from_its_completed_steps,
    fork::fork_reseals_copied_steps,
    budget::reservations_settle_and_bound_spending,
    budget::reservations_expire_and_periods_roll,
    budget::spending_is_read_per_tenant_and_period,
    budget::principal_budgets_bound_each_principal_per_tenant,
    budget::principal_periods_roll,
    memory::messages_and_history_window,
    memory::audit_trail,
    memory::shared_circuits,
    memory::commits_count_writes_only,
    concurrency::parallel_claims_are_exclusive,
    concurrency::group_commit_batches_and_isolates_writes,
    concurrency::claim_batch_fills_free_slots,
    concurrency::a_claim_whose_journal_fails_to_read_gives_the_run_back,
    versions::v1_records_are_migrated_on_read,
    encryption::sealed_round_trip,
    encryption::key_rotation_and_wrong_keys,
    retention::purge_finished_runs_older_than_the_ttl,
    plans::every_list_query_reads_an_index_range,
    limits::active_runs_are_capped_per_tenant,
    limits::concurrent_capped_creates_do_not_overshoot,
    keys::create_list_revoke_within_a_tenant,
    keys::change_feed_and_last_used,
    audit::audit_log_filters_pages_and_isolates_tenants,
    audit::key_records_are_sealed_like_run_records,
    feed::notices_reach_the_other_processes_of_a_schema_in_order,
    feed::the_listener_recovers_from_a_lost_connection,
    fleet::worker_registry_keeps_one_live_holder_per_node_id,
    fleet::backups_are_recorded_newest_first,
    schedules::a_tick_starts_one_run,
    schedules::concurrent_claims_of_a_tick_create_one_run,
    vaults::a_vault_is_sealed_replaced_and_tenant_scoped,
    vaults::a_budget_alert_is_recorded_and_queued_once,
);
