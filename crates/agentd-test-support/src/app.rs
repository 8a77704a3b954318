//! `spawn_app`: agentd (API, workers, recovery, retention) started through
//! `Application` on `127.0.0.1:0` over a fresh SQLite file or PostgreSQL
//! schema, and a client with the helpers the API tests read through.

use crate::pg::drop_schema;
use agentd_config::Config;
use agentd_engine::Engine;
use agentd_server::Application;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The version a spawned app reports on `/health`.
pub const VERSION: &str = "9.9.9-test";

/// A running agentd; stops its server and workers when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    /// The engine of the app (to arrange or inspect without HTTP).
    pub engine: Engine,
    /// The store's URL, for a second process on the same store.
    pub store_url: String,
    shutdown: CancellationToken,
    /// The PostgreSQL server and schema to drop, if the app runs on one.
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts agentd from `toml` on a fresh SQLite database.
pub async fn spawn_app(toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml_str(toml).unwrap();
    config.store.url = crate::sqlite_url(dir.path());
    start(config, dir, None).await
}

/// Starts agentd from a config file holding `toml` (on a fresh SQLite
/// database), with that file as its reload source; returns the file too,
/// so a test can rewrite it and reload.
pub async fn spawn_app_from_file(toml: &str) -> (TestApp, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentd.toml");
    let url = crate::sqlite_url(dir.path());
    std::fs::write(&path, format!("[store]\nurl = \"{url}\"\n{toml}")).unwrap();
    let config = Config::from_toml_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let source = agentd_config::ConfigSource::File(path.clone());
    (
        start_with(config, dir, None, Some(source), true).await,
        path,
    )
}

/// Starts agentd from `toml` on a fresh schema of the PostgreSQL server at
/// `pg`; [`TestApp::stop`] drops the schema.
pub async fn spawn_app_on_postgres(toml: &str, pg: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let schema = crate::unique_name("app");
    let mut config = Config::from_toml_str(toml).unwrap();
    config.store.url = format!("{pg}?schema={schema}");
    start(config, dir, Some((pg.to_string(), schema))).await
}

async fn start(
    config: Config,
    dir: tempfile::TempDir,
    schema: Option<(String, String)>,
) -> TestApp {
    start_with(config, dir, schema, None, true).await
}

async fn start_with(
    config: Config,
    dir: tempfile::TempDir,
    schema: Option<(String, String)>,
    source: Option<agentd_config::ConfigSource>,
    workers: bool,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, Some(listener))
        .await
        .unwrap()
        .with_version(VERSION);
    let app = match source {
        Some(source) => app.with_config_source(source),
        None => app,
    };
    let app = if workers { app } else { app.without_workers() };
    let addr = app.local_addr().unwrap();
    let engine = app.engine().clone();
    let store_url = config.store.url.clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        engine,
        store_url,
        shutdown,
        schema,
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

    /// Starts another agentd from `toml` on this app's store, as a second
    /// process of a fleet would be (it does not drop the store's schema).
    pub async fn sibling(&self, toml: &str) -> TestApp {
        let mut config = Config::from_toml_str(toml).unwrap();
        config.store.url = self.store_url.clone();
        start(config, tempfile::tempdir().unwrap(), None).await
    }

    /// Like [`TestApp::sibling`], but serving the API only: its runs are
    /// executed by the other processes.
    pub async fn api_only_sibling(&self, toml: &str) -> TestApp {
        let mut config = Config::from_toml_str(toml).unwrap();
        config.store.url = self.store_url.clone();
        start_with(config, tempfile::tempdir().unwrap(), None, None, false).await
    }

    /// Stops the app and drops its PostgreSQL schema, if any.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some((pg, schema)) = self.schema.take() {
            let _ = drop_schema(&pg, &schema).await;
        }
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
