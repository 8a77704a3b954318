//! An approval pause survives SIGKILL: after a restart, approving runs the
//! webhook exactly once, with the step's idempotency key.

use crate::support::{Server, Workspace, free_port};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A webhook receiver on loopback that records each request's
/// Idempotency-Key header.
fn hook_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let hook = agentd_test_support::WebhookReceiver::start(|| ("200 OK", r#"{"deployed":true}"#));
    (hook.port, hook.keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_pause_survives_sigkill_and_the_tool_runs_exactly_once() {
    // Arrange: a webhook tool that needs approval, pointing at a local
    // receiver (allowed past the SSRF guard explicitly).
    let ws = Workspace::new();
    let (hook_port, hits) = hook_server();
    let port = free_port();
    let cfg = ws.write_config(&format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[queue]
node_id = "approval-test"

[tools.deploy]
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
secret_env = "TEST_WEBHOOK_SECRET"
allow = ["127.0.0.1"]
approval = true
description = "Deploy a version"
schema = {{ type = "object", properties = {{ version = {{ type = "string" }} }}, required = ["version"] }}

[providers.ops]
kind = "mock"
script = [
  {{ tool = "deploy", args = {{ version = "{{{{input}}}}" }} }},
  {{ reply = "finished: {{{{tool_result}}}}" }},
]

[[agents]]
name = "ops"
providers = ["ops"]
tools = ["deploy"]
"#
    ));
    let client = reqwest::Client::new();
    let server = Server::start(&ws, &cfg, port);

    // Act 1: the run pauses before the webhook is called.
    let run: Value = client
        .post(format!("{}/v1/agents/ops/runs", server.base))
        .json(&json!({ "input": "v7", "wait": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "paused", "{run}");
    assert_eq!(run["pause"]["tool"], "deploy");
    assert_eq!(run["pause"]["args"], json!({ "version": "v7" }));
    assert!(
        hits.lock().unwrap().is_empty(),
        "the tool ran before approval"
    );
    let id = run["id"].as_str().unwrap().to_string();

    // Act 2: crash, restart, approve.
    server.kill9();
    let server = Server::start(&ws, &cfg, port);
    let bad = client
        .post(format!("{}/v1/runs/{id}/resume", server.base))
        .json(&json!({ "answer": "yes please" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "an approval needs {{\"approve\": bool}}");
    let done: Value = client
        .post(format!("{}/v1/runs/{id}/resume", server.base))
        .json(&json!({ "answer": { "approve": true }, "wait": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert: succeeded, the webhook ran once, keyed by run and step.
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["output"].as_str().unwrap().contains("deployed"),
        "{done}"
    );
    let hits = hits.lock().unwrap().clone();
    assert_eq!(
        hits,
        vec![format!("{id}:2")],
        "exactly one call, step 2's key"
    );
}
