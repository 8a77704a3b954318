//! `http_get` / `http_request`: response size and time limits, redirects,
//! request shape.

use std::time::Duration;

use agentd_tools::{ToolError, ToolOutput};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::common::*;

async fn server() -> std::net::SocketAddr {
    let router = axum::Router::new()
        .route(
            "/big",
            axum::routing::get(|| async { "x".repeat(5 * 1024 * 1024) }),
        )
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/loop",
            axum::routing::get(|| async {
                let mut h = HeaderMap::new();
                h.insert(header::LOCATION, "/loop".parse().unwrap());
                (StatusCode::FOUND, h)
            }),
        )
        .route(
            "/see-other",
            axum::routing::post(|| async {
                let mut h = HeaderMap::new();
                h.insert(header::LOCATION, "/echo".parse().unwrap());
                (StatusCode::SEE_OTHER, h)
            }),
        )
        .route(
            "/echo",
            axum::routing::any(
                |method: axum::http::Method, headers: HeaderMap, body: String| async move {
                    axum::Json(json!({
                        "method": method.as_str(),
                        "idempotency_key": headers.get("idempotency-key").and_then(|v| v.to_str().ok()),
                        "content_type": headers.get("content-type").and_then(|v| v.to_str().ok()),
                        "x_custom": headers.get("x-custom").and_then(|v| v.to_str().ok()),
                        "traceparent": headers.get("traceparent").and_then(|v| v.to_str().ok()),
                        "body": body,
                    }))
                },
            ),
        )
        .route(
            "/missing",
            axum::routing::get(|| async { (StatusCode::NOT_FOUND, "nope") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, router).await
}

fn value(r: Result<ToolOutput, ToolError>) -> Value {
    match r {
        Ok(ToolOutput::Value(v)) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

#[tokio::test]
async fn limits_and_redirects() {
    let addr = server().await;
    let reg = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.1\"]\ntimeout = \"1s\"\nmax_bytes = 1000\n\
         [tools.http_request]\nallow = [\"127.0.0.1\"]\n",
        FakeDns::new(&[]),
        &[],
    )
    .await;
    let get = reg.get("http_get").unwrap();
    let url = |path: &str| json!({ "url": format!("http://{addr}{path}") });

    // Body cut at max_bytes (5 MiB sent).
    let v = value(get.call(&ctx(), &url("/big")).await);
    assert_eq!(v["status"], 200);
    assert_eq!(v["body"].as_str().unwrap().len(), 1000);
    assert_eq!(v["truncated"], true);

    // The timeout bounds the whole exchange; the model gets an error result.
    let started = tokio::time::Instant::now();
    let v = value(get.call(&ctx(), &url("/slow")).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no response within 1s"),
        "{v}"
    );

    let v = value(get.call(&ctx(), &url("/loop")).await);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("more than 5 redirects"),
        "{v}"
    );

    // A 404 is a result, not a failure.
    let v = value(get.call(&ctx(), &url("/missing")).await);
    assert_eq!(v["status"], 404);
    assert_eq!(v["body"], "nope");

    // Unreachable: an error result, the run goes on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let v = value(
        get.call(&ctx(), &json!({ "url": format!("http://{dead}/") }))
            .await,
    );
    assert!(
        v["error"].as_str().unwrap().contains("request failed"),
        "{v}"
    );

    // Schema violations never reach the network.
    let err = get.call(&ctx(), &json!({ "url": 5 })).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArgs { .. }), "{err}");
    let err = get
        .call(&ctx(), &json!({ "url": "http://x", "extra": 1 }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
    let err = get
        .call(&ctx(), &json!({ "url": "not a url" }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid URL"), "{err}");
}

#[tokio::test]
async fn http_request_sends_method_headers_body_and_idempotency_key() {
    let addr = server().await;
    let reg = registry_with(
        "[tools.http_request]\nallow = [\"127.0.0.1\"]\n",
        FakeDns::new(&[]),
        &[],
    )
    .await;
    let req = reg.get("http_request").unwrap();
    let c = ctx();
    let v = value(
        req.call(
            &c,
            &json!({
                "method": "POST",
                "url": format!("http://{addr}/echo"),
                "headers": { "X-Custom": "yes" },
                "body": { "a": 1 }
            }),
        )
        .await,
    );
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["x_custom"], "yes");
    assert_eq!(echoed["content_type"], "application/json");
    assert_eq!(echoed["body"], "{\"a\":1}");
    assert_eq!(echoed["idempotency_key"], c.idempotency_key());

    // 303 turns a POST into a GET without body.
    let v = value(
        req.call(
            &c,
            &json!({ "method": "POST", "url": format!("http://{addr}/see-other"), "body": "x" }),
        )
        .await,
    );
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["body"], "");

    for bad in [
        json!({ "method": "TRACE", "url": format!("http://{addr}/echo") }),
        json!({ "method": "GET", "url": format!("http://{addr}/echo"), "headers": { "Host": "x" } }),
        json!({ "method": "GET", "url": format!("http://{addr}/echo"), "headers": { "a": 1 } }),
        json!({ "url": format!("http://{addr}/echo") }),
    ] {
        let err = req.call(&c, &bad).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArgs { .. }), "{bad}: {err}");
    }
}

/// Webhook and HTTP tools share one client: a call made in a traced span
/// sends that span's W3C `traceparent`, an untraced one sends none.
#[tokio::test]
async fn a_traced_call_sends_its_trace_context() {
    use tracing::Instrument;

    let addr = server().await;
    let reg = registry_with(
        "[tools.http_get]\nallow = [\"127.0.0.1\"]\n",
        FakeDns::new(&[]),
        &[],
    )
    .await;
    let get = reg.get("http_get").unwrap();
    let url = json!({ "url": format!("http://{addr}/echo") });
    let sent = |v: Value| -> Value {
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        body["traceparent"].clone()
    };

    assert_eq!(sent(value(get.call(&ctx(), &url).await)), Value::Null);

    let _traced = traced();
    let span = tracing::info_span!("tool_call");
    let expected = traceparent_of(&span);
    let v = value(get.call(&ctx(), &url).instrument(span).await);
    assert_eq!(sent(v), json!(expected));
}
