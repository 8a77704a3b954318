//! What the config resolved to that a reload may replace: every version of
//! every agent (providers and tools resolved), the tool registry, tool
//! policies, tenant budgets and rollouts. The engine holds one catalog at
//! a time; an attempt keeps the catalog it started with, so a reload never
//! changes a definition under a running step.

use crate::{Agent, EngineError, Result};
use agentd_config::{Config, MemoryStrategy, RolloutConfig};
use agentd_llm::BreakerRegistry;
use agentd_store::{BudgetLimit, ClaimRequest};
use std::collections::HashMap;
use std::sync::Arc;

/// Every version of one agent.
pub(crate) struct Versions {
    /// By version label (`None`: an unversioned agent). Holds versions a
    /// reload removed, too, so runs pinned to them finish on them.
    pub(crate) by_version: HashMap<Option<String>, Arc<Agent>>,
    /// `[rollout."NAME"]`, if any.
    pub(crate) rollout: Option<RolloutConfig>,
    /// The version labels the config declares, sorted.
    pub(crate) declared: Vec<String>,
    /// Whether the config declares the agent: false for one a reload
    /// removed (its runs finish, no new ones start).
    configured: bool,
}

impl Versions {
    fn new(rollout: Option<RolloutConfig>, configured: bool) -> Self {
        Self {
            by_version: HashMap::new(),
            rollout,
            declared: Vec::new(),
            configured,
        }
    }

    /// Whether new runs may start on this agent.
    pub(crate) fn configured(&self) -> bool {
        self.configured
    }

    /// The version new runs start on when no canary takes them: the
    /// rollout's stable one, else the one declared (`None`: unversioned).
    /// Validation allows several versions only with a rollout.
    pub(crate) fn default_version(&self) -> Option<String> {
        match &self.rollout {
            Some(r) => Some(r.stable.clone()),
            None => self.declared.first().cloned(),
        }
    }

    /// The definition a run pinned to `version` executes.
    pub(crate) fn get(&self, version: &Option<String>) -> Option<&Arc<Agent>> {
        self.by_version.get(version)
    }

    /// The definition new runs start on without a canary.
    pub(crate) fn default_agent(&self) -> Option<&Arc<Agent>> {
        if !self.configured {
            return None;
        }
        self.by_version.get(&self.default_version())
    }
}

/// The reloadable part of the engine.
pub(crate) struct Catalog {
    pub(crate) agents: HashMap<String, Versions>,
    /// Owns the MCP connections of the tools agents resolved.
    pub(crate) tools: agentd_tools::Registry,
    /// Which roles may call which tools (`[[policies]]`).
    pub(crate) policies: agentd_tools::Policies,
    /// Spending limits of tenants with a `[tenants."ID"] budget_usd`.
    pub(crate) budgets: HashMap<String, BudgetLimit>,
    /// How much conversation history a claim reads, per agent.
    pub(crate) history_limits: Arc<HashMap<String, u32>>,
    /// The config it was built from (a reload compares against it).
    pub(crate) config: Arc<Config>,
    /// Sends completion webhooks (`[webhooks]`, webhook tools' secrets).
    pub(crate) notifier: Arc<agentd_tools::Notifier>,
}

impl Catalog {
    /// Resolves `config`'s agents against `tools`. `previous` is the
    /// catalog a reload replaces: versions it has that `config` no longer
    /// declares are kept, not routable, for the runs pinned to them.
    pub(crate) fn build(
        config: &Config,
        tools: agentd_tools::Registry,
        breakers: &BreakerRegistry,
        previous: Option<&Catalog>,
    ) -> Result<Self> {
        let policies = agentd_tools::Policies::from_config(&config.policies)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let mut agents: HashMap<String, Versions> = HashMap::new();
        for (i, a) in config.agents.iter().enumerate() {
            let agent = Arc::new(Agent::build(i, a, config, &tools, breakers)?);
            let versions = agents
                .entry(a.name.clone())
                .or_insert_with(|| Versions::new(config.rollout.get(&a.name).cloned(), true));
            versions.by_version.insert(a.version.clone(), agent);
            versions.declared.extend(a.version.clone());
            versions.declared.sort();
        }
        if let Some(previous) = previous {
            for (name, old) in &previous.agents {
                let versions = agents
                    .entry(name.clone())
                    .or_insert_with(|| Versions::new(None, false));
                for (version, agent) in &old.by_version {
                    versions
                        .by_version
                        .entry(version.clone())
                        .or_insert_with(|| agent.clone());
                }
            }
        }
        let notifier = agentd_tools::Notifier::from_config(config)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        Ok(Self {
            notifier: Arc::new(notifier),
            config: Arc::new(config.clone()),
            history_limits: Arc::new(history_limits(config)),
            agents,
            tools,
            policies,
            budgets: budgets(config),
        })
    }

    /// The claim this process makes with this catalog.
    pub(crate) fn claim(&self, owner: String, lease: std::time::Duration) -> ClaimRequest {
        ClaimRequest {
            owner,
            lease_for: lease,
            history_limits: self.history_limits.clone(),
        }
    }

    /// The agents new runs may start on.
    pub(crate) fn configured(&self) -> impl Iterator<Item = (&String, &Versions)> {
        self.agents.iter().filter(|(_, v)| v.configured())
    }
}

/// How much conversation history a claim reads for each windowed agent:
/// the largest window among its versions (none if one reads it all); the
/// engine trims to the run's own version.
fn history_limits(config: &Config) -> HashMap<String, u32> {
    let mut limits: HashMap<String, Option<u32>> = HashMap::new();
    for a in &config.agents {
        let own = match a.memory.strategy {
            MemoryStrategy::Window => a.memory.max_messages,
            MemoryStrategy::All => None,
        };
        limits
            .entry(a.name.clone())
            .and_modify(|l| *l = l.zip(own).map(|(x, y)| x.max(y)))
            .or_insert(own);
    }
    limits
        .into_iter()
        .filter_map(|(name, limit)| Some((name, limit?)))
        .collect()
}

/// Spending limits of tenants with a `[tenants."ID"] budget_usd`.
fn budgets(config: &Config) -> HashMap<String, BudgetLimit> {
    config
        .tenants
        .iter()
        .filter_map(|(id, t)| Some((id.clone(), budget_limit(t)?)))
        .collect()
}

/// The limit a `[tenants."ID"]` or `[principals."ID"]` entry sets, if any.
pub(crate) fn budget_limit(budget: &agentd_config::BudgetConfig) -> Option<BudgetLimit> {
    Some(BudgetLimit {
        limit_usd: budget.budget_usd?,
        period: budget.period.get(),
    })
}
