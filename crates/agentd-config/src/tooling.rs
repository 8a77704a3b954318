//! The tool sections: `[tools.NAME]` (built-in settings and webhook tools),
//! `[[mcp]]` (MCP servers) and `[[policies]]` (which roles may call which
//! tools). Their checks are in `validate::tools`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dur::Dur;

/// `[tools.NAME]`: settings of a built-in tool (`http_get`, `http_request`,
/// `files`, or any built-in name for `approval`), a webhook tool
/// (`kind = "webhook"`), or `approval` for MCP tools (`[tools."mcp:s/t"]`,
/// where `t` may be a glob).
///
/// Which keys a table accepts depends on its name; [`crate::Config::validate`]
/// reports a key that does not apply.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolConfig {
    /// `"webhook"` defines a new tool; absent for built-in settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolKind>,
    /// Pause the run for a human's approval before each call.
    #[serde(skip_serializing_if = "is_false")]
    pub approval: bool,
    /// HTTP tools and webhooks: hosts, IPs or CIDRs exempt from the SSRF guard.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// HTTP tools and webhooks: limit of one call (all redirects and the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// HTTP tools and webhooks: largest response body read; `files`: largest
    /// file read or written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// `files`: the directory `read_file`, `write_file` and `list_dir` are
    /// jailed to (created if missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Webhook: the URL the arguments are POSTed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: name of the environment variable holding the HMAC secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Webhook: what the model is told the tool does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Webhook: JSON Schema of the arguments (an object schema); default
    /// any object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// What one call that returns a result costs, in USD: counted in the
    /// run's cost, its budget and the tenant's, and in usage reports, like
    /// a model call's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `tools.NAME.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// POST the arguments to `url`, signed, with an idempotency key.
    Webhook,
}

impl ToolKind {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for ToolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[mcp]]`: one MCP server, started over stdio (`command`) or reached
/// over streamable HTTP (`url`). Its tools are named `mcp:<name>/<tool>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Unique name, `[A-Za-z0-9_-]+`; the `<server>` in tool names.
    pub name: String,
    /// Program and arguments of a stdio server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Endpoint of a streamable-HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Limit of one tool call, and of connecting.
    #[serde(default = "default_mcp_timeout")]
    pub timeout: Dur,
}

fn default_mcp_timeout() -> Dur {
    Dur::from_secs(30)
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            name: String::new(),
            command: None,
            url: None,
            timeout: default_mcp_timeout(),
        }
    }
}

/// `[[policies]]`: the tools one role may call. With no policies at all,
/// every tool an agent lists is allowed; with any, a call is allowed only if
/// one of the caller's roles allows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The role this entry grants to.
    pub role: String,
    /// Tool names or globs (`*` any run of characters, `?` one character);
    /// `"*"` is every tool.
    #[serde(default)]
    pub allow: Vec<String>,
}

#[cfg(test)]
mod tests;
