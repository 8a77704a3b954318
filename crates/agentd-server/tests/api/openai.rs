//! The OpenAI-compatible API, driven by the official `openai` Python SDK
//! (`openai_sdk.py`) with a minted API key: plain, streamed and multi-turn
//! calls, a pausing agent, an unknown model and a bad key. Each call is a
//! run like any other, found here through the native API.

use crate::helpers::{CONFIG, TestApp, json};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;

/// The `openai` version `.ci/run` installs.
const SDK: &str = "openai==2.54.0";

/// Agents `chat` (answers with the conversation before its input) and
/// `interviewer` (asks a question showing it, then answers with it).
const AGENTS: &str = r#"
[providers.chat]
kind = "mock"
script = [{ reply = "[{{history}}] {{input}}" }]

[providers.interviewer]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "{{history}}?" } },
  { reply = "[{{history}}] {{input}}: {{tool_result}}" },
]

[[agents]]
name = "chat"
providers = ["chat"]

[[agents]]
name = "interviewer"
providers = ["interviewer"]
tools = ["ask_human"]

[auth]
mode = "api_key"
"#;

/// The suite's agents and [`AGENTS`], under API keys.
pub(crate) fn config() -> String {
    format!("{CONFIG}{AGENTS}")
}

/// A key of tenant `acme` for the SDK.
pub(crate) async fn mint(app: &TestApp) -> String {
    crate::helpers::mint(app, "acme", "sdk", &[]).await
}

/// Runs `tests/api/<script>` with the app's base URL and `key`.
pub(crate) async fn run_sdk_script(app: &TestApp, key: &str, script: &str) -> Value {
    crate::helpers::run_py(script, vec![app.base.clone(), key.to_owned()]).await
}

/// True if python3 can import the SDK; under CI (where `.ci/run` installs
/// it) its absence fails the test instead.
pub(crate) fn sdk_available() -> bool {
    agentd_test_support::python::module_available("openai", SDK)
}

#[tokio::test]
async fn the_official_openai_sdk_runs_agents_through_chat_completions() {
    if !sdk_available() {
        return;
    }
    // Arrange
    let app = spawn_app(&config()).await;
    let key = mint(&app).await;

    // Act: the SDK's calls, each asserted by the script
    let ids = run_sdk_script(&app, &key, "openai_sdk.py").await;

    // Assert: every check passed, and each call is a run of the tenant
    let run = |name: &str| {
        let id = ids[name].as_str().unwrap().to_owned();
        let (app, key) = (&app, &key);
        async move {
            let (status, run) = json(
                app.get(&format!("/v1/runs/{id}"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            (status, run)
        }
    };
    for (name, status) in [
        ("plain", "succeeded"),
        ("stream", "succeeded"),
        ("multi_turn", "succeeded"),
        ("paused", "paused"),
    ] {
        let (code, body) = run(name).await;
        assert_eq!(code, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["status"], status, "{name}: {body}");
    }
    let (_, plain) = run("plain").await;
    assert_eq!(plain["input"], "hello");
    assert_eq!(plain["principal"], "sdk");
    assert_eq!(plain["metadata"]["openai"]["user"], "user-7");
    let (_, broken) = run("broken").await;
    assert_eq!(broken["status"], "dead", "{broken}");
    let (_, broken_runs) = json(
        app.get("/v1/runs?agent=broken")
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // One run per call (one plain, one streamed): the SDK did not retry.
    assert_eq!(
        broken_runs["items"].as_array().unwrap().len(),
        2,
        "the SDK retried a failed run: {broken_runs}"
    );
    // The resumed attempt rebuilds the seeded context from the store.
    let interview = ids["interview"].as_str().unwrap();
    let (status, resumed) = json(
        app.post(&format!("/v1/runs/{interview}/resume"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"answer": "yes", "wait": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["output"], "[system: ctx] q: yes", "{resumed}");
    let (_, turn) = run("multi_turn").await;
    assert_eq!(turn["input"], "who am I?");
    assert_eq!(
        turn["metadata"]["openai"]["messages"][1],
        serde_json::json!({"role": "user", "content": "my name is Ada"})
    );
}

/// Errors answered before the handler (authentication, a malformed body)
/// are reshaped too, keeping their status and headers.
#[tokio::test]
async fn errors_of_the_middleware_are_in_openais_shape() {
    let app = spawn_app(&config()).await;
    let key = mint(&app).await;

    let res = app.get("/v1/models").send().await.unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");

    let (status, body) = json(
        app.post("/v1/chat/completions")
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    // The native API keeps agentd's own shape.
    let (status, body) = json(app.get("/v1/runs").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

/// `metadata.openai.messages` is the seeded context on any route: a value
/// the engine could not rebuild a run with is refused at creation.
#[tokio::test]
async fn a_malformed_seeded_context_is_refused_when_the_run_is_created() {
    let app = spawn_app(&config()).await;
    let key = mint(&app).await;

    let (status, body) = json(
        app.post("/v1/agents/chat/runs")
            .bearer_auth(&key)
            .json(&serde_json::json!({
                "input": "x",
                "metadata": {"openai": {"messages": [{"role": "nobody"}]}},
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metadata.openai.messages"),
        "{body}"
    );

    // A well-formed one seeds the run, as through the OpenAI route.
    let (status, run) = json(
        app.post("/v1/agents/chat/runs")
            .bearer_auth(&key)
            .json(&serde_json::json!({
                "input": "x",
                "wait": true,
                "metadata": {"openai": {"messages": [{"role": "user", "content": "earlier"}]}},
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["output"], "[user: earlier] x");
}
