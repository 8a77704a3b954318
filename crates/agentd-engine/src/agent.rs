//! An agent as the engine runs it: its config with the provider chain and
//! tool set resolved.

use crate::EngineError;
use agentd_config::{AgentConfig, Config, MemoryStrategy, Pricing};
use agentd_llm::{BreakerRegistry, ProviderChain};
use agentd_tools::{Registry, ToolSet};
use std::collections::HashMap;

/// A runnable agent.
#[derive(Clone)]
pub struct Agent {
    pub config: AgentConfig,
    /// The fallback chain with its retry, timeout and breaker decorators.
    pub chain: ProviderChain,
    pub tools: ToolSet,
    /// Prices by model name, from `[pricing]`.
    pub pricing: HashMap<String, Pricing>,
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
        Ok(Self {
            config: a.clone(),
            chain,
            tools,
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
