//! The registry built from config: what exists, how agent tool lists
//! resolve, argument validation before execution, approvals.

use agentd_config::Config;
use agentd_tools::{Registry, ToolError, ToolOutput, ToolsError, provider_tool_name};
use serde_json::json;

use crate::common::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn builds_from_config_and_resolves_agent_lists() {
    let reg = Registry::from_config(&Config::embedded()).await.unwrap();
    assert_eq!(
        reg.names().collect::<Vec<_>>(),
        ["ask_human", "echo", "http_get", "http_request"]
    );
    assert!(reg.mcp_status().is_empty());

    let set = reg.resolve(&names(&["echo", "http_*", "echo"])).unwrap();
    assert_eq!(set.names(), ["echo", "http_get", "http_request"]);
    let specs = set.specs();
    assert_eq!(specs[0].input_schema["required"], json!(["text"]));
    assert!(specs.iter().all(|s| !s.description.is_empty()));

    let err = reg.resolve(&names(&["echo", "ech0"])).err().unwrap();
    assert_eq!(
        err.to_string(),
        "unknown tool \"ech0\" (available: ask_human, echo, http_get, http_request)"
    );
    assert!(matches!(
        reg.resolve(&names(&["nope_*"])),
        Err(ToolsError::UnknownTool { .. })
    ));
    assert_eq!(
        reg.resolve(&names(&["mcp:files/*"]))
            .err()
            .unwrap()
            .to_string(),
        "unknown MCP server \"files\" in \"mcp:files/*\" (declared: none)"
    );
    assert!(matches!(
        reg.resolve(&names(&["mcp:files"])),
        Err(ToolsError::UnknownTool { .. })
    ));
    assert!(reg.resolve(&[]).unwrap().specs().is_empty());
}

#[tokio::test]
async fn arguments_are_validated_before_execution() {
    let reg = Registry::from_config(&Config::embedded()).await.unwrap();
    let set = reg.resolve(&names(&["echo", "ask_human"])).unwrap();
    let c = ctx();
    assert_eq!(
        set.call(&c, "echo", &json!({ "text": "hi" }))
            .await
            .unwrap(),
        ToolOutput::Value(json!("hi"))
    );
    for bad in [
        json!({ "text": 5 }),
        json!({}),
        json!("hi"),
        json!(null),
        json!([1, 2]),
        json!({ "text": { "nested": true } }),
    ] {
        let echo = set.get("echo").unwrap();
        let err = echo.validate(&bad).unwrap_err();
        let ToolError::InvalidArgs { tool, message } =
            set.call(&c, "echo", &bad).await.unwrap_err()
        else {
            panic!("{bad}: must be invalid args");
        };
        assert_eq!(tool, "echo");
        assert!(
            message.starts_with("arguments do not match the tool's schema: at "),
            "{message}"
        );
        assert_eq!(
            err.to_string(),
            format!("invalid arguments for tool echo: {message}")
        );
    }
    let ToolError::InvalidArgs { message, .. } = set
        .call(&c, "echo", &json!({ "text": 5 }))
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        message,
        "arguments do not match the tool's schema: at /text: 5 is not of type \"string\""
    );
    // A tool the agent does not list is reported to the model, not run.
    let err = set
        .call(&c, "http_get", &json!({ "url": "http://x" }))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("this agent has no tool named \"http_get\"")
    );
    // The wrapper keeps what the engine asks of the inner tool.
    assert!(set.get("ask_human").unwrap().journal_only());
    assert!(!set.get("echo").unwrap().journal_only());
}

#[tokio::test]
async fn approvals_and_unreachable_mcp_servers() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry_with(
        &format!(
            r#"
[tools.http_request]
approval = true

[tools.files]
root = {:?}
approval = true

[tools."mcp:down/write_*"]
approval = true

[[mcp]]
name = "down"
command = ["/nonexistent/mcp-server", "--stdio"]
timeout = "2s"
"#,
            dir.path().join("ws").display().to_string()
        ),
        FakeDns::new(&[]),
        &[],
    )
    .await;
    for (tool, needs) in [
        ("http_request", true),
        ("http_get", false),
        ("echo", false),
        ("read_file", true),
        ("write_file", true),
        ("list_dir", true),
        ("mcp:down/write_file", true),
        ("mcp:down/read_file", false),
        ("mcp:other/write_file", false),
    ] {
        assert_eq!(reg.requires_approval(tool), needs, "{tool}");
    }

    // The server that cannot start does not fail start-up: it is reported.
    let status = reg.mcp_status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, "down");
    assert!(!status[0].healthy);
    assert!(
        status[0]
            .detail
            .contains("cannot start \"/nonexistent/mcp-server\""),
        "{}",
        status[0].detail
    );
    assert!(
        status[0].detail.contains("retrying in"),
        "{}",
        status[0].detail
    );

    // Its tools can be listed by agents; they appear when it comes up, and
    // calling one meanwhile fails clearly.
    let set = reg
        .resolve(&names(&["echo", "mcp:down/*", "mcp:down/exact"]))
        .unwrap();
    assert_eq!(set.names(), ["echo"]);
    assert!(set.covers("mcp:down/anything"));
    let err = set
        .call(&ctx(), "mcp:down/exact", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("unavailable"), "{err}");
    assert!(matches!(
        reg.resolve(&names(&["mcp:up/*"])),
        Err(ToolsError::UnknownMcpServer { declared, .. }) if declared == "down"
    ));
    reg.shutdown().await;
    assert_eq!(reg.mcp_status()[0].detail, "stopped");
}

#[test]
fn provider_names_are_safe() {
    for (name, wire) in [
        ("echo", "echo"),
        ("http_get", "http_get"),
        ("notify-2", "notify-2"),
        ("mcp:files/read", "mcp__files__read"),
        ("mcp:files/read.file v2", "mcp__files__read_file_v2"),
    ] {
        assert_eq!(provider_tool_name(name), wire);
    }
    let long = format!("mcp:s/{}", "x".repeat(100));
    let wire = provider_tool_name(&long);
    assert_eq!(wire.len(), 64);
    assert_ne!(
        wire,
        provider_tool_name(&format!("{long}y")),
        "the hash keeps them apart"
    );
}
