//! Checks of the tool sections: `[tools.NAME]`, `[[mcp]]` and
//! `[[policies]]`.

use std::collections::BTreeSet;

use super::{Invalid, invalid};
use crate::keypath::KeyPath;
use crate::tooling::{McpConfig, PolicyConfig, ToolConfig, ToolKind};
use crate::types::Config;

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

/// The keys set in a `[tools.NAME]` table, in file-key spelling.
fn set_keys(tool: &ToolConfig) -> Vec<&'static str> {
    [
        ("kind", tool.kind.is_some()),
        ("approval", tool.approval),
        ("allow", !tool.allow.is_empty()),
        ("timeout", tool.timeout.is_some()),
        ("max_bytes", tool.max_bytes.is_some()),
        ("root", tool.root.is_some()),
        ("url", tool.url.is_some()),
        ("secret_env", tool.secret_env.is_some()),
        ("description", tool.description.is_some()),
        ("schema", tool.schema.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}

/// An [`Invalid`] as any result type, for checks that stop at it.
fn reject<T>(key: KeyPath, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        key,
        message: message.into(),
    })
}

/// Checks `[tools]`, `[[mcp]]` and `[[policies]]`.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let mut servers = BTreeSet::new();
    for (i, mcp) in config.mcp.iter().enumerate() {
        check_mcp(i, mcp, &mut servers)?;
    }
    for (name, tool) in &config.tools {
        check_tool(name, tool, &servers)?;
    }
    for (i, policy) in config.policies.iter().enumerate() {
        check_policy(i, policy)?;
    }
    Ok(())
}

/// Checks `[[mcp]]` entry `i`, recording its name in `servers`.
fn check_mcp<'a>(
    i: usize,
    mcp: &'a McpConfig,
    servers: &mut BTreeSet<&'a str>,
) -> Result<(), Invalid> {
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
    Ok(())
}

/// Checks `[[policies]]` entry `i`.
fn check_policy(i: usize, policy: &PolicyConfig) -> Result<(), Invalid> {
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
    Ok(())
}

/// Checks one `[tools.NAME]` table: its name, the keys that apply to it,
/// then their values.
fn check_tool(name: &str, tool: &ToolConfig, servers: &BTreeSet<&str>) -> Result<(), Invalid> {
    if let Some(cost) = tool.cost_usd
        && !super::non_negative(cost)
    {
        invalid(
            KeyPath::of(&["tools", name, "cost_usd"]),
            format!("must be >= 0, found {cost}"),
        )?;
    }
    let key = |field: &str| KeyPath::of(&["tools", name, field]);
    let (what, allowed) = table_kind(name, tool, servers)?;
    for set in set_keys(tool) {
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
        check_webhook(name, tool)?;
    }
    Ok(())
}

/// What a `[tools.NAME]` table configures, in words for messages, and the
/// keys it accepts; an error if the name fits no kind of table.
fn table_kind(
    name: &str,
    tool: &ToolConfig,
    servers: &BTreeSet<&str>,
) -> Result<(String, &'static [&'static str]), Invalid> {
    let whole = || KeyPath::of(&["tools", name]);
    if let Some(rest) = name.strip_prefix("mcp:") {
        let (server, tool_glob) = rest.split_once('/').unwrap_or((rest, ""));
        if !servers.contains(server) || tool_glob.is_empty() {
            let declared = if servers.is_empty() {
                "none".to_owned()
            } else {
                servers.iter().copied().collect::<Vec<_>>().join(", ")
            };
            return reject(
                whole(),
                format!(
                    "expected `mcp:<server>/<tool>` naming a declared MCP server \
                     (declared: {declared})"
                ),
            );
        }
        Ok((format!("MCP tool `{name}`"), &["approval"]))
    } else if tool.kind == Some(ToolKind::Webhook) {
        if is_builtin_table(name) {
            return reject(
                KeyPath::of(&["tools", name, "kind"]),
                format!("`{name}` is a built-in tool; give the webhook another name"),
            );
        }
        if !valid_tool_name(name) {
            return reject(
                whole(),
                "a webhook tool name must be 1 to 64 letters, digits, `_` or `-`",
            );
        }
        Ok((format!("webhook tool `{name}`"), WEBHOOK_KEYS))
    } else if APPROVAL_ONLY.contains(&name) {
        Ok((format!("tool `{name}`"), &["approval"]))
    } else if matches!(name, "http_get" | "http_request") {
        Ok((format!("tool `{name}`"), HTTP_KEYS))
    } else if name == "files" {
        Ok(("`[tools.files]`".to_owned(), FILES_KEYS))
    } else {
        reject(
            whole(),
            format!(
                "unknown built-in tool {name:?} (built-ins: echo, ask_human, http_get, \
                 http_request, files, read_file, write_file, list_dir); set \
                 `kind = \"webhook\"` to define a webhook tool"
            ),
        )
    }
}

/// Checks the keys only a webhook table has.
fn check_webhook(name: &str, tool: &ToolConfig) -> Result<(), Invalid> {
    let key = |field: &str| KeyPath::of(&["tools", name, field]);
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
    Ok(())
}
