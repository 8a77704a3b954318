//! Pausing for a human, resuming and cancelling over HTTP.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_paused_run_is_resumed_with_the_answer_once() {
    // Arrange
    let app = spawn_app().await;
    let (status, run) = app
        .create_run("asker", json!({ "input": "hi", "wait": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "paused");
    assert_eq!(run["pause"]["question"], "ok?");
    let id = run["id"].as_str().unwrap().to_string();

    // Act
    let (status, resumed) = json(
        app.post(&format!("/v1/runs/{id}/resume"))
            .json(&json!({ "answer": "yes" }))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Assert: accepted, no longer paused, then finished with the answer
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["id"], id.as_str());
    assert_ne!(resumed["status"], "paused");
    let done = app.wait_for_status(&id, "succeeded").await;
    assert_eq!(done["output"], "answer: yes");
    assert_eq!(done["pause"], serde_json::Value::Null);
    let (_, steps) = json(
        app.get(&format!("/v1/runs/{id}/steps"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let kinds: Vec<_> = steps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"human"), "{steps}");

    // Assert: a second answer is a conflict
    let res = app
        .post(&format!("/v1/runs/{id}/resume"))
        .json(&json!({ "answer": "again" }))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert!(message.contains("succeeded"), "{message}");
}

#[tokio::test]
async fn a_running_run_is_cancelled_once_and_stays_cancelled() {
    // Arrange
    let app = spawn_app().await;
    let (status, run) = app.create_run("slow", json!({ "input": "x" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = run["id"].as_str().unwrap().to_string();

    // Act
    let (status, cancelled) = json(
        app.post(&format!("/v1/runs/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["id"], id.as_str());
    // Past the script's two 300 ms model calls, the worker has not revived it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, later) = json(app.get(&format!("/v1/runs/{id}")).send().await.unwrap()).await;
    assert_eq!(later["status"], "cancelled");
    assert_eq!(later["output"], serde_json::Value::Null);

    let res = app
        .post(&format!("/v1/runs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert!(message.contains("cancelled"), "{message}");
    // A cancelled run is not paused either.
    let res = app
        .post(&format!("/v1/runs/{id}/resume"))
        .json(&json!({ "answer": "yes" }))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::CONFLICT, "conflict").await;
}
