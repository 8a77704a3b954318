//! Liveness and readiness probes: `/ready` is 503 only while the process
//! cannot serve (store failing, draining after shutdown); open circuits make
//! it `degraded`, still 200.

use crate::helpers::{CONFIG, VERSION, json, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
        json!({
            "status": "ok",
            "checks": {
                "store": "ok", "draining": false, "providers": [], "mcp": [],
                "unavailable_agents": []
            },
            "reasons": [],
        })
    );
}

/// `chain` falls back from `down` to `good`; `only_down` has no fallback.
const CIRCUITS: &str = r#"
[server]
wait_timeout = "10s"

[queue]
workers = 2
poll_interval = "20ms"

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[providers.good]
kind = "mock"
script = [{ reply = "fine" }]

[[agents]]
name = "chain"
providers = ["down", "good"]
retry = { max_attempts = 1 }
circuit_breaker = { failures = 1, reset = "60s" }

[[agents]]
name = "only_down"
providers = ["down"]
retry = { max_attempts = 1 }
circuit_breaker = { failures = 1, reset = "60s" }
"#;

fn circuit(ready: &Value, provider: &str) -> Value {
    ready["checks"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == provider)
        .map_or(Value::Null, |c| c["state"].clone())
}

#[tokio::test]
async fn an_open_circuit_makes_ready_degraded_not_503_and_runs_still_serve() {
    // Arrange
    let app = agentd_test_support::app::spawn_app(CIRCUITS).await;
    let (status, before) = json(app.get("/ready").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["status"], "ok");
    assert_eq!(circuit(&before, "down"), "closed");

    // Act: one failure of `down` opens its circuit (the run falls back).
    let (_, first) = app
        .create_run("chain", json!({ "input": "a", "wait": true }))
        .await;
    let (status, ready) = json(app.get("/ready").send().await.unwrap()).await;
    let (created, second) = app
        .create_run("chain", json!({ "input": "b", "wait": true }))
        .await;

    // Assert: still ready, the open circuit and the agent it stops named;
    // the API keeps serving runs.
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "degraded");
    assert_eq!(circuit(&ready, "down"), "open");
    assert_eq!(circuit(&ready, "good"), "closed");
    assert_eq!(ready["checks"]["store"], "ok");
    assert_eq!(ready["checks"]["unavailable_agents"], json!(["only_down"]));
    assert_eq!(ready["reasons"], json!(["provider circuit open: down"]));
    assert!(ready.get("error").is_none(), "{ready}");
    assert_eq!(created, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["output"], "fine");
}

#[tokio::test]
async fn ready_is_503_when_the_store_loses_its_schema() {
    // Arrange: agentd on a PostgreSQL schema, which is then dropped under
    // it (as a restore gone wrong or a wiped database would).
    let Some(pg) = agentd_test_support::postgres_url() else {
        return;
    };
    let app = agentd_test_support::app::spawn_app_on_postgres(CONFIG, &pg).await;
    let (status, _) = json(app.get("/ready").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let schema = app
        .store_url
        .rsplit_once("schema=")
        .map(|(_, s)| s.to_string())
        .unwrap();

    // Act
    agentd_test_support::drop_schema(&pg, &schema)
        .await
        .unwrap();
    let (status, ready) = json(app.get("/ready").send().await.unwrap()).await;
    app.stop().await;

    // Assert
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["checks"]["store"], "migrations_pending");
    assert_eq!(ready["error"]["code"], "unavailable");
    assert_eq!(
        ready["error"]["message"],
        "store check failed: migrations are not applied"
    );
}
