//! The tool sections: `[tools.NAME]` (built-in settings and webhook tools),
//! `[[mcp]]` (MCP servers) and `[[policies]]` (which roles may call which
//! tools), with their structural validation.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dur::Dur;
use crate::keypath::KeyPath;
use crate::types::Config;
use crate::validate::Invalid;

/// `[tools.NAME]`: settings of a built-in tool (`http_get`, `http_request`,
/// `files`, or any built-in name for `approval`), a webhook tool
/// (`kind = "webhook"`), or `approval` for MCP tools (`[tools."mcp:s/t"]`,
/// where `t` may be a glob).
///
/// Which keys a table accepts depends on its name; [`Config::validate`]
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

/// Built-in tables that accept only `approval`.
const APPROVAL_ONLY: &[&str] = &["echo", "ask_human", "read_file", "write_file", "list_dir"];
/// Keys of the HTTP built-ins.
const HTTP_KEYS: &[&str] = &["approval", "allow", "timeout", "max_bytes"];
/// Keys of `[tools.files]`.
const FILES_KEYS: &[&str] = &["approval", "root", "max_bytes"];
/// Keys of a webhook table.
const WEBHOOK_KEYS: &[&str] = &[
    "kind",
    "approval",
    "url",
    "secret_env",
    "description",
    "schema",
    "allow",
    "timeout",
    "max_bytes",
];

/// Every built-in table name (these cannot be webhook names).
fn is_builtin_table(name: &str) -> bool {
    APPROVAL_ONLY.contains(&name) || matches!(name, "http_get" | "http_request" | "files")
}

/// Tool names providers accept (OpenAI: `^[a-zA-Z0-9_-]{1,64}$`).
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|s| lower.starts_with(s) && lower.len() > s.len())
}

impl ToolConfig {
    /// The keys set in this table, in file-key spelling.
    fn set_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.kind.is_some() {
            keys.push("kind");
        }
        if self.approval {
            keys.push("approval");
        }
        if !self.allow.is_empty() {
            keys.push("allow");
        }
        if self.timeout.is_some() {
            keys.push("timeout");
        }
        if self.max_bytes.is_some() {
            keys.push("max_bytes");
        }
        if self.root.is_some() {
            keys.push("root");
        }
        if self.url.is_some() {
            keys.push("url");
        }
        if self.secret_env.is_some() {
            keys.push("secret_env");
        }
        if self.description.is_some() {
            keys.push("description");
        }
        if self.schema.is_some() {
            keys.push("schema");
        }
        keys
    }
}

fn invalid(key: KeyPath, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        key,
        message: message.into(),
    })
}

/// Checks `[tools]`, `[[mcp]]` and `[[policies]]`.
pub(crate) fn check(config: &Config) -> Result<(), Invalid> {
    let mut servers = BTreeSet::new();
    for (i, mcp) in config.mcp.iter().enumerate() {
        let key = |field: &str| KeyPath::of(&["mcp"]).index(i).key(field);
        if !valid_server_name(&mcp.name) {
            invalid(
                key("name"),
                format!(
                    "expected a non-empty name of letters, digits, `_` and `-`, found {:?}",
                    mcp.name
                ),
            )?;
        }
        if !servers.insert(mcp.name.as_str()) {
            invalid(
                key("name"),
                format!("duplicate MCP server name {:?}", mcp.name),
            )?;
        }
        match (&mcp.command, &mcp.url) {
            (Some(_), Some(_)) => invalid(
                key("url"),
                "set either `command` (stdio) or `url` (streamable HTTP), not both",
            )?,
            (None, None) => invalid(
                key("command"),
                "an MCP server needs `command` (stdio) or `url` (streamable HTTP)",
            )?,
            (Some(command), None) => {
                if command.first().is_none_or(|program| program.is_empty()) {
                    invalid(
                        key("command"),
                        "expected a non-empty array whose first item is the program",
                    )?;
                }
            }
            (None, Some(url)) => {
                if !is_http_url(url) {
                    invalid(
                        key("url"),
                        format!("expected an http:// or https:// URL, found {url:?}"),
                    )?;
                }
            }
        }
        if mcp.timeout.is_zero() {
            invalid(key("timeout"), "must be longer than 0s")?;
        }
    }

    for (name, tool) in &config.tools {
        check_tool(name, tool, &servers)?;
    }

    for (i, policy) in config.policies.iter().enumerate() {
        let key = |field: &str| KeyPath::of(&["policies"]).index(i).key(field);
        if policy.role.trim().is_empty() {
            invalid(key("role"), "expected a non-empty role name")?;
        }
        for (j, pattern) in policy.allow.iter().enumerate() {
            if pattern.trim().is_empty() || pattern.contains('\0') {
                invalid(
                    key("allow").index(j),
                    "expected a tool name or glob like \"mcp:files/*\"",
                )?;
            }
        }
    }
    Ok(())
}

fn check_tool(name: &str, tool: &ToolConfig, servers: &BTreeSet<&str>) -> Result<(), Invalid> {
    let key = |field: &str| KeyPath::of(&["tools", name, field]);
    let (what, allowed): (String, &[&str]) = if let Some(rest) = name.strip_prefix("mcp:") {
        let (server, tool_glob) = rest.split_once('/').unwrap_or((rest, ""));
        if !servers.contains(server) || tool_glob.is_empty() {
            let declared = if servers.is_empty() {
                "none".to_owned()
            } else {
                servers.iter().copied().collect::<Vec<_>>().join(", ")
            };
            return invalid(
                KeyPath::of(&["tools", name]),
                format!(
                    "expected `mcp:<server>/<tool>` naming a declared MCP server \
                     (declared: {declared})"
                ),
            );
        }
        (format!("MCP tool `{name}`"), &["approval"])
    } else if tool.kind == Some(ToolKind::Webhook) {
        if is_builtin_table(name) {
            return invalid(
                key("kind"),
                format!("`{name}` is a built-in tool; give the webhook another name"),
            );
        }
        if !valid_tool_name(name) {
            return invalid(
                KeyPath::of(&["tools", name]),
                "a webhook tool name must be 1 to 64 letters, digits, `_` or `-`",
            );
        }
        (format!("webhook tool `{name}`"), WEBHOOK_KEYS)
    } else if APPROVAL_ONLY.contains(&name) {
        (format!("tool `{name}`"), &["approval"])
    } else if matches!(name, "http_get" | "http_request") {
        (format!("tool `{name}`"), HTTP_KEYS)
    } else if name == "files" {
        ("`[tools.files]`".to_owned(), FILES_KEYS)
    } else {
        return invalid(
            KeyPath::of(&["tools", name]),
            format!(
                "unknown built-in tool {name:?} (built-ins: echo, ask_human, http_get, \
                 http_request, files, read_file, write_file, list_dir); set \
                 `kind = \"webhook\"` to define a webhook tool"
            ),
        );
    };
    for set in tool.set_keys() {
        if !allowed.contains(&set) {
            invalid(
                key(set),
                format!(
                    "`{set}` does not apply to {what} (valid keys: {})",
                    allowed.join(", ")
                ),
            )?;
        }
    }

    if let Some(timeout) = tool.timeout
        && timeout.is_zero()
    {
        invalid(key("timeout"), "must be longer than 0s")?;
    }
    if tool.max_bytes == Some(0) {
        invalid(key("max_bytes"), "must be at least 1")?;
    }
    for (j, entry) in tool.allow.iter().enumerate() {
        if entry.trim().is_empty() || entry.contains(char::is_whitespace) {
            invalid(
                key("allow").index(j),
                format!("expected a host name, IP address or CIDR, found {entry:?}"),
            )?;
        }
    }
    if name == "files" && tool.root.as_deref().is_none_or(str::is_empty) {
        invalid(
            key("root"),
            "`[tools.files]` needs `root`, the jail directory",
        )?;
    }
    if tool.kind == Some(ToolKind::Webhook) {
        match &tool.url {
            None => invalid(key("url"), "a webhook tool needs `url`")?,
            Some(url) if !is_http_url(url) => invalid(
                key("url"),
                format!("expected an http:// or https:// URL, found {url:?}"),
            )?,
            Some(_) => {}
        }
        if tool.secret_env.as_deref().is_none_or(str::is_empty) {
            invalid(
                key("secret_env"),
                "a webhook tool needs `secret_env`, the environment variable holding \
                 its HMAC secret",
            )?;
        }
        if let Some(description) = &tool.description
            && description.trim().is_empty()
        {
            invalid(key("description"), "must not be empty")?;
        }
        if let Some(schema) = &tool.schema
            && schema.get("type").and_then(serde_json::Value::as_str) != Some("object")
        {
            invalid(
                key("schema"),
                "expected a JSON Schema of an object, with `type = \"object\"`",
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
