//! Webhook tools: the POST carries the arguments, an id stable across
//! re-executions of a step, and a Standard Webhooks signature that the
//! official `standardwebhooks` Python package verifies.

use std::sync::{Arc, Mutex};

use agentd_tools::{
    BuildOptions, Registry, ToolError, ToolOutput, ToolsError, WEBHOOK_ID, WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP, WebhookSecret,
};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use agentd_test_support::standardwebhooks_verifies;

/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Verifies a received request with the official `standardwebhooks`
/// package (see [`standardwebhooks_verifies`]).
fn python_verifies(secret: &str, r: &Received) -> Option<bool> {
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()));
    standardwebhooks_verifies(secret, headers, &r.body)
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn receiver(status: StatusCode) -> (std::net::SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(Received {
                    headers,
                    body: body.to_vec(),
                });
                (status, axum::Json(json!({ "ok": status.is_success() })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (serve(listener, router).await, seen)
}

fn toml(addr: std::net::SocketAddr) -> String {
    format!(
        r#"
[tools.notify]
kind = "webhook"
url = "http://{addr}/hook"
allow = ["127.0.0.1"]
secret_env = "NOTIFY_SECRET"
description = "Notify the on-call channel"
schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}
approval = true
"#
    )
}

#[tokio::test]
async fn posts_signed_idempotent_requests() {
    let (addr, seen) = receiver(StatusCode::OK).await;
    let reg = registry_with(&toml(addr), FakeDns::new(&[]), &[("NOTIFY_SECRET", SECRET)]).await;
    assert!(reg.requires_approval("notify"));
    let set = reg.resolve(&["notify".to_owned()]).unwrap();
    let spec = &set.specs()[0];
    assert_eq!(spec.name, "notify");
    assert_eq!(spec.description, "Notify the on-call channel");
    assert_eq!(spec.input_schema["required"], json!(["text"]));

    let c = ctx();
    let args = json!({ "text": "disk full" });
    let out = set.call(&c, "notify", &args).await.unwrap();
    assert_eq!(
        out,
        ToolOutput::Value(json!({ "status": 200, "body": { "ok": true } }))
    );
    // The step re-executed after a crash sends the same key.
    set.call(&c, "notify", &args).await.unwrap();

    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    for r in &received {
        let h = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("idempotency-key"), format!("{}:7", c.run_id));
        assert_eq!(h(WEBHOOK_ID), format!("{}:7", c.run_id));
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), args);
        let ts: u64 = h(WEBHOOK_TIMESTAMP).parse().unwrap();
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(
            h(WEBHOOK_SIGNATURE),
            secret.sign(&c.idempotency_key(), ts, &r.body)
        );
    }
    // The official verifier accepts it, and refuses a changed body or
    // another secret.
    let r = &received[0];
    if python_verifies(SECRET, r).is_some() {
        assert_eq!(python_verifies(SECRET, r), Some(true));
        let mut tampered = r.clone();
        tampered.body = br#"{"text":"all good"}"#.to_vec();
        assert_eq!(python_verifies(SECRET, &tampered), Some(false));
        let other = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
        assert_eq!(python_verifies(other, r), Some(false));
    }

    // Invalid arguments never leave the process.
    let err = set
        .call(&c, "notify", &json!({ "txt": 1 }))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs { .. }), "{err}");
    let err = set.tools()[0].validate(&json!({})).unwrap_err();
    assert!(
        err.to_string().contains("\"text\" is a required property"),
        "{err}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "nothing sent for invalid arguments"
    );
}

#[tokio::test]
async fn receiver_errors() {
    let (addr, _) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let reg = registry_with(&toml(addr), FakeDns::new(&[]), &[("NOTIFY_SECRET", SECRET)]).await;
    let err = reg
        .get("notify")
        .unwrap()
        .call(&ctx(), &json!({ "text": "x" }))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("webhook answered 500"), "{err}");

    let (addr, _) = receiver(StatusCode::UNPROCESSABLE_ENTITY).await;
    let reg = registry_with(&toml(addr), FakeDns::new(&[]), &[("NOTIFY_SECRET", SECRET)]).await;
    let err = reg
        .get("notify")
        .unwrap()
        .call(&ctx(), &json!({ "text": "x" }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ToolError::InvalidArgs { .. }),
        "a 4xx is the model's to fix: {err}"
    );
}

#[tokio::test]
async fn misconfigured_webhooks_fail_at_start_up() {
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let build = |toml: String, secrets: Vec<(&'static str, &'static str)>| async move {
        let options = BuildOptions {
            env: Arc::new(move |name| {
                secrets
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }),
            ..BuildOptions::default()
        };
        Registry::from_config_with(&config(&toml), options).await
    };
    let Err(err) = build(toml(addr), vec![]).await else {
        panic!("a missing secret must fail");
    };
    assert_eq!(
        err,
        ToolsError::Config {
            key: "tools.notify.secret_env".into(),
            message: "environment variable NOTIFY_SECRET (the webhook's HMAC secret) is not set"
                .into()
        }
    );
    let Err(err) = build(toml(addr), vec![("NOTIFY_SECRET", "plain words")]).await else {
        panic!("a secret that is not whsec_ base64 must fail");
    };
    assert!(
        matches!(&err, ToolsError::Config { key, message } if key == "tools.notify.secret_env"
            && message.contains("NOTIFY_SECRET") && message.contains("whsec_")
            && !message.contains("plain words")),
        "{err}"
    );
    let Err(err) = build(
        toml(addr).replace("allow = [\"127.0.0.1\"]\n", ""),
        vec![("NOTIFY_SECRET", SECRET)],
    )
    .await
    else {
        panic!("a webhook to loopback without allow must fail");
    };
    assert!(
        matches!(&err, ToolsError::Config { key, message } if key == "tools.notify.url" && message.contains("refused by the SSRF guard")),
        "{err}"
    );
    let Err(err) = build(
        toml(addr).replace("required = [\"text\"]", "required = \"text\""),
        vec![("NOTIFY_SECRET", SECRET)],
    )
    .await
    else {
        panic!("an invalid schema must fail");
    };
    assert!(
        matches!(&err, ToolsError::Config { key, .. } if key == "tools.notify.schema"),
        "{err}"
    );
}
