//! The engine's metrics through the `metrics` facade (names in
//! [`agentd_core::metric`]): runs created and finished, queue wait,
//! attempts, retries and dead letters, run and step durations, tokens and
//! cost, budget reservations, lost heartbeats, and the gauges read at
//! scrape time (worker slots, circuits, the queue and budget spending).
//! Labels are the agent and provider (from the config), the status, the
//! step kind and a tenant the config names (else `other`): never a run id.
//! Without an installed recorder these are no-ops.

use crate::{Agent, Engine};
use agentd_core::{Run, StepKind, Usage, metric, now_millis};
use agentd_store::{BudgetOwner, Journal, Outcome};
use metrics::{Counter, Gauge, Histogram};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The worker slots of a process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSlots {
    /// Slots executing a run.
    pub busy: u32,
    /// Slots ready for a run (zero while workers do not run).
    pub free: u32,
}

/// One agent's metric handles, labelled once on first use, so a step
/// allocates no label strings. Looked up lazily rather than when the agent
/// is built: the process's recorder may be installed after the engine.
pub(crate) struct AgentMeters {
    agent: String,
    providers: Vec<String>,
    /// Tenants the config names: the only `tenant` label values besides
    /// `other`.
    tenants: Vec<String>,
    handles: OnceLock<Handles>,
}

struct Handles {
    step_llm: Histogram,
    step_tool: Histogram,
    queue_wait: Histogram,
    attempts: Counter,
    /// By provider: input and output tokens.
    tokens: HashMap<String, (Counter, Counter)>,
    /// By tenant label.
    cost: HashMap<String, Gauge>,
}

impl AgentMeters {
    /// The meters of agent `agent` calling `providers`, with cost labelled
    /// by the `tenants` the config names.
    pub(crate) fn new(agent: &str, providers: &[String], tenants: Vec<String>) -> Self {
        Self {
            agent: agent.to_owned(),
            providers: providers.to_vec(),
            tenants,
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let agent = || self.agent.clone();
            let step = |kind: StepKind| {
                metrics::histogram!(metric::STEP_DURATION, metric::AGENT => agent(), "kind" => kind.as_str())
            };
            let tokens = self
                .providers
                .iter()
                .map(|p| {
                    let count = |ty: &'static str| {
                        metrics::counter!(metric::TOKENS, metric::AGENT => agent(), metric::PROVIDER => p.clone(), "type" => ty)
                    };
                    (p.clone(), (count("input"), count("output")))
                })
                .collect();
            let cost = self
                .tenants
                .iter()
                .map(String::as_str)
                .chain([metric::OTHER_TENANT])
                .map(|t| {
                    let gauge = metrics::gauge!(metric::COST_USD, metric::AGENT => agent(), metric::TENANT => t.to_owned());
                    (t.to_owned(), gauge)
                })
                .collect();
            Handles {
                step_llm: step(StepKind::Llm),
                step_tool: step(StepKind::Tool),
                queue_wait: metrics::histogram!(metric::RUN_QUEUE_WAIT, metric::AGENT => agent()),
                attempts: metrics::counter!(metric::RUN_ATTEMPTS, metric::AGENT => agent()),
                tokens,
                cost,
            }
        })
    }
}

/// A run was created (not an idempotent replay).
pub(crate) fn run_created(agent: &str) {
    metrics::counter!(metric::RUNS_CREATED, metric::AGENT => agent.to_owned()).increment(1);
}

/// `run` reached a status in this process; counted once it is terminal.
pub(crate) fn run_settled(run: &Run) {
    if !run.status.is_terminal() {
        return;
    }
    let status = run.status.as_str();
    metrics::counter!(metric::RUNS_FINISHED, metric::AGENT => run.agent.clone(), metric::STATUS => status)
        .increment(1);
    metrics::histogram!(metric::RUN_DURATION, metric::AGENT => run.agent.clone(), metric::STATUS => status)
        .record(run_seconds(run.created_at, now_millis()));
}

/// A worker of this process starts an attempt of the claimed run; its
/// first (no step journaled, first attempt) also ends its queue wait.
pub(crate) fn attempt_started(agent: &Agent, journal: &Journal) {
    let h = agent.meters.handles();
    h.attempts.increment(1);
    if journal.run.attempt <= 1 && journal.steps.is_empty() {
        h.queue_wait
            .record(run_seconds(journal.run.created_at, now_millis()));
    }
}

/// An attempt of `run` ended as `outcome`: a retry or a dead letter is
/// counted (rare, so labelled here).
pub(crate) fn attempt_ended(run: &Run, outcome: &Outcome) {
    let name = match outcome {
        Outcome::Retry { .. } => metric::RUN_RETRIES,
        Outcome::Dead { .. } => metric::DEAD_LETTERS,
        Outcome::Succeeded { .. } | Outcome::Failed { .. } => return,
    };
    metrics::counter!(name, metric::AGENT => run.agent.clone()).increment(1);
}

/// A step of `kind` of `agent` took `took`.
pub(crate) fn step_took(agent: &Agent, kind: StepKind, took: Duration) {
    let h = agent.meters.handles();
    match kind {
        StepKind::Llm => h.step_llm.record(took.as_secs_f64()),
        StepKind::Tool => h.step_tool.record(took.as_secs_f64()),
        other => {
            metrics::histogram!(metric::STEP_DURATION, metric::AGENT => agent.config.name.clone(), "kind" => other.as_str())
                .record(took.as_secs_f64())
        }
    }
}

/// A model call of `agent` answered by `provider` for `tenant` used
/// `usage`, costing `cost_usd`.
pub(crate) fn model_call(agent: &Agent, provider: &str, tenant: &str, usage: Usage, cost_usd: f64) {
    let h = agent.meters.handles();
    match h.tokens.get(provider) {
        Some((input, output)) => {
            input.increment(usage.input_tokens);
            output.increment(usage.output_tokens);
        }
        // Every provider that answers is in the chain; kept correct anyway.
        None => {
            let count = |ty: &'static str| metrics::counter!(metric::TOKENS, metric::AGENT => agent.config.name.clone(), metric::PROVIDER => provider.to_owned(), "type" => ty);
            count("input").increment(usage.input_tokens);
            count("output").increment(usage.output_tokens);
        }
    }
    if cost_usd > 0.0
        && let Some(g) = h
            .cost
            .get(tenant)
            .or_else(|| h.cost.get(metric::OTHER_TENANT))
    {
        g.increment(cost_usd);
    }
}

/// A model call of `tenant` (which has a `budget_usd`, so the label is
/// bounded by the config) reserved its budget, or was refused.
pub(crate) fn budget_checked(tenant: &str, granted: bool) {
    let name = if granted {
        metric::BUDGET_RESERVATIONS
    } else {
        metric::BUDGET_REJECTIONS
    };
    metrics::counter!(name, metric::TENANT => tenant.to_owned()).increment(1);
}

/// A guardrail of `agent` tripped on text from `source` and `action` was
/// taken (rare, so labelled here).
pub(crate) fn guardrail_verdict(
    agent: &str,
    guard: &'static str,
    source: &'static str,
    action: &'static str,
) {
    metrics::counter!(
        metric::GUARDRAIL_VERDICTS,
        metric::AGENT => agent.to_owned(),
        "guard" => guard,
        "source" => source,
        "action" => action
    )
    .increment(1);
}

/// A priced tool call of `agent` for `tenant` cost `cost_usd`.
pub(crate) fn tool_call_cost(agent: &Agent, tenant: &str, cost_usd: f64) {
    let h = agent.meters.handles();
    if let Some(g) = h
        .cost
        .get(tenant)
        .or_else(|| h.cost.get(metric::OTHER_TENANT))
    {
        g.increment(cost_usd);
    }
}

/// A budget alert of `scope` (`run`, `tenant` or `principal`) was announced.
pub(crate) fn budget_alert(scope: &'static str) {
    metrics::counter!(metric::BUDGET_ALERTS, "scope" => scope).increment(1);
}

/// A heartbeat failed: the worker drops its run.
pub(crate) fn heartbeat_lost() {
    metrics::counter!(metric::HEARTBEATS_LOST).increment(1);
}

/// Seconds from `created` to `ended` (epoch milliseconds), never negative
/// (clocks of two processes may disagree).
fn run_seconds(created: i64, ended: i64) -> f64 {
    (ended.saturating_sub(created)).max(0) as f64 / 1000.0
}

/// How long a scrape waits for a store read: a slow store must not hold
/// `/metrics` past the scraper's own timeout (the last values stay).
const STORE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// When the gauges read from the store were last refreshed.
#[derive(Default)]
pub(crate) struct StoreGauges {
    last: Mutex<Option<Instant>>,
}

impl StoreGauges {
    /// Whether a refresh is due now, marking it done if so (concurrent
    /// scrapes then share one query).
    fn due(&self) -> bool {
        let every = Duration::from_secs(metric::STORE_GAUGES_EVERY_SECS);
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        match *last {
            Some(at) if at.elapsed() < every => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

impl Engine {
    /// This process's worker slots now (`agentd_worker_slots`).
    pub fn worker_slots(&self) -> WorkerSlots {
        let pool = &self.inner.pool;
        let running = pool.live.lock().map(|l| l.is_some()).unwrap_or(false);
        if !running {
            return WorkerSlots { busy: 0, free: 0 };
        }
        let free = pool.slots.available_permits() as u32;
        WorkerSlots {
            busy: self.inner.settings.workers.saturating_sub(free),
            free,
        }
    }

    /// Sets the gauges read at scrape time: worker slots, circuit states
    /// and budget limits from memory, and, at most every
    /// [`metric::STORE_GAUGES_EVERY_SECS`], the queue counts and the
    /// budgets' spending from the store (a failed read keeps the last
    /// values).
    pub async fn refresh_gauges(&self) {
        let slots = self.worker_slots();
        metrics::gauge!(metric::WORKER_SLOTS, "state" => "busy").set(f64::from(slots.busy));
        metrics::gauge!(metric::WORKER_SLOTS, "state" => "free").set(f64::from(slots.free));
        for (provider, state) in self.inner.breakers.breaker_states() {
            metrics::gauge!(metric::PROVIDER_CIRCUIT_STATE, metric::PROVIDER => provider)
                .set(circuit_value(state));
        }
        let catalog = self.catalog();
        for (tenant, limit) in &catalog.budgets {
            metrics::gauge!(metric::BUDGET_LIMIT_USD, metric::TENANT => tenant.clone())
                .set(limit.limit_usd);
        }
        if !self.inner.store_gauges.due() {
            return;
        }
        let store = &self.inner.store;
        if let Some(counts) = gauge_read("the queue", store.count_queue_all_tenants()).await {
            metrics::gauge!(metric::RUNS, metric::STATUS => "queued").set(counts.queued as f64);
            metrics::gauge!(metric::RUNS, metric::STATUS => "running").set(counts.running as f64);
        }
        for (tenant, limit) in &catalog.budgets {
            let Ok(id) = agentd_core::TenantId::parse(tenant) else {
                continue;
            };
            if let Some(spent) = gauge_read(
                "budget spending",
                store.budget_spent(&id, BudgetOwner::Tenant, limit.period),
            )
            .await
            {
                metrics::gauge!(metric::BUDGET_SPENT_USD, metric::TENANT => tenant.clone())
                    .set(spent);
            }
        }
    }
}

/// The result of a store read for a gauge, or `None` (logged) when it
/// failed or outlasted [`STORE_READ_TIMEOUT`].
async fn gauge_read<T>(
    what: &str,
    read: impl std::future::Future<Output = agentd_store::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(STORE_READ_TIMEOUT, read).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading {what} for /metrics failed");
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?STORE_READ_TIMEOUT, "reading {what} for /metrics timed out");
            None
        }
    }
}

/// The value of `agentd_provider_circuit_state`: 0 closed, 1 half-open,
/// 2 open, so `== 2` finds open circuits and `max` the worst state.
fn circuit_value(state: agentd_llm::BreakerState) -> f64 {
    use agentd_llm::BreakerState::*;
    match state {
        Closed => 0.0,
        HalfOpen => 1.0,
        Open => 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_seconds_are_from_creation_and_never_negative() {
        assert_eq!(run_seconds(1_000, 3_500), 2.5);
        assert_eq!(run_seconds(5_000, 4_000), 0.0);
    }

    #[test]
    fn circuit_states_order_from_closed_to_open() {
        use agentd_llm::BreakerState::*;
        assert_eq!(circuit_value(Closed), 0.0);
        assert_eq!(circuit_value(HalfOpen), 1.0);
        assert_eq!(circuit_value(Open), 2.0);
    }

    #[test]
    fn store_gauges_refresh_at_most_once_per_period() {
        let g = StoreGauges::default();
        assert!(g.due());
        assert!(!g.due());
    }
}
