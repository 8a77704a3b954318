//! Tools an agent can call, behind one [`Tool`] trait, and the registry that
//! resolves the names an agent lists.

mod builtin;

pub use builtin::{AskHuman, Echo};

use agentd_core::{RunId, TenantId, ToolSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a tool call happens.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub tenant: TenantId,
    pub run_id: RunId,
    pub step_index: u32,
}

impl ToolContext {
    /// Stable across re-executions of the same step after a crash, so a tool
    /// with side effects can deduplicate them.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.run_id, self.step_index)
    }
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    /// The result the model sees.
    Value(serde_json::Value),
    /// The run must wait for a human; the answer becomes the result.
    Pause { question: String },
}

/// Why a tool call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The model sent arguments the tool cannot use; the model is told, so
    /// it can correct itself.
    #[error("invalid arguments for tool {tool}: {message}")]
    InvalidArgs { tool: String, message: String },
    /// The tool failed; the run fails with `tool_error`.
    #[error("tool {tool} failed: {message}")]
    Failed { tool: String, message: String },
}

/// A callable tool.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema, as sent to the model.
    fn spec(&self) -> &ToolSpec;
    /// True if calling the tool has no effect outside the run's journal
    /// (`ask_human` only records a question). The engine then need not make
    /// the step before it durable first: both land in one commit.
    fn journal_only(&self) -> bool {
        false
    }
    /// Executes the call.
    async fn call(
        &self,
        ctx: &ToolContext,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}

/// The tools known to this process, by name.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl Registry {
    /// The built-in tools: `echo` and `ask_human`.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.insert(Arc::new(Echo::new()));
        r.insert(Arc::new(AskHuman::new()));
        r
    }

    /// Adds (or replaces) a tool.
    pub fn insert(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name.clone(), tool);
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Names of every registered tool.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }
}
