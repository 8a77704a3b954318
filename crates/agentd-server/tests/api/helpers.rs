//! `spawn_app()` and the client helpers the tests read through.

use agentd_config::Config;
use agentd_server::Application;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const VERSION: &str = "9.9.9-test";

/// Agents `demo` (echo then reply), `asker` (asks a human), `slow` (the
/// demo script at 300 ms per model call) and `broken` (its model always
/// fails; dead after two quick attempts), and a 1 KiB body limit.
pub const CONFIG: &str = r#"
[server]
max_body_bytes = 1024
wait_timeout = "10s"

[queue]
workers = 2
poll_interval = "20ms"
node_id = "test-node"
max_attempts = 2
backoff = { initial = "10ms", max = "10ms" }

[providers.mock]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.asker]
kind = "mock"
script = [{ tool = "ask_human", args = { question = "ok?" } }, { reply = "answer: {{tool_result}}" }]

[providers.slow]
kind = "mock"
latency_ms = 300
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "broken"
providers = ["down"]

[[agents]]
name = "demo"
providers = ["mock"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]

[[agents]]
name = "slow"
providers = ["slow"]
tools = ["echo"]
"#;

/// A running server; stops its server and workers when dropped.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts agentd (API, workers, recovery) through [`Application`] on a
/// fresh database.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml_str(CONFIG).unwrap();
    config.store.url = format!("sqlite://{}/t.db", dir.path().display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, Some(listener))
        .await
        .unwrap()
        .with_version(VERSION);
    let addr = app.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        shutdown,
        _dir: dir,
    }
}

impl TestApp {
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    /// Starts a run of `agent` as the default tenant.
    pub async fn create_run(&self, agent: &str, body: Value) -> (StatusCode, Value) {
        json(
            self.post(&format!("/v1/agents/{agent}/runs"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Polls a run (as the default tenant) until it has `status`; fails
    /// after a bound instead of hanging.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..400 {
            let (code, run) = json(self.get(&format!("/v1/runs/{id}")).send().await.unwrap()).await;
            assert_eq!(code, StatusCode::OK, "{run}");
            if run["status"] == status {
                return run;
            }
            last = run;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("run {id} never reached {status}; last seen: {last}");
    }
}

/// The status and JSON body of a response.
pub async fn json(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let body = res.json::<Value>().await.unwrap();
    (status, body)
}

/// Asserts an error response: the status, a JSON content type and the
/// `{"error": {"code", "message"}}` shape with `code`; returns the message.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status(), status);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(content_type, "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    message.to_string()
}
