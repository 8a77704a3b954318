//! An agent as the engine runs it: its config with providers and tools
//! resolved.

use crate::EngineError;
use agentd_config::{AgentConfig, Config, MemoryStrategy, Pricing};
use agentd_core::ToolSpec;
use agentd_llm::Provider;
use agentd_tools::{Registry, Tool};
use std::collections::HashMap;
use std::sync::Arc;

/// A runnable agent.
#[derive(Clone)]
pub struct Agent {
    pub config: AgentConfig,
    /// The fallback chain, in order.
    pub providers: Vec<Arc<dyn Provider>>,
    pub tools: HashMap<String, Arc<dyn Tool>>,
    pub tool_specs: Vec<ToolSpec>,
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
    ) -> Result<Self, EngineError> {
        let mut providers = Vec::new();
        for name in &a.providers {
            let cfg = config.providers.get(name).ok_or_else(|| {
                EngineError::Config(format!(
                    "agents[{index}].providers: unknown provider {name:?}"
                ))
            })?;
            let p = agentd_llm::build(name, cfg)
                .map_err(|e| EngineError::Config(format!("agents[{index}].providers: {e}")))?;
            providers.push(p);
        }
        let mut tools = HashMap::new();
        let mut tool_specs = Vec::new();
        for name in &a.tools {
            let tool = registry.get(name).ok_or_else(|| {
                let known: Vec<&str> = registry.names().collect();
                EngineError::Config(format!(
                    "agents[{index}].tools: unknown tool {name:?} (available: {})",
                    known.join(", ")
                ))
            })?;
            tool_specs.push(tool.spec().clone());
            tools.insert(name.clone(), tool.clone());
        }
        Ok(Self {
            config: a.clone(),
            providers,
            tools,
            tool_specs,
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
}
