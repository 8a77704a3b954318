//! MCP against a real server written with the official Python SDK
//! (`tests/mcp_server.py`), over stdio and streamable HTTP.
//!
//! Needs `python3` with the `mcp` package: skipped (with a message) when it
//! is missing, except under CI (`CI` set), where that is a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use agentd_tools::{BuildOptions, Registry, ToolError, ToolOutput, ToolsError};
use serde_json::json;

use crate::common::*;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_server.py")
}

/// True if python3 can import `mcp`; panics under CI when it cannot.
fn python_mcp_available() -> bool {
    agentd_test_support::python::module_available("mcp.server.mcpserver", "mcp==2.3.0")
}

fn options() -> BuildOptions {
    BuildOptions {
        mcp_backoff_initial: Duration::from_millis(200),
        mcp_backoff_max: Duration::from_secs(1),
        ..BuildOptions::default()
    }
}

async fn value(reg: &Registry, tool: &str, args: serde_json::Value) -> serde_json::Value {
    match reg
        .get(tool)
        .unwrap_or_else(|| panic!("no tool {tool}"))
        .call(&ctx(), &args)
        .await
    {
        Ok(ToolOutput::Value(v)) => v,
        other => panic!("{tool}: {other:?}"),
    }
}

/// Polls until the server reports `healthy` (or the deadline passes).
async fn wait_health(reg: &Registry, healthy: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = reg.mcp_status();
        if status[0].healthy == healthy {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never became healthy={healthy}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn process_gone(pid: u64) -> bool {
    // Reaped: no /proc entry (a zombie would still have one).
    !PathBuf::from(format!("/proc/{pid}")).exists()
}

async fn eventually_gone(pid: u64) -> bool {
    for _ in 0..100 {
        if process_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Lists, resolves, validates and calls the Python server's tools.
async fn exercise(reg: &Registry) {
    let status = reg.mcp_status();
    assert_eq!(status.len(), 1);
    assert!(status[0].healthy, "{status:?}");
    assert_eq!(status[0].detail, "connected, 8 tools");

    let set = reg
        .resolve(&["echo".to_owned(), "mcp:py/*".to_owned()])
        .unwrap();
    let names = set.names();
    assert_eq!(
        names,
        [
            "echo",
            "mcp:py/add",
            "mcp:py/crash",
            "mcp:py/env",
            "mcp:py/fail",
            "mcp:py/pid",
            "mcp:py/shout",
            "mcp:py/slow",
            "mcp:py/traceparent"
        ]
    );
    // Providers get names they accept; calls by those names work.
    let wire: Vec<String> = set.provider_specs().into_iter().map(|s| s.name).collect();
    assert_eq!(wire[1], "mcp__py__add");
    assert!(wire.iter().all(|n| {
        n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }));
    assert_eq!(
        set.canonical_name("mcp__py__add").as_deref(),
        Some("mcp:py/add")
    );
    assert_eq!(
        set.call(&ctx(), "mcp__py__add", &json!({ "a": 1, "b": 2 }))
            .await
            .unwrap(),
        ToolOutput::Value(json!("3"))
    );
    let add = set
        .specs()
        .into_iter()
        .find(|s| s.name == "mcp:py/add")
        .unwrap();
    assert_eq!(add.description, "Adds two integers.");
    assert_eq!(add.input_schema["properties"]["a"]["type"], "integer");
    assert_eq!(add.input_schema["required"], json!(["a", "b"]));

    let one = reg.resolve(&["mcp:py/add".to_owned()]).unwrap();
    assert_eq!(one.names(), ["mcp:py/add"]);
    assert!(matches!(
        reg.resolve(&["mcp:py/nope".to_owned()]),
        Err(ToolsError::UnknownTool { name, hint }) if name == "mcp:py/nope"
            && hint.starts_with(" (MCP server `py` has no tool \"nope\"; it lists: add, crash, env,")
    ));

    assert_eq!(
        value(reg, "mcp:py/add", json!({ "a": 2, "b": 40 })).await,
        json!("42")
    );
    assert_eq!(
        value(reg, "mcp:py/shout", json!({ "text": "hi" })).await,
        json!("HI")
    );
    // A tool error reaches the model as an error result.
    let v = value(reg, "mcp:py/fail", json!({ "message": "boom" })).await;
    assert!(v["error"].as_str().unwrap().contains("boom"), "{v}");
    // Invalid arguments are refused locally, before the server sees them.
    let err = one
        .call(&ctx(), "mcp:py/add", &json!({ "a": "two", "b": 1 }))
        .await
        .unwrap_err();
    let ToolError::InvalidArgs { message, .. } = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("at /a"), "{message}");
    // A traced call carries its span's context in the request's `_meta`
    // (SEP-414); an untraced one carries none.
    assert_eq!(
        value(reg, "mcp:py/traceparent", json!({})).await,
        json!("<none>")
    );
    let _traced = traced();
    let span = tracing::info_span!("tool_call");
    let expected = traceparent_of(&span);
    let sent = tracing::Instrument::instrument(value(reg, "mcp:py/traceparent", json!({})), span);
    assert_eq!(sent.await, json!(expected));
}

#[tokio::test]
async fn python_server_over_stdio() {
    if !python_mcp_available() {
        return;
    }
    // A provider's key variable: an MCP child must not inherit it.
    let toml = format!(
        "[providers.main]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"CARGO_PKG_NAME\"\n\
         [[mcp]]\nname = \"py\"\ncommand = [\"python3\", {:?}, \"stdio\"]\ntimeout = \"20s\"\n",
        script().display().to_string()
    );
    let reg = Registry::from_config_with(&config(&toml), options())
        .await
        .unwrap();
    exercise(&reg).await;
    assert!(std::env::var("CARGO_PKG_NAME").is_ok());
    assert_eq!(
        value(&reg, "mcp:py/env", json!({ "name": "CARGO_PKG_NAME" })).await,
        json!("<unset>"),
        "secrets named by the config are not passed to MCP children"
    );
    assert_eq!(
        value(&reg, "mcp:py/env", json!({ "name": "CARGO_PKG_VERSION" })).await,
        json!(env!("CARGO_PKG_VERSION")),
        "the rest of the environment is"
    );

    // The server dies: the call fails, /ready's status shows it, and the
    // supervisor starts a new process.
    let first_pid = value(&reg, "mcp:py/pid", json!({}))
        .await
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let err = reg
        .get("mcp:py/crash")
        .unwrap()
        .call(&ctx(), &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err:?}");
    wait_health(&reg, true).await;
    let status = reg.mcp_status();
    assert_eq!(status[0].restarts, 1, "{status:?}");
    let second_pid = value(&reg, "mcp:py/pid", json!({}))
        .await
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_ne!(first_pid, second_pid);
    assert!(
        eventually_gone(first_pid).await,
        "the crashed child was reaped"
    );

    // Shutdown terminates and reaps the child.
    reg.shutdown().await;
    assert!(
        eventually_gone(second_pid).await,
        "child {second_pid} still running"
    );
    assert!(!reg.mcp_status()[0].healthy);
    assert!(reg.get("mcp:py/add").is_none());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_http_server(port: u16) -> tokio::process::Child {
    tokio::process::Command::new("python3")
        .arg(script())
        .args(["http", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_listening(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the Python MCP server did not listen on {port}");
}

#[tokio::test]
async fn python_server_over_streamable_http() {
    if !python_mcp_available() {
        return;
    }
    let port = free_port();
    let mut server = start_http_server(port);
    wait_listening(port).await;
    let toml = format!(
        "[[mcp]]\nname = \"py\"\nurl = \"http://127.0.0.1:{port}/mcp\"\ntimeout = \"20s\"\n"
    );
    let reg = Registry::from_config_with(&config(&toml), options())
        .await
        .unwrap();
    exercise(&reg).await;

    // The server goes away: calls fail, status turns unhealthy, and the
    // client reconnects once it is back.
    server.kill().await.unwrap();
    let err = reg
        .get("mcp:py/add")
        .unwrap()
        .call(&ctx(), &json!({ "a": 1, "b": 1 }))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err:?}");
    wait_health(&reg, false).await;
    let mut server = start_http_server(port);
    wait_listening(port).await;
    wait_health(&reg, true).await;
    assert_eq!(
        value(&reg, "mcp:py/add", json!({ "a": 1, "b": 1 })).await,
        json!("2")
    );
    assert!(reg.mcp_status()[0].restarts >= 1);
    reg.shutdown().await;
    server.kill().await.unwrap();
}
