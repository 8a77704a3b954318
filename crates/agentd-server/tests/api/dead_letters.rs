//! The dead-letter list: every identity of the run's tenant sees dead runs
//! (in the list and in `GET /v1/runs`), admins of that tenant requeue them;
//! other tenants see nothing.

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

    // Without the admin role: listed, but not requeued (403).
    let (status, listed) = json(
        app.get("/v1/dead-letters")
            .header("x-roles", "user")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["items"], page["items"]);
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

#[tokio::test]
async fn a_non_admin_sees_the_same_dead_runs_in_both_lists_but_cannot_requeue() {
    // Arrange: two dead runs of the default tenant, one of another tenant.
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, run) = app.create_run("broken", json!({ "input": "hi" })).await;
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    let (_, foreign) = json(
        app.post("/v1/agents/broken/runs")
            .header("x-tenant-id", "other")
            .json(&json!({ "input": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for id in &ids {
        app.wait_for_status(id, "dead").await;
    }
    let as_user = |path: &str| app.get(path).header("x-roles", "user");

    // Act
    let (s1, letters) = json(as_user("/v1/dead-letters").send().await.unwrap()).await;
    let (s2, runs) = json(as_user("/v1/runs?status=dead").send().await.unwrap()).await;
    let (s3, one) = json(
        as_user(&format!("/v1/runs/{}", ids[0]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let foreign_id = foreign["id"].as_str().unwrap();
    let hidden = as_user(&format!("/v1/runs/{foreign_id}"))
        .send()
        .await
        .unwrap();
    let requeue = app
        .post(&format!("/v1/dead-letters/{}/requeue", ids[0]))
        .header("x-roles", "user")
        .send()
        .await
        .unwrap();

    // Assert: both places show the tenant's dead runs and nothing else.
    assert_eq!(
        (s1, s2, s3),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    let listed = |page: &serde_json::Value| {
        let mut v: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed(&letters), expected, "{letters}");
    assert_eq!(listed(&runs), expected, "{runs}");
    assert_eq!(letters["items"], runs["items"]);
    assert_eq!(one["status"], "dead");
    assert_error(hidden, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(requeue, StatusCode::FORBIDDEN, "forbidden").await;
}
