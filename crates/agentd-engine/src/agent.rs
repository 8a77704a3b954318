//! An agent as the engine runs it: its config with the provider chain and
//! tool set resolved.

use crate::EngineError;
use agentd_config::{AgentConfig, Config, MemoryStrategy, Pricing};
use agentd_llm::{BreakerRegistry, ProviderChain};
use agentd_tools::{Registry, ToolSet};
use std::collections::HashMap;
use std::sync::Arc;

/// A runnable agent.
#[derive(Clone)]
pub struct Agent {
    pub config: AgentConfig,
    /// The fallback chain with its retry, timeout and breaker decorators.
    pub chain: ProviderChain,
    pub tools: ToolSet,
    /// Prices by model name, from `[pricing]`.
    pub pricing: HashMap<String, Pricing>,
    /// The highest input and output prices among the chain's models, for
    /// estimating a call's cost before the chain picks a provider; `None`
    /// when none of them is priced.
    pub price_ceiling: Option<Pricing>,
    /// The most output tokens a call of the chain is assumed to produce.
    pub max_output_tokens: u32,
    /// Its metric handles (shared by clones).
    pub(crate) meters: Arc<crate::meter::AgentMeters>,
    /// Its guardrails and output contract, compiled.
    pub(crate) guards: Arc<crate::guard::Guards>,
    /// `[tools.NAME] cost_usd`: what a call of each priced tool costs.
    pub(crate) tool_costs: HashMap<String, f64>,
}

impl Agent {
    /// Resolves agent number `index` of `config`.
    pub fn build(
        index: usize,
        a: &AgentConfig,
        config: &Config,
        registry: &Registry,
        breakers: &BreakerRegistry,
    ) -> Result<Self, EngineError> {
        let chain = ProviderChain::from_config(a, &config.providers, breakers)
            .map_err(|e| EngineError::Config(format!("agents[{index}].providers: {e}")))?;
        let tools = registry
            .resolve(&a.tools)
            .map_err(|e| EngineError::Config(format!("agents[{index}].tools: {e}")))?;
        let mut price_ceiling: Option<Pricing> = None;
        let mut max_output_tokens = 0;
        for p in a
            .providers
            .iter()
            .filter_map(|name| config.providers.get(name))
        {
            let model = p.model.as_deref().unwrap_or("mock");
            if let Some(price) = config.pricing.get(model) {
                let c = price_ceiling.get_or_insert(*price);
                c.input_per_mtok = c.input_per_mtok.max(price.input_per_mtok);
                c.output_per_mtok = c.output_per_mtok.max(price.output_per_mtok);
            }
            let out = p
                .max_tokens
                .unwrap_or(agentd_llm::pricing::DEFAULT_OUTPUT_ESTIMATE);
            max_output_tokens = max_output_tokens.max(out);
        }
        let guards = crate::guard::Guards::build(index, a, config, breakers)?;
        let meters = crate::meter::AgentMeters::new(
            &a.name,
            &a.providers,
            config.tenants.keys().cloned().collect(),
        );
        Ok(Self {
            meters: Arc::new(meters),
            guards: Arc::new(guards),
            tool_costs: config
                .tools
                .iter()
                .filter_map(|(name, t)| Some((name.clone(), t.cost_usd?)))
                .collect(),
            config: a.clone(),
            chain,
            tools,
            price_ceiling,
            max_output_tokens,
            pricing: config
                .pricing
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        })
    }

    /// How many conversation messages the model sees.
    pub fn history_limit(&self) -> Option<u32> {
        match self.config.memory.strategy {
            MemoryStrategy::All => None,
            MemoryStrategy::Window => self.config.memory.max_messages,
        }
    }

    /// The first provider of the chain, named in step events before the
    /// chain has answered.
    pub fn first_provider(&self) -> String {
        self.chain
            .provider_names()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}
