//! Versioned agents: which version a new run starts on (`[rollout."AGENT"]`:
//! stable, or a canary for a share of runs), the operator's promote and
//! rollback, and the automatic rollback when the canary fails too often.
//!
//! The live state is in the store ([`agentd_store::rollout`]) so every
//! process routes alike; each process caches it briefly, so a promote or
//! rollback reaches the whole fleet within [`STATE_TTL`].

use crate::catalog::Versions;
use crate::{Engine, EngineError, OPERATOR_ROLE, Result, keys::Operators};
use agentd_config::{AutoRollback, RolloutConfig};
use agentd_core::{Identity, Millis, Run, RunStatus, TenantId};
use agentd_store::rollout::{RolloutChange, RolloutPhase, RolloutState, VersionStats};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a process routes by the rollout state it last read.
pub const STATE_TTL: Duration = Duration::from_secs(2);

/// Who the store records for changes the engine makes itself.
const AUTO_ACTOR: &str = "auto_rollback";
const CONFIG_ACTOR: &str = "config";

/// Rollout states read from the store, by agent, with when they were read.
#[derive(Default)]
pub(crate) struct StateCache(Mutex<HashMap<String, (Instant, RolloutState)>>);

impl StateCache {
    fn get(&self, agent: &str, base: &str) -> Option<RolloutState> {
        let map = self.0.lock().ok()?;
        let (at, state) = map.get(agent)?;
        (at.elapsed() < STATE_TTL && state.base == base).then(|| state.clone())
    }

    fn put(&self, state: &RolloutState) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(state.agent.clone(), (Instant::now(), state.clone()));
        }
    }
}

/// Picks the canary for `percent`% of keys, the same way in every
/// process: FNV-1a of the key into 10,000 buckets.
pub fn picks_canary(key: &[u8], percent: f64) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let bucket = (h % 10_000) as f64;
    bucket < (percent * 100.0).round()
}

/// An agent's rollout as `agentd rollout status` and `GET
/// /v1/rollouts/{agent}` show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RolloutReport {
    pub agent: String,
    /// The versions the config declares.
    pub versions: Vec<String>,
    /// The version new runs start on unless picked for the canary.
    pub stable: String,
    pub canary: Option<String>,
    /// Share of new runs, 0–100, that start on the canary.
    pub percent: f64,
    #[schema(value_type = String)]
    pub phase: RolloutPhase,
    /// Why it last changed.
    pub reason: Option<String>,
    /// Who last changed it: a principal, `cli`, `config` or
    /// `auto_rollback`.
    pub updated_by: String,
    /// When the config's split started; the stats count runs since.
    #[serde(with = "agentd_core::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Millis,
    #[serde(with = "agentd_core::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Millis,
    /// `[rollout."AGENT"].auto_rollback`, if set.
    #[schema(value_type = Option<Object>)]
    pub auto_rollback: Option<AutoRollback>,
    /// Finished runs of each version since `started_at`, across tenants.
    pub stats: Vec<VersionStats>,
}

/// Who may see and change rollouts: they route every tenant's runs, so an
/// operator (role `operator` or `auth.operators`); the local CLI always.
fn require_operator(operators: &Operators, who: Option<&Identity>, what: &str) -> Result<()> {
    match who {
        Some(who) if !operators.includes(who) => Err(EngineError::Forbidden(format!(
            "{what} changes every tenant's runs: it needs role {OPERATOR_ROLE:?} or a principal \
             in `auth.operators`"
        ))),
        _ => Ok(()),
    }
}

/// The seed the store keeps unless it already has this split.
fn seed(agent: &str, r: &RolloutConfig) -> RolloutState {
    RolloutState {
        agent: agent.to_owned(),
        base: r.fingerprint(),
        stable: r.stable.clone(),
        canary: r.canary.clone(),
        percent: r.percent,
        phase: RolloutPhase::Active,
        reason: None,
        actor: CONFIG_ACTOR.into(),
        started_at: 0,
        updated_at: 0,
    }
}

impl Engine {
    /// The version a new run of `versions` starts on: with a rollout, the
    /// canary for its share of runs (by conversation when there is one,
    /// else by run), else stable.
    pub(crate) async fn route(
        &self,
        name: &str,
        versions: &Versions,
        key: &[u8],
    ) -> Result<Option<String>> {
        let Some(r) = &versions.rollout else {
            return Ok(versions.default_version());
        };
        let state = self.rollout_state(name, r).await?;
        Ok(Some(match state.canary {
            Some(canary)
                if state.phase == RolloutPhase::Active && picks_canary(key, state.percent) =>
            {
                canary
            }
            _ => state.stable,
        }))
    }

    /// `name`'s live rollout state, from the cache while fresh.
    async fn rollout_state(&self, name: &str, r: &RolloutConfig) -> Result<RolloutState> {
        let base = r.fingerprint();
        if let Some(state) = self.inner.rollouts.get(name, &base) {
            return Ok(state);
        }
        let state = self.inner.store.sync_rollout(&seed(name, r)).await?;
        self.inner.rollouts.put(&state);
        Ok(state)
    }

    /// The versions and rollout of `name`, for its status.
    fn rollout_of(&self, name: &str) -> Result<(Vec<String>, RolloutConfig)> {
        let catalog = self.catalog();
        let versions = catalog
            .agents
            .get(name)
            .filter(|v| v.configured())
            .ok_or_else(|| EngineError::UnknownAgent(name.to_owned()))?;
        let Some(r) = versions.rollout.clone() else {
            return Err(EngineError::NoRollout(name.to_owned()));
        };
        Ok((versions.declared.clone(), r))
    }

    /// `name`'s rollout with each version's outcomes since its split
    /// started. `who` is `None` for the local CLI.
    pub async fn rollout(&self, who: Option<&Identity>, name: &str) -> Result<RolloutReport> {
        require_operator(&self.inner.operators, who, "a rollout")?;
        let (versions, r) = self.rollout_of(name)?;
        let state = self.inner.store.sync_rollout(&seed(name, &r)).await?;
        self.inner.rollouts.put(&state);
        self.report(versions, &r, state).await
    }

    async fn report(
        &self,
        versions: Vec<String>,
        r: &RolloutConfig,
        state: RolloutState,
    ) -> Result<RolloutReport> {
        let stats = self
            .inner
            .store
            .version_stats(&state.agent, state.started_at)
            .await?;
        Ok(RolloutReport {
            agent: state.agent,
            versions,
            stable: state.stable,
            canary: state.canary,
            percent: state.percent,
            phase: state.phase,
            reason: state.reason,
            updated_by: state.actor,
            started_at: state.started_at,
            updated_at: state.updated_at,
            auto_rollback: r.auto_rollback,
            stats,
        })
    }

    /// Makes the canary the version every new run of `name` starts on.
    pub async fn promote(
        &self,
        who: Option<&Identity>,
        tenant: &TenantId,
        name: &str,
        reason: Option<String>,
    ) -> Result<RolloutReport> {
        self.change(who, tenant, name, RolloutPhase::Promoted, reason)
            .await
    }

    /// Sends every new run of `name` to its stable version.
    pub async fn rollback(
        &self,
        who: Option<&Identity>,
        tenant: &TenantId,
        name: &str,
        reason: Option<String>,
    ) -> Result<RolloutReport> {
        self.change(who, tenant, name, RolloutPhase::RolledBack, reason)
            .await
    }

    /// A promote or rollback by an operator (or the CLI, `who` = `None`),
    /// audited in `tenant`'s log.
    async fn change(
        &self,
        who: Option<&Identity>,
        tenant: &TenantId,
        name: &str,
        phase: RolloutPhase,
        reason: Option<String>,
    ) -> Result<RolloutReport> {
        let what = match phase {
            RolloutPhase::Promoted => "promoting a canary",
            _ => "rolling back a canary",
        };
        require_operator(&self.inner.operators, who, what)?;
        let (versions, r) = self.rollout_of(name)?;
        let state = self.inner.store.sync_rollout(&seed(name, &r)).await?;
        let Some(canary) = state
            .canary
            .clone()
            .filter(|_| state.phase == RolloutPhase::Active)
        else {
            return Err(EngineError::Conflict(format!(
                "agent {name:?} has no canary in trial (the rollout is {}); set \
                 `[rollout.\"{name}\"] canary` and `percent` to start one",
                state.phase.as_str()
            )));
        };
        let (stable, kind) = match phase {
            RolloutPhase::Promoted => (canary.clone(), "rollout_promoted"),
            _ => (state.stable.clone(), "rollout_rolled_back"),
        };
        let actor = who.map_or(crate::keys::LOCAL_ACTOR, |w| w.principal.as_str());
        let change = RolloutChange {
            phase,
            stable: stable.clone(),
            reason: reason.clone(),
            actor: actor.to_owned(),
            audit_tenant: tenant.clone(),
            audit_run: None,
            audit_kind: kind,
            audit_detail: serde_json::json!({
                "agent": name, "canary": canary, "stable": stable, "reason": reason,
            }),
        };
        let Some(changed) = self
            .inner
            .store
            .change_rollout(name, &state.base, &change)
            .await?
        else {
            return Err(EngineError::Conflict(format!(
                "the rollout of agent {name:?} changed meanwhile; read it again"
            )));
        };
        tracing::warn!(agent = name, canary, stable = %changed.stable, actor, phase = phase.as_str(), "rollout changed");
        self.inner.rollouts.put(&changed);
        self.report(versions, &r, changed).await
    }

    /// After a canary run finishes: when the canary's latest runs fail
    /// more often than `auto_rollback` allows, new runs go back to stable,
    /// audited on the run that tipped it.
    pub(crate) fn judge_canary(&self, run: &Run) {
        if !matches!(
            run.status,
            RunStatus::Failed | RunStatus::Dead | RunStatus::Succeeded
        ) {
            return;
        }
        let Some(version) = run.agent_version.clone() else {
            return;
        };
        let catalog = self.catalog();
        let Some(r) = catalog
            .agents
            .get(&run.agent)
            .and_then(|v| v.rollout.clone())
        else {
            return;
        };
        let Some(auto) = r.auto_rollback else {
            return;
        };
        if r.canary.as_deref() != Some(version.as_str()) {
            return;
        }
        let engine = self.clone();
        let run = run.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.judge(&run, &version, &r, auto).await {
                tracing::warn!(agent = %run.agent, version, error = %e, "judging the canary failed");
            }
        });
    }

    async fn judge(
        &self,
        run: &Run,
        canary: &str,
        r: &RolloutConfig,
        auto: AutoRollback,
    ) -> Result<()> {
        let state = self.rollout_state(&run.agent, r).await?;
        if state.phase != RolloutPhase::Active || state.canary.as_deref() != Some(canary) {
            return Ok(());
        }
        let seen = self
            .inner
            .store
            .version_outcomes(&run.agent, canary, state.started_at, auto.window)
            .await?;
        if seen.finished < auto.window {
            return Ok(());
        }
        let rate = f64::from(seen.failed) / f64::from(seen.finished);
        if rate <= auto.max_failure_rate {
            return Ok(());
        }
        let reason = format!(
            "{} of the canary's last {} runs failed ({:.0}% > max_failure_rate {:.0}%)",
            seen.failed,
            seen.finished,
            rate * 100.0,
            auto.max_failure_rate * 100.0
        );
        let change = RolloutChange {
            phase: RolloutPhase::RolledBack,
            stable: state.stable.clone(),
            reason: Some(reason.clone()),
            actor: AUTO_ACTOR.into(),
            audit_tenant: run.tenant.clone(),
            audit_run: Some(run.id),
            audit_kind: "rollout_rolled_back",
            audit_detail: serde_json::json!({
                "agent": run.agent, "canary": canary, "stable": state.stable,
                "reason": reason, "failed": seen.failed, "window": seen.finished,
            }),
        };
        if let Some(changed) = self
            .inner
            .store
            .change_rollout(&run.agent, &state.base, &change)
            .await?
        {
            tracing::warn!(agent = %run.agent, canary, stable = %changed.stable, %reason, "canary rolled back automatically");
            metrics::counter!(agentd_core::metric::ROLLBACKS, agentd_core::metric::AGENT => run.agent.clone())
                .increment(1);
            self.inner.rollouts.put(&changed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::picks_canary;

    #[test]
    fn the_split_is_deterministic_and_near_its_share() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("conv-{i}")).collect();
        let picked = keys
            .iter()
            .filter(|k| picks_canary(k.as_bytes(), 10.0))
            .count();
        assert!((1_700..2_300).contains(&picked), "{picked}");
        for k in &keys[..100] {
            assert_eq!(
                picks_canary(k.as_bytes(), 10.0),
                picks_canary(k.as_bytes(), 10.0)
            );
        }
        assert!(!keys.iter().any(|k| picks_canary(k.as_bytes(), 0.0)));
        assert!(keys.iter().all(|k| picks_canary(k.as_bytes(), 100.0)));
    }
}
