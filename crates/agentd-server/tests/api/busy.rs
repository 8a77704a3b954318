//! Double-texting: two quick requests on one conversation, under each
//! `if_busy`.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(app: &agentd_test_support::app::TestApp, body: Value) -> (StatusCode, Value) {
    app.create_run("slow", body).await
}

#[tokio::test]
async fn enqueue_waits_for_the_first_run() {
    let app = spawn_app().await;
    let (s1, first) = create(&app, json!({ "input": "one", "conversation_id": "c" })).await;
    let (s2, second) = create(
        &app,
        json!({ "input": "two", "conversation_id": "c", "if_busy": "enqueue" }),
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(second["status"], "queued", "{second}");
    let first = app
        .wait_for_status(first["id"].as_str().unwrap(), "succeeded")
        .await;
    let second = app
        .wait_for_status(second["id"].as_str().unwrap(), "succeeded")
        .await;
    // Memory in order: the second run's first step started once the first
    // run had ended.
    let (_, steps) = json(
        app.get(&format!(
            "/v1/runs/{}/steps",
            second["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let started = steps["items"][0]["started_at"].as_str().unwrap().to_owned();
    let ended = first["updated_at"].as_str().unwrap();
    assert!(started.as_str() >= ended, "{started} < {ended}");
    assert_eq!(second["output"], "done: two");
}

#[tokio::test]
async fn reject_answers_409_while_the_conversation_is_busy() {
    let app = spawn_app().await;
    let (_, first) = create(&app, json!({ "input": "one", "conversation_id": "r" })).await;
    let res = app
        .post("/v1/agents/slow/runs")
        .json(&json!({ "input": "two", "conversation_id": "r", "if_busy": "reject" }))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert!(message.contains(first["id"].as_str().unwrap()), "{message}");
    // Once it is done, the conversation takes a new run.
    app.wait_for_status(first["id"].as_str().unwrap(), "succeeded")
        .await;
    let (status, _) = create(
        &app,
        json!({ "input": "three", "conversation_id": "r", "if_busy": "reject" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn interrupt_cancels_the_first_run_and_runs_the_second() {
    let app = spawn_app().await;
    let (_, first) = create(&app, json!({ "input": "one", "conversation_id": "i" })).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    // Let the first run start its first (300 ms) model call.
    app.wait_for_status(&first_id, "running").await;
    let (status, second) = create(
        &app,
        json!({ "input": "two", "conversation_id": "i", "if_busy": "interrupt" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    let second = app
        .wait_for_status(second["id"].as_str().unwrap(), "succeeded")
        .await;
    assert_eq!(second["output"], "done: two");
    let (_, first) = json(
        app.get(&format!("/v1/runs/{first_id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["status"], "cancelled", "{first}");
    assert_eq!(first["error"]["code"], "cancelled");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted by run"),
        "{first}"
    );
    // It stopped at a step boundary: no step after the cancel was journaled.
    let (_, steps) = json(
        app.get(&format!("/v1/runs/{first_id}/steps"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(steps["items"].as_array().unwrap().len() < 3, "{steps}");
}
