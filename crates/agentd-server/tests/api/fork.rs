//! `POST /v1/runs/{id}/fork`: a new run from the first steps of another.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_fork_continues_from_its_step_and_is_scoped_and_checked() {
    // Arrange: a finished demo run (echo, then reply) of the default tenant.
    let app = spawn_app().await;
    let as_a = |req: reqwest::RequestBuilder| req.send();
    let (status, original) = json(
        as_a(
            app.post("/v1/agents/demo/runs")
                .json(&json!({ "input": "hi", "wait": true })),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{original}");
    assert_eq!(original["output"], "done: hi");
    assert_eq!(original["forked_from"], json!(null));
    let id = original["id"].as_str().unwrap().to_string();
    let fork_path = format!("/v1/runs/{id}/fork");

    // Act: fork from step 1 with another input.
    let res = as_a(
        app.post(&fork_path)
            .json(&json!({ "from_step": 1, "input": "bye" })),
    )
    .await
    .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (status, fork) = json(res).await;

    // Assert: queued, linked to its origin, then executed to the end.
    assert_eq!(status, StatusCode::ACCEPTED, "{fork}");
    let fork_id = fork["id"].as_str().unwrap().to_string();
    assert_ne!(fork_id, id);
    assert_eq!(location, format!("/v1/runs/{fork_id}"));
    assert_eq!(fork["input"], "bye");
    assert_eq!(fork["forked_from"], json!({ "run_id": id, "step": 1 }));
    let done = app.wait_for_status(&fork_id, "succeeded").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // Step 0 (the model's echo of "hi") was kept; echo and reply ran again.
    assert_eq!(done["output"], "done: hi");
    assert_eq!(done["steps"], 3);
    assert_eq!(done["forked_from"], json!({ "run_id": id, "step": 1 }));
    let (_, steps) = json(
        as_a(app.get(&format!("/v1/runs/{fork_id}/steps")))
            .await
            .unwrap(),
    )
    .await;
    let (_, original_steps) = json(
        as_a(app.get(&format!("/v1/runs/{id}/steps")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(steps["items"][0], original_steps["items"][0]);
    assert_ne!(steps["items"][1], original_steps["items"][1]);

    // Assert: the original is untouched.
    let (_, again) = json(as_a(app.get(&format!("/v1/runs/{id}"))).await.unwrap()).await;
    assert_eq!(again, original);

    // Another tenant's run is not found; nothing is created for it.
    let res = app
        .post(&fork_path)
        .header("x-tenant-id", "b")
        .json(&json!({ "from_step": 1 }))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // A from_step past the journal is a bad request naming from_step.
    let res = as_a(app.post(&fork_path).json(&json!({ "from_step": 4 })))
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("from_step"), "{message}");
    // So is a body without it.
    let res = as_a(app.post(&fork_path).json(&json!({ "input": "x" })))
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
}
