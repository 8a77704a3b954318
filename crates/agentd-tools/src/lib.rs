//! Tools an agent can call, behind one [`Tool`] trait: the [`Registry`] built
//! from the config (built-ins, webhooks, MCP servers), argument validation
//! against each tool's JSON Schema, the SSRF guard and the file jail the
//! built-ins rely on, [`Policies`] (which roles may call which tools) and the
//! approval answer format.
//!
//! Start-up: [`Registry::from_config`]; per agent: [`Registry::resolve`] into a
//! [`ToolSet`]; per call: [`Policies::allows`], [`Tool::validate`],
//! [`Registry::requires_approval`], then [`Tool::call`] (which validates again).

mod approval;
mod builtin;
mod error;
mod fetch;
mod files;
mod glob;
mod http;
mod mcp;
mod notify;
mod policy;
mod registry;
mod schema;
mod signing;
pub mod ssrf;
mod toolset;
mod webhook;

pub use approval::{ApprovalDecision, approval_question};
pub use builtin::{AskHuman, Echo};
pub use error::ToolsError;
pub use mcp::McpServerStatus;
pub use notify::{EVENT_HEADER, Notifier};
pub use policy::{Policies, PolicyDecision};
pub use registry::{BuildOptions, EnvReader, Registry};
pub use schema::schema_problems;
pub use signing::{BadSecret, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret};
pub use ssrf::{DnsResolver, SystemResolver};
pub use toolset::{ToolSet, provider_tool_name};
pub use webhook::IDEMPOTENCY_HEADER;

use agentd_core::{RunId, TenantId, ToolSpec};

/// Where a tool call happens.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The tenant the run belongs to.
    pub tenant: TenantId,
    /// The run making the call.
    pub run_id: RunId,
    /// The journal index of the tool step.
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
    /// The model sent arguments the tool cannot use (schema violation, a URL
    /// the SSRF guard refuses, a path outside the jail, ...); the model is
    /// told, so it can correct itself.
    #[error("invalid arguments for tool {tool}: {message}")]
    InvalidArgs {
        /// The tool's name.
        tool: String,
        /// What to tell the model.
        message: String,
    },
    /// The tool failed; the run fails with `tool_error`.
    #[error("tool {tool} failed: {message}")]
    Failed {
        /// The tool's name.
        tool: String,
        /// What went wrong.
        message: String,
    },
}

impl ToolError {
    pub(crate) fn invalid(tool: &str, message: impl Into<String>) -> ToolError {
        ToolError::InvalidArgs {
            tool: tool.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn failed(tool: &str, message: impl Into<String>) -> ToolError {
        ToolError::Failed {
            tool: tool.to_owned(),
            message: message.into(),
        }
    }
}

/// A callable tool.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema, as sent to the model.
    fn spec(&self) -> &ToolSpec;

    /// Checks `args` against the tool's schema without calling it (e.g.
    /// before pausing for an approval). Tools from a [`Registry`] validate
    /// with a validator compiled once; the default accepts everything.
    ///
    /// # Errors
    /// [`ToolError::InvalidArgs`] describing every violation.
    fn validate(&self, _args: &serde_json::Value) -> Result<(), ToolError> {
        Ok(())
    }

    /// True if a call has no effect outside the run's journal (`ask_human`
    /// only records a question), so the engine may commit the step before
    /// it together with the call's own record. Default: false.
    fn journal_only(&self) -> bool {
        false
    }

    /// Executes the call. Tools from a [`Registry`] validate `args` first.
    async fn call(
        &self,
        ctx: &ToolContext,
        args: &serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}
