//! Chaos, for real: agentd processes are SIGKILLed and restarted while
//! hundreds of runs are in flight, and every model and tool call they make
//! is counted outside them.
//!
//! The model is an OpenAI-compatible server in this test process and the
//! tool a webhook to the same server. Each execution gets a serial number,
//! which ends up in the journal through the call's result. So for every
//! step the test knows which execution the journal kept, and checks that no
//! execution of that step came after it: a completed step is never run
//! again. Executions before it are at-least-once redos of a step whose
//! worker died before committing it; they are counted and reported.

use crate::support::{BIN, Workspace, free_port, http_ok};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tool calls per run; each run journals `2 * TOOLS + 1` steps.
const TOOLS: u64 = 4;
/// Latency of every model call, as in the issue's mock agent.
const MODEL_LATENCY: Duration = Duration::from_millis(20);

/// Executions seen by the fake provider and webhook: per step, the serial
/// numbers of its executions, in arrival order.
#[derive(Default)]
struct Calls {
    serial: AtomicU64,
    /// Extra latency of model calls, on top of [`MODEL_LATENCY`].
    stall_ms: AtomicU64,
    /// (run input, step index) -> model executions.
    model: Mutex<HashMap<(String, u64), Vec<u64>>>,
    /// (run id, step index) -> tool executions.
    tool: Mutex<HashMap<(String, u64), Vec<u64>>>,
}

/// OpenAI chat completions: the Nth call of a run (N = tool results so
/// far) asks for tool call N+1, or replies after the last one.
async fn chat(State(calls): State<Arc<Calls>>, Json(req): Json<Value>) -> Json<Value> {
    let stall = Duration::from_millis(calls.stall_ms.load(Ordering::SeqCst));
    tokio::time::sleep(MODEL_LATENCY + stall).await;
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let input = messages
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let done = messages.iter().filter(|m| m["role"] == "tool").count() as u64;
    let serial = calls.serial.fetch_add(1, Ordering::SeqCst);
    calls
        .model
        .lock()
        .unwrap()
        .entry((input.clone(), 2 * done))
        .or_default()
        .push(serial);
    let message = if done < TOOLS {
        let args = json!({ "text": format!("{input}-{}#{serial}#", done + 1) });
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": format!("call_{serial}"),
                "type": "function",
                "function": { "name": "notify", "arguments": args.to_string() },
            }],
        })
    } else {
        json!({ "role": "assistant", "content": format!("done {input} #{serial}#") })
    };
    Json(json!({
        "id": format!("chatcmpl-{serial}"),
        "object": "chat.completion",
        "model": "chaos",
        "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 },
    }))
}

/// The webhook: records the execution under its idempotency key.
async fn hook(State(calls): State<Arc<Calls>>, headers: HeaderMap) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (run, step) = key.split_once(':').unwrap_or((key, "0"));
    let serial = calls.serial.fetch_add(1, Ordering::SeqCst);
    calls
        .tool
        .lock()
        .unwrap()
        .entry((run.to_string(), step.parse().unwrap_or(u64::MAX)))
        .or_default()
        .push(serial);
    Json(json!({ "exec": serial }))
}

async fn start_fake_services(calls: Arc<Calls>) -> u16 {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/hook", post(hook))
        .with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn config(
    store_url: &str,
    api_port: u16,
    fake_port: u16,
    node: &str,
    lease: &str,
    grace: &str,
) -> String {
    format!(
        r#"
[store]
url = "{store_url}"

[server]
listen = "127.0.0.1:{api_port}"

[queue]
workers = 4
lease = "{lease}"
node_id = "{node}"
poll_interval = "50ms"
shutdown_grace = "{grace}"
max_attempts = 20
backoff = {{ initial = "100ms", max = "1s" }}

[providers.fake]
kind = "openai"
base_url = "http://127.0.0.1:{fake_port}/v1"
api_key_env = "CHAOS_API_KEY"
model = "chaos"
timeout = "10s"

[tools.notify]
kind = "webhook"
url = "http://127.0.0.1:{fake_port}/hook"
secret_env = "CHAOS_HOOK_SECRET"
allow = ["127.0.0.1"]
description = "notify"
schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}

[[agents]]
name = "w"
providers = ["fake"]
tools = ["notify"]
"#
    )
}

/// One agentd process of the test, restartable.
struct Proc {
    args: Vec<String>,
    config: std::path::PathBuf,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn new(ws: &Workspace, name: &str, text: &str, args: &[&str]) -> Self {
        let config = ws.path().join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut p = Self {
            args: args.iter().map(|s| s.to_string()).collect(),
            config,
            dir: ws.path().to_path_buf(),
            child: None,
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let child = Command::new(BIN)
            .current_dir(&self.dir)
            .env_remove("AGENTD_CONFIG")
            .env("AGENTD_LOG", "warn")
            .env("CHAOS_API_KEY", "test-key")
            .env("CHAOS_HOOK_SECRET", crate::support::TEST_WEBHOOK_SECRET)
            .args(&self.args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_ok(&format!("{base}/health")) {
        assert!(
            Instant::now() < deadline,
            "agentd at {base} never became healthy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn all_runs(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/runs?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

/// Creates run `r{i}`; false when the API is unreachable (restarting). The
/// idempotency key makes a retry after a lost answer safe.
async fn submit(client: &reqwest::Client, base: &str, i: usize) -> bool {
    let sent = client
        .post(format!("{base}/v1/agents/w/runs"))
        .header("idempotency-key", format!("r{i}"))
        .json(&json!({ "input": format!("r{i}") }))
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => true,
        Ok(resp) => panic!("create r{i}: {}", resp.text().await.unwrap_or_default()),
        Err(_) => false,
    }
}

/// All runs once all `runs` succeeded, `None` while some are unfinished;
/// fails the test as soon as one failed.
async fn all_succeeded(client: &reqwest::Client, base: &str, runs: usize) -> Option<Vec<Value>> {
    let items = all_runs(client, base).await;
    let bad: Vec<_> = items
        .iter()
        .filter(|r| matches!(r["status"].as_str(), Some("failed" | "dead" | "cancelled")))
        .map(|r| format!("{} {} {}", r["id"], r["status"], r["error"]))
        .collect();
    assert!(bad.is_empty(), "runs did not survive: {bad:?}");
    let done = items.iter().filter(|r| r["status"] == "succeeded").count();
    (items.len() == runs && done == runs).then_some(items)
}

/// What a chaos round did.
#[derive(Debug)]
struct Totals {
    runs: usize,
    kills: usize,
    /// Executions of a step beyond the journaled one, all before it: redos
    /// of steps whose worker died before committing them.
    redone: usize,
    /// Runs that needed more than one attempt (their worker was killed).
    reclaimed_runs: usize,
    /// Executions after the journaled one: a completed step run again.
    duplicates: usize,
}

impl Totals {
    /// What every kill test demands: no completed step ran again, the kills
    /// happened and hit runs, and redos stay within what the kills explain.
    fn check(&self) {
        assert_eq!(
            self.duplicates, 0,
            "a completed step was executed again: {self:?}"
        );
        assert!(self.kills >= 2, "{self:?}");
        // A kill interrupts at most one step per worker slot (4).
        assert!(self.redone <= 4 * self.kills, "{self:?}");
        assert!(
            self.reclaimed_runs >= 1,
            "no run was interrupted by the kills: {self:?}"
        );
    }
}

/// Submits `runs` runs through the first process's API while `kill` picks
/// a process to SIGKILL and restart every `every`, until all succeed; then
/// checks every journal against the executions counted outside.
async fn chaos(
    procs: &mut [Proc],
    killable: &[usize],
    base: &str,
    runs: usize,
    every: Duration,
    calls: &Calls,
) -> Totals {
    let client = reqwest::Client::new();
    // Submit while the kills already go on.
    let submitter = {
        let (client, base) = (client.clone(), base.to_string());
        tokio::spawn(async move {
            let mut i = 0;
            while i < runs {
                if submit(&client, &base, i).await {
                    i += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut kills = 0;
    let mut next_kill = Instant::now() + every / 2;
    let items = loop {
        if Instant::now() >= next_kill {
            let victim = killable[kills % killable.len()];
            procs[victim].kill9();
            kills += 1;
            procs[victim].start();
            if victim == 0 {
                wait_healthy(base);
            }
            next_kill = Instant::now() + every;
        }
        let Ok(resp) = client.get(format!("{base}/v1/runs?limit=1")).send().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        drop(resp);
        if !submitter.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Some(items) = all_succeeded(&client, base, runs).await {
            break items;
        }
        assert!(
            Instant::now() < deadline,
            "runs not finished before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let model = calls.model.lock().unwrap().clone();
    let tool = calls.tool.lock().unwrap().clone();
    let (mut redone, mut duplicates, mut reclaimed_runs) = (0, 0, 0);
    let steps_per_run = 2 * TOOLS + 1;
    for run in &items {
        let id = run["id"].as_str().unwrap();
        let input = run["input"].as_str().unwrap();
        assert_eq!(run["steps"], steps_per_run, "run {id}");
        let steps: Value = client
            .get(format!("{base}/v1/runs/{id}/steps?limit=100"))
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
            (0..steps_per_run).collect::<Vec<_>>(),
            "run {id}: journal indexes must be gap- and duplicate-free"
        );
        for s in steps {
            let k = s["index"].as_u64().unwrap();
            assert_eq!(s["status"], "completed", "run {id} step {k}");
            // Which execution the journal kept.
            let (kept, seen) = if s["kind"] == "llm" {
                let text = s["output"].to_string();
                let kept = text
                    .split('#')
                    .nth(1)
                    .and_then(|serial| serial.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("run {id} step {k}: no serial in {text}"));
                (kept, model.get(&(input.to_string(), k)).cloned())
            } else {
                let kept = s["output"]["body"]["exec"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("run {id} step {k}: {}", s["output"]));
                (kept, tool.get(&(id.to_string(), k)).cloned())
            };
            let seen = seen.unwrap_or_else(|| panic!("run {id} step {k} was never executed"));
            assert!(
                seen.contains(&kept),
                "run {id} step {k}: kept {kept}, saw {seen:?}"
            );
            duplicates += seen.iter().filter(|&&e| e > kept).count();
            redone += seen.iter().filter(|&&e| e < kept).count();
        }
        if run["attempt"].as_u64().unwrap_or(1) > 1 {
            reclaimed_runs += 1;
        }
    }
    Totals {
        runs: items.len(),
        kills,
        redone,
        reclaimed_runs,
        duplicates,
    }
}

/// The issue's chaos test: one `serve` and two `worker`s on a fresh
/// PostgreSQL schema; 500 runs; a worker SIGKILLed and restarted every two
/// seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_processes_survive_repeated_sigkill() {
    let Some(pg) = crate::support::postgres_url() else {
        return;
    };
    let calls = Arc::new(Calls::default());
    let fake = start_fake_services(calls.clone()).await;
    let ws = Workspace::new();
    let schema = format!("chaos_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    let api = free_port();
    let base = format!("http://127.0.0.1:{api}");
    let mut procs = vec![Proc::new(
        &ws,
        "serve",
        &config(&url, api, fake, "serve-0", "2s", "30s"),
        &["serve"],
    )];
    wait_healthy(&base);
    for n in 1..=2 {
        let text = config(&url, free_port(), fake, &format!("worker-{n}"), "2s", "30s");
        procs.push(Proc::new(&ws, &format!("worker{n}"), &text, &["worker"]));
    }

    let t = chaos(
        &mut procs,
        &[1, 2],
        &base,
        500,
        Duration::from_secs(2),
        &calls,
    )
    .await;
    drop(procs);
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;

    eprintln!("postgres chaos: {t:?}");
    assert_eq!(t.runs, 500);
    t.check();
}

/// The same on SQLite: one `serve` killed and restarted repeatedly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_process_survives_repeated_sigkill() {
    let calls = Arc::new(Calls::default());
    let fake = start_fake_services(calls.clone()).await;
    let ws = Workspace::new();
    let api = free_port();
    let base = format!("http://127.0.0.1:{api}");
    // A restarted process takes back its own node's leases at once, so the
    // lease length does not slow recovery.
    let mut procs = vec![Proc::new(
        &ws,
        "serve",
        &config(&ws.db_url(), api, fake, "solo", "30s", "30s"),
        &["serve"],
    )];
    wait_healthy(&base);

    let t = chaos(
        &mut procs,
        &[0],
        &base,
        200,
        Duration::from_millis(1500),
        &calls,
    )
    .await;

    eprintln!("sqlite chaos: {t:?}");
    assert_eq!(t.runs, 200);
    t.check();
}

/// SIGTERM with runs in flight: the process exits 0 within the grace, no
/// run fails, and a restarted process finishes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_runs_in_flight_fails_none_and_exits_within_the_grace() {
    let calls = Arc::new(Calls::default());
    let fake = start_fake_services(calls.clone()).await;
    let ws = Workspace::new();
    let api = free_port();
    let base = format!("http://127.0.0.1:{api}");
    let text = config(&ws.db_url(), api, fake, "solo", "30s", "3s");
    let mut procs = [Proc::new(&ws, "serve", &text, &["serve"])];
    wait_healthy(&base);
    let client = reqwest::Client::new();
    for i in 0..40 {
        assert!(submit(&client, &base, i).await);
    }
    // Mid-flight: some runs journaled, some not finished.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = all_runs(&client, &base).await;
        let running = items.iter().filter(|r| r["status"] == "running").count();
        let started = items.iter().any(|r| r["steps"].as_u64().unwrap_or(0) > 0);
        if running > 0 && started {
            break;
        }
        assert!(Instant::now() < deadline, "no run got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Model calls now take 20 s: the process only exits in time if it
    // abandons them at the grace.
    calls.stall_ms.store(20_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Act: SIGTERM.
    let child = procs[0].child.as_mut().unwrap();
    let pid = child.id().to_string();
    let t0 = Instant::now();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    procs[0].child = None;

    // Assert: a clean, prompt exit, and nothing failed.
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    calls.stall_ms.store(0, Ordering::SeqCst);
    procs[0].start();
    wait_healthy(&base);
    let deadline = Instant::now() + Duration::from_secs(60);
    while all_succeeded(&client, &base, 40).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "runs did not finish after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
