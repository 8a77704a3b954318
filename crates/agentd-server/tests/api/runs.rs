//! Starting, reading and listing runs: the happy path.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_run_with_wait_finishes_and_its_journal_and_listing_are_readable() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .post("/v1/agents/demo/runs")
        .json(&json!({ "input": "hi", "wait": true, "metadata": { "k": "v" } }))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let (status, run) = json(res).await;

    // Assert: the finished run itself, not wrapped
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"], "done: hi");
    assert_eq!(run["steps"], 3);
    assert_eq!(run["agent"], "demo");
    assert_eq!(run["tenant"], "default");
    assert_eq!(run["metadata"], json!({ "k": "v" }));
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/runs/{id}"));

    // Assert: GET returns the same run
    let (status, got) = json(app.get(&location).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, run);

    // Assert: the journal, in order, in the list envelope
    let (status, steps) = json(
        app.get(&format!("/v1/runs/{id}/steps"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{steps}");
    let items = steps["items"].as_array().unwrap();
    let indexes: Vec<_> = items.iter().map(|s| s["index"].as_u64().unwrap()).collect();
    let kinds: Vec<_> = items.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(indexes, [0, 1, 2]);
    assert_eq!(kinds, ["llm", "tool", "llm"]);
    assert_eq!(steps["next_cursor"], serde_json::Value::Null);

    // Assert: paging the journal with limit and the returned cursor
    let (_, first) = json(
        app.get(&format!("/v1/runs/{id}/steps?limit=2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = json(
        app.get(&format!("/v1/runs/{id}/steps?after={cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest["items"][0]["index"], 2);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    // Assert: the listing, with and without matching filters
    let (status, list) = json(app.get("/v1/runs").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    let (_, matching) = json(
        app.get("/v1/runs?agent=demo&status=succeeded&limit=10")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(matching["items"][0]["id"], id.as_str());
    let (_, other) = json(app.get("/v1/runs?status=failed").send().await.unwrap()).await;
    assert_eq!(other["items"], json!([]));
}

#[tokio::test]
async fn a_run_without_wait_is_accepted_at_once_and_finishes_later() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, run) = app.create_run("slow", json!({ "input": "later" })).await;

    // Assert: accepted before the 2 x 300 ms of model latency have passed
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert!(
        run["status"] == "queued" || run["status"] == "running",
        "{run}"
    );
    assert_eq!(run["output"], serde_json::Value::Null);
    let id = run["id"].as_str().unwrap();
    let done = app.wait_for_status(id, "succeeded").await;
    assert_eq!(done["output"], "done: later");
    assert_eq!(done["steps"], 3);
}

#[tokio::test]
async fn runs_are_listed_newest_first_in_pages() {
    // Arrange
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, run) = app.create_run("demo", json!({ "input": i })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(run["id"].as_str().unwrap().to_string());
    }

    // Act
    let (_, first) = json(app.get("/v1/runs?limit=2").send().await.unwrap()).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = json(
        app.get(&format!("/v1/runs?limit=2&cursor={cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Assert
    let page = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(page(&first), [ids[2].clone(), ids[1].clone()]);
    assert_eq!(page(&second), [ids[0].clone()]);
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_run_and_refuses_another_body() {
    // Arrange
    let app = spawn_app().await;
    let post = |body: serde_json::Value, key: &'static str| {
        app.post("/v1/agents/demo/runs")
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };

    // Act
    let (s1, first) = json(
        post(json!({ "input": "once", "wait": true }), "k1")
            .await
            .unwrap(),
    )
    .await;
    let (s2, again) = json(
        post(json!({ "input": "once", "wait": true }), "k1")
            .await
            .unwrap(),
    )
    .await;
    let other = post(json!({ "input": "twice" }), "k1").await.unwrap();

    // Assert: one run, replayed; another body under the key is a conflict
    assert_eq!(s1, StatusCode::OK);
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["status"], "succeeded");
    assert_error(other, StatusCode::CONFLICT, "conflict").await;
    let (_, list) = json(app.get("/v1/runs").send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // The same key in another tenant is another run.
    let (_, theirs) = json(
        app.post("/v1/agents/demo/runs")
            .header("idempotency-key", "k1")
            .header("x-tenant-id", "other")
            .json(&json!({ "input": "once" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(theirs["id"], first["id"]);
}
