//! Agents as MCP tools at `/mcp`, driven by the official `mcp` Python SDK
//! (`mcp_sdk.py`) over streamable HTTP with a minted API key: listing,
//! calls with progress, conversations, a pausing and a failing agent,
//! protocol errors and a bad key. Each call is a run of the key's tenant,
//! found here through the native API.

use crate::helpers::{CONFIG, TestApp, json};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The `mcp` version `.ci/run` installs.
const SDK: &str = "mcp==2.3.0";

/// [`CONFIG`] with room for MCP's request metadata, an agent with a
/// description, and API keys.
fn config() -> String {
    let base = CONFIG.replace("max_body_bytes = 1024", "max_body_bytes = 65536");
    format!(
        r#"{base}
[[agents]]
name = "writer"
description = "Writes a short poem about its input."
providers = ["mock"]
tools = ["echo"]

[auth]
mode = "api_key"
"#
    )
}

async fn mint(app: &TestApp, tenant: &str) -> String {
    crate::helpers::mint(app, tenant, "sdk", &[]).await
}

#[tokio::test]
async fn the_official_mcp_sdk_runs_agents_as_tools_over_streamable_http() {
    if !agentd_test_support::python::module_available("mcp", SDK) {
        return;
    }
    // Arrange
    let app = spawn_app(&config()).await;
    let key = mint(&app, "acme").await;

    // Act: the SDK's calls, each asserted by the script
    let ids = crate::helpers::run_py(
        "mcp_sdk.py",
        vec!["http".into(), format!("{}/mcp", app.base), key.clone()],
    )
    .await;

    // Assert: each call is a run of the key's tenant and principal
    let get = |id: &Value, key: &str| {
        let (url, key) = (format!("/v1/runs/{}", id.as_str().unwrap()), key.to_owned());
        let app = &app;
        async move { json(app.get(&url).bearer_auth(key).send().await.unwrap()).await }
    };
    let (status, plain) = get(&ids["plain"], &key).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["status"], "succeeded");
    assert_eq!(plain["input"], "hello");
    assert_eq!(plain["principal"], "sdk");
    assert_eq!(plain["metadata"]["mcp"]["tool"], "run_demo");
    let (_, steps) = json(
        app.get(&format!(
            "/v1/runs/{}/steps",
            ids["progress"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap(),
    )
    .await;
    // One progress notification per journaled step (the script saw 3).
    assert_eq!(steps["items"].as_array().unwrap().len(), 3, "{steps}");
    for id in ids["conversation"].as_array().unwrap() {
        let (_, run) = get(id, &key).await;
        assert_eq!(run["conversation_id"], "c-mcp", "{run}");
    }
    // The paused run is resumed through the API like any other.
    let paused = ids["paused"].as_str().unwrap();
    let (status, resumed) = json(
        app.post(&format!("/v1/runs/{paused}/resume"))
            .bearer_auth(&key)
            .json(&json!({"answer": "yes", "wait": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["output"], "answer: yes");
    let (_, broken) = get(&ids["broken"], &key).await;
    assert_eq!(broken["status"], "dead");
    // Another tenant's key sees none of them.
    let other = mint(&app, "globex").await;
    let (status, _) = get(&ids["plain"], &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mcp_needs_a_credential_like_the_rest_of_the_api() {
    // Arrange
    let app = spawn_app(&config()).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    // Act
    let res = app.post("/mcp").json(&ping).send().await.unwrap();

    // Assert
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let (_, body) = json(res).await;
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

/// Under `auth.mode = "none"` anyone on the network is trusted, so a page
/// that rebinds its own host name to 127.0.0.1 is refused by the `Host`
/// check; a loopback host is served.
#[tokio::test]
async fn without_authentication_only_a_loopback_host_is_served() {
    // Arrange
    let app = spawn_app(&CONFIG.replace("max_body_bytes = 1024", "max_body_bytes = 65536")).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let post = |host: Option<&'static str>| {
        let mut req = app
            .post("/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("x-tenant-id", "t1")
            .json(&ping);
        if let Some(host) = host {
            req = req.header("host", host);
        }
        req.send()
    };

    // Act
    let rebound = post(Some("evil.example")).await.unwrap();
    let local = post(None).await.unwrap();

    // Assert
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    assert_eq!(local.status(), StatusCode::OK);
    assert!(local.text().await.unwrap().contains(r#""result":{}"#));
}

/// A call answered by an API-only process, whose run another process
/// executes: every step is still told, in order, read from the store as
/// the executing process's change feed announces it.
#[tokio::test]
async fn progress_follows_a_run_that_another_process_executes() {
    let Some(pg) = agentd_test_support::postgres_url() else {
        return;
    };
    if !agentd_test_support::python::module_available("mcp", SDK) {
        return;
    }
    let worker = agentd_test_support::app::spawn_app_on_postgres(
        &crate::cross_process::config("node-w"),
        &pg,
    )
    .await;
    let api = worker
        .api_only_sibling(&crate::cross_process::config("node-api"))
        .await;
    // The worker polls every 30 s: the feed is what wakes it.
    let t0 = std::time::Instant::now();
    while worker.engine.feed_connected() != Some(true) {
        assert!(t0.elapsed().as_secs() < 10, "the feed never listened");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Act: `slower` journals five steps, 500 ms per model call.
    let called = crate::helpers::run_py(
        "mcp_sdk.py",
        vec![
            "progress".into(),
            format!("{}/mcp", api.base),
            "acme".into(),
            "run_slower".into(),
            "hi".into(),
        ],
    )
    .await;
    api.stop().await;
    worker.stop().await;

    // Assert
    assert_eq!(called["status"], "succeeded", "{called}");
    assert_eq!(
        called["progress"],
        json!([
            [1.0, "step 0: llm slower"],
            [2.0, "step 1: tool echo"],
            [3.0, "step 2: llm slower"],
            [4.0, "step 3: tool echo"],
            [5.0, "step 4: llm slower"],
        ]),
        "{called}"
    );
}
