//! `/v1/rollouts/{agent}` (operators only) and `POST /v1/admin/reload`
//! (role admin), over HTTP on a server started from a config file.

use crate::helpers::{assert_error, json};
use agentd_test_support::app::spawn_app_from_file;
use reqwest::StatusCode;
use serde_json::json;

const VERSIONED: &str = r#"
[queue]
poll_interval = "20ms"

[providers.m]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "bot"
version = "v1"
providers = ["m"]

[[agents]]
name = "bot"
version = "v2"
providers = ["m"]

[rollout.bot]
stable = "v1"
canary = "v2"
percent = 50

[[agents]]
name = "plain"
providers = ["m"]
"#;

#[tokio::test]
async fn operators_read_promote_and_roll_back() {
    let (app, _file) = spawn_app_from_file(VERSIONED).await;
    let as_operator = |r: reqwest::RequestBuilder| r.header("x-roles", "operator");

    // Runs record their version.
    let (status, run) = app.create_run("bot", json!({ "input": "x" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert!(
        matches!(run["agent_version"].as_str(), Some("v1" | "v2")),
        "{run}"
    );
    let (_, plain) = app.create_run("plain", json!({ "input": "x" })).await;
    assert_eq!(plain["agent_version"], json!(null));

    // An admin of one tenant is not an operator.
    let res = app.get("/v1/rollouts/bot").send().await.unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    for (path, code) in [
        ("/v1/rollouts/nobody", "not_found"),
        ("/v1/rollouts/plain", "not_found"),
    ] {
        let res = as_operator(app.get(path)).send().await.unwrap();
        assert_error(res, StatusCode::NOT_FOUND, code).await;
    }

    let (status, report) = json(
        as_operator(app.get("/v1/rollouts/bot"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["versions"], json!(["v1", "v2"]));
    assert_eq!(report["phase"], "active");
    assert_eq!(report["percent"], 50.0);

    let promote = || {
        as_operator(app.post("/v1/rollouts/bot/promote"))
            .json(&json!({ "reason": "canary is healthy" }))
            .send()
    };
    let (status, report) = json(promote().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["phase"], "promoted");
    assert_eq!(report["stable"], "v2");
    assert_eq!(report["reason"], "canary is healthy");
    assert_error(promote().await.unwrap(), StatusCode::CONFLICT, "conflict").await;
    let res = as_operator(app.post("/v1/rollouts/bot/rollback"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::CONFLICT, "conflict").await;
    let (_, run) = app.create_run("bot", json!({ "input": "x" })).await;
    assert_eq!(run["agent_version"], "v2", "{run}");

    // The audit log of the operator's tenant records it.
    let (_, log) = json(
        app.get("/v1/audit?kind=rollout_promoted")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(log["items"].as_array().map(Vec::len), Some(1), "{log}");
}

#[tokio::test]
async fn reload_applies_a_valid_file_and_keeps_the_old_config_on_a_bad_one() {
    let (app, file) = spawn_app_from_file(VERSIONED).await;
    let reload = || app.post("/v1/admin/reload").send();

    let (status, _) = app.create_run("fresh", json!({ "input": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only an admin may reload.
    let res = app
        .post("/v1/admin/reload")
        .header("x-roles", "user")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // A new agent and a restart-only key.
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!(
            "{original}\n[[agents]]\nname = \"fresh\"\nproviders = [\"m\"]\n\
             [server]\nlisten = \"127.0.0.1:1\"\n"
        ),
    )
    .unwrap();
    let (status, done) = json(reload().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        done["agents"],
        json!(["bot@v1", "bot@v2", "fresh", "plain"])
    );
    assert_eq!(done["restart_required"], json!(["server.listen"]));
    let (status, run) = app
        .create_run("fresh", json!({ "input": "x", "wait": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["output"], "ok");

    // A file that does not validate is refused with where it is wrong.
    std::fs::write(
        &file,
        format!("{original}\n[[agents]]\nname = \"worse\"\nproviders = [\"nope\"]\n"),
    )
    .unwrap();
    let message = assert_error(reload().await.unwrap(), StatusCode::CONFLICT, "conflict").await;
    assert!(message.contains("agents[3].providers"), "{message}");
    assert!(message.contains("previous one stays"), "{message}");
    // What the last good reload applied is still in force.
    let (status, _) = app.create_run("fresh", json!({ "input": "x" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app.create_run("worse", json!({ "input": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
