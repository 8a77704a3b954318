//! Two agentd processes on one PostgreSQL schema, talking through the
//! store's change feed: a stream on one follows a run the other executes
//! (steps, status and tokens, at once, only its own run's and tenant's),
//! survives its listening connection being cut, and an idle worker claims
//! a run queued on the other process at once although it polls every 30 s.

use crate::helpers::TestApp;
use agentd_core::{Step, now_millis};
use agentd_store::{Notice, RunChange};
use agentd_test_support::app::spawn_app_on_postgres;
use agentd_test_support::{postgres_url, terminate_connections};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Both processes poll the queue every 30 s: a run reaching a worker
/// sooner was woken by the feed. Model calls take 300 ms (`slow`), 500 ms
/// (`slower`, three calls) or 3 s (`blocker`).
pub(crate) fn config(node: &str) -> String {
    format!(
        r#"
[queue]
workers = 2
poll_interval = "30s"
node_id = "{node}"

[providers.slow]
kind = "mock"
latency_ms = 300
script = [{{ tool = "echo", args = {{ text = "{{{{input}}}}" }} }}, {{ reply = "done: {{{{tool_result}}}}" }}]

[providers.slower]
kind = "mock"
latency_ms = 500
script = [
  {{ tool = "echo", args = {{ text = "{{{{input}}}}" }} }},
  {{ tool = "echo", args = {{ text = "{{{{tool_result}}}}" }} }},
  {{ reply = "done: {{{{tool_result}}}}" }},
]

[providers.block]
kind = "mock"
latency_ms = 3000
script = [{{ reply = "unblocked" }}]

[providers.quick]
kind = "mock"
script = [{{ tool = "echo", args = {{ text = "{{{{input}}}}" }} }}, {{ reply = "done: {{{{tool_result}}}}" }}]

[[agents]]
name = "slow"
providers = ["slow"]
tools = ["echo"]

[[agents]]
name = "slower"
providers = ["slower"]
tools = ["echo"]

[[agents]]
name = "blocker"
providers = ["block"]

[[agents]]
name = "quick"
providers = ["quick"]
tools = ["echo"]
"#
    )
}

/// Processes A and B on one fresh schema, both listening to the feed.
async fn two_processes(pg: &str) -> (TestApp, TestApp) {
    let a = spawn_app_on_postgres(&config("node-a"), pg).await;
    let b = a.sibling(&config("node-b")).await;
    for app in [&a, &b] {
        let t0 = Instant::now();
        while app.engine.feed_connected() != Some(true) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the feed never listened"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (a, b)
}

/// Starts a run of `agent` on `app` as `tenant`; its id.
async fn start(app: &TestApp, agent: &str, tenant: &str, input: &str) -> String {
    let res = app
        .post(&format!("/v1/agents/{agent}/runs"))
        .header("x-tenant-id", tenant)
        .json(&json!({ "input": input }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let run: Value = res.json().await.unwrap();
    run["id"].as_str().unwrap().to_string()
}

/// How late an event may arrive through the feed, in ms: well under the 1 s
/// a stream polled the store at before, far under the 5 s it polls at while
/// the feed listens (room for a loaded CI machine).
const LAG_MS: i64 = 750;

/// An event and when it arrived (epoch ms).
struct Got {
    event: String,
    data: Value,
    at: i64,
}

/// An SSE stream, read as it arrives.
struct Stream {
    res: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(app: &TestApp, id: &str, tenant: &str) -> Self {
        let res = app
            .get(&format!("/v1/runs/{id}/events"))
            .header("x-tenant-id", tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next event, `None` once the stream ended; fails after 10 s of
    /// silence.
    async fn next(&mut self) -> Option<Got> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                if let Some((event, _, data)) = crate::events::parse(&block).into_iter().next() {
                    let at = now_millis();
                    return Some(Got { event, data, at });
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.res.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every event until the stream ends.
    async fn rest(mut self) -> Vec<Got> {
        let mut all = Vec::new();
        while let Some(g) = self.next().await {
            all.push(g);
        }
        all
    }
}

fn names(got: &[Got]) -> Vec<&str> {
    got.iter().map(|g| g.event.as_str()).collect()
}

fn position(got: &[Got], event: &str, index: u32) -> usize {
    got.iter()
        .position(|g| g.event == event && g.data["index"] == index)
        .unwrap_or_else(|| panic!("no {event} of step {index} in {:?}", names(got)))
}

fn tokens(got: &[Got]) -> Vec<String> {
    got.iter()
        .filter(|g| g.event == "token")
        .map(|g| g.data["text"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts the stream holds steps `0..n` once each, in order, and ends
/// with the run succeeded; the steps.
fn assert_whole_run(got: &[Got], n: u32) -> Vec<(Step, i64)> {
    let steps: Vec<(Step, i64)> = got
        .iter()
        .filter(|g| g.event == "step.completed")
        .map(|g| (serde_json::from_value(g.data.clone()).unwrap(), g.at))
        .collect();
    let indexes: Vec<u32> = steps.iter().map(|(s, _)| s.index).collect();
    assert_eq!(indexes, (0..n).collect::<Vec<_>>(), "{:?}", names(got));
    let last = got.last().unwrap();
    assert_eq!(last.event, "run.finished", "{:?}", names(got));
    assert_eq!(last.data["status"], "succeeded");
    steps
}

/// How long after the run's last change its `run.finished` arrived.
fn finish_lag_ms(got: &[Got]) -> i64 {
    let last = got.last().unwrap();
    let run: agentd_core::Run = serde_json::from_value(last.data.clone()).unwrap();
    last.at - run.updated_at
}

#[tokio::test]
async fn a_stream_on_another_process_gets_steps_status_and_tokens_at_once() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let (a, b) = two_processes(&pg).await;

    // Act: a run executes on A (three steps, 300 ms per model call) while
    // B streams it.
    let id = start(&a, "slow", "acme", "hi").await;
    let opened = now_millis();
    let got = Stream::open(&b, &id, "acme").await.rest().await;
    b.stop().await;
    a.stop().await;

    // Assert: every step once, in order, and the reply's text as it was
    // generated, between its start and its journaling.
    let steps = assert_whole_run(&got, 3);
    let (started, token, completed) = (
        position(&got, "step.started", 2),
        position(&got, "token", 2),
        position(&got, "step.completed", 2),
    );
    assert!(started < token && token < completed, "{:?}", names(&got));
    assert_eq!(got[token].data, json!({ "index": 2, "text": "done: hi" }));
    assert_eq!(got[0].event, "run.status");
    // At once: while the feed listens the store is polled every 5 s, so
    // only the feed brings a step within 750 ms of its end (well under the
    // 1 s poll a stream used to rely on).
    let mut live = 0;
    for (step, at) in &steps {
        let ended = step.started_at + step.duration_ms as i64;
        if ended > opened {
            live += 1;
            assert!(
                at - ended < LAG_MS,
                "step {} came {} ms late",
                step.index,
                at - ended
            );
        }
    }
    assert!(live >= 2, "{live} steps ended after the stream opened");
    assert!(finish_lag_ms(&got) < LAG_MS, "{}", finish_lag_ms(&got));
}

#[tokio::test]
async fn a_stream_gets_only_its_own_runs_events_of_its_own_tenant() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let (a, b) = two_processes(&pg).await;
    // A third handle on the store, to send notices as any process could.
    let forger = agentd_store::open(&a.store_url).await.unwrap();
    let feed = forger.feed().unwrap();

    // Act: runs of two tenants execute on A at once; B streams each.
    let x = start(&a, "slower", "tenant-x", "secret-x").await;
    let y = start(&a, "slower", "tenant-y", "secret-y").await;
    let mut sx = Stream::open(&b, &x, "tenant-x").await;
    let sy = Stream::open(&b, &y, "tenant-y").await;
    assert_eq!(sx.next().await.unwrap().event, "run.status");
    // Text for x's run under another tenant, and (the control) under x's.
    let run_x = agentd_core::RunId(x.parse().unwrap());
    for (tenant, text) in [("tenant-y", "forged"), ("tenant-x", "genuine")] {
        feed.publish(Notice::Run {
            tenant: agentd_core::TenantId::parse(tenant).unwrap(),
            run: run_x,
            change: RunChange::Token {
                index: 0,
                text: text.into(),
            },
        });
    }
    let (gx, gy) = tokio::join!(sx.rest(), sy.rest());
    b.stop().await;
    a.stop().await;

    // Assert
    assert_whole_run(&gx, 5);
    assert_whole_run(&gy, 5);
    assert_eq!(tokens(&gx), ["genuine", "done: secret-x"]);
    assert_eq!(tokens(&gy), ["done: secret-y"]);
}

#[tokio::test]
async fn a_stream_survives_the_loss_of_the_listening_connections() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let (a, b) = two_processes(&pg).await;
    let id = start(&a, "slower", "acme", "hi").await;
    let mut stream = Stream::open(&b, &id, "acme").await;
    assert_eq!(stream.next().await.unwrap().event, "run.status");

    // Act: the server ends both processes' listening connections (named
    // after their channel, `agentd_<schema>`) during the first model call.
    let schema = a.store_url.rsplit("schema=").next().unwrap();
    let ended = terminate_connections(&pg, &format!("agentd_{schema}"))
        .await
        .unwrap();
    let got = stream.rest().await;
    b.stop().await;
    a.stop().await;

    // Assert: both reconnected, and the stream missed nothing: the reply
    // (a model call that started after the loss) streamed its text, and the
    // end arrived at once, not at the next poll.
    assert_eq!(ended, 2);
    assert_whole_run(&got, 5);
    assert_eq!(tokens(&got), ["done: hi"]);
    assert!(finish_lag_ms(&got) < LAG_MS, "{}", finish_lag_ms(&got));
}

#[tokio::test]
async fn an_idle_worker_of_another_process_claims_a_queued_run_at_once() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let (a, b) = two_processes(&pg).await;
    // A's two worker slots are busy for 3 s.
    for _ in 0..2 {
        let (_, run) = a.create_run("blocker", json!({ "input": "x" })).await;
        assert_eq!(run["status"], "running", "{run}");
    }

    // Act: a run created on A waits in the queue; B polls it every 30 s.
    let t0 = Instant::now();
    let (_, run) = a.create_run("quick", json!({ "input": "hi" })).await;
    assert_eq!(run["status"], "queued", "{run}");
    let id = run["id"].as_str().unwrap();
    let claimed = loop {
        let (_, now) =
            crate::helpers::json(a.get(&format!("/v1/runs/{id}")).send().await.unwrap()).await;
        if now["status"] != "queued" {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let done = a.wait_for_status(id, "succeeded").await;
    let took = t0.elapsed();
    b.stop().await;
    a.stop().await;

    // Assert: B claimed it at once, and ran it while A was still busy.
    assert!(
        claimed < Duration::from_secs(1),
        "claimed after {claimed:?}"
    );
    assert_eq!(done["output"], "done: hi");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
