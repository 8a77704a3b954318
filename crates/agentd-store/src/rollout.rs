//! The live state of agent rollouts and the per-version outcomes it is
//! judged on. Agents are not per tenant, so neither is this: these are
//! the operator's fleet-wide calls, like [`Store::purge_finished`]
//! (crate::Store::purge_finished), and never answer a tenant's request
//! with another tenant's runs (only counts and means by version).

use agentd_core::{Millis, RunId, TenantId};
use serde::Serialize;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutPhase {
    /// The config's split is in force.
    Active,
    /// An operator made the canary the version every new run starts on.
    Promoted,
    /// New runs all start on stable again (an operator, or the automatic
    /// rollback).
    RolledBack,
}

impl RolloutPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Promoted => "promoted",
            Self::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "promoted" => Self::Promoted,
            "rolled_back" => Self::RolledBack,
            _ => return None,
        })
    }
}

/// One agent's rollout as every process routes by it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutState {
    pub agent: String,
    /// The config's split this state belongs to; a config that asks for
    /// another one starts a fresh, active state.
    #[serde(skip)]
    pub base: String,
    /// The version new runs start on unless picked for the canary.
    pub stable: String,
    pub canary: Option<String>,
    /// Share of new runs, 0–100, that start on the canary.
    pub percent: f64,
    pub phase: RolloutPhase,
    /// Why it last changed (an operator's reason, the rollback's verdict).
    pub reason: Option<String>,
    /// Who last changed it: a principal, `cli`, `config` or `auto_rollback`.
    pub actor: String,
    /// When this split started: the canary is judged on runs since then.
    pub started_at: Millis,
    pub updated_at: Millis,
}

/// A promote or rollback: the new stable version (the canary is dropped
/// and its share set to 0) and the audit record written with it.
#[derive(Debug, Clone)]
pub struct RolloutChange {
    pub phase: RolloutPhase,
    pub stable: String,
    pub reason: Option<String>,
    pub actor: String,
    /// The tenant's audit log (and run, for an automatic rollback) that
    /// records the change, in the same transaction.
    pub audit_tenant: TenantId,
    pub audit_run: Option<RunId>,
    pub audit_kind: &'static str,
    pub audit_detail: serde_json::Value,
}

/// Finished runs of one version of an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VersionStats {
    pub version: String,
    pub runs: u64,
    pub succeeded: u64,
    /// Runs that ended `failed` or `dead`.
    pub failed: u64,
    pub cancelled: u64,
    /// `succeeded / (succeeded + failed)`; null before any such run.
    pub success_rate: Option<f64>,
    /// Mean time from creation to the end, in ms.
    pub mean_duration_ms: f64,
    pub mean_cost_usd: f64,
}

impl VersionStats {
    /// Adds `n` runs that ended `status`, with their summed duration and
    /// cost.
    pub(crate) fn add(&mut self, status: &str, n: u64, duration_ms: f64, cost_usd: f64) {
        let before = self.runs as f64;
        self.runs += n;
        match status {
            "succeeded" => self.succeeded += n,
            "cancelled" => self.cancelled += n,
            _ => self.failed += n,
        }
        let total = self.runs as f64;
        if total > 0.0 {
            self.mean_duration_ms = (self.mean_duration_ms * before + duration_ms) / total;
            self.mean_cost_usd = (self.mean_cost_usd * before + cost_usd) / total;
        }
        let judged = self.succeeded + self.failed;
        self.success_rate = (judged > 0).then(|| self.succeeded as f64 / judged as f64);
    }
}

/// The latest finished runs of a version, as the automatic rollback
/// judges them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub finished: u32,
    /// Of those, runs that ended `failed` or `dead`.
    pub failed: u32,
}
