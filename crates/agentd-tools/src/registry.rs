//! The [`Registry`] of every tool this process can run, built from the
//! config, and the [`ToolSet`] an agent's `tools` list resolves to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentd_config::{Config, ToolConfig, ToolKind};
use agentd_core::ToolSpec;
use serde_json::json;

use crate::Tool;
use crate::builtin::{AskHuman, Echo};
use crate::error::ToolsError;
use crate::fetch::{HttpGet, HttpRequest};
use crate::files::{self, FileTool, Jail};
use crate::glob::Glob;
use crate::http::{GuardedClient, Limits};
use crate::mcp::client::{Endpoint, RmcpConnector};
use crate::mcp::{Backoff, Connector, McpManager, McpServer, McpServerStatus};
use crate::schema::{ArgsValidator, Checked};
use crate::ssrf::{DnsResolver, SystemResolver};
use crate::toolset::ToolSet;
use crate::webhook::Webhook;

/// Reads the environment variable named by a `*_env` key.
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What [`Registry::from_config_with`] takes from outside the config.
#[derive(Clone)]
pub struct BuildOptions {
    /// Reads secrets (`secret_env`); the process environment by default.
    pub env: EnvReader,
    /// Resolves host names for the SSRF guard; the system resolver by default.
    pub resolver: Arc<dyn DnsResolver>,
    /// First delay before reconnecting to a lost MCP server (doubles each
    /// time, up to `mcp_backoff_max`).
    pub mcp_backoff_initial: Duration,
    /// Longest delay between MCP reconnection attempts.
    pub mcp_backoff_max: Duration,
}

impl Default for BuildOptions {
    fn default() -> Self {
        let backoff = Backoff::default();
        BuildOptions {
            env: Arc::new(|name| std::env::var(name).ok()),
            resolver: Arc::new(SystemResolver),
            mcp_backoff_initial: backoff.initial,
            mcp_backoff_max: backoff.max,
        }
    }
}

/// The tools known to this process: built-ins, configured webhooks, and the
/// tools of `[[mcp]]` servers (which come and go with their connections).
/// Cheap to clone; clones share the MCP connections.
#[derive(Clone, Default)]
pub struct Registry {
    /// Built-in and webhook tools, by name, each validating its arguments.
    tools: BTreeMap<String, Arc<dyn Tool>>,
    /// `approval = true` tables, as name patterns.
    approval: Vec<Glob>,
    mcp: Option<Arc<McpManager>>,
}

impl Registry {
    /// The built-in tools `echo` and `ask_human` only (no config needed).
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.insert(Arc::new(Echo::new()));
        r.insert(Arc::new(AskHuman::new()));
        r
    }

    /// Every tool the config enables: `echo`, `ask_human`, `http_get`,
    /// `http_request`; `read_file`/`write_file`/`list_dir` with
    /// `[tools.files]`; each webhook; each `[[mcp]]` server's tools. Waits
    /// for the first connection attempt of each MCP server (at most its
    /// `timeout`); a server that is down is reported by
    /// [`Registry::mcp_status`] and retried in the background with backoff,
    /// so it does not fail start-up.
    ///
    /// # Errors
    /// [`ToolsError::Config`] naming the key of an unusable setting (a
    /// missing secret variable, a schema that does not compile, a webhook URL
    /// the SSRF guard refuses, a jail root that cannot be created).
    pub async fn from_config(config: &Config) -> Result<Registry, ToolsError> {
        Registry::from_config_with(config, BuildOptions::default()).await
    }

    /// [`Registry::from_config`] with explicit secrets, resolver and backoff.
    ///
    /// # Errors
    /// As [`Registry::from_config`].
    pub async fn from_config_with(
        config: &Config,
        options: BuildOptions,
    ) -> Result<Registry, ToolsError> {
        let mut r = Registry::builtin();
        let resolver = options.resolver.clone();

        let http = |name: &str| {
            let cfg = config.tools.get(name);
            GuardedClient::new(
                &format!("tools.{name}"),
                cfg.map_or(&[][..], |c| c.allow.as_slice()),
                Limits::from_config(cfg),
                resolver.clone(),
            )
        };
        r.insert(Arc::new(HttpGet::new(http("http_get")?)));
        r.insert(Arc::new(HttpRequest::new(http("http_request")?)));

        r.add_files(config)?;
        r.add_configured(config, &options)?;
        if !config.mcp.is_empty() {
            let servers = mcp_servers(config)?;
            let backoff = Backoff {
                initial: options.mcp_backoff_initial,
                max: options.mcp_backoff_max.max(options.mcp_backoff_initial),
                ..Backoff::default()
            };
            r.mcp = Some(Arc::new(McpManager::start(servers, backoff).await));
        }
        Ok(r)
    }

    /// `[tools.files]`: the file tools, jailed to its `root`.
    fn add_files(&mut self, config: &Config) -> Result<(), ToolsError> {
        if let Some(cfg) = config.tools.get("files") {
            let root = cfg
                .root
                .as_deref()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    ToolsError::config("tools.files.root", "`[tools.files]` needs `root`")
                })?;
            let jail = Jail::new(
                Path::new(root),
                cfg.max_bytes.unwrap_or(files::DEFAULT_MAX_BYTES),
            )
            .map_err(|e| {
                ToolsError::config(
                    "tools.files.root",
                    format!("cannot use {root:?} as the jail: {e}"),
                )
            })?;
            for tool in FileTool::all(jail) {
                self.insert(Arc::new(tool));
            }
        }
        Ok(())
    }

    /// The webhook tools, and the approval globs of every `[tools.NAME]`.
    fn add_configured(
        &mut self,
        config: &Config,
        options: &BuildOptions,
    ) -> Result<(), ToolsError> {
        for (name, cfg) in &config.tools {
            if cfg.kind == Some(ToolKind::Webhook) {
                let tool = webhook(name, cfg, options)?;
                if self.tools.contains_key(name) {
                    return Err(ToolsError::config(
                        format!("tools.{name}.kind"),
                        format!("`{name}` is a built-in tool; give the webhook another name"),
                    ));
                }
                self.tools.insert(name.clone(), tool);
            }
            if cfg.approval {
                if name == "files" {
                    self.approval
                        .extend(["read_file", "write_file", "list_dir"].map(Glob::new));
                } else {
                    self.approval.push(Glob::new(name));
                }
            }
        }
        Ok(())
    }

    /// Adds (or replaces) a tool; its schema is compiled here. A schema that
    /// does not compile makes every call fail validation (fail closed).
    pub fn insert(&mut self, tool: Arc<dyn Tool>) {
        let validator = ArgsValidator::compile(&tool.spec().input_schema);
        if let Some(e) = validator.error() {
            tracing::error!(tool = %tool.spec().name, error = %e, "tool input schema does not compile");
        }
        let name = tool.spec().name.clone();
        self.tools
            .insert(name, Arc::new(Checked::new(tool, validator)));
    }

    /// The tool called `name` (built-in, webhook, or `mcp:<server>/<tool>` of
    /// a connected server), validating its arguments on `call`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        if let Some(tool) = self.tools.get(name) {
            return Some(tool.clone());
        }
        let (server, _) = split_mcp(name)?;
        self.mcp
            .as_ref()?
            .server(server)?
            .tools()
            .get(name)
            .cloned()
    }

    /// Names of the built-in and webhook tools (MCP tools: [`Registry::all_names`]).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Every tool name, MCP tools of connected servers included.
    pub fn all_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tools.keys().cloned().collect();
        if let Some(mcp) = &self.mcp {
            for server in mcp.names() {
                if let Some(s) = mcp.server(server) {
                    names.extend(s.tools().keys().cloned());
                }
            }
        }
        names
    }

    /// Does a call of `name` pause for a human's approval first
    /// (`approval = true` on its `[tools.*]` table)?
    pub fn requires_approval(&self, name: &str) -> bool {
        self.approval.iter().any(|g| g.matches(name))
    }

    /// Health of each `[[mcp]]` server, in name order (empty without MCP).
    pub fn mcp_status(&self) -> Vec<McpServerStatus> {
        self.mcp.as_ref().map(|m| m.status()).unwrap_or_default()
    }

    /// Stops the MCP supervisors and closes their sessions (stdio children
    /// are terminated). Tools of those servers are gone afterwards.
    pub async fn shutdown(&self) {
        if let Some(mcp) = &self.mcp {
            mcp.shutdown().await;
        }
    }

    /// Resolves an agent's `tools` list: exact names, globs over built-in
    /// and webhook names (`http_*`), and `mcp:<server>/<tool>` or
    /// `mcp:<server>/*` (or any glob after the `/`). MCP entries stay live:
    /// the set follows the server's current tool list across reconnects.
    ///
    /// # Errors
    /// The first entry naming nothing: [`ToolsError::UnknownTool`] (with
    /// what is available) or [`ToolsError::UnknownMcpServer`]. An exact MCP
    /// tool name is checked only while its server is connected.
    pub fn resolve(&self, patterns: &[String]) -> Result<ToolSet, ToolsError> {
        let mut fixed: Vec<Arc<dyn Tool>> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut mcp = Vec::new();
        for pattern in patterns {
            let glob = Glob::new(pattern);
            if let Some(rest) = pattern.strip_prefix("mcp:") {
                mcp.push((self.resolve_mcp(pattern, rest, &glob)?.clone(), glob));
                continue;
            }
            let matched: Vec<&Arc<dyn Tool>> = if glob.is_literal() {
                self.tools.get(pattern).into_iter().collect()
            } else {
                self.tools
                    .iter()
                    .filter(|(name, _)| glob.matches(name))
                    .map(|(_, t)| t)
                    .collect()
            };
            if matched.is_empty() {
                let hint = if matches!(pattern.as_str(), "read_file" | "write_file" | "list_dir") {
                    " (the file tools need `[tools.files] root`)".to_owned()
                } else {
                    format!(
                        " (available: {})",
                        self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(ToolsError::UnknownTool {
                    name: pattern.to_owned(),
                    hint,
                });
            }
            for tool in matched {
                if seen.insert(tool.spec().name.clone()) {
                    fixed.push(tool.clone());
                }
            }
        }
        Ok(ToolSet { fixed, mcp })
    }

    /// The server an `mcp:<server>/<tool>` pattern names (`rest` is after
    /// `mcp:`); a literal tool name must be one the server lists, if the
    /// server is up to say so.
    fn resolve_mcp(
        &self,
        pattern: &str,
        rest: &str,
        glob: &Glob,
    ) -> Result<&Arc<McpServer>, ToolsError> {
        let Some((server_name, tool)) = rest
            .split_once('/')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        else {
            return Err(ToolsError::UnknownTool {
                name: pattern.to_owned(),
                hint: " (expected `mcp:<server>/<tool>` or `mcp:<server>/*`)".to_owned(),
            });
        };
        let server = self
            .mcp
            .as_ref()
            .and_then(|m| m.server(server_name))
            .ok_or_else(|| ToolsError::UnknownMcpServer {
                name: pattern.to_owned(),
                server: server_name.to_owned(),
                declared: self.mcp.as_ref().map_or_else(
                    || "none".to_owned(),
                    |m| m.names().collect::<Vec<_>>().join(", "),
                ),
            })?;
        if glob.is_literal() && server.status().healthy && !server.tools().contains_key(pattern) {
            let listed: Vec<String> = server
                .tools()
                .keys()
                .map(|k| {
                    k.trim_start_matches(&format!("mcp:{server_name}/"))
                        .to_owned()
                })
                .collect();
            return Err(ToolsError::UnknownTool {
                name: pattern.to_owned(),
                hint: format!(
                    " (MCP server `{server_name}` has no tool {tool:?}; it lists: {})",
                    if listed.is_empty() {
                        "none".to_owned()
                    } else {
                        listed.join(", ")
                    }
                ),
            });
        }
        Ok(server)
    }
}

/// Environment variables an MCP child must not inherit: every secret the
/// config names (`*_env` keys) and agentd's own `AGENTD_*` settings.
fn secret_vars(config: &Config) -> Vec<String> {
    let mut vars: BTreeSet<String> = BTreeSet::new();
    vars.extend(
        config
            .providers
            .values()
            .filter_map(|p| p.api_key_env.clone()),
    );
    vars.extend(config.store.encryption_key_env.clone());
    vars.extend(config.tools.values().filter_map(|t| t.secret_env.clone()));
    vars.extend(
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.to_ascii_uppercase().starts_with("AGENTD_")),
    );
    vars.into_iter().collect()
}

/// A connector per `[[mcp]]` entry, with its name and call timeout.
type McpServers = Vec<(String, Duration, Arc<dyn Connector>)>;

/// The `[[mcp]]` servers to start: each entry's endpoint and timeout.
fn mcp_servers(config: &Config) -> Result<McpServers, ToolsError> {
    let mut servers: McpServers = Vec::new();
    for (i, m) in config.mcp.iter().enumerate() {
        let endpoint = match (&m.command, &m.url) {
            (Some(cmd), None) if cmd.first().is_some_and(|p| !p.is_empty()) => Endpoint::Stdio {
                program: cmd[0].clone(),
                args: cmd[1..].to_vec(),
                env_remove: secret_vars(config),
            },
            (None, Some(url)) => Endpoint::Http { url: url.clone() },
            _ => {
                return Err(ToolsError::config(
                    format!("mcp[{i}]"),
                    "needs exactly one of `command` and `url`",
                ));
            }
        };
        servers.push((
            m.name.clone(),
            m.timeout.get(),
            Arc::new(RmcpConnector::new(m.name.clone(), endpoint)),
        ));
    }
    Ok(servers)
}

/// `mcp:<server>/<tool>` -> (`server`, `tool`).
fn split_mcp(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("mcp:")?.split_once('/')
}

fn webhook(
    name: &str,
    cfg: &ToolConfig,
    options: &BuildOptions,
) -> Result<Arc<dyn Tool>, ToolsError> {
    let key = |k: &str| format!("tools.{name}.{k}");
    let raw_url = cfg
        .url
        .as_deref()
        .ok_or_else(|| ToolsError::config(key("url"), "a webhook tool needs `url`"))?;
    let client = GuardedClient::new(
        &format!("tools.{name}"),
        &cfg.allow,
        Limits::from_config(Some(cfg)),
        options.resolver.clone(),
    )?;
    let url = client.guard().check_url_str(raw_url).map_err(|e| {
        ToolsError::config(
            key("url"),
            format!("{e} (list the host in `allow` to permit it)"),
        )
    })?;
    let var = cfg
        .secret_env
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ToolsError::config(key("secret_env"), "a webhook tool needs `secret_env`")
        })?;
    let secret = (options.env)(var)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ToolsError::config(
                key("secret_env"),
                format!("environment variable {var} (the webhook's HMAC secret) is not set"),
            )
        })?;
    let secret = crate::WebhookSecret::parse(&secret)
        .map_err(|e| ToolsError::config(key("secret_env"), format!("variable {var}: {e}")))?;
    let schema = cfg
        .schema
        .clone()
        .unwrap_or_else(|| json!({ "type": "object" }));
    let validator = ArgsValidator::compile(&schema);
    if let Some(e) = validator.error() {
        return Err(ToolsError::config(
            key("schema"),
            format!("not a valid JSON Schema: {e}"),
        ));
    }
    let spec = ToolSpec {
        name: name.to_owned(),
        description: cfg
            .description
            .clone()
            .unwrap_or_else(|| format!("Sends the arguments to the `{name}` webhook.")),
        input_schema: schema,
    };
    let tool = Webhook::new(spec, url, secret, client);
    Ok(Arc::new(Checked::new(Arc::new(tool), validator)))
}
