//! The console's server side: its page and assets with their security
//! headers, signing in with a key into an `HttpOnly` session cookie that
//! the API accepts (with CSRF protection on every state change and the
//! API's own tenant rules), and the read endpoints the console draws:
//! `/v1/agents`, `/v1/budgets` and the runs list's new filters.

use crate::helpers::{CONFIG, assert_error, json, mint, session_cookies};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};

#[tokio::test]
async fn the_console_page_and_assets_are_served_with_a_strict_csp() {
    // Arrange
    let app = spawn_app(CONFIG).await;

    // Act and assert: the page at every path under /console, its assets
    let mut etag = String::new();
    for path in [
        "/console",
        "/console/",
        "/console/runs/some-id",
        "/console/approvals",
    ] {
        let res = app.get(path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        etag = h["etag"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        assert!(body.contains("/console/assets/app.js"), "{body}");
        assert!(!body.contains("<script>"), "no inline script: {body}");
    }
    let js = app.get("/console/assets/app.js").send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let css = app.get("/console/assets/app.css").send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // Revalidation: the same bytes answer 304.
    let again = app
        .get("/console/")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = app.get("/console/assets/nope.js").send().await.unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
    // Under auth.mode none the console needs no sign-in.
    let (status, me) = json(app.get("/console/api/session").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["auth_mode"], "none");
    assert_eq!(me["tenant"], "default");
    app.stop().await;
}

/// Sign-in with a key, the cookie as a credential, CSRF, tenant scoping,
/// revocation and sign-out.
#[tokio::test]
async fn a_key_signs_in_to_a_session_cookie_the_api_accepts() {
    // Arrange
    let app = spawn_app(&format!("{CONFIG}\n[auth]\nmode = \"api_key\"\n")).await;
    let key = mint(&app, "acme", "alice", &["user"]).await;
    let admin = mint(&app, "acme", "root", &["admin"]).await;
    let other = mint(&app, "globex", "bob", &["user"]).await;
    let operator = mint(&app, "acme", "ops", &["operator"]).await;
    let sign_in = async |credential: &str| {
        app.post("/console/api/session")
            .json(&json!({ "credential": credential }))
            .send()
            .await
            .unwrap()
    };

    // Act and assert: a bad key is the API's 401, and sets no cookie.
    let refused = sign_in("agd_not_a_key").await;
    assert!(refused.headers().get(SET_COOKIE).is_none());
    assert_error(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (status, _) = json(app.get("/console/api/session").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A good one starts the session: an HttpOnly, strict cookie.
    let res = sign_in(&key).await;
    assert_eq!(res.status(), StatusCode::OK);
    let set: Vec<&str> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("agentd_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")
            && !c.contains("Secure")),
        "{set:?}"
    );
    let (cookie, csrf) = session_cookies(res.headers());
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (
            &me["tenant"],
            &me["principal"],
            &me["admin"],
            &me["auth_mode"]
        ),
        (
            &json!("acme"),
            &json!("alice"),
            &json!(false),
            &json!("api_key")
        )
    );
    let (_, me) = json(
        app.get("/console/api/session")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me["principal"], "alice");

    // The cookie is a credential of the API: reads as is...
    let (status, _) = json(
        app.get("/v1/runs")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // ...and state changes only with the CSRF token.
    let start = || {
        app.post("/v1/agents/demo/runs")
            .header("cookie", &cookie)
            .json(&json!({ "input": "hi", "wait": true }))
    };
    assert_error(
        start().send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let wrong = start()
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_error(wrong, StatusCode::FORBIDDEN, "forbidden").await;
    let (status, run) = json(start().header("x-csrf-token", &csrf).send().await.unwrap()).await;
    assert!(status.is_success(), "{status} {run}");
    assert_eq!(run["tenant"], "acme");
    assert_eq!(run["principal"], "alice");
    // A bearer token wins over the cookie, CSRF or not (not a browser).
    let (status, theirs) = json(
        app.post("/v1/agents/demo/runs")
            .header("cookie", &cookie)
            .bearer_auth(&other)
            .json(&json!({ "input": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(theirs["tenant"], "globex");
    // Tenant rules are the API's: another tenant's run is not found.
    let id = theirs["id"].as_str().unwrap();
    let res = app
        .get(&format!("/v1/runs/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    // Roles too: alice is no admin, through the cookie as with her key.
    let res = app
        .post("/v1/dead-letters/0193a1b2-0000-7000-8000-000000000000/requeue")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let (_, me) = json(sign_in(&admin).await).await;
    assert_eq!(me["admin"], true);
    // An operator without role admin may not requeue: not shown as admin.
    let (_, me) = json(sign_in(&operator).await).await;
    assert_eq!(me["admin"], false);

    // Sign-out needs the token, then clears both cookies.
    let out = || {
        app.client
            .delete(format!("{}/console/api/session", app.base))
            .header("cookie", &cookie)
    };
    assert_error(
        out().send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = out().header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );

    // A revoked key ends its session at the next request.
    let keys: Value = app
        .get("/v1/keys")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alices = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["principal"] == "alice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .client
        .delete(format!("{}/v1/keys/{alices}", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = app
            .get("/v1/runs")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;
}

/// `GET /v1/agents` describes the config; `GET /v1/budgets` the caller's
/// budgets with what the period spent.
#[tokio::test]
async fn agents_and_budgets_are_described_as_the_server_sees_them() {
    // Arrange
    let app = spawn_app(&format!(
        "{CONFIG}\n[pricing.\"mock\"]\ninput_per_mtok = 1000000.0\noutput_per_mtok = 0.0\n\n\
         [tenants.default]\nbudget_usd = 1000.0\nperiod = \"1d\"\n\n\
         [principals.\"*\"]\nbudget_usd = 500.0\n\n\
         [[policies]]\nrole = \"user\"\nallow = [\"echo\"]\n"
    ))
    .await;

    // Act
    let (status, agents) = json(app.get("/v1/agents").send().await.unwrap()).await;
    let before: Value = app
        .get("/v1/budgets")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, run) = app
        .create_run("demo", json!({ "input": "hi", "wait": true }))
        .await;
    let after: Value = app
        .get("/v1/budgets")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["asker", "broken", "demo", "slow"]);
    let demo = &agents["items"][2];
    assert_eq!(demo["tools"], json!(["echo"]));
    assert_eq!(
        demo["providers"],
        json!([{ "name": "mock", "kind": "mock", "model": null, "circuit": "closed" }])
    );
    assert_eq!(demo["timeout"], "5m");
    assert_eq!(
        agents["policies"],
        json!([{ "role": "user", "allow": ["echo"] }])
    );
    assert_eq!(before["tenant"]["limit_usd"], 1000.0);
    assert_eq!(before["tenant"]["period"], "1d");
    assert_eq!(before["tenant"]["spent_usd"], 0.0);
    assert!(
        before["tenant"]["period_start"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z"),
        "{before}"
    );
    assert_eq!(before["principal"]["principal"], "anonymous");
    assert_eq!(before["principal"]["limit_usd"], 500.0);
    let cost = run["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0, "{run}");
    assert_eq!(after["tenant"]["spent_usd"], cost);
    assert_eq!(after["principal"]["spent_usd"], cost);
    // Another tenant has no budget; another principal its own.
    let theirs: Value = app
        .get("/v1/budgets")
        .header("x-tenant-id", "globex")
        .header("x-principal-id", "bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["tenant"], Value::Null);
    assert_eq!(theirs["principal"]["spent_usd"], 0.0);
    app.stop().await;
}

/// `GET /v1/runs?conversation_id=&since=&until=`.
#[tokio::test]
async fn runs_are_listed_by_conversation_and_time() {
    // Arrange
    let app = spawn_app(CONFIG).await;
    let mut ids = Vec::new();
    for conv in [Some("c-1"), None, Some("c-1")] {
        let mut body = json!({ "input": "hi", "wait": true });
        if let Some(c) = conv {
            body["conversation_id"] = json!(c);
        }
        let (_, run) = app.create_run("demo", body).await;
        ids.push(run["id"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let list = async |query: &str| -> Vec<String> {
        let (status, page) =
            json(app.get(&format!("/v1/runs?{query}")).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Act and assert
    assert_eq!(
        list("conversation_id=c-1").await,
        [ids[2].clone(), ids[0].clone()]
    );
    assert!(list("conversation_id=c-2").await.is_empty());
    assert_eq!(
        list("since=2999-01-01T00:00:00Z").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("until=2000-01-01T00:00:00Z").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z").await,
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    for (query, param) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        (
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since",
        ),
        ("conversation_id=", "conversation_id"),
    ] {
        let res = app.get(&format!("/v1/runs?{query}")).send().await.unwrap();
        let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(message.contains(param), "{query}: {message}");
    }
    app.stop().await;
}
