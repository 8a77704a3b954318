//! `GET /v1/schedules`: a 1-second schedule starts runs through the served
//! process's workers, and the caller's tenant sees its schedules only.

use agentd_test_support::app::{json, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[providers.m]
kind = "mock"
script = [{ reply = "ran {{input}}" }]

[[agents]]
name = "bot"
providers = ["m"]

[[schedules]]
name = "every-second"
agent = "bot"
cron = "*/1 * * * * *"
input = { report = "daily" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_list_their_ticks_and_start_runs() {
    let app = spawn_app(CONFIG).await;

    // Poll until a tick started a run.
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let (status, body) = json(app.get("/v1/schedules").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if !body["items"][0]["last_run_id"].is_null() || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let s = &listed["items"][0];
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(s["name"], "every-second");
    assert_eq!(s["agent"], "bot");
    assert_eq!(s["cron"], "*/1 * * * * *");
    assert_eq!(s["timezone"], "UTC");
    assert_eq!(s["missed"], "skip");
    let (next, last) = (
        s["next_tick"].as_str().unwrap(),
        s["last_tick"].as_str().unwrap(),
    );
    assert!(next > last, "{s}");
    assert_eq!(listed["next_cursor"], Value::Null);
    // The tick's run, started as the schedule with the schedule's input.
    let id = s["last_run_id"].as_str().expect("a tick started a run");
    let (status, run) = json(app.get(&format!("/v1/runs/{id}")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["agent"], "bot");
    assert_eq!(run["principal"], "schedule:every-second");
    assert_eq!(run["input"], serde_json::json!({ "report": "daily" }));
    assert_eq!(run["metadata"]["tick"], s["last_tick"]);

    // Another tenant has no schedules, and cannot see the run.
    let (status, other) = json(
        app.get("/v1/schedules")
            .header("x-tenant-id", "other")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other["items"], serde_json::json!([]));
    app.stop().await;
}
