//! OpenAI Responses in background mode survive a SIGKILL: a response
//! created through the official `openai` SDK on one `agentd serve`, killed
//! with SIGKILL mid-run, is retrieved as completed from a second process
//! on the same database, and its conversation continues there.

use crate::support::{Server, Workspace, free_port, text};
use std::path::PathBuf;
use std::process::Command;

/// The `openai` version `.ci/run` installs.
const SDK: &str = "openai==2.54.0";

fn config(port: u16) -> String {
    // A lease far longer than the test: the run only continues promptly if
    // the restarted process reclaims its own node's leases at start-up.
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[queue]
lease = "5m"
node_id = "responses-kill-node"

# Three calls of 1.5 s: the kill lands mid-run even when the SDK's
# process is slow to hand back the id on a loaded machine.
[providers.slow]
kind = "mock"
latency_ms = 1500
script = [
  {{ tool = "echo", args = {{ text = "{{{{input}}}}-1" }} }},
  {{ tool = "echo", args = {{ text = "{{{{input}}}}-2" }} }},
  {{ reply = "[{{{{history}}}}] done: {{{{tool_result}}}}" }},
]

[[agents]]
name = "slow"
providers = ["slow"]
tools = ["echo"]
"#
    )
}

/// True if python3 can import the SDK; under CI (where `.ci/run` installs
/// it) its absence fails the test instead.
fn sdk_available() -> bool {
    agentd_test_support::python::module_available("openai", SDK)
}

/// Runs the SDK script with `args`; its stdout's last line on success.
fn sdk(args: &[&str]) -> String {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/openai_responses_kill.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openai_responses_kill.py {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_background_response_is_retrieved_after_sigkill_from_another_process() {
    if !sdk_available() {
        return;
    }
    let ws = Workspace::new();
    let port = free_port();
    let cfg = ws.write_config(&config(port));

    // Created in the background on the first server, which dies mid-run.
    let first = Server::start(&ws, &cfg, port);
    let id = sdk(&["create", &first.base]);
    first.kill9();

    // The second server finishes the run; the SDK retrieves it, and the
    // chained response reads the first exchange from the conversation.
    let second = Server::start(&ws, &cfg, port);
    let chained = sdk(&["retrieve", &second.base, &id]);
    // The memory is the whole first run: its input, tool calls and answer.
    assert_eq!(
        chained,
        "[user: survive | assistant:  | tool: survive-1 | assistant:  | tool: survive-2 | \
         assistant: [] done: survive-2] done: next-2"
    );
    // The kill landed mid-run: the second process ran a second attempt.
    let out = ws
        .cmd()
        .args(["runs", "show", &id, "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    assert_eq!(run["run"]["attempt"], 2, "{run}");
}
