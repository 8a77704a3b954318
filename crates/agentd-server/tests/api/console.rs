//! The web console in a real browser: `console_browser.py` drives Debian's
//! headless Chromium through Playwright against agentd under
//! `auth.mode = "api_key"`: signing in with a key, a question answered and a
//! tool call approved from the approvals inbox while the run page follows
//! the run live to `succeeded`, a dead run requeued by an admin while a
//! user sees no actions, another tenant's run never listed and shown as
//! not found, and no Content-Security-Policy violation on any page. What
//! the browser did is then checked through the API.
//!
//! With `AGENTD_CONSOLE_SCREENSHOTS=DIR` the script saves PNGs of the main
//! pages there (how `docs/console/` was made).

use crate::helpers::{TestApp, json, mint};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The Playwright version `.ci/run` installs (it drives the system
/// Chromium, so no browser download).
const PLAYWRIGHT: &str = "playwright==1.65.3";
const CHROMIUM: &str = "/usr/bin/chromium";

/// An agent that asks a human, one whose tool needs approval, one that
/// writes (its text streamed), one that always fails (dead at its first
/// attempt), each model call slow enough to be watched; and a tenant budget
/// for the spend page.
const CONFIG: &str = r#"
[server]
wait_timeout = "10s"

[queue]
workers = 4
poll_interval = "20ms"
max_attempts = 1
backoff = { initial = "10ms", max = "10ms" }

[tenants."acme"]
budget_usd = 5.0
period = "1d"

[tools.echo]
approval = true

[providers.asker]
kind = "mock"
model = "mock"
latency_ms = 400
script = [{ tool = "ask_human", args = { question = "ok?" } }, { reply = "answer: {{tool_result}}" }]

[providers.gated]
kind = "mock"
model = "mock"
latency_ms = 1200
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.writer]
kind = "mock"
model = "mock"
latency_ms = 400
script = [{ reply = "Notes on {{input}}." }]

[providers.down]
kind = "mock"
model = "mock"
script = [{ error = "server" }]

[pricing."mock"]
input_per_mtok = 0.15
output_per_mtok = 0.60

[[agents]]
name = "asker"
description = "Asks a human before answering."
providers = ["asker"]
tools = ["ask_human"]

[[agents]]
name = "gated"
description = "Echoes its input once a human approves."
providers = ["gated"]
tools = ["echo"]

[[agents]]
name = "writer"
description = "Writes notes on its input."
providers = ["writer"]

[[agents]]
name = "broken"
description = "Its model always fails."
providers = ["down"]
"#;

/// True when the browser and its driver are here; without them the test
/// is skipped, except under `CI`, where it fails.
fn browser_available() -> bool {
    if !agentd_test_support::python::module_available("playwright", PLAYWRIGHT) {
        return false;
    }
    let chromium = std::path::Path::new(CHROMIUM).exists();
    if !chromium {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {CHROMIUM} is missing (apt-get install chromium)"
        );
        eprintln!("SKIPPED: {CHROMIUM} is missing (apt-get install chromium)");
    }
    chromium
}

async fn get(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    json(app.get(path).bearer_auth(key).send().await.unwrap()).await
}

/// Starts a run of `agent` with `key`; answers its id.
async fn start(app: &TestApp, key: &str, agent: &str) -> String {
    let (status, run) = json(
        app.post(&format!("/v1/agents/{agent}/runs"))
            .bearer_auth(key)
            .json(&json!({ "input": "hello", "wait": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status.is_success(), "{run}");
    run["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_answers_approvals_live_requeues_and_keeps_tenants_apart() {
    if !browser_available() {
        return;
    }
    // Arrange: acme's admin and user, a dead run of acme, a run of globex.
    let app = spawn_app(&format!("{CONFIG}\n[auth]\nmode = \"api_key\"\n")).await;
    let admin = mint(&app, "acme", "alice", &["admin"]).await;
    let user = mint(&app, "acme", "bob", &["user"]).await;
    let other = mint(&app, "globex", "eve", &["admin"]).await;
    let dead = start(&app, &admin, "broken").await;
    let (_, run) = get(&app, &admin, &format!("/v1/runs/{dead}")).await;
    assert_eq!(run["status"], "dead", "{run}");
    let foreign = start(&app, &other, "asker").await;

    // Act: the browser session, each step asserted by the script.
    let out = crate::helpers::run_py(
        "console_browser.py",
        vec![
            "api_key".into(),
            app.base.clone(),
            admin.clone(),
            user,
            foreign.clone(),
            dead.clone(),
        ],
    )
    .await;

    // Assert: what the pages did happened, as alice, in acme.
    assert_eq!(out["csp_violations"], json!([]), "{out}");
    let asker = out["asker_run"].as_str().unwrap();
    let (_, run) = get(&app, &admin, &format!("/v1/runs/{asker}")).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], "answer: ship it", "{run}");
    assert_eq!(run["principal"], "alice", "{run}");
    assert_eq!(run["tenant"], "acme", "{run}");
    let (_, trail) = get(
        &app,
        &admin,
        &format!("/v1/audit?run_id={asker}&kind=resumed"),
    )
    .await;
    assert_eq!(trail["items"][0]["actor"], "alice", "{trail}");

    let writer = out["writer_run"].as_str().unwrap();
    let (_, run) = get(&app, &admin, &format!("/v1/runs/{writer}")).await;
    assert_eq!(run["conversation_id"], "release-1", "{run}");
    assert_eq!(run["output"], "Notes on the notes.", "{run}");

    let gated = out["gated_run"].as_str().unwrap();
    let (_, steps) = get(&app, &admin, &format!("/v1/runs/{gated}/steps")).await;
    assert_eq!(
        steps["items"][1]["output"],
        json!({ "approve": true }),
        "{steps}"
    );
    let rejected = out["rejected_run"].as_str().unwrap();
    let (_, steps) = get(&app, &admin, &format!("/v1/runs/{rejected}/steps")).await;
    assert_eq!(
        steps["items"][1]["output"],
        json!({ "approve": false, "reason": "not on a Friday" }),
        "{steps}"
    );

    // The requeue was alice's (the run dies again: its model still fails).
    let (_, trail) = get(
        &app,
        &admin,
        &format!("/v1/audit?run_id={dead}&kind=requeued"),
    )
    .await;
    assert_eq!(trail["items"][0]["actor"], "alice", "{trail}");
    assert_eq!(trail["items"].as_array().unwrap().len(), 1, "{trail}");

    // globex's run was never touched.
    let (_, run) = get(&app, &other, &format!("/v1/runs/{foreign}")).await;
    assert_eq!(run["status"], "paused", "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_needs_no_sign_in_under_auth_none_and_acts_from_a_runs_page() {
    if !browser_available() {
        return;
    }
    // Arrange: 30 runs, over two pages of the list.
    let app = spawn_app(CONFIG).await;
    for i in 0..30 {
        let (status, run) = app.create_run("broken", json!({ "input": i })).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    }

    // Act: approve, fork and cancel from the run's page, by keyboard too.
    let out =
        crate::helpers::run_py("console_browser.py", vec!["none".into(), app.base.clone()]).await;

    // Assert: as the API's default identity; the fork links its original.
    assert_eq!(out["csp_violations"], json!([]), "{out}");
    let approved = out["approved_run"].as_str().unwrap();
    let run = app.wait_for_status(approved, "succeeded").await;
    assert_eq!(run["output"], "done: v1", "{run}");
    assert_eq!(run["tenant"], "default", "{run}");
    let fork = out["fork"].as_str().unwrap();
    let run = app.wait_for_status(fork, "cancelled").await;
    assert_eq!(
        run["forked_from"],
        json!({ "run_id": approved, "step": 0 }),
        "{run}"
    );
}
