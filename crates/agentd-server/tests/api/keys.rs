//! `auth.mode = "api_key"`: keys authenticate requests (and nothing else
//! does), refusals carry a reason code only, the keys API follows the
//! engine's role and tenant rules, and a key minted or revoked on one
//! process takes effect on every other within seconds.

use crate::helpers::{CONFIG, TestApp, assert_error, json, mint};
use agentd_core::{ApiKeyToken, PrincipalId, TenantId};
use agentd_store::NewApiKey;
use agentd_test_support::app::{spawn_app, spawn_app_on_postgres};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The suite's config under API keys, with `root` named an operator.
fn config() -> String {
    format!("{CONFIG}\n[auth]\nmode = \"api_key\"\noperators = [\"root\"]\n")
}

/// Asserts a 401 with the challenge and `reason`, and a body that says
/// nothing more.
async fn assert_refused(res: Response, reason: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert_eq!(body["error"]["reason"], reason, "{body}");
    assert_eq!(body["error"]["message"], "missing or invalid credential");
    assert_eq!(body["error"].as_object().unwrap().len(), 3, "{body}");
}

/// Polls `GET /v1/runs` with `key` until it answers `want`, for at most 5
/// seconds (the propagation bound); returns how long it took.
async fn until_status(app: &TestApp, key: &str, want: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        let res = app.get("/v1/runs").bearer_auth(key).send().await.unwrap();
        if res.status() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {} after 5 s, wanted {want}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_authenticates_and_every_bad_credential_is_refused_with_its_reason() {
    // Arrange
    let app = spawn_app(&config()).await;
    let key = mint(&app, "a", "alice", &["admin"]).await;
    let id = ApiKeyToken::parse(&key).unwrap().id().clone();
    let wrong_secret = format!("agd_{id}_{}", "0".repeat(64));
    let unknown = ApiKeyToken::generate().unwrap().reveal();
    let expired = ApiKeyToken::generate().unwrap();
    app.engine
        .store()
        .create_key(
            &TenantId::parse("a").unwrap(),
            &NewApiKey {
                id: expired.id().clone(),
                principal: PrincipalId::parse("old").unwrap(),
                roles: vec![],
                name: None,
                secret_hash: expired.secret_hash(),
                expires_at: Some(agentd_core::now_millis() - 1),
            },
            "test",
        )
        .await
        .unwrap();

    // Act + Assert: the key acts as its own identity
    let (status, run) = json(
        app.post("/v1/agents/demo/runs")
            .bearer_auth(&key)
            .json(&json!({ "input": "hi", "wait": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["tenant"], "a");

    // Act + Assert: each bad credential, with its reason and nothing more
    let runs = || app.get("/v1/runs");
    assert_refused(runs().send().await.unwrap(), "missing_credential").await;
    let res = runs()
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_refused(res, "malformed_credential").await;
    let res = runs().bearer_auth("agd_not_a_key").send().await.unwrap();
    assert_refused(res, "malformed_credential").await;
    let res = runs().bearer_auth(&wrong_secret).send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(
        !body.contains(id.as_str()) && !body.contains("secret"),
        "{body}"
    );
    let res = runs().bearer_auth(&wrong_secret).send().await.unwrap();
    assert_refused(res, "invalid_credential").await;
    let res = runs().bearer_auth(&unknown).send().await.unwrap();
    assert_refused(res, "invalid_credential").await;
    let res = runs().bearer_auth(expired.reveal()).send().await.unwrap();
    assert_refused(res, "expired").await;

    // Act + Assert: revoked through the API, the key stops working
    let res = app
        .client
        .delete(format!("{}/v1/keys/{id}", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    until_status(&app, &key, StatusCode::UNAUTHORIZED).await;
    let res = runs().bearer_auth(&key).send().await.unwrap();
    assert_refused(res, "revoked").await;
}

#[tokio::test]
async fn identity_headers_cannot_move_a_key_into_another_tenant_or_role() {
    // Arrange: a run of tenant b, and a role-less key of tenant a
    let app = spawn_app(&config()).await;
    let b_admin = mint(&app, "b", "bob", &["admin"]).await;
    let a_plain = mint(&app, "a", "ann", &[]).await;
    let (_, b_run) = json(
        app.post("/v1/agents/demo/runs")
            .bearer_auth(&b_admin)
            .json(&json!({ "input": "b's secret" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let b_run = b_run["id"].as_str().unwrap().to_string();
    let claim_b = |req: reqwest::RequestBuilder| {
        req.bearer_auth(&a_plain)
            .header("x-tenant-id", "b")
            .header("x-principal-id", "root")
            .header("x-roles", "admin,operator")
    };

    // Act + Assert: still tenant a, with a's (no) roles
    let res = claim_b(app.get(&format!("/v1/runs/{b_run}")))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let (status, list) = json(claim_b(app.get("/v1/runs")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    let (status, run) = json(
        claim_b(app.post("/v1/agents/demo/runs"))
            .json(&json!({ "input": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["tenant"], "a");
    let res = claim_b(app.get("/v1/keys")).send().await.unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = claim_b(app.post("/v1/keys"))
        .json(&json!({ "principal": "x", "tenant": "b" }))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn the_keys_api_keeps_admins_in_their_tenant_and_lets_operators_across() {
    // Arrange
    let app = spawn_app(&config()).await;
    let admin = mint(&app, "a", "alice", &["admin"]).await;
    let reader = mint(&app, "a", "rob", &["reader"]).await;
    let operator = mint(&app, "ops", "olga", &["operator"]).await;
    let named = mint(&app, "ops", "root", &[]).await;
    let keys = || app.post("/v1/keys");

    // Act: an admin mints a key of its own tenant
    let (status, minted) = json(
        keys()
            .bearer_auth(&admin)
            .json(&json!({ "principal": "ci", "roles": ["deployer"], "name": "ci", "expires_in": "90d" }))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // Assert: shown once, usable, listed without secrets
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let key = minted["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("agd_{}_", minted["id"].as_str().unwrap())));
    assert_eq!(minted["tenant"], "a");
    assert_eq!(minted["roles"], json!(["deployer"]));
    assert!(minted["expires_at"].is_string());
    until_status(&app, key, StatusCode::OK).await;
    let (status, list) = json(
        app.get("/v1/keys")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{list}"); // alice, rob, ci
    assert_eq!(items[0]["id"], minted["id"]);
    let text = list.to_string();
    assert!(!text.contains(key) && !text.contains("hash") && !text.contains("\"key\""));

    // Act + Assert: what an admin may not do
    let res = keys()
        .bearer_auth(&admin)
        .json(&json!({ "principal": "x", "tenant": "b" }))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    for escalation in [
        json!({ "principal": "x", "roles": ["operator"] }),
        json!({ "principal": "root" }),
    ] {
        let res = keys()
            .bearer_auth(&admin)
            .json(&escalation)
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app
        .get("/v1/keys?tenant=ops")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .get("/v1/keys")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let ops_id = ApiKeyToken::parse(&operator).unwrap().id().clone();
    let res = app
        .client
        .delete(format!("{}/v1/keys/{ops_id}", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = keys()
        .bearer_auth(&admin)
        .json(&json!({ "principal": "x", "expires_in": "soon" }))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(message.contains("expires_in"), "{message}");

    // Act + Assert: operators (by role or by name) manage other tenants
    for (op, tenant) in [(&operator, "b"), (&named, "c")] {
        let (status, minted) = json(
            keys()
                .bearer_auth(op)
                .json(&json!({ "principal": "bot", "roles": ["admin"], "tenant": tenant }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{minted}");
        assert_eq!(minted["tenant"], tenant);
        let (_, list) = json(
            app.get(&format!("/v1/keys?tenant={tenant}"))
                .bearer_auth(op)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(list["items"][0]["id"], minted["id"]);
        let res = app
            .client
            .delete(format!(
                "{}/v1/keys/{}?tenant={tenant}",
                app.base,
                minted["id"].as_str().unwrap()
            ))
            .bearer_auth(op)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    // Act + Assert: lists page
    let (_, first) = json(
        app.get("/v1/keys?limit=2")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = json(
        app.get(&format!("/v1/keys?limit=2&cursor={cursor}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[tokio::test]
async fn health_and_ready_are_open_and_metrics_only_without_metrics_auth() {
    // Arrange
    let open = spawn_app(&config()).await;
    let guarded =
        spawn_app(&config().replacen("[server]\n", "[server]\nmetrics_auth = true\n", 1)).await;
    let key = mint(&guarded, "a", "prom", &[]).await;

    // Act + Assert
    for path in ["/health", "/ready", "/metrics"] {
        let res = open.get(path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    for path in ["/health", "/ready"] {
        let res = guarded.get(path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    assert_refused(
        guarded.get("/metrics").send().await.unwrap(),
        "missing_credential",
    )
    .await;
    let res = guarded
        .get("/metrics")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Mints through `first`, revokes through `second`: each takes effect on
/// the other process within 5 seconds.
async fn propagates_between_processes(first: TestApp) {
    let second = first.sibling(&config()).await;
    let admin = mint(&first, "a", "alice", &["admin"]).await;
    until_status(&second, &admin, StatusCode::OK).await;

    // Minted on the first process, while both run.
    let (status, minted) = json(
        first
            .post("/v1/keys")
            .bearer_auth(&admin)
            .json(&json!({ "principal": "svc" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let key = minted["key"].as_str().unwrap();
    until_status(&second, key, StatusCode::OK).await;
    until_status(&first, key, StatusCode::OK).await;

    // Revoked on the second: the first, which has the key in memory,
    // refuses it within the bound.
    let res = second
        .client
        .delete(format!(
            "{}/v1/keys/{}",
            second.base,
            minted["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let took = until_status(&first, key, StatusCode::UNAUTHORIZED).await;
    let res = first.get("/v1/runs").bearer_auth(key).send().await.unwrap();
    assert_refused(res, "revoked").await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn keys_minted_or_revoked_reach_another_process_on_sqlite() {
    propagates_between_processes(spawn_app(&config()).await).await;
}

#[tokio::test]
async fn keys_minted_or_revoked_reach_another_process_on_postgres() {
    let Some(pg) = agentd_test_support::postgres_url() else {
        return;
    };
    propagates_between_processes(spawn_app_on_postgres(&config(), &pg).await).await;
}
