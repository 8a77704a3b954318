//! `[rate_limit]` through HTTP: request limits per principal and per
//! tenant (local and on the real Redis), and the cap on a tenant's active
//! runs. Identities come from the `X-Tenant-Id` / `X-Principal-Id`
//! headers (auth mode `none`).

use crate::helpers::{CONFIG, TestApp, assert_error, json};
use crate::metrics::{scrape, value};
use agentd_test_support::app::spawn_app;
use reqwest::{Response, StatusCode};
use serde_json::json;

/// The suite's config with `rate_limit` (TOML lines of that table).
fn config(rate_limit: &str) -> String {
    format!("{CONFIG}\n[rate_limit]\n{rate_limit}\n")
}

async fn list_as(app: &TestApp, tenant: &str, principal: &str) -> Response {
    app.get("/v1/runs")
        .header("x-tenant-id", tenant)
        .header("x-principal-id", principal)
        .send()
        .await
        .unwrap()
}

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_principal_over_its_limit_gets_429_with_retry_after_and_ratelimit_headers() {
    // Arrange: 3 per minute per principal (one every 20 s), a loose tenant
    // limit.
    let app = spawn_app(&config("per_principal_rpm = 3\nper_tenant_rpm = 1000")).await;
    let (_, before) = scrape(&app).await;

    // Act
    let mut allowed = Vec::new();
    for _ in 0..3 {
        allowed.push(list_as(&app, "acme", "alice").await);
    }
    let refused = list_as(&app, "acme", "alice").await;
    let bob = list_as(&app, "acme", "bob").await;
    let health = app.get("/health").send().await.unwrap();

    // Assert: the layer runs after authentication (a 500 otherwise) and
    // describes the tighter limit, the principal's.
    for (i, res) in allowed.iter().enumerate() {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(res, "ratelimit-limit"), "3");
        assert_eq!(header(res, "ratelimit-remaining"), (2 - i).to_string());
        assert_eq!(header(res, "ratelimit-reset"), (20 * (i + 1)).to_string());
        assert!(res.headers().get("retry-after").is_none());
    }
    assert_eq!(header(&refused, "retry-after"), "20");
    assert_eq!(header(&refused, "ratelimit-limit"), "3");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    assert_eq!(header(&refused, "ratelimit-reset"), "60");
    let message = assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(message.contains("per_principal_rpm"), "{message}");
    assert_eq!(bob.status(), StatusCode::OK);
    assert_eq!(header(&bob, "ratelimit-remaining"), "2");
    // Open routes are not limited.
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("ratelimit-limit").is_none());
    // The counter is the process's, shared with other tests: at least
    // this test's refusal.
    let (text, after) = scrape(&app).await;
    let limited = "agentd_rate_limited_requests_total";
    assert!(
        value(&after, limited, &[]) - value(&before, limited, &[]) >= 1.0,
        "{text}"
    );
}

#[tokio::test]
async fn the_tenant_limit_spans_its_principals_and_spares_other_tenants() {
    let app = spawn_app(&config("per_principal_rpm = 100\nper_tenant_rpm = 3")).await;

    let mut statuses = Vec::new();
    for principal in ["alice", "alice", "bob"] {
        statuses.push(list_as(&app, "acme", principal).await.status());
    }
    let carol = list_as(&app, "acme", "carol").await;
    let other = list_as(&app, "globex", "alice").await;

    assert_eq!(statuses, [StatusCode::OK; 3]);
    assert_eq!(header(&carol, "ratelimit-limit"), "3");
    assert_eq!(header(&carol, "retry-after"), "20");
    let message = assert_error(carol, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(message.contains("per_tenant_rpm"), "{message}");
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_applications_on_one_redis_share_one_limit() {
    let Some(redis) = agentd_test_support::redis_url() else {
        return;
    };
    // Arrange: two processes, each with its own store, one Redis. A tenant
    // no other test (or earlier run) used, so the keys are fresh.
    let toml = config(&format!(
        "per_principal_rpm = 4\nbackend = \"redis\"\nredis_url = \"{redis}\""
    ));
    let (a, b) = (spawn_app(&toml).await, spawn_app(&toml).await);
    let tenant = agentd_test_support::unique_name("rl");

    // Act: 8 requests, alternating between the two.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(list_as(app, &tenant, "alice").await.status());
    }

    // Assert: the limit held for the fleet, not per process.
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 4, "{statuses:?}");
    // Redis decided every request: two local limiters would have allowed
    // 4 each. (The fallback counter is the test process's, shared with the
    // unreachable-Redis test, so it proves nothing here.)
    assert_eq!(statuses[4..], [StatusCode::TOO_MANY_REQUESTS; 4]);
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_request() {
    // Arrange: nothing listens on port 1.
    let app = spawn_app(&config(
        "per_principal_rpm = 2\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"",
    ))
    .await;
    let (_, before) = scrape(&app).await;

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(list_as(&app, "acme", "alice").await.status());
    }
    let (text, after) = scrape(&app).await;

    // Assert: the local limiter decided, and the fallbacks were counted.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let fallbacks = "agentd_rate_limit_redis_fallbacks_total";
    assert!(
        value(&after, fallbacks, &[]) - value(&before, fallbacks, &[]) >= 3.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_full_tenant_cannot_start_another_run_while_other_tenants_can() {
    // Arrange: two runs of tenant acme that stay active (a model call
    // takes 5 s), against a cap of 2.
    let toml = format!(
        "{}\n[providers.glacial]\nkind = \"mock\"\nlatency_ms = 5000\nscript = [{{ reply = \"late\" }}]\n\n\
         [[agents]]\nname = \"glacial\"\nproviders = [\"glacial\"]\n",
        config("max_concurrent_runs_per_tenant = 2")
    );
    let app = spawn_app(&toml).await;
    let create = |tenant: &'static str| {
        app.post("/v1/agents/glacial/runs")
            .header("x-tenant-id", tenant)
            .json(&json!({ "input": "hi" }))
            .send()
    };
    let (s1, first) = json(create("acme").await.unwrap()).await;
    let (s2, _) = json(create("acme").await.unwrap()).await;

    // Act
    let refused = create("acme").await.unwrap();
    let other = create("globex").await.unwrap().status();
    // Cancelling one of acme's runs frees its slot.
    let cancel = app
        .post(&format!(
            "/v1/runs/{}/cancel",
            first["id"].as_str().unwrap()
        ))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .unwrap()
        .status();
    let after_cancel = create("acme").await.unwrap().status();

    // Assert
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(header(&refused, "retry-after"), "2");
    let message = assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(message.contains("2 runs"), "{message}");
    assert_eq!(other, StatusCode::ACCEPTED);
    assert_eq!(cancel, StatusCode::OK);
    assert_eq!(after_cancel, StatusCode::ACCEPTED);
}
