//! `GET /v1/runs/{id}/events`: the journal replayed, then live progress.

use crate::helpers::spawn_app;
use serde_json::{Value, json};

/// Parses an SSE body into (event, id, data) triples, keep-alives dropped.
pub(crate) fn parse(body: &str) -> Vec<(String, Option<String>, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            let event = event?;
            Some((
                event,
                id,
                serde_json::from_str(&data).unwrap_or(Value::Null),
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_live_run_streams_its_steps_and_a_finished_one_replays_them() {
    // Arrange: a slow run, followed while it executes.
    let app = spawn_app().await;
    let (_, run) = app.create_run("slow", json!({ "input": "hi" })).await;
    let id = run["id"].as_str().unwrap().to_string();

    // Act
    let live = app
        .get(&format!("/v1/runs/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(
        live.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let live = parse(&live.text().await.unwrap());

    // Assert: every step once, in order, then the finished run.
    let names: Vec<&str> = live.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.status"));
    assert_eq!(names.last(), Some(&"run.finished"));
    let steps: Vec<(Option<String>, Value)> = live
        .iter()
        .filter(|(e, _, _)| e == "step.completed")
        .map(|(_, id, d)| (id.clone(), d["kind"].clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Some("0".into()), json!("llm")),
            (Some("1".into()), json!("tool")),
            (Some("2".into()), json!("llm")),
        ]
    );
    assert!(names.contains(&"step.started"), "{names:?}");
    let (_, _, finished) = live.last().unwrap();
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(finished["output"], "done: hi");

    // A finished run replays its journal; Last-Event-ID skips what was seen.
    let replay = app
        .get(&format!("/v1/runs/{id}/events"))
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    let replay = parse(&replay.text().await.unwrap());
    let names: Vec<&str> = replay.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(names, ["run.status", "step.completed", "run.finished"]);
    assert_eq!(replay[1].1.as_deref(), Some("2"));

    // The largest Last-Event-ID a client can send skips every step, and
    // the stream still ends with the run (it used to overflow).
    let past_all = app
        .get(&format!("/v1/runs/{id}/events"))
        .header("last-event-id", u32::MAX.to_string())
        .send()
        .await
        .unwrap();
    let past_all = parse(&past_all.text().await.unwrap());
    let names: Vec<&str> = past_all.iter().map(|(e, _, _)| e.as_str()).collect();
    assert_eq!(names, ["run.status", "run.finished"]);

    // Another tenant's run is a 404.
    let other = app
        .get(&format!("/v1/runs/{id}/events"))
        .header("x-tenant-id", "intruder")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}
