//! `agentd mcp`: the agents as MCP tools over stdio, driven by the official
//! `mcp` Python SDK, which starts the binary as its child process (as a
//! desktop client does). The calls are runs in the configured store.

use crate::support::{Workspace, text};
use std::path::PathBuf;

const AGENTS: &str = r#"
[queue]
poll_interval = "20ms"
max_attempts = 2
backoff = { initial = "10ms", max = "10ms" }

[providers.mock]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.asker]
kind = "mock"
script = [{ tool = "ask_human", args = { question = "ok?" } }, { reply = "answer: {{tool_result}}" }]

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "broken"
providers = ["down"]

[[agents]]
name = "demo"
providers = ["mock"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]

[[agents]]
name = "writer"
description = "Writes a short poem about its input."
providers = ["mock"]
tools = ["echo"]

# Not offered: `--agent` names the four above.
[[agents]]
name = "hidden"
providers = ["mock"]
tools = ["echo"]
"#;

#[test]
fn the_official_mcp_sdk_runs_agents_over_stdio() {
    if !agentd_test_support::python::module_available("mcp", "mcp==2.3.0") {
        return;
    }
    // Arrange
    let ws = Workspace::new();
    let config = ws.write_config(AGENTS);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agentd-server/tests/api/mcp_sdk.py");

    // Act: the SDK starts `agentd mcp` and makes its calls, each asserted
    let ids = agentd_test_support::python::run_script(
        &script,
        &[
            "stdio".into(),
            crate::support::BIN.into(),
            config.to_str().unwrap().into(),
        ],
    );

    // Assert: the calls are runs of the tenant and principal it was given
    let show = |id: &str, tenant: &str| {
        ws.cmd()
            .args(["--config", config.to_str().unwrap(), "--json"])
            .args(["runs", "show", id, "--tenant", tenant])
            .output()
            .unwrap()
    };
    let plain = ids["plain"].as_str().unwrap();
    let out = show(plain, "acme");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &shown["run"];
    assert_eq!(run["status"], "succeeded", "{shown}");
    assert_eq!(run["principal"], "desk", "{shown}");
    assert_eq!(run["metadata"]["mcp"]["tool"], "run_demo", "{shown}");
    // Another tenant's run is not found, as a missing one is.
    let out = show(plain, "globex");
    assert_eq!(out.status.code(), Some(1), "another tenant read the run");
    assert!(
        text(&out.stderr).contains(&format!("run {plain} not found")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_agent_is_a_usage_error_naming_the_configured_ones() {
    let ws = Workspace::new();
    let config = ws.write_config(AGENTS);

    let out = ws
        .cmd()
        .args(["--config", config.to_str().unwrap()])
        .args(["mcp", "--agent", "nobody"])
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--agent: unknown agent \"nobody\""),
        "{stderr}"
    );
    assert!(stderr.contains("writer"), "{stderr}");
}
