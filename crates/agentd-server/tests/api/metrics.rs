//! `/metrics` after a W1 run over HTTP: valid Prometheus text with the HTTP,
//! run, step, worker, store and process series. The recorder is global to
//! this test process, shared by every app the suite starts, so counts are
//! read as deltas around this test's own requests, on an agent no other
//! test uses.

use crate::helpers::{CONFIG, TestApp, json};
use agentd_test_support::app::spawn_app;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

/// One sample line: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses Prometheus text exposition (format 0.0.4), failing on any line
/// that is neither a `# HELP` / `# TYPE` comment nor a sample.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(is_name(name), "bad metric name in {line:?}");
            match kind {
                "HELP" => {}
                "TYPE" => assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"]
                        .contains(&parts.next().unwrap()),
                    "{line:?}"
                ),
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                (name, parse_labels(body, line))
            }
        };
        assert!(is_name(name), "bad metric name in {line:?}");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `k="v",k2="v2"` (values may hold escaped quotes and commas).
fn parse_labels(mut body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
        assert!(is_name(key), "bad label name in {line:?}");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => value.push(chars.next().unwrap().1),
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        labels.insert(key.to_string(), value);
        body = rest[end + 1..].trim_start_matches(',');
    }
    labels
}

/// `/metrics` of `app`, parsed, with the raw text.
pub async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

/// The value of the series `name` with exactly `labels`; 0 when absent (a
/// counter not yet incremented).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

#[test]
fn the_parser_reads_samples_and_rejects_garbage() {
    let text =
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"{,}\"} 3\nb 2.5\n";
    let samples = parse(text);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["y"], "q\"{,}");
    assert_eq!(
        value(&samples, "a_total", &[("x", "1"), ("y", "q\"{,}")]),
        3.0
    );
    assert_eq!(value(&samples, "b", &[]), 2.5);
    assert!(std::panic::catch_unwind(|| parse("not a metric line")).is_err());
    assert!(std::panic::catch_unwind(|| parse("a{x=\"1} 2")).is_err());
}

#[tokio::test]
async fn a_w1_run_shows_up_in_prometheus_text_with_bounded_labels() {
    // Arrange: an agent only this test runs, so its counts are exact.
    let toml = format!(
        "{CONFIG}\n[[agents]]\nname = \"metered\"\nproviders = [\"mock\"]\ntools = [\"echo\"]\n"
    );
    let app = spawn_app(&toml).await;
    let (_, before) = scrape(&app).await;
    let agent = [("agent", "metered")];
    let succeeded = [("agent", "metered"), ("status", "succeeded")];

    // Act: W1 (create with wait: a model call, a tool call, a reply), a
    // read of the run, and a path no route matches.
    let res = app
        .post("/v1/agents/metered/runs")
        .json(&json!({ "input": "hi", "wait": true }))
        .send()
        .await
        .unwrap();
    let (status, run) = json(res).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    let got = app.get(&format!("/v1/runs/{id}")).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let missing = app.get(&format!("/nope/{id}")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let (text, after) = scrape(&app).await;

    // Assert: HTTP series by route template, never the raw path.
    let created = status.as_u16().to_string();
    let create_labels = [
        ("method", "POST"),
        ("route", "/v1/agents/{agent}/runs"),
        ("status", created.as_str()),
    ];
    let http = "agentd_http_requests_total";
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(delta(http, &create_labels) >= 1.0, "{text}");
    let get_labels = [
        ("method", "GET"),
        ("route", "/v1/runs/{id}"),
        ("status", "200"),
    ];
    assert!(delta(http, &get_labels) >= 1.0, "{text}");
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert!(delta(http, &unmatched) >= 1.0, "{text}");
    assert!(!text.contains(&id), "a run id is a label value:\n{text}");
    assert!(
        !text.contains("/nope"),
        "a raw path is a label value:\n{text}"
    );
    for s in after.iter().filter(|s| s.labels.contains_key("route")) {
        let route = &s.labels["route"];
        assert!(route == "unmatched" || route.starts_with('/'), "{s:?}");
    }

    // Runs and steps: exact deltas on this test's agent.
    assert_eq!(delta("agentd_runs_created_total", &agent), 1.0, "{text}");
    assert_eq!(
        delta("agentd_runs_finished_total", &succeeded),
        1.0,
        "{text}"
    );
    let run_count = "agentd_run_duration_seconds_count";
    assert_eq!(delta(run_count, &succeeded), 1.0, "{text}");
    for kind in ["llm", "tool"] {
        let labels = [("agent", "metered"), ("kind", kind)];
        assert!(
            delta("agentd_step_duration_seconds_count", &labels) >= 1.0,
            "{kind}: {text}"
        );
    }

    // Histograms, not summaries: typed, with buckets ending in +Inf.
    for name in [
        "agentd_http_request_duration_seconds",
        "agentd_run_duration_seconds",
        "agentd_step_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} histogram\n")),
            "{name}: {text}"
        );
        for suffix in ["_sum", "_count"] {
            let n = format!("{name}{suffix}");
            assert!(after.iter().any(|s| s.name == n), "{n}: {text}");
        }
        let bucket = format!("{name}_bucket");
        assert!(
            after
                .iter()
                .any(|s| s.name == bucket && s.labels["le"] == "+Inf"),
            "{bucket}: {text}"
        );
    }
    let mut le = [
        ("agent", "metered"),
        ("status", "succeeded"),
        ("le", "+Inf"),
    ];
    assert_eq!(
        value(&after, "agentd_run_duration_seconds_bucket", &le),
        1.0
    );
    le[2].1 = "3600";
    assert_eq!(
        value(&after, "agentd_run_duration_seconds_bucket", &le),
        1.0,
        "{text}"
    );

    // Read at scrape time: the store, the worker slots, the process.
    assert!(
        value(&after, "agentd_store_commits_total", &[]) >= 1.0,
        "{text}"
    );
    let busy = value(&after, "agentd_worker_slots", &[("state", "busy")]);
    let free = value(&after, "agentd_worker_slots", &[("state", "free")]);
    assert!(busy >= 0.0 && free >= 0.0, "{text}");
    assert!(
        text.contains("agentd_worker_slots{state=\"free\"}"),
        "{text}"
    );
    if cfg!(target_os = "linux") {
        assert!(
            value(&after, "process_resident_memory_bytes", &[]) > 1e6,
            "{text}"
        );
        assert!(value(&after, "process_open_fds", &[]) >= 3.0, "{text}");
        // Fractional seconds: exported as a gauge that only grows (the
        // exporter's counters hold whole numbers).
        assert!(
            text.contains("# TYPE process_cpu_seconds_total gauge"),
            "{text}"
        );
    }
}
