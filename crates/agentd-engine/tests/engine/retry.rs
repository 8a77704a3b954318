//! Retries through the queue, dead letters, lease expiry and the shutdown
//! grace. The timing tests run under `tokio::time::pause()` on a store whose
//! clock is tokio's, so minutes of backoff and leases pass in milliseconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::helpers::{
    W1_SCRIPT, events, identity, indexes, spawn_engine, spawn_engine_on_tokio_time, start_workers,
};
use agentd_core::{ErrorCode, Identity, RunStatus, StepKind};
use agentd_engine::EngineError;
use agentd_store::{ClaimRequest, Transition};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Agent `a` on the W1 script, with `queue` as the `[queue]` section.
fn w1_with_queue(queue: &str) -> String {
    format!(
        r#"
[queue]
{queue}

[providers.m]
kind = "mock"
script = {W1_SCRIPT}

[[agents]]
name = "a"
providers = ["m"]
tools = ["echo"]
"#
    )
}

/// Waits (in the test's time) until the run settles.
async fn settle(t: &crate::helpers::TestEngine, id: agentd_core::RunId) -> agentd_core::Run {
    let run = t
        .engine
        .wait(&t.who.tenant, id, Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    assert!(agentd_engine::settled(run.status), "{}", run.status);
    run
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_ends_the_attempt_not_the_run() {
    // Arrange: the only provider fails once, which opens its circuit for
    // ten minutes; three attempts, 1 s apart.
    let t = spawn_engine_on_tokio_time(
        r#"
[queue]
max_attempts = 3
backoff = { initial = "1s", max = "1s", jitter = false }

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "a"
providers = ["down"]
circuit_breaker = { failures = 1, reset = "10m" }
"#,
    )
    .await
    .unwrap();
    let workers = start_workers(&t.engine);

    // Act
    let run = t.submit("a", "hi").await.unwrap();
    let run = settle(&t, run.id).await;
    workers.stop().await.unwrap();

    // Assert: the attempts after the circuit opened were retried too, so
    // the run waits in the dead letters to be requeued once the provider
    // is back, instead of failing for good.
    assert_eq!(run.status, RunStatus::Dead);
    assert_eq!(run.attempt, 3);
    let error = run.error.as_ref().unwrap();
    assert!(error.message.contains("circuit open"), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_exponentially_then_the_run_is_dead() {
    // Arrange: a model that always fails with a 5xx; four attempts, 1 s
    // doubling backoff without jitter.
    let t = spawn_engine_on_tokio_time(
        r#"
[queue]
max_attempts = 4
backoff = { initial = "1s", max = "60s", jitter = false }

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "a"
providers = ["down"]
"#,
    )
    .await
    .unwrap();
    let workers = start_workers(&t.engine);

    // Act
    let run = t.submit("a", "hi").await.unwrap();
    let run = settle(&t, run.id).await;
    workers.stop().await.unwrap();

    // Assert: dead after the fourth attempt, nothing journaled.
    assert_eq!(run.status, RunStatus::Dead);
    assert_eq!(run.attempt, 4);
    assert_eq!(run.error.as_ref().unwrap().code, ErrorCode::ProviderError);
    assert!(t.steps(run.id).await.unwrap().is_empty());
    let audit = t.audit(run.id).await.unwrap();
    assert_eq!(
        events(&audit),
        [
            "created", "claimed", "retry", "claimed", "retry", "claimed", "retry", "claimed",
            "dead"
        ]
    );
    // Each retry waited its backoff: 1 s, 2 s, 4 s, and not much longer
    // (the claimer polls every 200 ms).
    let retries: Vec<_> = audit
        .iter()
        .enumerate()
        .filter(|(_, a)| a.event == "retry")
        .collect();
    let delays: Vec<u64> = retries
        .iter()
        .map(|(_, a)| a.detail["delay_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, [1000, 2000, 4000]);
    for (i, retry) in retries {
        let next = &audit[i + 1];
        let waited = (next.at - retry.at) as u64;
        let delay = retry.detail["delay_ms"].as_u64().unwrap();
        assert!(
            waited >= delay && waited < delay + 1000,
            "waited {waited} ms for a {delay} ms backoff"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_over_only_when_it_runs_out() {
    // Arrange: a run claimed by a worker that then vanishes (no heartbeat).
    let t = spawn_engine_on_tokio_time(&w1_with_queue("lease = \"30s\""))
        .await
        .unwrap();
    let run = t.submit("a", "hi").await.unwrap();
    let ghost = ClaimRequest::new("ghost", Duration::from_secs(30));
    let claimed = t.store.claim_next(&ghost).await.unwrap().unwrap();
    assert_eq!(claimed.lease.run_id, run.id);
    let workers = start_workers(&t.engine);

    // Act 1: 29 s later the lease still holds.
    tokio::time::sleep(Duration::from_secs(29)).await;
    let held = t.run(run.id).await.unwrap();

    // Act 2: past 30 s a live worker takes over and finishes the run.
    let done = settle(&t, run.id).await;
    workers.stop().await.unwrap();

    // Assert
    assert_eq!(held.status, RunStatus::Running);
    assert_eq!(held.steps, 0);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempt, 2, "a lost lease counts as an attempt");
    let audit = t.audit(run.id).await.unwrap();
    let claimed_at = audit.iter().find(|a| a.event == "claimed").unwrap().at;
    let reclaimed = audit.iter().find(|a| a.event == "reclaimed").unwrap();
    let waited = reclaimed.at - claimed_at;
    assert!(
        (30_000..31_000).contains(&waited),
        "reclaimed after {waited} ms"
    );
    // The ghost's writes are fenced off.
    let late = t
        .store
        .heartbeat(&claimed.lease, Duration::from_secs(30))
        .await;
    assert!(late.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_run_that_keeps_losing_its_worker_is_dead_at_max_attempts() {
    // Arrange: one attempt allowed; the first worker vanishes.
    let t = spawn_engine_on_tokio_time(&w1_with_queue("lease = \"10s\"\nmax_attempts = 1"))
        .await
        .unwrap();
    let run = t.submit("a", "hi").await.unwrap();
    let ghost = ClaimRequest::new("ghost", Duration::from_secs(10));
    t.store.claim_next(&ghost).await.unwrap().unwrap();
    let workers = start_workers(&t.engine);

    // Act
    let done = settle(&t, run.id).await;
    workers.stop().await.unwrap();

    // Assert: not executed again, dead with the reason.
    assert_eq!(done.status, RunStatus::Dead);
    assert_eq!(done.steps, 0);
    let error = done.error.unwrap();
    assert_eq!(error.code, ErrorCode::Internal);
    assert!(
        error.message.contains("interrupted 1 times"),
        "{}",
        error.message
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_a_step_that_outlives_the_grace_and_releases_the_run() {
    // Arrange: a model call of 60 s; a 2 s grace.
    let toml = r#"
[queue]
shutdown_grace = "2s"

[providers.slow]
kind = "mock"
latency_ms = 60000
script = [{ reply = "late" }]

[[agents]]
name = "a"
providers = ["slow"]
"#;
    let t = spawn_engine_on_tokio_time(toml).await.unwrap();
    let workers = start_workers(&t.engine);
    let run = t.submit("a", "hi").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let audit = t.audit(run.id).await.unwrap();
    assert_eq!(
        t.run(run.id).await.unwrap().status,
        RunStatus::Running,
        "{audit:?}"
    );

    // Act
    let t0 = tokio::time::Instant::now();
    workers.stop().await.unwrap();
    let took = t0.elapsed();

    // Assert: stopped at the grace, long before the call would end (the
    // margin covers store writes, which advance the driven clock too), the
    // run queued again as the same attempt with nothing journaled.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let parked = t.run(run.id).await.unwrap();
    assert_eq!(parked.status, RunStatus::Queued);
    assert_eq!(parked.attempt, 1);
    assert_eq!(parked.steps, 0);
    assert!(t.steps(run.id).await.unwrap().is_empty());

    // Another worker pool finishes it.
    let workers = start_workers(&t.engine);
    let done = settle(&t, run.id).await;
    workers.stop().await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.output, Some(json!("late")));
}

/// A webhook receiver that answers 503 until `healthy` is set, recording
/// each request's Idempotency-Key.
fn flaky_hook(healthy: Arc<AtomicBool>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let hook = agentd_test_support::WebhookReceiver::start(move || {
        if healthy.load(Ordering::SeqCst) {
            ("200 OK", r#"{"sent":true}"#)
        } else {
            ("503 Service Unavailable", r#"{"error":"down"}"#)
        }
    });
    (hook.port, hook.keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_run_requeued_by_an_admin_continues_from_its_journal() {
    // Arrange: a webhook tool that is down; two quick attempts.
    let healthy = Arc::new(AtomicBool::new(false));
    let (port, keys) = flaky_hook(healthy.clone());
    let t = spawn_engine(&format!(
        r#"
[queue]
max_attempts = 2
backoff = {{ initial = "10ms", max = "10ms", jitter = false }}

[providers.m]
kind = "mock"
script = [
  {{ tool = "notify", args = {{ text = "{{{{input}}}}" }} }},
  {{ reply = "notified: {{{{tool_result}}}}" }},
]

[tools.notify]
allow = ["127.0.0.1"]
kind = "webhook"
# Set by .cargo/config.toml; the receiver does not check signatures.
secret_env = "AGENTD_TEST_WEBHOOK_SECRET"
url = "http://127.0.0.1:{port}/hook"
description = "notify"
schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}

[[agents]]
name = "a"
providers = ["m"]
tools = ["notify"]
"#
    ))
    .await
    .unwrap();
    let workers = start_workers(&t.engine);
    let run = t.submit("a", "hi").await.unwrap();
    let dead = t.settle(run.id).await.unwrap();
    assert_eq!(dead.status, RunStatus::Dead, "{:?}", dead.error);
    assert_eq!(dead.error.as_ref().unwrap().code, ErrorCode::ToolError);
    assert_eq!(dead.attempt, 2);
    // The model step before the failing tool is kept.
    let journal = t.steps(run.id).await.unwrap();
    assert_eq!(indexes(&journal), [0]);

    // Act 1: listed as a dead letter, to a non-admin of the tenant too; a
    // non-admin may not requeue, nor may another tenant's admin.
    let listed = t.engine.dead_letters(&t.who, 50, None).await.unwrap();
    let user = Identity {
        roles: vec!["user".into()],
        ..t.who.clone()
    };
    let forbidden = t.engine.requeue_dead(&user, run.id).await;
    let user_list = t.engine.dead_letters(&user, 50, None).await.unwrap();
    let other = identity("t2").unwrap();
    let other_tenant = t.engine.requeue_dead(&other, run.id).await.unwrap();
    let other_list = t.engine.dead_letters(&other, 50, None).await.unwrap();

    // Act 2: the tool recovers; an admin requeues.
    healthy.store(true, Ordering::SeqCst);
    let requeued = t.engine.requeue_dead(&t.who, run.id).await.unwrap();
    let done = t.settle(run.id).await.unwrap();
    let again = t.engine.requeue_dead(&t.who, run.id).await.unwrap();
    workers.stop().await.unwrap();

    // Assert
    assert_eq!(
        listed.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [run.id]
    );
    assert!(matches!(forbidden, Err(EngineError::Forbidden(_))));
    assert_eq!(
        user_list.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [run.id]
    );
    assert!(matches!(other_tenant, Transition::NotFound));
    assert!(other_list.items.is_empty());
    let Transition::Done(requeued, _) = requeued else {
        panic!("requeue refused")
    };
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(requeued.attempt, 1);
    assert_eq!(requeued.error, None);
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(
        done.output,
        Some(json!(r#"notified: {"body":{"sent":true},"status":200}"#))
    );
    assert!(matches!(again, Transition::Conflict(RunStatus::Succeeded)));
    let steps = t.steps(run.id).await.unwrap();
    assert_eq!(indexes(&steps), [0, 1, 2]);
    assert_eq!(
        steps[0], journal[0],
        "the journaled model step is not redone"
    );
    assert_eq!(steps[1].kind, StepKind::Tool);
    // Every call of the tool carried the same key: run and step.
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3, "two failed attempts and the successful one");
    assert!(
        keys.iter().all(|k| *k == format!("{}:1", run.id)),
        "{keys:?}"
    );
    let audit = t.audit(run.id).await.unwrap();
    assert!(events(&audit).contains(&"requeued"));
}
