//! The values the [`Store`](crate::Store) trait takes and returns: leases and
//! claims, journals, outcomes, budgets, list filters and pages.

use agentd_core::{Message, Millis, Run, RunError, RunId, RunStatus, Step, TenantId, Usage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    /// Runs of the conversation cancelled to make way for this one
    /// (`if_busy = "interrupt"`), as they are now.
    pub interrupted: Vec<Run>,
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
        /// The answer parsed as JSON and validated, for an agent with an
        /// `output_schema`.
        output_json: Option<serde_json::Value>,
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
    /// The `output` and `output_json` columns a success writes, sealed for
    /// run `run`; both `None` otherwise.
    pub(crate) fn sealed_outputs(
        &self,
        codec: &crate::codec::Codec,
        run: &RunId,
    ) -> crate::Result<(Option<String>, Option<String>)> {
        let Outcome::Succeeded {
            output,
            output_json,
            ..
        } = self
        else {
            return Ok((None, None));
        };
        let field = |column| crate::codec::Field::of(run, column);
        Ok((
            Some(codec.seal_json(field("runs.output"), output)?),
            output_json
                .as_ref()
                .map(|j| codec.seal_json(field("runs.output_json"), j))
                .transpose()?,
        ))
    }

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
    pub(crate) fn audit_detail(&self) -> Option<serde_json::Value> {
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
    pub(crate) fn retry_delay(&self) -> Option<Duration> {
        match self {
            Outcome::Retry { delay, .. } => Some(*delay),
            _ => None,
        }
    }
}

/// A per-period spending limit (`[tenants."ID"]`, `[principals."ID"]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetLimit {
    pub limit_usd: f64,
    /// Periods are aligned to the Unix epoch: spending resets at every
    /// multiple of `period`.
    pub period: Duration,
}

/// A budget threshold crossed: one per (scope, subject, period, threshold).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAlert {
    /// `run` (an agent's per-run budget), `tenant` or `principal` (a period
    /// budget).
    pub scope: &'static str,
    /// The run id, the tenant or the principal.
    pub subject: String,
    /// The period's start (epoch ms; 0 for a run).
    pub period_start: Millis,
    /// The share crossed, as written in the config (`0.8`).
    pub threshold: String,
    /// The run whose spending crossed it.
    pub run_id: RunId,
    /// Where to POST it (`[webhooks] alerts_url`) and what: queued in the
    /// outbox as a `budget.alert` delivery on `run_id`.
    pub webhook: Option<(String, serde_json::Value)>,
}

/// Whose per-period budget: the run's tenant's, or its principal's
/// spending within that tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetOwner<'a> {
    Tenant,
    Principal(&'a str),
}

/// The per-period budgets a model call is reserved against: its run's
/// tenant's and its run's principal's, either or both.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetLimits<'a> {
    pub tenant: Option<BudgetLimit>,
    /// The run's principal and its limit.
    pub principal: Option<(&'a str, BudgetLimit)>,
}

impl BudgetLimits<'_> {
    /// Whether any budget applies.
    pub fn any(&self) -> bool {
        self.tenant.is_some() || self.principal.is_some()
    }

    /// The budgets set, the tenant's first: the order both backends lock
    /// their rows in, so two reservations never wait on each other.
    pub fn owners(&self) -> impl Iterator<Item = (BudgetOwner<'_>, BudgetLimit)> {
        let tenant = self.tenant.map(|l| (BudgetOwner::Tenant, l));
        let principal = self.principal.map(|(p, l)| (BudgetOwner::Principal(p), l));
        tenant.into_iter().chain(principal)
    }
}

/// The answer to a budget reservation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reservation {
    /// Reserved: the call may go ahead.
    Granted,
    /// The period's spending plus the calls in flight leave no room for
    /// this call in the tenant's budget (`principal: false`) or the
    /// principal's.
    Exhausted {
        principal: bool,
        spent_usd: f64,
        reserved_usd: f64,
    },
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
    /// Runs of this conversation only.
    pub conversation_id: Option<agentd_core::ConversationId>,
    /// Runs created at or after this time (epoch ms), as their
    /// time-ordered ids carry it.
    pub since: Option<Millis>,
    /// Runs created before this time (epoch ms).
    pub until: Option<Millis>,
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
