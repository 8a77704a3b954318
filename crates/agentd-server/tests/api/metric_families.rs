//! Every metric family beyond HTTP and run counts, on a real `/metrics`
//! scrape after W1-style runs on the mock provider: queue wait, attempts,
//! retries and dead letters, provider calls, time to first token, errors by
//! class, circuit state, tokens, cost and budgets by a config-bounded
//! tenant, the queue gauge, store commits and the process CPU time. The
//! agents, providers and tenants are this test's own (the recorder is
//! shared by the whole test process), and the store is this app's alone.
//! Also: `server.metrics_listen` serves a workers-only process's metrics.

use crate::metrics::{Sample, parse, scrape, value};
use agentd_config::Config;
use agentd_server::Application;
use agentd_test_support::app::{json, spawn_app};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Tenants `famrich` (a large budget) and `fampoor` (a budget below one
/// call's estimate) are named; any other tenant is `other` in labels.
const CONFIG: &str = r#"
[queue]
workers = 4
poll_interval = "20ms"
max_attempts = 2
backoff = { initial = "10ms", max = "10ms" }

[tenants.famrich]
budget_usd = 1000000.0

[tenants.fampoor]
budget_usd = 0.0000001

[pricing.famprice]
input_per_mtok = 1000000.0
output_per_mtok = 1000000.0

[providers.fam_mock]
kind = "mock"
model = "famprice"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.fam_ask]
kind = "mock"
script = [{ tool = "ask_human", args = { question = "ok?" } }, { reply = "ok" }]

[providers.fam_down]
kind = "mock"
script = [{ error = "server" }]

[providers.fam_limited]
kind = "mock"
script = [{ error = "rate_limit" }]

[[agents]]
name = "fam"
providers = ["fam_mock"]
tools = ["echo"]

[[agents]]
name = "fam_ask"
providers = ["fam_ask"]
tools = ["ask_human"]

[[agents]]
name = "fam_dead"
providers = ["fam_down"]

[[agents]]
name = "fam_cb"
providers = ["fam_limited"]
circuit_breaker = { failures = 1, reset = "60s" }
"#;

/// The single series `name{labels}` must exist (not just default to 0).
fn present(samples: &[Sample], text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples.iter().any(|s| {
        s.name == name
            && s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    });
    assert!(found, "no {name}{labels:?} in:\n{text}");
    value(samples, name, labels)
}

#[tokio::test]
async fn each_family_appears_with_bounded_labels_after_runs() {
    // Arrange: a listener on the run events, so model calls stream (and
    // time their first token).
    let app = spawn_app(CONFIG).await;
    let _events = app.engine.subscribe();
    let run_as = |tenant: &'static str, agent: &'static str, body: serde_json::Value| {
        let req = app
            .post(&format!("/v1/agents/{agent}/runs"))
            .header("x-tenant-id", tenant)
            .json(&body);
        async move { json(req.send().await.unwrap()).await }
    };

    // Act: W1 for a named tenant and an unnamed one; a run refused by its
    // tenant's budget; a run that dies after two attempts; one that opens
    // its provider's circuit; a paused run holding its conversation, so a
    // second run of it stays queued.
    let w1 = json!({ "input": "hello", "wait": true });
    for tenant in ["famrich", "someone"] {
        let (_, run) = run_as(tenant, "fam", w1.clone()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let (_, poor) = run_as("fampoor", "fam", w1.clone()).await;
    assert_eq!(poor["status"], "failed", "{poor}");
    assert_eq!(poor["error"]["code"], "budget_exceeded", "{poor}");
    let (_, dead) = run_as("famrich", "fam_dead", json!({ "input": "x" })).await;
    let (_, cb) = run_as("famrich", "fam_cb", json!({ "input": "x" })).await;
    let held = json!({ "input": "q", "conversation_id": "famc", "wait": true });
    let (_, paused) = run_as("famrich", "fam_ask", held.clone()).await;
    assert_eq!(paused["status"], "paused", "{paused}");
    let (_, queued) = run_as(
        "famrich",
        "fam_ask",
        json!({ "input": "q", "conversation_id": "famc" }),
    )
    .await;
    assert_eq!(queued["status"], "queued", "{queued}");
    let auth = |id: &serde_json::Value| format!("/v1/runs/{}", id.as_str().unwrap());
    // An open circuit ends attempts, not runs: `fam_cb` ends dead too.
    for (run, want) in [(&dead, "dead"), (&cb, "dead")] {
        let path = auth(&run["id"]);
        let mut seen = serde_json::Value::Null;
        for _ in 0..200 {
            let res = app.get(&path).header("x-tenant-id", "famrich").send();
            seen = json(res.await.unwrap()).await.1;
            if seen["status"] == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(seen["status"], want, "{seen}");
    }
    let (text, after) = scrape(&app).await;
    let s = &after;

    // Assert: runs.
    let fam = [("agent", "fam")];
    assert!(present(s, &text, "agentd_run_queue_wait_seconds_count", &fam) >= 3.0);
    assert!(present(s, &text, "agentd_run_attempts_total", &fam) >= 3.0);
    let dead_agent = [("agent", "fam_dead")];
    assert_eq!(
        present(s, &text, "agentd_run_attempts_total", &dead_agent),
        2.0
    );
    assert_eq!(
        present(s, &text, "agentd_run_retries_total", &dead_agent),
        1.0
    );
    assert_eq!(
        present(s, &text, "agentd_dead_letters_total", &dead_agent),
        1.0
    );
    // This app's own store: the held conversation's second run waits.
    assert_eq!(
        present(s, &text, "agentd_runs", &[("status", "queued")]),
        1.0
    );
    present(s, &text, "agentd_runs", &[("status", "running")]);

    // Providers: calls timed, first tokens of streamed replies timed,
    // failures by class, the circuit open (2).
    let mock = [("provider", "fam_mock")];
    assert!(
        present(
            s,
            &text,
            "agentd_provider_call_duration_seconds_count",
            &mock
        ) >= 4.0
    );
    assert!(
        present(
            s,
            &text,
            "agentd_provider_time_to_first_token_seconds_count",
            &mock
        ) >= 2.0
    );
    let server = [("provider", "fam_down"), ("class", "server")];
    assert_eq!(
        present(s, &text, "agentd_provider_errors_total", &server),
        2.0
    );
    let limited = [("provider", "fam_limited"), ("class", "rate_limited")];
    assert!(present(s, &text, "agentd_provider_errors_total", &limited) >= 1.0);
    let circuit = "agentd_provider_circuit_state";
    assert_eq!(
        present(s, &text, circuit, &[("provider", "fam_limited")]),
        2.0
    );

    // Tokens by agent, provider and type; cost by agent and a tenant the
    // config names, else `other` (never the caller's tenant id).
    for ty in ["input", "output"] {
        let labels = [("agent", "fam"), ("provider", "fam_mock"), ("type", ty)];
        assert!(
            present(s, &text, "agentd_tokens_total", &labels) >= 2.0,
            "{ty}"
        );
    }
    let rich = [("agent", "fam"), ("tenant", "famrich")];
    assert!(present(s, &text, "agentd_cost_usd", &rich) > 0.0);
    let other = [("agent", "fam"), ("tenant", "other")];
    assert!(present(s, &text, "agentd_cost_usd", &other) > 0.0);
    assert!(
        !text.contains("someone"),
        "an unnamed tenant is a label:\n{text}"
    );

    // Budgets: reservations and the refusal, and the period's spending
    // against its limit (what the near-limit alert divides).
    let rich_t = [("tenant", "famrich")];
    assert!(present(s, &text, "agentd_budget_reservations_total", &rich_t) >= 2.0);
    let poor_t = [("tenant", "fampoor")];
    assert_eq!(
        present(s, &text, "agentd_budget_rejections_total", &poor_t),
        1.0
    );
    assert!(present(s, &text, "agentd_budget_spent_usd", &rich_t) > 0.0);
    assert_eq!(
        present(s, &text, "agentd_budget_limit_usd", &rich_t),
        1_000_000.0
    );

    // Store group commits and the process's CPU time, in fractions.
    let sqlite = [("backend", "sqlite")];
    assert!(
        present(
            s,
            &text,
            "agentd_store_commit_duration_seconds_count",
            &sqlite
        ) >= 1.0
    );
    assert!(present(s, &text, "agentd_store_commit_batch_size_sum", &sqlite) >= 1.0);
    if cfg!(target_os = "linux") {
        let cpu = present(s, &text, "process_cpu_seconds_total", &[]);
        assert!(cpu > 0.0, "{text}");
    }
    for name in [
        "agentd_run_queue_wait_seconds",
        "agentd_provider_call_duration_seconds",
        "agentd_provider_time_to_first_token_seconds",
        "agentd_store_commit_duration_seconds",
        "agentd_store_commit_batch_size",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram\n")),
            "{name}"
        );
    }
    // What the dashboard and alert rules read is really exported.
    crate::deploy::check_against_scrape(&text);
}

#[tokio::test]
async fn a_workers_only_process_serves_its_metrics_on_metrics_listen() {
    // Arrange: a process with no API, as `agentd worker` with
    // `server.metrics_listen` starts it.
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml_str(CONFIG).unwrap();
    config.store.url = agentd_test_support::sqlite_url(dir.path());
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, None)
        .await
        .unwrap()
        .with_version("7.7.7")
        .with_ops_listener(ops)
        .unwrap();
    let addr = app.ops_addr().unwrap();
    assert!(app.local_addr().is_none());
    let engine = app.engine().clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(stop.clone()));

    // Act: a run its workers execute, then the three endpoints.
    let who = agentd_core::Identity {
        tenant: agentd_core::TenantId::parse("famworker").unwrap(),
        principal: agentd_core::PrincipalId::parse("p").unwrap(),
        roles: vec![],
    };
    let input = agentd_engine::Submit {
        input: json!("hi"),
        ..Default::default()
    };
    let run = engine
        .submit_wait(&who, "fam", input, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(run.status, agentd_core::RunStatus::Succeeded);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    let (code, body) = json(health).await;
    assert_eq!(
        (code.as_u16(), body["version"].as_str()),
        (200, Some("7.7.7"))
    );
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse(&text);

    // Assert: the worker's own figures, and no API behind the listener.
    let busy = present(&samples, &text, "agentd_worker_slots", &[("state", "free")]);
    assert!(busy >= 1.0, "{text}");
    assert!(
        present(
            &samples,
            &text,
            "agentd_run_attempts_total",
            &[("agent", "fam")]
        ) >= 1.0
    );
    let api = client.get(format!("{base}/v1/runs")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
