//! Supervisor tests with a scripted connector, under paused time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use agentd_core::{RunId, TenantId};

use super::*;

/// What a fake session does on `call_tool`.
#[derive(Clone, Copy)]
enum OnCall {
    Answer,
    BreakTransport,
    Hang,
}

struct FakeSession {
    tools: Vec<RemoteTool>,
    on_call: OnCall,
    closed: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl Session for FakeSession {
    async fn list_tools(&self) -> Result<Vec<RemoteTool>, McpError> {
        Ok(self.tools.clone())
    }

    async fn call_tool(
        &self,
        name: &str,
        args: Map<String, Value>,
    ) -> Result<CallResult, McpError> {
        match self.on_call {
            OnCall::Answer => Ok(CallResult {
                is_error: name == "fails",
                value: json!({ "called": name, "args": args }),
            }),
            OnCall::BreakTransport => Err(McpError::Transport("broken pipe".into())),
            OnCall::Hang => std::future::pending().await,
        }
    }

    async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    async fn close(&self) {
        self.closed.send_replace(true);
    }

    fn last_words(&self) -> Option<String> {
        Some("Traceback: boom".into())
    }
}

/// Fails the first `failures` connects, then hands out sessions.
struct FakeConnector {
    failures: u32,
    attempts: AtomicU32,
    on_call: OnCall,
    sessions: Mutex<Vec<Arc<FakeSession>>>,
}

impl FakeConnector {
    fn new(failures: u32, on_call: OnCall) -> Arc<FakeConnector> {
        Arc::new(FakeConnector {
            failures,
            attempts: AtomicU32::new(0),
            on_call,
            sessions: Mutex::new(Vec::new()),
        })
    }

    fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    fn last_session(&self) -> Arc<FakeSession> {
        self.sessions.lock().unwrap().last().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Connector for FakeConnector {
    async fn connect(&self) -> Result<Arc<dyn Session>, McpError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.failures {
            return Err(McpError::Connect(format!("refused #{n}")));
        }
        let session = Arc::new(FakeSession {
            tools: vec![
                RemoteTool {
                    name: "add".into(),
                    description: "adds".into(),
                    input_schema: json!({
                        "type": "object",
                        "properties": { "a": { "type": "integer" } },
                        "required": ["a"]
                    }),
                },
                RemoteTool {
                    name: "fails".into(),
                    description: String::new(),
                    input_schema: json!({ "type": "object" }),
                },
                RemoteTool {
                    name: "broken".into(),
                    description: String::new(),
                    input_schema: json!({ "type": 12 }),
                },
            ],
            on_call: self.on_call,
            closed: watch::channel(false).0,
        });
        self.sessions.lock().unwrap().push(session.clone());
        Ok(session)
    }
}

fn ctx() -> ToolContext {
    ToolContext {
        tenant: TenantId::parse("t").unwrap(),
        run_id: RunId::new(),
        step_index: 0,
    }
}

async fn start(connector: Arc<FakeConnector>) -> McpManager {
    McpManager::start(
        vec![("fake".into(), Duration::from_secs(5), connector)],
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
            stable: Duration::from_secs(30),
        },
    )
    .await
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_exponential_backoff() {
    let connector = FakeConnector::new(3, OnCall::Answer);
    let manager = start(connector.clone()).await;
    let server = manager.server("fake").unwrap().clone();

    // The first attempt failed; start() returned without waiting for more.
    assert_eq!(connector.attempts(), 1);
    let status = server.status();
    assert!(!status.healthy);
    assert!(
        status.detail.contains("cannot connect: refused #1"),
        "{}",
        status.detail
    );
    assert!(
        status.detail.contains("retrying in 500ms"),
        "{}",
        status.detail
    );
    assert!(server.tools().is_empty());

    // Attempts at 0.5s, then +1s (1.5s), then +2s (3.5s): the 4th connects.
    sleep_ms(490).await;
    assert_eq!(connector.attempts(), 1);
    sleep_ms(20).await;
    assert_eq!(connector.attempts(), 2);
    sleep_ms(980).await;
    assert_eq!(connector.attempts(), 2, "second delay is 1s");
    sleep_ms(20).await;
    assert_eq!(connector.attempts(), 3);
    sleep_ms(1980).await;
    assert_eq!(connector.attempts(), 3, "third delay is 2s");
    sleep_ms(20).await;
    assert_eq!(connector.attempts(), 4);
    let status = server.status();
    assert!(status.healthy, "{status:?}");
    assert_eq!(status.restarts, 0);
    assert_eq!(
        status.tools, 2,
        "the tool with an uncompilable schema is skipped"
    );
    assert!(status.detail.contains("broken"), "{}", status.detail);
    assert_eq!(
        server.tools().keys().cloned().collect::<Vec<_>>(),
        ["mcp:fake/add", "mcp:fake/fails"]
    );

    // The server dies: reported with its last words, retried after 4s.
    connector.last_session().closed.send_replace(true);
    sleep_ms(1).await;
    let status = server.status();
    assert!(!status.healthy);
    assert_eq!(status.restarts, 1);
    assert!(
        status
            .detail
            .contains("the server exited (Traceback: boom)"),
        "{}",
        status.detail
    );
    assert!(
        status.detail.contains("retrying in 4s"),
        "{}",
        status.detail
    );
    assert!(server.tools().is_empty(), "no tools while down");
    sleep_ms(4000).await;
    assert_eq!(connector.attempts(), 5);
    assert!(server.status().healthy);

    // Up for longer than `stable`: the next loss retries after the initial delay.
    sleep_ms(31_000).await;
    connector.last_session().closed.send_replace(true);
    sleep_ms(510).await;
    assert_eq!(connector.attempts(), 6);
    assert!(server.status().healthy);

    manager.shutdown().await;
    assert!(
        *connector.last_session().closed.borrow(),
        "shutdown closes the session"
    );
    assert_eq!(server.status().detail, "stopped");
}

#[tokio::test(start_paused = true)]
async fn calls_validate_and_map_results() {
    let connector = FakeConnector::new(0, OnCall::Answer);
    let manager = start(connector.clone()).await;
    let server = manager.server("fake").unwrap().clone();
    let add = server.tools().get("mcp:fake/add").unwrap().clone();

    let out = add.call(&ctx(), &json!({"a": 1})).await.unwrap();
    assert_eq!(
        out,
        ToolOutput::Value(json!({"called": "add", "args": {"a": 1}})),
        "called by its remote name"
    );
    let err = add.call(&ctx(), &json!({"a": "x"})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs { .. }), "{err}");
    assert!(err.to_string().contains("at /a"), "{err}");
    let fails = server.tools().get("mcp:fake/fails").unwrap().clone();
    let out = fails.call(&ctx(), &json!({})).await.unwrap();
    assert_eq!(
        out,
        ToolOutput::Value(json!({"error": {"called": "fails", "args": {}}})),
        "isError results reach the model as an error"
    );
    manager.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn broken_transport_triggers_reconnect() {
    let connector = FakeConnector::new(0, OnCall::BreakTransport);
    let manager = start(connector.clone()).await;
    let server = manager.server("fake").unwrap().clone();
    let add = server.tools().get("mcp:fake/add").unwrap().clone();
    let err = add.call(&ctx(), &json!({"a": 1})).await.unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("broken pipe"), "{err}");
    sleep_ms(1).await;
    let status = server.status();
    assert!(!status.healthy);
    assert!(
        status.detail.contains("a call found the connection broken"),
        "{}",
        status.detail
    );
    // While down, calls fail clearly instead of hanging.
    let err = add.call(&ctx(), &json!({"a": 1})).await.unwrap_err();
    assert!(
        err.to_string().contains("MCP server `fake` is unavailable"),
        "{err}"
    );
    sleep_ms(600).await;
    assert_eq!(connector.attempts(), 2);
    assert!(server.status().healthy);
    assert_eq!(server.status().restarts, 1);
    manager.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn calls_time_out() {
    let connector = FakeConnector::new(0, OnCall::Hang);
    let manager = start(connector.clone()).await;
    let add = manager
        .server("fake")
        .unwrap()
        .tools()
        .get("mcp:fake/add")
        .unwrap()
        .clone();
    let err = add.call(&ctx(), &json!({"a": 1})).await.unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    assert!(
        err.to_string().contains("did not answer within 5s"),
        "{err}"
    );
    manager.shutdown().await;
}
