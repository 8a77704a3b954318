//! The `rmcp` (official MCP Rust SDK) side of [`Connector`] and [`Session`]:
//! the only file that names rmcp types.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult};
use rmcp::service::{Peer, RoleClient, RunningServiceCancellationToken, ServiceError};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Map, Value};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use super::{CallResult, Connector, McpError, RemoteTool, Session};

/// How long `close` waits for the session (and child) to end.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where a server lives.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// A child process speaking MCP on stdin/stdout. It inherits the
    /// environment minus `env_remove` (agentd's own secrets).
    Stdio {
        program: String,
        args: Vec<String>,
        env_remove: Vec<String>,
    },
    /// A streamable-HTTP endpoint.
    Http { url: String },
}

/// Connects to one server with rmcp.
pub(crate) struct RmcpConnector {
    server: String,
    endpoint: Endpoint,
}

impl RmcpConnector {
    pub(crate) fn new(server: String, endpoint: Endpoint) -> RmcpConnector {
        RmcpConnector { server, endpoint }
    }
}

/// Keeps the last stderr line of a child, forwarding every line to the log.
fn forward_stderr(
    server: String,
    stderr: tokio::process::ChildStderr,
) -> Arc<Mutex<Option<String>>> {
    let tail = Arc::new(Mutex::new(None));
    let keep = tail.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(server = %server, "mcp server stderr: {line}");
            let line = line.trim();
            if !line.is_empty()
                && let Ok(mut t) = keep.lock()
            {
                *t = Some(line.chars().take(300).collect());
            }
        }
    });
    tail
}

fn last_line(tail: &Option<Arc<Mutex<Option<String>>>>) -> Option<String> {
    tail.as_ref()
        .and_then(|t| t.lock().ok().and_then(|l| l.clone()))
}

#[async_trait::async_trait]
impl Connector for RmcpConnector {
    async fn connect(&self) -> Result<Arc<dyn Session>, McpError> {
        let mut tail = None;
        let service = match &self.endpoint {
            Endpoint::Stdio {
                program,
                args,
                env_remove,
            } => {
                let mut command = tokio::process::Command::new(program);
                command.args(args).kill_on_drop(true);
                for var in env_remove {
                    command.env_remove(var);
                }
                let (process, stderr) = TokioChildProcess::builder(command)
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| McpError::Connect(format!("cannot start {program:?}: {e}")))?;
                tail = stderr.map(|s| forward_stderr(self.server.clone(), s));
                match ().serve(process).await {
                    Ok(service) => service,
                    Err(e) => {
                        // Give the stderr reader a moment to catch the reason.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let said = last_line(&tail)
                            .map(|l| format!(" ({l})"))
                            .unwrap_or_default();
                        return Err(McpError::Connect(format!(
                            "initialization failed: {e}{said}"
                        )));
                    }
                }
            }
            Endpoint::Http { url } => {
                let transport = StreamableHttpClientTransport::from_uri(url.as_str());
                ().serve(transport)
                    .await
                    .map_err(|e| McpError::Connect(format!("initialization failed: {e}")))?
            }
        };
        let peer = service.peer().clone();
        let cancel = service.cancellation_token();
        let (closed_tx, closed) = watch::channel(false);
        tokio::spawn(async move {
            let _ = service.waiting().await;
            closed_tx.send_replace(true);
        });
        Ok(Arc::new(RmcpSession {
            peer,
            cancel: Mutex::new(Some(cancel)),
            closed,
            tail,
        }))
    }
}

struct RmcpSession {
    peer: Peer<RoleClient>,
    cancel: Mutex<Option<RunningServiceCancellationToken>>,
    closed: watch::Receiver<bool>,
    tail: Option<Arc<Mutex<Option<String>>>>,
}

fn map_error(e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(data) => McpError::Remote(data.message.into_owned()),
        ServiceError::UnexpectedResponse => McpError::Remote("unexpected response type".to_owned()),
        other => McpError::Transport(other.to_string()),
    }
}

/// Text blocks joined as one string (what models read best); otherwise the
/// structured content, or the blocks as JSON.
fn result_value(result: CallToolResult) -> CallResult {
    let blocks: Vec<Value> = result
        .content
        .iter()
        .filter_map(|b| serde_json::to_value(b).ok())
        .collect();
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let value = if !blocks.is_empty() && texts.len() == blocks.len() {
        Value::String(texts.join("\n"))
    } else if let Some(structured) = result.structured_content {
        structured
    } else {
        Value::Array(blocks)
    };
    CallResult {
        is_error: result.is_error.unwrap_or(false),
        value,
    }
}

#[async_trait::async_trait]
impl Session for RmcpSession {
    async fn list_tools(&self) -> Result<Vec<RemoteTool>, McpError> {
        let tools = self.peer.list_all_tools().await.map_err(map_error)?;
        Ok(tools
            .into_iter()
            .map(|t| RemoteTool {
                name: t.name.to_string(),
                description: t
                    .description
                    .map(|d| d.to_string())
                    .or(t.title)
                    .unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect())
    }

    async fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<CallResult, McpError> {
        let mut params = CallToolRequestParams::new(name.to_owned()).with_arguments(args);
        params.meta = trace_meta();
        match self.peer.call_tool_once(params).await.map_err(map_error)? {
            CallToolResponse::Complete(result) => Ok(result_value(result)),
            CallToolResponse::InputRequired(_) => Err(McpError::Remote(
                "the tool asked for client input, which agentd does not provide".to_owned(),
            )),
            CallToolResponse::Task(_) => Err(McpError::Remote(
                "the tool answered with a task, which agentd does not poll".to_owned(),
            )),
            _ => Err(McpError::Remote("unexpected tool call response".to_owned())),
        }
    }

    async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    async fn close(&self) {
        let token = match self.cancel.lock() {
            Ok(mut c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(token) = token {
            token.cancel();
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, self.closed()).await;
    }

    fn last_words(&self) -> Option<String> {
        last_line(&self.tail)
    }
}

/// The current span's trace context as request `_meta` (`traceparent`,
/// `tracestate`: MCP's SEP-414), for stdio and HTTP servers alike; `None`
/// when the call is not traced.
fn trace_meta() -> Option<rmcp::model::RequestMetaObject> {
    let mut headers = reqwest::header::HeaderMap::new();
    agentd_telemetry::inject(&mut headers);
    let field = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let traceparent = field("traceparent")?;
    let mut meta = rmcp::model::RequestMetaObject::new();
    meta.set_traceparent(traceparent);
    if let Some(state) = field("tracestate") {
        meta.set_tracestate(state);
    }
    Some(meta)
}
