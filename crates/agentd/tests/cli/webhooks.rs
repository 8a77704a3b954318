//! Completion webhooks end to end: a run's `callback_url` and its agent's
//! `on_finish` (a webhook tool) receive the finished run, signed per
//! Standard Webhooks (checked with the official `standardwebhooks`
//! package), retried with one `webhook-id` until a 2xx, and delivered by a
//! new process after the one that owed it was killed with SIGKILL.

use crate::support::{Server, TEST_WEBHOOK_SECRET, Workspace, free_port};
use agentd_test_support::standardwebhooks_verifies;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// A receiver on `port` answering 500 to the first `fail` requests to
/// `/hook`, then 200; every request is recorded.
async fn receiver(port: u16, fail: usize) -> Arc<Mutex<Vec<Got>>> {
    let seen: Arc<Mutex<Vec<Got>>> = Arc::default();
    let log = seen.clone();
    let router = axum::Router::new().fallback(
        move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(Got {
                    path: uri.path().to_owned(),
                    headers,
                    body: body.to_vec(),
                });
                let hooks = log.iter().filter(|g| g.path == "/hook").count();
                if uri.path() == "/hook" && hooks <= fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    seen
}

/// Verifies a request with the official `standardwebhooks` package (see
/// [`standardwebhooks_verifies`]).
fn python_verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> Option<bool> {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()));
    standardwebhooks_verifies(secret, headers, body)
}

fn config(port: u16, receiver: u16) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[queue]
node_id = "hooks-node"

[webhooks]
secret_env = "TEST_WEBHOOK_SECRET"
allow = ["127.0.0.1"]
timeout = "2s"
backoff_initial = "100ms"
backoff_max = "200ms"

[tools.notify]
kind = "webhook"
url = "http://127.0.0.1:{receiver}/tool"
secret_env = "TEST_WEBHOOK_SECRET"
allow = ["127.0.0.1"]

[providers.m]
kind = "mock"
script = [{{ reply = "done" }}]

[[agents]]
name = "bot"
providers = ["m"]
on_finish = "notify"
"#
    )
}

async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let res = client.get(url).send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits until every delivery of run `id` is `delivered`.
async fn delivered(client: &reqwest::Client, base: &str, id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = get(client, &format!("{base}/v1/runs/{id}/deliveries")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if items.len() == count && items.iter().all(|d| d["status"] == "delivered") {
            return items;
        }
        assert!(Instant::now() < deadline, "not delivered: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_run_is_delivered_signed_and_retried_with_one_id() {
    let ws = Workspace::new();
    let (port, rport) = (free_port(), free_port());
    let seen = receiver(rport, 2).await;
    let cfg = ws.write_config(&config(port, rport));
    let server = Server::start(&ws, &cfg, port);
    let client = reqwest::Client::new();
    let base = &server.base;

    // A URL the SSRF guard refuses is refused at creation.
    let res = client
        .post(format!("{base}/v1/agents/bot/runs"))
        .json(&json!({ "input": "x", "callback_url": "http://169.254.169.254/latest" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400, "{}", res.text().await.unwrap());

    let hook = format!("http://127.0.0.1:{rport}/hook");
    let run: Value = client
        .post(format!("{base}/v1/agents/bot/runs"))
        .json(&json!({ "input": "hi", "callback_url": hook, "wait": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    let items = delivered(&client, base, id, 2).await;
    let by_url = |url: &str| items.iter().find(|d| d["url"] == url).unwrap().clone();
    let d = by_url(&hook);
    assert_eq!(d["event"], "run.succeeded");
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(d["last_status_code"], 204);
    assert!(
        d["last_error"].is_null() && d["next_attempt_at"].is_null(),
        "{d}"
    );
    assert!(d["delivered_at"].is_string(), "{d}");
    let tool = by_url(&format!("http://127.0.0.1:{rport}/tool"));
    assert_eq!(tool["attempts"], 1, "{tool}");

    // The body is the run as GET shows it; every retry has the same id.
    let (_, shown) = get(&client, &format!("{base}/v1/runs/{id}")).await;
    let got = seen.lock().unwrap().clone();
    let hooks: Vec<&Got> = got.iter().filter(|g| g.path == "/hook").collect();
    assert_eq!(hooks.len(), 3);
    for g in &hooks {
        assert_eq!(g.header("webhook-id"), d["id"].as_str().unwrap());
        assert_eq!(g.header("agentd-event"), "run.succeeded");
        assert_eq!(serde_json::from_slice::<Value>(&g.body).unwrap(), shown);
    }
    assert!(d["id"].as_str().unwrap().starts_with("msg_"));
    let tools: Vec<&Got> = got.iter().filter(|g| g.path == "/tool").collect();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].header("webhook-id"), tool["id"].as_str().unwrap());
    assert_ne!(tool["id"], d["id"]);

    // The official verifier accepts each, and refuses a changed body or
    // another secret.
    for g in hooks.iter().chain(&tools) {
        if python_verifies(TEST_WEBHOOK_SECRET, &g.headers, &g.body).is_none() {
            return;
        }
        assert_eq!(
            python_verifies(TEST_WEBHOOK_SECRET, &g.headers, &g.body),
            Some(true)
        );
    }
    let g = hooks[0];
    assert_eq!(
        python_verifies(TEST_WEBHOOK_SECRET, &g.headers, br#"{"status":"failed"}"#),
        Some(false)
    );
    let other = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
    assert_eq!(python_verifies(other, &g.headers, &g.body), Some(false));

    // Another run's id, or none, is 404.
    let (status, _) = get(
        &client,
        &format!("{base}/v1/runs/00000000-0000-7000-8000-000000000000/deliveries"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_owed_by_a_killed_process_is_made_by_the_next() {
    let ws = Workspace::new();
    let (port, rport) = (free_port(), free_port());
    let cfg = ws.write_config(&config(port, rport));
    let server = Server::start(&ws, &cfg, port);
    let client = reqwest::Client::new();
    let hook = format!("http://127.0.0.1:{rport}/hook");
    // The receiver is down: nothing listens on its port.
    let run: Value = client
        .post(format!("{}/v1/agents/bot/runs", server.base))
        .json(&json!({ "input": "hi", "callback_url": hook, "wait": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    // Attempted at least once, not delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let (_, page) = get(&client, &format!("{}/v1/runs/{id}/deliveries", server.base)).await;
        let items = page["items"].as_array().unwrap().clone();
        if items.iter().all(|d| d["attempts"].as_u64() >= Some(1)) && items.len() == 2 {
            break items;
        }
        assert!(Instant::now() < deadline, "never attempted: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        before.iter().all(|d| d["status"] == "pending"),
        "{before:?}"
    );
    assert!(
        before.iter().all(|d| d["last_error"].is_string()),
        "{before:?}"
    );
    server.kill9();

    // A new process on the same database delivers both, same ids.
    let seen = receiver(rport, 0).await;
    let server = Server::start(&ws, &cfg, port);
    let after = delivered(&client, &server.base, &id, 2).await;
    for d in &after {
        let was = before.iter().find(|b| b["url"] == d["url"]).unwrap();
        assert_eq!(d["id"], was["id"]);
        assert!(d["attempts"].as_u64() > was["attempts"].as_u64(), "{d}");
    }
    let got = seen.lock().unwrap().clone();
    let mut ids: Vec<String> = got.iter().map(|g| g.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    let mut want: Vec<String> = after
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    want.sort();
    assert_eq!(ids, want);
}
