//! Webhook tools: the POST carries the arguments, an idempotency key stable
//! across re-executions of a step, and a verifiable HMAC signature.

use std::sync::{Arc, Mutex};

use agentd_tools::{
    BuildOptions, Registry, SIGNATURE_HEADER, TIMESTAMP_HEADER, ToolError, ToolOutput, ToolsError,
    webhook_signature,
};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

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
    let reg = registry_with(
        &toml(addr),
        FakeDns::new(&[]),
        &[("NOTIFY_SECRET", "s3cret")],
    )
    .await;
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
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), args);
        let ts: u64 = h(TIMESTAMP_HEADER).parse().unwrap();
        assert_eq!(
            h(SIGNATURE_HEADER),
            webhook_signature(b"s3cret", ts, &c.idempotency_key(), &r.body)
        );
        assert_ne!(
            h(SIGNATURE_HEADER),
            webhook_signature(b"wrong", ts, &c.idempotency_key(), &r.body)
        );
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
    let reg = registry_with(&toml(addr), FakeDns::new(&[]), &[("NOTIFY_SECRET", "s")]).await;
    let err = reg
        .get("notify")
        .unwrap()
        .call(&ctx(), &json!({ "text": "x" }))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("webhook answered 500"), "{err}");

    let (addr, _) = receiver(StatusCode::UNPROCESSABLE_ENTITY).await;
    let reg = registry_with(&toml(addr), FakeDns::new(&[]), &[("NOTIFY_SECRET", "s")]).await;
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
    let Err(err) = build(
        toml(addr).replace("allow = [\"127.0.0.1\"]\n", ""),
        vec![("NOTIFY_SECRET", "s")],
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
        vec![("NOTIFY_SECRET", "s")],
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
