//! The [`ToolSet`] one agent may call, and the tool names sent to model
//! providers.

use std::collections::BTreeSet;
use std::sync::Arc;

use agentd_core::ToolSpec;
use serde_json::Value;

use crate::glob::Glob;
use crate::mcp::McpServer;
use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// The name to send a model provider for tool `name`: providers accept only
/// `[A-Za-z0-9_-]{1,64}` (OpenAI), so `mcp:files/read.file` becomes
/// `mcp__files__read_file`; other characters become `_`, and a name longer
/// than 64 is cut and suffixed with a hash of the full name. Built-in and
/// webhook names are already safe and come back unchanged.
pub fn provider_tool_name(name: &str) -> String {
    use sha2::Digest;
    let (mut out, rest) = match name.strip_prefix("mcp:") {
        Some(rest) => ("mcp__".to_owned(), rest),
        None => (String::new(), name),
    };
    for c in rest.chars() {
        match c {
            '/' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
            _ => out.push('_'),
        }
    }
    if out.len() > 64 {
        let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
        out.truncate(55);
        out.push('_');
        out.push_str(&digest[..8]);
    }
    out
}

/// The tools one agent may call, resolved from its `tools` list. MCP entries
/// are evaluated on use, so the set follows reconnects. Cheap to clone.
#[derive(Clone)]
pub struct ToolSet {
    pub(crate) fixed: Vec<Arc<dyn Tool>>,
    pub(crate) mcp: Vec<(Arc<McpServer>, Glob)>,
}

impl ToolSet {
    /// What to send the model now: each tool's name, description and schema,
    /// in the order the agent lists them (MCP tools of disconnected servers
    /// are absent until they reconnect).
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools().iter().map(|t| t.spec().clone()).collect()
    }

    /// The tools available now, in listing order, without duplicates.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for tool in &self.fixed {
            if seen.insert(tool.spec().name.clone()) {
                out.push(tool.clone());
            }
        }
        for (server, glob) in &self.mcp {
            for (name, tool) in server.tools().iter() {
                if glob.matches(name) && seen.insert(name.clone()) {
                    out.push(tool.clone());
                }
            }
        }
        out
    }

    /// [`ToolSet::specs`] with names a provider accepts
    /// ([`provider_tool_name`]); [`ToolSet::get`] and [`ToolSet::call`]
    /// accept these names too, and [`ToolSet::canonical_name`] maps back.
    pub fn provider_specs(&self) -> Vec<ToolSpec> {
        self.specs()
            .into_iter()
            .map(|mut s| {
                s.name = provider_tool_name(&s.name);
                s
            })
            .collect()
    }

    /// The registry name (`mcp:files/read`) of `name`, which may be that name
    /// or its provider form (`mcp__files__read`); `None` if the agent has no
    /// such tool available now.
    pub fn canonical_name(&self, name: &str) -> Option<String> {
        self.get(name).map(|t| t.spec().name.clone())
    }

    /// Names of [`ToolSet::tools`].
    pub fn names(&self) -> Vec<String> {
        self.tools().iter().map(|t| t.spec().name.clone()).collect()
    }

    /// The tool `name` (registry or provider form) if this agent may call it
    /// and it is available now.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        if let Some(tool) = self.fixed.iter().find(|t| t.spec().name == name) {
            return Some(tool.clone());
        }
        let exact = self
            .mcp
            .iter()
            .filter(|(_, glob)| glob.matches(name))
            .find_map(|(server, _)| server.tools().get(name).cloned());
        exact.or_else(|| {
            self.tools()
                .into_iter()
                .find(|t| provider_tool_name(&t.spec().name) == name)
        })
    }

    /// True if the agent's list covers `name`, even if its MCP server is
    /// down right now (then a call fails with a clear message).
    pub fn covers(&self, name: &str) -> bool {
        self.fixed.iter().any(|t| t.spec().name == name)
            || self.mcp.iter().any(|(_, glob)| glob.matches(name))
    }

    /// Validates and calls `name`. A name the agent does not have is an
    /// argument error (the model is told); a listed MCP tool whose server is
    /// down fails the call.
    ///
    /// # Errors
    /// As [`Tool::call`].
    pub async fn call(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
    ) -> Result<ToolOutput, ToolError> {
        match self.get(name) {
            Some(tool) => tool.call(ctx, args).await,
            None if self.covers(name) => Err(ToolError::failed(
                name,
                "the tool's MCP server is unavailable right now",
            )),
            None => Err(ToolError::invalid(
                name,
                format!("this agent has no tool named {name:?}"),
            )),
        }
    }
}
