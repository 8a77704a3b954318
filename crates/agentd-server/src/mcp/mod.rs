//! Agents as an MCP server: every agent the caller may use is a tool,
//! `run_<agent>`, and a call of it is a durable run like any other (listed,
//! inspected, resumed and audited through the API). Served over streamable
//! HTTP at `/mcp`, behind the API's authentication ([`http_service`]), and
//! over stdio by `agentd mcp` ([`AgentTools::for_identity`]).
//!
//! The HTTP transport is stateless: each request is answered on its own,
//! with no session held in this process, so any replica behind a load
//! balancer can answer any request.

mod call;

use crate::AppState;
use crate::extract::Caller;
use agentd_core::Identity;
use agentd_engine::{AgentSummary, Engine};
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The prefix of an agent's tool name: agent `support` is `run_support`.
pub const TOOL_PREFIX: &str = "run_";

/// The MCP server over an engine's agents.
#[derive(Clone)]
pub struct AgentTools {
    engine: Engine,
    /// Who every call acts as (stdio); `None`: each HTTP request's
    /// authenticated caller.
    identity: Option<Identity>,
    /// Only these agents (`agentd mcp --agent`); `None`: every configured
    /// one.
    only: Option<Arc<[String]>>,
    /// How long a call waits beyond the agent's own timeout (a queue may
    /// hold the run before it starts).
    slack: Duration,
    version: Arc<str>,
}

/// `agentd mcp --agent NAME` names an agent the config does not declare.
#[derive(Debug, thiserror::Error)]
#[error("unknown agent {name:?} (configured: {configured})")]
pub struct UnknownAgent {
    pub name: String,
    pub configured: String,
}

impl AgentTools {
    /// The server for one fixed caller (stdio), offering `agents` (every
    /// configured one when empty).
    ///
    /// # Errors
    ///
    /// [`UnknownAgent`] when `agents` names one the engine does not serve.
    pub fn for_identity(
        engine: Engine,
        identity: Identity,
        agents: Vec<String>,
        slack: Duration,
        version: &str,
    ) -> Result<Self, UnknownAgent> {
        let configured = engine.agent_names();
        if let Some(name) = agents.iter().find(|a| !configured.contains(a)) {
            return Err(UnknownAgent {
                name: name.clone(),
                configured: configured.join(", "),
            });
        }
        Ok(Self {
            engine,
            identity: Some(identity),
            only: (!agents.is_empty()).then(|| agents.into()),
            slack,
            version: version.into(),
        })
    }

    fn for_requests(app: &AppState) -> Self {
        Self {
            engine: app.engine.clone(),
            identity: None,
            only: None,
            slack: app.wait_timeout,
            version: app.version.clone(),
        }
    }

    /// The agents offered, as the catalog has them now (a reload shows at
    /// the next `tools/list`).
    fn agents(&self) -> Vec<AgentSummary> {
        let mut agents = self.engine.agent_summaries();
        if let Some(only) = &self.only {
            agents.retain(|a| only.contains(&a.name));
        }
        agents
    }

    /// Who the request acts as: the fixed identity, or the caller the
    /// authentication middleware established for the HTTP request.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Identity, McpError> {
        if let Some(who) = &self.identity {
            return Ok(who.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .map(|Caller(who)| who.clone())
            // Only if `/mcp` were mounted outside the authenticated router.
            .ok_or_else(|| McpError::internal_error("the request carries no identity", None))
    }
}

impl ServerHandler for AgentTools {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("agentd", self.version.to_string());
        info.instructions = Some(
            "Each tool runs one agentd agent on `input` as a durable run and returns its \
             output; `structuredContent.run_id` names the run in agentd's API."
                .to_owned(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.caller(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.agents().iter().map(tool).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let agent = name.strip_prefix(TOOL_PREFIX)?;
        self.agents().iter().find(|a| a.name == agent).map(tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let who = self.caller(&context)?;
        let agent = request
            .name
            .strip_prefix(TOOL_PREFIX)
            .and_then(|name| self.agents().into_iter().find(|a| a.name == name))
            .ok_or_else(|| {
                McpError::invalid_params(format!("unknown tool {:?}", request.name), None)
            })?;
        let args = call::Args::parse(request.arguments.as_ref())?;
        let wait = agent.timeout + self.slack;
        let result = call::run(&self.engine, &who, &agent.name, args, wait, &context).await?;
        Ok(result.into())
    }
}

/// An agent as a tool: `run_<agent>`, its description, and the input and
/// output it takes and gives.
fn tool(agent: &AgentSummary) -> Tool {
    let description = agent.description.clone().unwrap_or_else(|| {
        format!(
            "Runs the agentd agent {:?} on `input` and returns its answer.",
            agent.name
        )
    });
    let mut tool = Tool::new(
        format!("{TOOL_PREFIX}{}", agent.name),
        description,
        object(input_schema()),
    );
    tool.title = Some(agent.name.clone());
    tool.output_schema = Some(Arc::new(object(output_schema())));
    // An agent may call tools that change things and reach the outside
    // world; a client should ask before it runs one.
    tool.annotations = Some(
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    );
    tool
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "input": {
                "type": "string",
                "description": "The run's input: the task or message for the agent.",
            },
            "conversation_id": {
                "type": "string",
                "description": "Continue this conversation: the agent sees its earlier \
                    messages, and a run waits for the conversation's active one.",
            },
        },
        "required": ["input"],
        "additionalProperties": false,
    })
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "run_id": {"type": "string", "description": "The run, at /v1/runs/{run_id}."},
            "status": {
                "type": "string",
                "enum": ["queued", "running", "paused", "succeeded", "failed", "cancelled", "dead"],
            },
            "output": {"description": "The run's output, once it succeeded."},
            "question": {
                "type": "string",
                "description": "What a paused run asks: answer it at /v1/runs/{run_id}/resume.",
            },
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "required": ["run_id", "status"],
    })
}

/// `/mcp`: MCP over streamable HTTP for `app`'s agents. Mount it behind
/// the authentication middleware: each request acts as its caller.
pub(crate) fn http_service(
    app: &AppState,
) -> StreamableHttpService<AgentTools, NeverSessionManager> {
    let tools = AgentTools::for_requests(app);
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_max_request_body_bytes(app.max_body_bytes)
        .with_cancellation_token(app.shutdown.child_token());
    // The Host check defends an unauthenticated local server against DNS
    // rebinding; with a credential required, a rebound page has none, and
    // a deployment's host names are not known here.
    if !app.auth.trusts_headers() {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// Serves `tools` over stdin and stdout until the client closes them or
/// `stop` fires.
///
/// # Errors
///
/// The transport failed to start (stdin or stdout unusable) or the
/// client's `initialize` was malformed.
pub async fn serve_stdio(
    tools: AgentTools,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    use rmcp::ServiceExt;
    let running = tools
        .serve_with_ct(rmcp::transport::stdio(), stop)
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
