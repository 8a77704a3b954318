//! Crash recovery for real: `agentd serve` is killed with SIGKILL while runs
//! are mid-flight, restarted on the same database, and every run must finish
//! with a gap-free, duplicate-free journal.

use crate::support::{Server, Workspace, free_port};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RUNS: usize = 30;
/// llm, tool, llm, tool, llm, tool, llm.
const STEPS_PER_RUN: usize = 7;

fn config(port: u16) -> String {
    // A lease far longer than the test: runs only continue promptly if the
    // restarted process reclaims its own node's leases at start-up.
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[queue]
workers = 8
lease = "5m"
node_id = "crash-test-node"

[providers.slow]
kind = "mock"
latency_ms = 60
script = [
  {{ tool = "echo", args = {{ text = "{{{{input}}}}-1" }} }},
  {{ tool = "echo", args = {{ text = "{{{{input}}}}-2" }} }},
  {{ tool = "echo", args = {{ text = "{{{{input}}}}-3" }} }},
  {{ reply = "done: {{{{tool_result}}}}" }},
]

[[agents]]
name = "w"
providers = ["slow"]
tools = ["echo"]
"#
    )
}

async fn runs(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{base}/v1/runs?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

/// Waits until some run has journaled steps but is not finished, so the
/// kill lands mid-run.
async fn wait_mid_flight(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = runs(client, base).await;
        let mid = items
            .iter()
            .filter(|r| r["status"] == "running" && r["steps"].as_u64().unwrap_or(0) >= 1)
            .count();
        let unfinished = items.iter().filter(|r| r["status"] != "succeeded").count();
        if mid >= 1 && unfinished >= 4 {
            return;
        }
        assert!(Instant::now() < deadline, "no run was ever mid-flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_repeats_nothing() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = ws.write_config(&config(port));
    let client = reqwest::Client::new();

    let server = Server::start(&ws, &cfg, port);
    let base = server.base.clone();
    for i in 0..RUNS {
        let resp = client
            .post(format!("{base}/v1/agents/w/runs"))
            .json(&json!({ "input": format!("m{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }

    // Kill twice mid-flight, restarting on the same database each time.
    wait_mid_flight(&client, &base).await;
    server.kill9();
    let server = Server::start(&ws, &cfg, port);
    wait_mid_flight(&client, &base).await;
    server.kill9();
    let server = Server::start(&ws, &cfg, port);

    let deadline = Instant::now() + Duration::from_secs(60);
    let items = loop {
        let items = runs(&client, &server.base).await;
        if items.len() == RUNS && items.iter().all(|r| r["status"] == "succeeded") {
            break items;
        }
        let stuck: Vec<_> = items
            .iter()
            .filter(|r| r["status"] != "succeeded")
            .map(|r| format!("{} {}", r["id"], r["status"]))
            .collect();
        assert!(Instant::now() < deadline, "runs not finished: {stuck:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut reclaimed = 0;
    for run in &items {
        let id = run["id"].as_str().unwrap();
        let input = run["input"].as_str().unwrap();
        assert_eq!(run["output"], format!("done: {input}-3"));
        assert_eq!(run["steps"], STEPS_PER_RUN);
        if run["attempt"].as_u64().unwrap() > 1 {
            reclaimed += 1;
        }
        let steps: Value = client
            .get(format!("{}/v1/runs/{id}/steps", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let steps = steps["items"].as_array().unwrap();
        let indexes: Vec<u64> = steps.iter().map(|s| s["index"].as_u64().unwrap()).collect();
        assert_eq!(
            indexes,
            (0..STEPS_PER_RUN as u64).collect::<Vec<_>>(),
            "run {id}"
        );
        for (i, s) in steps.iter().enumerate() {
            let kind = if i % 2 == 0 { "llm" } else { "tool" };
            assert_eq!(s["kind"], kind, "run {id} step {i}");
            assert_eq!(s["status"], "completed", "run {id} step {i}");
        }
        // The journal replays exactly: tool n echoes "<input>-n".
        for (n, s) in steps.iter().filter(|s| s["kind"] == "tool").enumerate() {
            assert_eq!(s["output"], format!("{input}-{}", n + 1), "run {id}");
        }
    }
    assert!(reclaimed >= 1, "no run was ever interrupted by the kills");
}
