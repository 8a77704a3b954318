//! What the engine serves as it sees it, for operators: each agent's
//! definition with its providers' circuit state (`GET /v1/agents`), and a
//! caller's period budgets with what was spent (`GET /v1/budgets`).

use crate::Engine;
use agentd_core::{Identity, now_millis};
use agentd_store::{BudgetLimit, BudgetOwner, StoreError};
use serde::Serialize;

/// One configured agent, as new runs start on it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentDefinition {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The version labels declared (empty: an unversioned agent).
    pub versions: Vec<String>,
    /// The version new runs start on when no canary takes them.
    pub default_version: Option<String>,
    /// The fallback chain, in order.
    pub providers: Vec<ProviderView>,
    pub tools: Vec<String>,
    pub max_steps: u32,
    /// `5m`, as written in the config.
    pub timeout: String,
    pub budget_usd: Option<f64>,
    /// The JSON Schema its answers must satisfy, if any.
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
}

/// A provider of an agent's chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub name: String,
    /// `mock`, `openai` or `anthropic`.
    pub kind: String,
    pub model: Option<String>,
    /// This process's view of its circuit (shared through the store):
    /// `closed`, `open` or `half_open`.
    pub circuit: String,
}

/// `[[policies]]`: which role may call which tools.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub role: String,
    pub allow: Vec<String>,
}

/// The agents and the tool policies that apply to all of them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentDefinitions {
    /// Sorted by name.
    pub items: Vec<AgentDefinition>,
    /// None: every role may call every tool its agent lists.
    pub policies: Vec<PolicyView>,
}

/// A period budget and what was spent in the period that holds now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// For a principal's budget: whose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub limit_usd: f64,
    /// `1d`, as written in the config.
    pub period: String,
    /// When the current period started, RFC 3339.
    #[schema(format = DateTime)]
    pub period_start: String,
    pub spent_usd: f64,
}

/// The caller's tenant's budget and the caller's own, each `null` when
/// none is configured.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Budgets {
    pub tenant: Option<BudgetView>,
    pub principal: Option<BudgetView>,
}

impl Engine {
    /// The configured agents and tool policies (see [`AgentDefinitions`]).
    pub fn agent_definitions(&self) -> AgentDefinitions {
        let catalog = self.catalog();
        let circuits = self.inner.breakers.breaker_states();
        let circuit = |provider: &str| {
            circuits
                .iter()
                .find(|(p, _)| p == provider)
                .map_or(agentd_llm::BreakerState::Closed, |(_, s)| *s)
                .as_str()
                .to_owned()
        };
        let config = &catalog.config;
        let mut items: Vec<AgentDefinition> = catalog
            .configured()
            .filter_map(|(name, v)| {
                let a = &v.default_agent()?.config;
                Some(AgentDefinition {
                    name: name.clone(),
                    description: a.description.clone(),
                    versions: v.declared.clone(),
                    default_version: v.default_version(),
                    providers: a
                        .providers
                        .iter()
                        .map(|p| {
                            let c = config.providers.get(p);
                            ProviderView {
                                name: p.clone(),
                                kind: c.map_or("unknown", |c| c.kind.as_str()).to_owned(),
                                model: c.and_then(|c| c.model.clone()),
                                circuit: circuit(p),
                            }
                        })
                        .collect(),
                    tools: a.tools.clone(),
                    max_steps: a.max_steps,
                    timeout: a.timeout.to_string(),
                    budget_usd: a.budget_usd,
                    output_schema: a.output_schema.clone(),
                })
            })
            .collect();
        items.sort_by(|a, b| a.name.cmp(&b.name));
        AgentDefinitions {
            items,
            policies: config
                .policies
                .iter()
                .map(|p| PolicyView {
                    role: p.role.clone(),
                    allow: p.allow.clone(),
                })
                .collect(),
        }
    }

    /// `who`'s tenant's budget and `who`'s own (see [`Budgets`]).
    pub async fn budgets(&self, who: &Identity) -> Result<Budgets, StoreError> {
        let config = self.catalog().config.clone();
        let tenant = config
            .tenants
            .get(who.tenant.as_str())
            .and_then(|b| Some((crate::catalog::budget_limit(b)?, b.period.to_string())));
        let principal = config
            .principal_budget(who.principal.as_str())
            .and_then(|b| Some((crate::catalog::budget_limit(b)?, b.period.to_string())));
        let now = now_millis();
        let view = async |owner, limit: BudgetLimit, period: String| {
            let spent = self
                .inner
                .store
                .budget_spent(&who.tenant, owner, limit.period)
                .await?;
            Ok::<_, StoreError>(BudgetView {
                principal: match owner {
                    BudgetOwner::Principal(p) => Some(p.to_owned()),
                    BudgetOwner::Tenant => None,
                },
                limit_usd: limit.limit_usd,
                period,
                period_start: agentd_core::rfc3339(agentd_core::period_start(now, limit.period)),
                spent_usd: spent,
            })
        };
        Ok(Budgets {
            tenant: match tenant {
                Some((limit, period)) => Some(view(BudgetOwner::Tenant, limit, period).await?),
                None => None,
            },
            principal: match principal {
                Some((limit, period)) => Some(
                    view(
                        BudgetOwner::Principal(who.principal.as_str()),
                        limit,
                        period,
                    )
                    .await?,
                ),
                None => None,
            },
        })
    }
}
