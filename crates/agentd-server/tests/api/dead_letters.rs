//! The dead-letter list: admins of the run's tenant see and requeue dead
//! runs; nobody else does.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn dead_runs_are_listed_and_requeued_by_admins_of_their_tenant() {
    // Arrange: a run whose model always fails, dead after two attempts,
    // and a run that succeeds.
    let app = spawn_app().await;
    let (_, run) = app.create_run("broken", json!({ "input": "hi" })).await;
    let id = run["id"].as_str().unwrap().to_string();
    let dead = app.wait_for_status(&id, "dead").await;
    let (_, ok) = app
        .create_run("demo", json!({ "input": "hi", "wait": true }))
        .await;
    assert_eq!(ok["status"], "succeeded");

    // Act + Assert: listed for an admin, with the last error.
    let (status, page) = json(app.get("/v1/dead-letters").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["attempt"], 2);
    assert_eq!(items[0]["error"]["code"], "provider_error");
    assert_eq!(page["next_cursor"], json!(null));
    assert_eq!(dead["error"], items[0]["error"]);

    // Without the admin role: 403, for listing and requeueing.
    let res = app
        .get("/v1/dead-letters")
        .header("x-roles", "user")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let requeue = format!("/v1/dead-letters/{id}/requeue");
    let res = app
        .post(&requeue)
        .header("x-roles", "user")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Another tenant's admin sees nothing and cannot requeue it.
    let (status, other) = json(
        app.get("/v1/dead-letters")
            .header("x-tenant-id", "other")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other["items"], json!([]));
    let res = app
        .post(&requeue)
        .header("x-tenant-id", "other")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // Only a dead run is requeued.
    let ok_id = ok["id"].as_str().unwrap();
    let res = app
        .post(&format!("/v1/dead-letters/{ok_id}/requeue"))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::CONFLICT, "conflict").await;
    assert!(message.contains("succeeded"), "{message}");

    // The admin requeues: a fresh first attempt, which fails again here.
    let (status, requeued) = json(app.post(&requeue).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{requeued}");
    assert_eq!(requeued["attempt"], 1);
    assert_eq!(requeued["error"], json!(null));
    assert_ne!(requeued["status"], "dead");
    app.wait_for_status(&id, "dead").await;
}
