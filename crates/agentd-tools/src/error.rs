//! `ToolsError`: why the registry could not be built or a tool list resolved.

/// An error building the [`Registry`](crate::Registry), resolving an agent's
/// tool list or compiling [`Policies`](crate::Policies). All of them are
/// configuration errors: the binary reports them and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolsError {
    /// A tool setting is unusable; `key` is the full config key, e.g.
    /// `tools.notify.secret_env`.
    #[error("key `{key}`: {message}")]
    Config { key: String, message: String },
    /// An agent lists a tool that does not exist.
    #[error("unknown tool {name:?}{hint}")]
    UnknownTool {
        /// The name as written in the agent's `tools`.
        name: String,
        /// What is available, or why the tool is missing (starts with a
        /// separator, e.g. `" (available: echo, ask_human)"`).
        hint: String,
    },
    /// An `mcp:<server>/...` entry names no `[[mcp]]` server.
    #[error("unknown MCP server {server:?} in {name:?} (declared: {declared})")]
    UnknownMcpServer {
        /// The entry as written.
        name: String,
        /// The server part.
        server: String,
        /// The declared server names, comma-separated, or `none`.
        declared: String,
    },
}

impl ToolsError {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> ToolsError {
        ToolsError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}
