//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`: the
//! document describes every route the server answers (and only those), with
//! the bearer scheme, the error body and the open probes; the UI is served
//! from the binary.

use crate::helpers::{CONFIG, spawn_app};
use agentd_test_support::app::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    res.json().await.unwrap()
}

/// Every `(method, path template)` the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete path for a template: ids of the right shape that name
/// nothing, so a routed request reaches its handler and is answered there.
fn concrete(template: &str) -> String {
    let id = if template.starts_with("/v1/keys/") {
        "0123456789abcdef"
    } else if template.starts_with("/v1/conversations/") {
        "conv-1"
    } else {
        "0196a000-0000-7000-8000-000000000000"
    };
    template.replace("{agent}", "demo").replace("{id}", id)
}

/// Walks the document's operations against the running router: each one is
/// routed (answered by its handler, not by the router's fallbacks), and
/// every other method on a documented path is the router's 405. The router
/// is built from the same `routes!` registrations as the document, so this
/// also shows that what the document lists is what is served.
#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    // Arrange
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 19, "{ops:?}");

    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            // Act
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app
                .client
                .request(m, format!("{}{}", app.base, concrete(path)));
            if method == "post" {
                req = req.json(&json!({}));
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();

            // Assert
            if item.get(method).is_some() {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !body.contains("no such route"),
                    "{method} {path} fell through to the router's fallback: {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented: {body}"
                );
            }
        }
    }
}

/// The README's route table is the user's list of endpoints: it names
/// exactly the operations of the document.
#[tokio::test]
async fn the_readme_route_table_lists_exactly_the_documented_operations() {
    // Arrange
    let app = spawn_app().await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();

    // Act
    let mut listed = BTreeSet::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !METHODS.contains(&cells[1].to_lowercase().as_str()) {
            continue;
        }
        for path in cells[2].split(',').map(str::trim) {
            listed.insert((cells[1].to_string(), path.to_string()));
        }
    }

    // Assert
    assert_eq!(listed, operations(&document(&app).await));
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_bearer_scheme_and_open_probes() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let doc = document(&app).await;

    // Assert: the version and the scheme, required by default
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "agentd");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["type"],
        "http"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    // Every operation has its own id, and documents the internal error.
    let mut ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap().to_string();
        assert!(ids.insert(id), "{method} {path}: duplicate operationId");
        // The OpenAI-compatible routes answer in OpenAI's error shape.
        let body = if op["tags"] == json!(["openai"]) {
            "#/components/schemas/OpenAiErrorBody"
        } else {
            "#/components/schemas/ErrorBody"
        };
        assert_eq!(
            op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"], body,
            "{method} {path}"
        );
        let open = op["security"] == json!([{}]);
        if path.starts_with("/v1/") {
            assert!(!open, "{method} {path} must need a credential");
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        } else {
            // /health, /ready, /metrics (without metrics_auth), the document
            // and the UI need no credential.
            assert!(open, "{method} {path} must be open");
        }
    }
    // The error body is `{"error": {"code", "message", "reason"?}}`.
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], json!(["code", "message"]));
    assert!(
        doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("rate_limited"))
    );
}

#[tokio::test]
async fn metrics_is_documented_as_guarded_under_metrics_auth() {
    // Arrange
    let toml = CONFIG.replacen("[server]\n", "[server]\nmetrics_auth = true\n", 1);
    let app = agentd_test_support::app::spawn_app(&toml).await;

    // Act
    let doc = document(&app).await;

    // Assert
    let metrics = &doc["paths"]["/metrics"]["get"];
    assert!(metrics.get("security").is_none(), "{metrics}");
    assert!(metrics["responses"]["401"].is_object());
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([{}]));
}

#[tokio::test]
async fn docs_serve_swagger_ui_from_the_binary() {
    // Arrange
    let app = spawn_app().await;

    // Act: /docs redirects to the page, whose files are served here too
    let res = app.get("/docs").send().await.unwrap();
    let status = res.status();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    let page = res.text().await.unwrap();
    let init = app
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bundle = app.get("/docs/swagger-ui-bundle.js").send().await.unwrap();

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("swagger-ui"), "{page}");
    // Every file the page loads is relative: nothing is fetched elsewhere.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert!(init.contains("/openapi.json"), "{init}");
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}
