//! `agentd check`: the readiness report's JSON shape, `--min` exit codes,
//! and live probes costing points.

use crate::support::{Workspace, free_port, text};
use std::process::Output;

const MOCK_AGENT: &str = r#"
[providers.mock]
kind = "mock"
script = [{ reply = "hi" }]

[[agents]]
name = "demo"
providers = ["mock"]
"#;

/// `agentd check ARGS` with a config whose body is `body` (its own
/// `[store]` first when it has one), and no environment that would change
/// the score.
fn check(ws: &Workspace, body: &str, args: &[&str]) -> Output {
    let config = if body.contains("[store]") {
        let p = ws.path().join("agentd.toml");
        std::fs::write(&p, body).unwrap();
        p
    } else {
        ws.write_config(body)
    };
    ws.cmd()
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("AGENTD_LOG_FORMAT")
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

fn checks(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn json_report_has_a_stable_shape() {
    let ws = Workspace::new();
    let out = check(&ws, MOCK_AGENT, &["--json", "--offline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = report(&out);
    assert_eq!(r["max"], 15);
    assert_eq!(r["offline"], true);
    assert_eq!(r["probes"], serde_json::json!([]));
    let areas: Vec<&str> = r["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["area"].as_str().unwrap())
        .collect();
    assert_eq!(
        areas,
        [
            "observability",
            "security",
            "reliability",
            "operations",
            "data"
        ]
    );
    let sum: u64 = r["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["score"].as_u64().unwrap())
        .sum();
    assert_eq!(r["score"].as_u64(), Some(sum));
    // A laptop config: the workspace's SQLite file is under the temp dir.
    assert!(sum <= 2, "{r}");
    let auth = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "security.auth")
        .unwrap();
    assert_eq!(auth["area"], "security");
    assert_eq!(auth["key"], "auth.mode");
    assert!(
        auth["advice"].as_str().unwrap().contains("api_key"),
        "{auth}"
    );

    // The table names the same keys.
    let out = check(&ws, MOCK_AGENT, &["--offline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("total"), "{table}");
    assert!(table.contains("auth.mode"), "{table}");
    assert!(table.contains("store.checkpoint_ttl"), "{table}");
}

#[test]
fn min_gates_on_the_score() {
    let ws = Workspace::new();
    let out = check(&ws, MOCK_AGENT, &["--offline", "--json"]);
    let score = report(&out)["score"].as_u64().unwrap();
    let at = score.to_string();
    let above = (score + 1).to_string();
    let out = check(&ws, MOCK_AGENT, &["--offline", "--min", &at]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = check(&ws, MOCK_AGENT, &["--offline", "--min", &above]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("below --min"));
}

#[test]
fn a_bad_config_exits_2() {
    let ws = Workspace::new();
    let out = check(&ws, "[auth]\nmode = \"sometimes\"\n", &["--offline"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn live_probes_pass_on_a_migrated_store_and_the_mock() {
    let ws = Workspace::new();
    let config = ws.write_config(MOCK_AGENT);
    // Before `migrate` there is no database file: the probe fails without
    // creating one.
    let out = check(&ws, MOCK_AGENT, &["--json"]);
    let r = report(&out);
    assert!(checks(&r).contains(&"data.store_probe".to_owned()), "{r}");
    assert!(!ws.path().join("agentd.db").exists());

    let out = ws.run(&["migrate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = check(&ws, MOCK_AGENT, &["--json"]);
    let r = report(&out);
    assert_eq!(r["offline"], false);
    let probes = r["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 4, "{r}");
    let ok = |kind: &str| {
        probes
            .iter()
            .find(|p| p["target"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} probe: {r}"))["ok"]
            .clone()
    };
    assert_eq!(
        (ok("store"), ok("provider")),
        (true.into(), true.into()),
        "{r}"
    );
    assert!(!checks(&r).iter().any(|c| c.ends_with("_probe")), "{r}");
}

fn probe<'a>(r: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    r["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["target"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} probe: {r}"))
}

#[test]
fn fleet_probes_count_worker_processes_and_recent_backups() {
    let ws = Workspace::new();
    let body = format!("[queue]\nlease = \"3s\"\n{MOCK_AGENT}");
    let config = ws.write_config(&body);
    let out = ws.run(&["migrate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Offline, both are named as not checked.
    let offline = check(&ws, &body, &["--offline"]);
    let table = text(&offline.stdout);
    assert!(
        table.contains("not checked:")
            && table.contains("reliability.workers")
            && table.contains("data.backups"),
        "{table}"
    );

    // No worker process and no backup: a point lost for each.
    let r = report(&check(&ws, &body, &["--json"]));
    assert!(
        checks(&r).contains(&"reliability.workers".to_owned()),
        "{r}"
    );
    assert!(checks(&r).contains(&"data.backups".to_owned()), "{r}");
    assert_eq!(
        probe(&r, "backups")["detail"],
        "no backup recorded in this store"
    );
    let before = r["score"].as_u64().unwrap();

    // A backup taken is recorded and passes.
    let out = ws.run(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--out",
        "nightly.db",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = report(&check(&ws, &body, &["--json"]));
    let backups = probe(&r, "backups");
    assert_eq!(backups["ok"], true, "{r}");
    assert!(
        backups["detail"].as_str().unwrap().contains("nightly.db"),
        "{r}"
    );
    assert!(!checks(&r).contains(&"data.backups".to_owned()), "{r}");

    // Two worker processes running: the worker point too.
    let mut workers: Vec<_> = ["host-a", "host-b"]
        .iter()
        .map(|host| {
            ws.cmd()
                .env("HOSTNAME", host)
                .args(["worker", "--config"])
                .arg(&config)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        let r = report(&check(&ws, &body, &["--json"]));
        if probe(&r, "workers")["ok"] == true || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let detail = probe(&r, "workers")["detail"].as_str().unwrap().to_owned();
    assert_eq!(probe(&r, "workers")["ok"], true, "{r}");
    assert!(detail.starts_with("2 worker process(es)"), "{detail}");
    assert!(
        detail.contains("host-a") && detail.contains("host-b"),
        "{detail}"
    );
    assert!(
        !checks(&r).contains(&"reliability.workers".to_owned()),
        "{r}"
    );
    // This laptop config's areas are at 0 already: the points show on a
    // config that has them to gain (the unit tests), not in `score`.
    assert_eq!(r["score"].as_u64().unwrap(), before, "{r}");
}

#[test]
fn unreachable_postgres_and_provider_cost_points() {
    let ws = Workspace::new();
    let port = free_port();
    let body = format!(
        r#"[store]
url = "postgres://postgres@127.0.0.1:{port}/test"

[providers.main]
kind = "openai"
model = "m"
base_url = "http://127.0.0.1:{port}/v1"

[[agents]]
name = "demo"
providers = ["main"]
"#
    );
    let offline = report(&check(&ws, &body, &["--json", "--offline"]));
    let out = check(&ws, &body, &["--json"]);
    let live = report(&out);
    let score = |r: &serde_json::Value| r["score"].as_u64().unwrap();
    let area = |r: &serde_json::Value, name: &str| {
        r["areas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["area"] == name)
            .unwrap()["score"]
            .as_u64()
            .unwrap()
    };
    // Data keeps PostgreSQL and persistence offline (2/3); the failed
    // store probe takes one of them, and the backups it cannot show the
    // other.
    assert_eq!(area(&offline, "data"), 2, "{offline}");
    assert_eq!(area(&live, "data"), 0, "{live}");
    assert_eq!(score(&live), score(&offline) - 2, "{live}");
    let findings = live["findings"].as_array().unwrap();
    let store = findings
        .iter()
        .find(|f| f["check"] == "data.store_probe")
        .unwrap();
    assert_eq!(store["key"], "store.url");
    let provider = findings
        .iter()
        .find(|f| f["check"] == "reliability.provider_probe")
        .unwrap();
    assert_eq!(provider["key"], "providers.main.base_url");
    let probes = live["probes"].as_array().unwrap();
    assert!(probes.iter().all(|p| p["ok"] == false), "{live}");
    // The score is still printed: `--min` decides the exit code.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A server answering every request with `status`, on a thread.
fn answering(status: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    port
}

#[test]
fn a_provider_answering_below_500_is_reachable() {
    let ws = Workspace::new();
    for (status, ok) in [
        ("401 Unauthorized", true),
        ("503 Service Unavailable", false),
    ] {
        let port = answering(status);
        let body = format!(
            r#"
[providers.main]
kind = "openai"
model = "m"
base_url = "http://127.0.0.1:{port}/v1"

[[agents]]
name = "demo"
providers = ["main"]
"#
        );
        let r = report(&check(&ws, &body, &["--json"]));
        let probe = r["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["target"]["kind"] == "provider")
            .unwrap()
            .clone();
        assert_eq!(probe["ok"], ok, "{r}");
        assert_eq!(
            probe["target"]["url"],
            format!("http://127.0.0.1:{port}/v1/models")
        );
        assert!(
            probe["detail"].as_str().unwrap().contains(&status[..3]),
            "{probe}"
        );
        let lost = checks(&r).contains(&"reliability.provider_probe".to_owned());
        assert_eq!(lost, !ok, "{r}");
    }
}
