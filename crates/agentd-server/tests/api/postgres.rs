//! The API over PostgreSQL: the same start-up path on a fresh schema.

use crate::helpers::{CONFIG, json};
use agentd_test_support::app::spawn_app_on_postgres;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_run_waited_for_over_postgres_succeeds() {
    // Arrange
    let Some(pg) = agentd_test_support::postgres_url() else {
        return;
    };
    let app = spawn_app_on_postgres(CONFIG, &pg).await;

    // Act
    let (status, run) = app
        .create_run("demo", json!({ "input": "hi", "wait": true }))
        .await;
    let (_, listed) = json(app.get("/v1/runs").send().await.unwrap()).await;
    app.stop().await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"], "done: hi");
    assert_eq!(listed["items"][0]["id"], run["id"]);
}
