//! Liveness and readiness probes.

use crate::helpers::{VERSION, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn health_and_ready_answer_without_identity_headers() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let health = app.get("/health").send().await.unwrap();
    let request_id = health.headers().get("x-request-id").cloned();
    let (health_status, health) = json(health).await;
    let (ready_status, ready) = json(app.get("/ready").send().await.unwrap()).await;

    // Assert
    assert_eq!(health_status, StatusCode::OK);
    assert_eq!(health, json!({ "status": "ok", "version": VERSION }));
    assert!(request_id.is_some(), "responses carry an x-request-id");
    assert_eq!(ready_status, StatusCode::OK);
    assert_eq!(
        ready,
        json!({ "status": "ready", "checks": {
            "store": "ok", "providers": [], "mcp": [], "unavailable_agents": []
        } })
    );
}
