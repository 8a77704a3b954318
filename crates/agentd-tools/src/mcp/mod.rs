//! MCP servers (`[[mcp]]`): one supervisor task per server connects (stdio
//! child process or streamable HTTP), lists its tools as
//! `mcp:<server>/<tool>`, watches the connection and reconnects with
//! exponential backoff when it is lost. The SDK (`rmcp`) sits behind the
//! [`Connector`]/[`Session`] traits in [`client`], so its churn stays there.

pub(crate) mod client;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use agentd_core::ToolSpec;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::schema::{ArgsValidator, Checked};
use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// A tool as an MCP server lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteTool {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) input_schema: Value,
}

/// A tool call's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallResult {
    /// The server flagged the result as an error (the model is told).
    pub(crate) is_error: bool,
    pub(crate) value: Value,
}

/// Why an MCP operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum McpError {
    /// Could not start or initialize a session.
    #[error("{0}")]
    Connect(String),
    /// The session is unusable; the supervisor reconnects.
    #[error("connection lost: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("{0}")]
    Remote(String),
}

/// Opens sessions to one server.
#[async_trait::async_trait]
pub(crate) trait Connector: Send + Sync + 'static {
    async fn connect(&self) -> Result<Arc<dyn Session>, McpError>;
}

/// One live connection to a server.
#[async_trait::async_trait]
pub(crate) trait Session: Send + Sync + 'static {
    async fn list_tools(&self) -> Result<Vec<RemoteTool>, McpError>;
    async fn call_tool(&self, name: &str, args: Map<String, Value>)
    -> Result<CallResult, McpError>;
    /// Resolves once the session has ended (process exited, stream closed).
    async fn closed(&self);
    /// Ends the session (and its child process).
    async fn close(&self);
    /// The last thing the server said on stderr, for status messages.
    fn last_words(&self) -> Option<String>;
}

/// Reconnection delays: doubling from `initial` up to `max`, back to
/// `initial` after a connection stayed up for `stable`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) stable: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            stable: Duration::from_secs(30),
        }
    }
}

/// Health of one MCP server, for `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct McpServerStatus {
    /// The `[[mcp]]` name.
    pub name: String,
    /// Connected, with its tools listed.
    pub healthy: bool,
    /// What is going on, e.g. `connected, 3 tools` or `cannot connect: ...;
    /// retrying in 2s`.
    pub detail: String,
    /// Tools currently exposed.
    pub tools: usize,
    /// Times the connection was lost and re-established.
    pub restarts: u32,
}

struct State {
    /// The live session and its generation.
    session: Option<(u64, Arc<dyn Session>)>,
    generation: u64,
    /// Tools of the live session, by full name `mcp:<server>/<tool>`.
    tools: Arc<BTreeMap<String, Arc<dyn Tool>>>,
    healthy: bool,
    detail: String,
    restarts: u32,
}

/// One `[[mcp]]` server and its supervisor's view of it.
pub(crate) struct McpServer {
    name: String,
    timeout: Duration,
    connector: Arc<dyn Connector>,
    state: RwLock<State>,
    /// A call saw the transport of this generation fail.
    lost: watch::Sender<u64>,
    /// Set once the first connection attempt has finished, either way.
    attempted: watch::Sender<bool>,
}

impl McpServer {
    fn new(name: String, timeout: Duration, connector: Arc<dyn Connector>) -> McpServer {
        McpServer {
            name,
            timeout,
            connector,
            state: RwLock::new(State {
                session: None,
                generation: 0,
                tools: Arc::new(BTreeMap::new()),
                healthy: false,
                detail: "starting".to_owned(),
                restarts: 0,
            }),
            lost: watch::channel(0).0,
            attempted: watch::channel(false).0,
        }
    }

    /// The tools of the live session (empty while disconnected).
    pub(crate) fn tools(&self) -> Arc<BTreeMap<String, Arc<dyn Tool>>> {
        match self.state.read() {
            Ok(s) => s.tools.clone(),
            Err(poisoned) => poisoned.into_inner().tools.clone(),
        }
    }

    pub(crate) fn status(&self) -> McpServerStatus {
        let read = |s: &State| McpServerStatus {
            name: self.name.clone(),
            healthy: s.healthy,
            detail: s.detail.clone(),
            tools: s.tools.len(),
            restarts: s.restarts,
        };
        match self.state.read() {
            Ok(s) => read(&s),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    fn session(&self) -> Result<(u64, Arc<dyn Session>), String> {
        let state = match self.state.read() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.session.clone().ok_or_else(|| state.detail.clone())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        match self.state.write() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A call found the session of `generation` broken: reconnect.
    fn report_lost(&self, generation: u64) {
        self.lost.send_replace(generation);
    }

    /// Lists the session's tools, each wrapped with its compiled validator.
    async fn list(
        self: &Arc<Self>,
        session: &Arc<dyn Session>,
    ) -> Result<(BTreeMap<String, Arc<dyn Tool>>, Vec<String>), McpError> {
        let mut tools: BTreeMap<String, Arc<dyn Tool>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for remote in session.list_tools().await? {
            let full = format!("mcp:{}/{}", self.name, remote.name);
            let validator = ArgsValidator::compile(&remote.input_schema);
            if let Some(e) = validator.error() {
                tracing::warn!(server = %self.name, tool = %remote.name, error = %e,
                    "MCP tool skipped: its input schema does not compile");
                skipped.push(remote.name);
                continue;
            }
            let tool = McpTool {
                spec: ToolSpec {
                    name: full.clone(),
                    description: remote.description,
                    input_schema: remote.input_schema,
                },
                remote: remote.name,
                server: Arc::downgrade(self),
            };
            tools.insert(full, Arc::new(Checked::new(Arc::new(tool), validator)));
        }
        Ok((tools, skipped))
    }

    /// The supervisor: connect, serve until the session ends, back off,
    /// repeat, until `stop` says so.
    async fn supervise(self: Arc<Self>, stop: watch::Receiver<bool>, backoff: Backoff) {
        self.clone().supervise_loop(stop, backoff).await;
        self.update(|s| {
            s.session = None;
            s.tools = Arc::new(BTreeMap::new());
            s.healthy = false;
            s.detail = "stopped".to_owned();
        });
    }

    async fn supervise_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>, backoff: Backoff) {
        let mut delay = backoff.initial;
        loop {
            let attempt = async {
                let session = self.connector.connect().await?;
                match self.list(&session).await {
                    Ok(listed) => Ok((session, listed)),
                    Err(e) => {
                        session.close().await;
                        Err(e)
                    }
                }
            };
            let outcome = tokio::select! {
                r = tokio::time::timeout(self.timeout, attempt) => r,
                () = stopped(&mut stop) => return,
            };
            let why = match outcome {
                Ok(Ok((session, (tools, skipped)))) => {
                    let mut generation = 0;
                    let count = tools.len();
                    self.update(|s| {
                        s.generation += 1;
                        generation = s.generation;
                        s.session = Some((generation, session.clone()));
                        s.tools = Arc::new(tools);
                        s.healthy = true;
                        s.detail = if skipped.is_empty() {
                            format!("connected, {count} tools")
                        } else {
                            format!(
                                "connected, {count} tools ({} skipped: invalid input schema)",
                                skipped.join(", ")
                            )
                        };
                    });
                    self.attempted.send_replace(true);
                    tracing::info!(server = %self.name, tools = count, "MCP server connected");
                    let up_since = tokio::time::Instant::now();
                    let mut lost = self.lost.subscribe();
                    let why = tokio::select! {
                        () = session.closed() => session
                            .last_words()
                            .map_or_else(|| "the server closed the connection".to_owned(),
                                |w| format!("the server exited ({w})")),
                        () = async {
                            let _ = lost.wait_for(|g| *g == generation).await;
                        } => "a call found the connection broken".to_owned(),
                        () = stopped(&mut stop) => {
                            session.close().await;
                            return;
                        }
                    };
                    session.close().await;
                    if up_since.elapsed() >= backoff.stable {
                        delay = backoff.initial;
                    }
                    self.update(|s| s.restarts += 1);
                    format!("connection lost: {why}")
                }
                Ok(Err(e)) => format!("cannot connect: {e}"),
                Err(_) => format!("no answer within {:?}", self.timeout),
            };
            tracing::warn!(server = %self.name, retry_in = ?delay, "MCP server unavailable: {why}");
            self.update(|s| {
                s.session = None;
                s.tools = Arc::new(BTreeMap::new());
                s.healthy = false;
                s.detail = format!("{why}; retrying in {delay:?}");
            });
            self.attempted.send_replace(true);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => return,
            }
            delay = (delay * 2).min(backoff.max);
        }
    }
}

/// Resolves when `stop` turns true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A tool of an MCP server.
struct McpTool {
    spec: ToolSpec,
    /// The name the server knows it by.
    remote: String,
    server: Weak<McpServer>,
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let tool = self.spec.name.as_str();
        let Some(server) = self.server.upgrade() else {
            return Err(ToolError::failed(tool, "the MCP client has shut down"));
        };
        let Some(args) = args.as_object() else {
            return Err(ToolError::invalid(tool, "arguments must be a JSON object"));
        };
        let (generation, session) = server.session().map_err(|detail| {
            ToolError::failed(
                tool,
                format!("MCP server `{}` is unavailable: {detail}", server.name),
            )
        })?;
        let call = session.call_tool(&self.remote, args.clone());
        match tokio::time::timeout(server.timeout, call).await {
            Err(_) => Err(ToolError::failed(
                tool,
                format!(
                    "MCP server `{}` did not answer within {:?}",
                    server.name, server.timeout
                ),
            )),
            Ok(Err(McpError::Remote(message))) => Err(ToolError::invalid(
                tool,
                format!(
                    "MCP server `{}` answered with an error: {message}",
                    server.name
                ),
            )),
            Ok(Err(e)) => {
                server.report_lost(generation);
                Err(ToolError::failed(
                    tool,
                    format!("MCP server `{}`: {e}", server.name),
                ))
            }
            Ok(Ok(CallResult {
                is_error: true,
                value,
            })) => Ok(ToolOutput::Value(json!({ "error": value }))),
            Ok(Ok(CallResult { value, .. })) => Ok(ToolOutput::Value(value)),
        }
    }
}

/// All `[[mcp]]` servers and their supervisors. Dropping the last handle
/// stops them (children are killed); [`McpManager::shutdown`] also waits.
pub(crate) struct McpManager {
    servers: BTreeMap<String, Arc<McpServer>>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl McpManager {
    /// Starts a supervisor per server and waits (each at most its timeout)
    /// for the first connection attempts, so tools of reachable servers are
    /// known when this returns. Unreachable servers keep being retried.
    pub(crate) async fn start(
        servers: Vec<(String, Duration, Arc<dyn Connector>)>,
        backoff: Backoff,
    ) -> McpManager {
        let (stop, stop_rx) = watch::channel(false);
        let mut map = BTreeMap::new();
        let mut tasks = Vec::new();
        let mut longest = Duration::ZERO;
        for (name, timeout, connector) in servers {
            let server = Arc::new(McpServer::new(name.clone(), timeout, connector));
            longest = longest.max(timeout);
            tasks.push(tokio::spawn(
                server.clone().supervise(stop_rx.clone(), backoff),
            ));
            map.insert(name, server);
        }
        let first_attempts = futures::future::join_all(map.values().map(|s| {
            let mut rx = s.attempted.subscribe();
            async move {
                let _ = rx.wait_for(|done| *done).await;
            }
        }));
        let _ = tokio::time::timeout(longest + Duration::from_secs(1), first_attempts).await;
        McpManager {
            servers: map,
            stop,
            tasks: std::sync::Mutex::new(tasks),
        }
    }

    pub(crate) fn server(&self, name: &str) -> Option<&Arc<McpServer>> {
        self.servers.get(name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    pub(crate) fn status(&self) -> Vec<McpServerStatus> {
        self.servers.values().map(|s| s.status()).collect()
    }

    /// Stops every supervisor and waits for their sessions to close.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for McpManager {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
