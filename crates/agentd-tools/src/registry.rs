//! The [`Registry`] of every tool this process can run, built from the
//! config, and the [`ToolSet`] an agent's `tools` list resolves to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentd_config::{Config, ToolConfig, ToolKind};
use agentd_core::ToolSpec;
use serde_json::{Value, json};

use crate::builtin::{AskHuman, Echo};
use crate::error::ToolsError;
use crate::fetch::{HttpGet, HttpRequest};
use crate::files::{self, FileTool, Jail};
use crate::glob::Glob;
use crate::http::{GuardedClient, Limits};
use crate::mcp::client::{Endpoint, RmcpConnector};
use crate::mcp::{Backoff, Connector, McpManager, McpServer, McpServerStatus};
use crate::schema::ArgsValidator;
use crate::ssrf::{DnsResolver, SystemResolver};
use crate::webhook::Webhook;
use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// A tool wrapped with its compiled input-schema validator: `validate`
/// checks, and `call` checks before running the tool.
pub(crate) struct Checked {
    inner: Arc<dyn Tool>,
    validator: ArgsValidator,
}

impl Checked {
    pub(crate) fn new(inner: Arc<dyn Tool>, validator: ArgsValidator) -> Checked {
        Checked { inner, validator }
    }
}

#[async_trait::async_trait]
impl Tool for Checked {
    fn spec(&self) -> &ToolSpec {
        self.inner.spec()
    }

    fn validate(&self, args: &Value) -> Result<(), ToolError> {
        self.validator.check(&self.inner.spec().name, args)
    }

    fn journal_only(&self) -> bool {
        self.inner.journal_only()
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        self.validate(args)?;
        self.inner.call(ctx, args).await
    }
}

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
                r.insert(Arc::new(tool));
            }
        }

        for (name, cfg) in &config.tools {
            if cfg.kind == Some(ToolKind::Webhook) {
                let tool = webhook(name, cfg, &options)?;
                if r.tools.contains_key(name) {
                    return Err(ToolsError::config(
                        format!("tools.{name}.kind"),
                        format!("`{name}` is a built-in tool; give the webhook another name"),
                    ));
                }
                r.tools.insert(name.clone(), tool);
            }
            if cfg.approval {
                if name == "files" {
                    r.approval
                        .extend(["read_file", "write_file", "list_dir"].map(Glob::new));
                } else {
                    r.approval.push(Glob::new(name));
                }
            }
        }

        if !config.mcp.is_empty() {
            let mut servers: Vec<(String, Duration, Arc<dyn Connector>)> = Vec::new();
            for (i, m) in config.mcp.iter().enumerate() {
                let endpoint = match (&m.command, &m.url) {
                    (Some(cmd), None) if cmd.first().is_some_and(|p| !p.is_empty()) => {
                        Endpoint::Stdio {
                            program: cmd[0].clone(),
                            args: cmd[1..].to_vec(),
                            env_remove: secret_vars(config),
                        }
                    }
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
            let backoff = Backoff {
                initial: options.mcp_backoff_initial,
                max: options.mcp_backoff_max.max(options.mcp_backoff_initial),
                ..Backoff::default()
            };
            r.mcp = Some(Arc::new(McpManager::start(servers, backoff).await));
        }
        Ok(r)
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
                let Some((server_name, tool)) = rest
                    .split_once('/')
                    .filter(|(s, t)| !s.is_empty() && !t.is_empty())
                else {
                    return Err(ToolsError::UnknownTool {
                        name: pattern.clone(),
                        hint: " (expected `mcp:<server>/<tool>` or `mcp:<server>/*`)".to_owned(),
                    });
                };
                let server = self
                    .mcp
                    .as_ref()
                    .and_then(|m| m.server(server_name))
                    .ok_or_else(|| ToolsError::UnknownMcpServer {
                        name: pattern.clone(),
                        server: server_name.to_owned(),
                        declared: self.mcp.as_ref().map_or_else(
                            || "none".to_owned(),
                            |m| m.names().collect::<Vec<_>>().join(", "),
                        ),
                    })?;
                if glob.is_literal()
                    && server.status().healthy
                    && !server.tools().contains_key(pattern)
                {
                    let listed: Vec<String> = server
                        .tools()
                        .keys()
                        .map(|k| {
                            k.trim_start_matches(&format!("mcp:{server_name}/"))
                                .to_owned()
                        })
                        .collect();
                    return Err(ToolsError::UnknownTool {
                        name: pattern.clone(),
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
                mcp.push((server.clone(), glob));
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
                    name: pattern.clone(),
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
    let tool = Webhook::new(spec, url, secret.into_bytes(), client);
    Ok(Arc::new(Checked::new(Arc::new(tool), validator)))
}

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
    fixed: Vec<Arc<dyn Tool>>,
    mcp: Vec<(Arc<McpServer>, Glob)>,
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
