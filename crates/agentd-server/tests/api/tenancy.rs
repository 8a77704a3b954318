//! Tenant isolation: another tenant's run or conversation is invisible, and
//! it cannot be changed.

use crate::helpers::{assert_error, json, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn another_tenants_runs_and_conversations_are_invisible() {
    // Arrange: tenant a's run waits for a human, so b could still change it
    let app = spawn_app().await;
    let (status, run) = json(
        app.post("/v1/agents/asker/runs")
            .header("x-tenant-id", "a")
            .json(&json!({ "input": "hi", "conversation_id": "c1", "wait": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "paused");
    assert_eq!(run["tenant"], "a");
    let id = run["id"].as_str().unwrap().to_string();

    // Act + Assert: as tenant b, every route answers not_found
    let as_b = |req: reqwest::RequestBuilder| req.header("x-tenant-id", "b").send();
    let res = as_b(app.get(&format!("/v1/runs/{id}"))).await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = as_b(app.get(&format!("/v1/runs/{id}/steps")))
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = as_b(app.get(&format!("/v1/runs/{id}/deliveries")))
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = as_b(
        app.post(&format!("/v1/runs/{id}/resume"))
            .json(&json!({ "answer": "from b" })),
    )
    .await
    .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = as_b(app.post(&format!("/v1/runs/{id}/cancel")))
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let (status, list) = json(as_b(app.get("/v1/runs")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]));

    // Assert: b's attempts changed nothing for a
    let as_a = |req: reqwest::RequestBuilder| req.header("x-tenant-id", "a").send();
    let (_, still) = json(as_a(app.get(&format!("/v1/runs/{id}"))).await.unwrap()).await;
    assert_eq!(still["status"], "paused");
    let (status, deliveries) = json(
        as_a(app.get(&format!("/v1/runs/{id}/deliveries")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    assert_eq!(deliveries, json!({ "items": [], "next_cursor": null }));
    let (status, _) = json(
        as_a(
            app.post(&format!("/v1/runs/{id}/resume"))
                .json(&json!({ "answer": "yes" })),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, a_list) = json(as_a(app.get("/v1/runs")).await.unwrap()).await;
    assert_eq!(a_list["items"][0]["id"], id.as_str());

    // Assert: the conversation's memory is a's alone
    let messages_of_a = async {
        for _ in 0..400 {
            let (_, page) = json(
                as_a(app.get("/v1/conversations/c1/messages"))
                    .await
                    .unwrap(),
            )
            .await;
            if !page["items"].as_array().unwrap().is_empty() {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("tenant a's conversation never got its messages");
    };
    let page = messages_of_a.await;
    let roles: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{page}");
    assert_eq!(page["items"][0]["content"], "hi");
    assert_eq!(page["items"][3]["content"], "answer: yes");
    let (status, b_page) = json(
        as_b(app.get("/v1/conversations/c1/messages"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b_page["items"], json!([]));
    assert_eq!(b_page["next_cursor"], serde_json::Value::Null);
}
