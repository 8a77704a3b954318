//! Bad requests: every one answers the API's JSON error format with the
//! right status, never axum's plain-text rejections.

use crate::helpers::{assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

const RUNS: &str = "/v1/agents/demo/runs";

#[tokio::test]
async fn malformed_run_bodies_are_400_json() {
    // Arrange
    let app = spawn_app().await;
    let send_raw = |body: &'static str| {
        app.post(RUNS)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Act + Assert: not JSON
    let res = send_raw("{not json").await.unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;

    // missing `input`
    let res = send_raw(r#"{"wait": true}"#).await.unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("input"), "{message}");

    // explicit null `input`
    let res = send_raw(r#"{"input": null}"#).await.unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("input"), "{message}");

    // a field this version does not honour
    let res = send_raw(r#"{"input": "hi", "priority": "high"}"#)
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("priority"), "{message}");
    // and a value it does not know
    let res = send_raw(r#"{"input": "hi", "if_busy": "later"}"#)
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        message.contains("if_busy") || message.contains("later"),
        "{message}"
    );

    // wrong types: metadata must be an object, conversation_id a valid id
    let res = send_raw(r#"{"input": "hi", "metadata": [1]}"#)
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    let res = send_raw(r#"{"input": "hi", "conversation_id": "a b"}"#)
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("conversation id"), "{message}");

    // no content type
    let res = app
        .post(RUNS)
        .body(r#"{"input": "hi"}"#)
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("application/json"), "{message}");

    // a resume without an answer
    let (_, run) = app
        .create_run("asker", json!({ "input": "q", "wait": true }))
        .await;
    let res = app
        .post(&format!("/v1/runs/{}/resume", run["id"].as_str().unwrap()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("answer"), "{message}");

    // nothing was created by any of the above but the asker run
    let (_, list) = crate::helpers::json(app.get("/v1/runs").send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_json() {
    // Arrange: the test config allows 1024 bytes
    let app = spawn_app().await;
    let big = json!({ "input": "x".repeat(2048) });

    // Act
    let res = app.post(RUNS).json(&big).send().await.unwrap();

    // Assert
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let (status, _) = app
        .create_run("demo", json!({ "input": "x".repeat(900) }))
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a body under the limit passes"
    );
}

#[tokio::test]
async fn bad_ids_filters_and_headers_are_400_json() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert: a run id that is not a UUID, on every run route
    for res in [
        app.get("/v1/runs/not-a-uuid").send().await.unwrap(),
        app.get("/v1/runs/not-a-uuid/steps").send().await.unwrap(),
        app.post("/v1/runs/not-a-uuid/cancel").send().await.unwrap(),
        app.post("/v1/runs/not-a-uuid/resume")
            .json(&json!({ "answer": 1 }))
            .send()
            .await
            .unwrap(),
    ] {
        assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    }

    // bad list filters
    let res = app.get("/v1/runs?status=bogus").send().await.unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(
        message.contains("succeeded"),
        "lists valid values: {message}"
    );
    for path in [
        "/v1/runs?limit=0",
        "/v1/runs?limit=many",
        "/v1/runs?cursor=garbage",
        "/v1/runs?colour=red",
        "/v1/conversations/c1/messages?after=-1",
        "/v1/conversations/a%20b/messages",
    ] {
        let res = app.get(path).send().await.unwrap();
        assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    }

    // an invalid tenant header
    let res = app
        .get("/v1/runs")
        .header("x-tenant-id", "a b")
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("X-Tenant-Id"), "{message}");
}

#[tokio::test]
async fn unknown_agents_runs_and_routes_are_404_json() {
    // Arrange
    let app = spawn_app().await;
    let missing = "0190d5a0-0000-7000-8000-000000000000";

    // Act + Assert
    let res = app
        .post("/v1/agents/nobody/runs")
        .json(&json!({ "input": "hi" }))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert!(message.contains("nobody"), "{message}");
    let res = app
        .get(&format!("/v1/runs/{missing}"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .post(&format!("/v1/runs/{missing}/cancel"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/v1/nothing/here").send().await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .get(&format!("/v1/runs/{missing}/cancel"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "bad_request").await;
}
