//! Liveness and readiness probes: `/ready` is 503 only while the process
//! cannot serve (store failing, draining after shutdown); open circuits make
//! it `degraded`, still 200.

use crate::helpers::{CONFIG, VERSION, json, spawn_app};
use agentd_server::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

/// Reads SSE chunks until `pred` holds for what has arrived, or fails.
async fn read_until(res: &mut reqwest::Response, text: &mut String, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("the stream ended early: {text}"),
            Ok(Err(e)) => panic!("the stream failed: {e}; so far: {text}"),
            Err(_) => panic!("timed out; so far: {text}"),
        }
    }
}

#[tokio::test]
async fn shutdown_turns_ready_503_and_ends_event_streams_with_a_shutdown_event() {
    // Arrange: an API-only process (so the run stays queued and its stream
    // stays open), with a long grace that the stream must not use up.
    let dir = tempfile::tempdir().unwrap();
    let mut config = agentd_config::Config::from_toml_str(CONFIG).unwrap();
    config.store.url = agentd_test_support::sqlite_url(dir.path());
    config.queue.shutdown_grace = agentd_config::Dur::from_secs(60);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, Some(listener))
        .await
        .unwrap()
        .without_workers();
    let base = format!("http://{}", app.local_addr().unwrap());
    let router = app.router().unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::new();
    let (_, run) = json(
        client
            .post(format!("{base}/v1/agents/demo/runs"))
            .json(&json!({ "input": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(run["status"], "queued", "{run}");
    let mut stream = client
        .get(format!(
            "{base}/v1/runs/{}/events",
            run["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut text = String::new();
    read_until(&mut stream, &mut text, |t| t.contains("event: run.status")).await;
    let (status, _) = json(client.get(format!("{base}/ready")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // Act
    let signalled = Instant::now();
    shutdown.cancel();
    // The caller's token reaches the process's own stop token through a
    // task: let it run (this test runs on one thread, and the store ping
    // below need not yield).
    tokio::task::yield_now().await;
    let ready = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/ready")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    read_until(&mut stream, &mut text, |t| t.contains("event: shutdown")).await;
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("the stream ends after its shutdown event")
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the process stops without waiting out its grace");

    // Assert: /ready answers 503 as soon as the signal fired.
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = axum::body::to_bytes(ready.into_body(), 1 << 16)
        .await
        .unwrap();
    let ready: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert_eq!(ready["checks"]["draining"], true);
    assert_eq!(ready["error"]["code"], "unavailable");
    // The stream's last event says to reconnect elsewhere, with a retry
    // hint and no id (Last-Event-ID stays the last step's).
    let shutdown_event = text
        .rsplit("\n\n")
        .find(|b| b.contains("event: shutdown"))
        .unwrap();
    assert!(shutdown_event.contains("retry: 1000"), "{shutdown_event}");
    assert!(
        !shutdown_event.lines().any(|l| l.starts_with("id:")),
        "{shutdown_event}"
    );
    assert!(shutdown_event.contains("reconnect"), "{shutdown_event}");
    assert!(
        !rest.contains("event:"),
        "nothing follows the shutdown event: {rest}"
    );
    stopped.unwrap().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "stopped after {:?} (grace 60s)",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn with_a_drain_delay_probes_over_tcp_see_503_before_the_port_closes() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mut config = agentd_config::Config::from_toml_str(CONFIG).unwrap();
    config.store.url = agentd_test_support::sqlite_url(dir.path());
    config.server.drain_delay = agentd_config::Dur::from_secs(2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, Some(listener)).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // A fresh connection per request: what a load balancer's probe opens.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let (status, _) = json(probe.get(format!("{base}/ready")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // Act
    let signalled = Instant::now();
    shutdown.cancel();
    let (during, body) = json(probe.get(format!("{base}/ready")).send().await.unwrap()).await;
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the process stops after the delay")
        .unwrap()
        .unwrap();
    let after = probe.get(format!("{base}/ready")).send().await;

    // Assert: 503 draining over a new connection, then the port closes
    // once the delay is over
    assert_eq!(during, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["draining"], true, "{body}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "stopped after {:?}, before the 2 s delay",
        signalled.elapsed()
    );
    assert!(after.is_err(), "the port still answers: {after:?}");
}
