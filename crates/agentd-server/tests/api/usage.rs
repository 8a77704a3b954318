//! `GET /v1/usage`: the report's sums match the runs it counts, grouped
//! each way; another tenant sees none of them; bad parameters are 400
//! naming the parameter.

use crate::helpers::{CONFIG, TestApp, assert_error, json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `GET /v1/usage?{query}` as tenant `tenant`; the body of a 200.
async fn usage(app: &TestApp, tenant: &str, query: &str) -> Value {
    let (status, body) = json(
        app.get(&format!("/v1/usage?{query}"))
            .header("x-tenant-id", tenant)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// `(key, runs, failed, input_tokens, output_tokens)` of each item.
fn sums(report: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let n = |f: &str| i[f].as_u64().unwrap();
            (
                i["key"].as_str().unwrap().to_string(),
                n("runs"),
                n("failed"),
                n("input_tokens"),
                n("output_tokens"),
            )
        })
        .collect()
}

#[tokio::test]
async fn usage_sums_the_tenants_runs_by_group() {
    // Arrange: the mock model priced at $1 an input token and $2 an output
    // token; alice runs demo twice, bob runs broken, which dies.
    let app = agentd_test_support::app::spawn_app(&format!(
        "{CONFIG}\n[pricing.\"mock\"]\ninput_per_mtok = 1000000.0\noutput_per_mtok = 2000000.0\n"
    ))
    .await;
    let mut demo = Vec::new();
    for (input, who) in [("hi", "alice"), ("a longer input, more tokens", "alice")] {
        let (_, run) = json(
            app.post("/v1/agents/demo/runs")
                .header("x-principal-id", who)
                .json(&json!({ "input": input, "wait": true }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        demo.push(run);
    }
    let (_, broken) = json(
        app.post("/v1/agents/broken/runs")
            .header("x-principal-id", "bob")
            .json(&json!({ "input": "x" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let broken = app
        .wait_for_status(broken["id"].as_str().unwrap(), "dead")
        .await;
    let tokens = |runs: &[&Value], f: &str| -> u64 {
        runs.iter().map(|r| r["usage"][f].as_u64().unwrap()).sum()
    };
    let demo: Vec<&Value> = demo.iter().collect();
    let (input, output) = (
        tokens(&demo, "input_tokens"),
        tokens(&demo, "output_tokens"),
    );
    assert!(input > 0 && output > 0);
    let cost: f64 = demo.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
    assert_eq!(cost, (input + 2 * output) as f64);
    assert_eq!(broken["usage"]["input_tokens"], 0);

    // Act and assert: each grouping.
    let by_agent = usage(&app, "default", "group_by=agent").await;
    assert_eq!(by_agent["group_by"], "agent");
    assert_eq!(
        sums(&by_agent),
        [
            ("broken".into(), 1, 1, 0, 0),
            ("demo".into(), 2, 0, input, output)
        ]
    );
    assert_eq!(by_agent["items"][1]["cost_usd"], cost);
    assert_eq!(
        by_agent["total"],
        json!({ "runs": 3, "failed": 1, "input_tokens": input, "output_tokens": output,
                "cost_usd": cost })
    );
    let by_principal = usage(&app, "default", "group_by=principal").await;
    assert_eq!(
        sums(&by_principal),
        [
            ("alice".into(), 2, 0, input, output),
            ("bob".into(), 1, 1, 0, 0)
        ]
    );
    // Providers: every model step of demo went to `mock`, and so did its
    // whole cost (demo's tools are free); broken's calls to `down` failed,
    // using nothing.
    let by_provider = usage(&app, "default", "group_by=provider").await;
    let rows = sums(&by_provider);
    let mock = rows.iter().find(|r| r.0 == "mock").unwrap();
    assert_eq!(*mock, ("mock".into(), 2, 0, input, output));
    assert!(rows.iter().all(|r| r.0 == "mock" || r.3 == 0), "{rows:?}");
    let mock_cost = by_provider["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "mock")
        .unwrap()["cost_usd"]
        .clone();
    assert_eq!(mock_cost, cost);
    assert_eq!(by_provider["total"]["cost_usd"], cost);
    // The day the runs were created on (not the clock now: the test may
    // cross midnight).
    let mut today = demo[0]["created_at"].as_str().unwrap().to_string();
    today.truncate(10);
    let since = format!("{today}T00:00:00Z");
    let by_day = usage(&app, "default", &format!("group_by=day&since={since}")).await;
    assert_eq!(sums(&by_day), [(today.clone(), 3, 1, input, output)]);
    assert_eq!(by_day["since"], format!("{today}T00:00:00.000Z"));
    assert!(by_day.get("until").is_none());

    // The range excludes runs created before `since` and from `until` on.
    let later = usage(&app, "default", "group_by=agent&since=2999-01-01T00:00:00Z").await;
    assert_eq!(later["items"], json!([]));
    assert_eq!(later["total"]["runs"], 0);
    let earlier = usage(&app, "default", &format!("group_by=agent&until={since}")).await;
    assert_eq!(earlier["items"], json!([]));

    // Another tenant sees none of it.
    for g in ["agent", "principal", "provider", "day"] {
        let theirs = usage(&app, "other", &format!("group_by={g}")).await;
        assert_eq!(theirs["items"], json!([]), "{g}");
        assert_eq!(theirs["total"]["runs"], 0);
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_usage_queries_are_400_naming_the_parameter() {
    let app = crate::helpers::spawn_app().await;
    for (query, names) in [
        ("", "group_by"),
        ("?group_by=tenant", "group_by"),
        ("?group_by=agent&since=yesterday", "since"),
        ("?group_by=day&until=2026-13-01", "until"),
        (
            "?group_by=day&since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since",
        ),
    ] {
        let res = app.get(&format!("/v1/usage{query}")).send().await.unwrap();
        let message = assert_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(message.contains(names), "{query}: {message}");
    }
    app.stop().await;
}
