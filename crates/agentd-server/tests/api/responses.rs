//! The Responses API, driven by the official `openai` Python SDK
//! (`openai_responses.py`): plain, streamed, chained with
//! `previous_response_id`, background + retrieve, a pausing and a dying
//! agent. Each response is a run, found here through the native API.

use crate::helpers::json;
use crate::openai::{config, mint, run_sdk_script, sdk_available};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn the_official_openai_sdk_runs_agents_through_responses() {
    if !sdk_available() {
        return;
    }
    // Arrange
    let app = spawn_app(&config()).await;
    let key = mint(&app).await;

    // Act: the SDK's calls, each asserted by the script
    let ids = run_sdk_script(&app, &key, "openai_responses.py").await;

    // Assert: every check passed, and each response is a run of the tenant
    let mut runs = std::collections::HashMap::new();
    for name in [
        "plain",
        "stream",
        "first",
        "second",
        "third",
        "background",
        "paused",
        "broken",
    ] {
        let id = ids[name].as_str().unwrap();
        let (code, run) = json(
            app.get(&format!("/v1/runs/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{name}: {run}");
        runs.insert(name, run);
    }
    for (name, status) in [
        ("plain", "succeeded"),
        ("stream", "succeeded"),
        ("third", "succeeded"),
        ("background", "succeeded"),
        ("paused", "paused"),
        ("broken", "dead"),
    ] {
        assert_eq!(runs[name]["status"], status, "{name}: {}", runs[name]);
    }
    assert_eq!(runs["plain"]["input"], "hello");
    assert_eq!(runs["plain"]["principal"], "sdk");
    assert_eq!(runs["plain"]["metadata"]["openai"]["user"], "user-7");
    assert_eq!(runs["plain"]["metadata"]["openai"]["api"], "responses");
    // The chain is one agentd conversation, whose memory holds each
    // exchange (the instructions are the first response's only).
    let conversation = runs["first"]["conversation_id"].as_str().unwrap();
    assert!(conversation.starts_with("resp-"), "{conversation}");
    for name in ["second", "third"] {
        assert_eq!(runs[name]["conversation_id"], conversation, "{name}");
    }
    let (code, memory) = json(
        app.get(&format!("/v1/conversations/{conversation}/messages"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{memory}");
    let memory = memory["items"].as_array().unwrap();
    assert_eq!(memory.len(), 6, "{memory:?}");
    assert_eq!(memory[0]["content"], "my name is Ada");
    assert_ne!(
        runs["plain"]["conversation_id"], conversation,
        "an unchained response starts its own conversation"
    );
}
