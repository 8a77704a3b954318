//! Liveness and readiness probes, and the API's refusal of auth modes it
//! cannot enforce.

use crate::helpers::{CONFIG, VERSION, json, spawn_app};
use agentd_config::Config;
use agentd_engine::Engine;
use agentd_server::{AppState, ServerError};
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

#[tokio::test]
async fn auth_modes_that_need_credentials_are_refused() {
    // Arrange: identity headers must never be trusted under api_key or jwt
    let store = agentd_store::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let mut config = Config::from_toml_str(CONFIG).unwrap();
    config.auth.mode = agentd_config::AuthMode::ApiKey;
    let engine = Engine::new(&config, store).await.unwrap();

    // Act
    let result = AppState::new(engine, &config, VERSION);

    // Assert
    let Err(err) = result else {
        panic!("auth mode api_key was accepted");
    };
    assert!(matches!(err, ServerError::UnsupportedAuth(_)));
    assert!(err.to_string().contains("api_key"), "{err}");
}
