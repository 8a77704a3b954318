//! `GET /v1/audit`: the tenant's audit log, newest first, filtered and
//! paged; admins see every entry, anyone else only their own; another
//! tenant sees nothing; bad parameters are 400.

use crate::helpers::{TestApp, assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `GET path` as `principal` of tenant `default` with `roles`.
async fn audit_as(app: &TestApp, query: &str, principal: &str, roles: &str) -> Value {
    let (status, page) = json(
        app.get(&format!("/v1/audit{query}"))
            .header("x-principal-id", principal)
            .header("x-roles", roles)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    page
}

/// `(kind, actor)` of each item, oldest first.
fn trail(page: &Value) -> Vec<(String, String)> {
    let mut items: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    items.reverse();
    items
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, a)| (k.to_string(), a.to_string()))
        .collect()
}

#[tokio::test]
async fn runs_leave_a_trail_that_admins_read_whole_and_others_only_their_own() {
    // Arrange: alice runs W1 to the end, a run that pauses and bob
    // resumes, and a slow run she cancels.
    let app = spawn_app().await;
    let create = |agent: &'static str, body: Value| {
        app.post(&format!("/v1/agents/{agent}/runs"))
            .header("x-principal-id", "alice")
            .json(&body)
            .send()
    };
    let (_, w1) = json(
        create("demo", json!({ "input": "hi", "wait": true }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(w1["status"], "succeeded", "{w1}");
    let (_, asked) = json(create("asker", json!({ "input": "go" })).await.unwrap()).await;
    let asked_id = asked["id"].as_str().unwrap().to_string();
    app.wait_for_status(&asked_id, "paused").await;
    let res = app
        .post(&format!("/v1/runs/{asked_id}/resume"))
        .header("x-principal-id", "bob")
        .json(&json!({ "answer": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.wait_for_status(&asked_id, "succeeded").await;
    let (_, slow) = json(create("slow", json!({ "input": "x" })).await.unwrap()).await;
    let slow_id = slow["id"].as_str().unwrap().to_string();
    let res = app
        .post(&format!("/v1/runs/{slow_id}/cancel"))
        .header("x-principal-id", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Act + Assert: each run's trail, as an admin.
    let w1_id = w1["id"].as_str().unwrap();
    let page = audit_as(&app, &format!("?run_id={w1_id}"), "root", "admin").await;
    assert_eq!(
        trail(&page),
        pairs(&[
            ("created", "alice"),
            ("claimed", "test-node"),
            ("succeeded", "agent")
        ])
    );
    let item = &page["items"][0];
    assert_eq!(item["run_id"], w1_id);
    assert!(item["time"].as_str().unwrap().ends_with('Z'), "{item}");
    assert!(item.get("details").is_some(), "{item}");
    let page = audit_as(&app, &format!("?run_id={asked_id}"), "root", "admin").await;
    assert_eq!(
        trail(&page),
        pairs(&[
            ("created", "alice"),
            ("claimed", "test-node"),
            ("paused", "agent"),
            ("resumed", "bob"),
            ("claimed", "test-node"),
            ("succeeded", "agent"),
        ])
    );
    assert_eq!(page["items"][3]["details"]["question"], "ok?");
    let page = audit_as(
        &app,
        &format!("?run_id={slow_id}&kind=cancelled"),
        "root",
        "admin",
    )
    .await;
    assert_eq!(trail(&page), pairs(&[("cancelled", "alice")]));

    // The whole log, newest first, page by page.
    let all = audit_as(&app, "?limit=100", "root", "admin").await;
    let total = all["items"].as_array().unwrap().len();
    assert!(total >= 11, "{all}");
    let mut seen = Vec::new();
    let mut query = "?limit=4".to_string();
    loop {
        let page = audit_as(&app, &query, "root", "admin").await;
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, *all["items"].as_array().unwrap());

    // Without role admin, alice sees only what she did; bob's resume and
    // the engine's entries stay hidden, even when she asks for them.
    let own = audit_as(&app, "?limit=100", "alice", "user").await;
    let own_trail = trail(&own);
    assert!(own_trail.iter().all(|(_, actor)| actor == "alice"), "{own}");
    assert_eq!(
        own_trail.iter().filter(|(k, _)| k == "created").count(),
        3,
        "{own}"
    );
    assert!(own_trail.contains(&("cancelled".into(), "alice".into())));
    let theirs = audit_as(&app, "?actor=bob", "alice", "user").await;
    assert_eq!(theirs["items"], json!([]));
    let bob = audit_as(&app, "?actor=bob", "root", "admin").await;
    assert_eq!(trail(&bob), pairs(&[("resumed", "bob")]));

    // Another tenant's admin sees none of it.
    let (status, other) = json(
        app.get("/v1/audit")
            .header("x-tenant-id", "other")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other, json!({ "items": [], "next_cursor": null }));
    let (_, other) = json(
        app.get(&format!("/v1/audit?run_id={w1_id}"))
            .header("x-tenant-id", "other")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other["items"], json!([]));
}

#[tokio::test]
async fn key_changes_are_audited_and_bad_parameters_are_400() {
    // Arrange: an admin mints and revokes a key.
    let app = spawn_app().await;
    let (status, key) = json(
        app.post("/v1/keys")
            .header("x-principal-id", "ops")
            .json(&json!({ "principal": "bot", "roles": ["user"] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let id = key["id"].as_str().unwrap();
    let res = app
        .client
        .delete(format!("{}/v1/keys/{id}", app.base))
        .header("x-principal-id", "ops")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Act + Assert: both changes, by ops, of no run, never the secret.
    let page = audit_as(&app, "?actor=ops", "root", "admin").await;
    assert_eq!(
        trail(&page),
        pairs(&[("key_created", "ops"), ("key_revoked", "ops")])
    );
    assert_eq!(page["items"][1]["run_id"], json!(null));
    assert_eq!(page["items"][1]["details"]["key_id"], id);
    assert_eq!(page["items"][1]["details"]["principal"], "bot");
    let secret = key["key"].as_str().unwrap();
    assert!(!page.to_string().contains(secret), "{page}");
    let since = audit_as(
        &app,
        "?kind=key_created&since=2000-01-01T00:00:00Z",
        "root",
        "admin",
    )
    .await;
    assert_eq!(since["items"].as_array().unwrap().len(), 1);
    let later = audit_as(&app, "?since=2999-01-01T00:00:00%2B02:00", "root", "admin").await;
    assert_eq!(later["items"], json!([]));

    // Bad parameters name what is wrong.
    for (query, needle) in [
        ("run_id=nope", "run_id"),
        ("since=yesterday", "since"),
        ("kind=bogus", "key_created"),
        ("cursor=zzz", "cursor"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("colour=red", "colour"),
    ] {
        let res = app.get(&format!("/v1/audit?{query}")).send().await.unwrap();
        let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(message.contains(needle), "{query}: {message}");
    }
}
