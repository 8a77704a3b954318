//! The CLI contract: output streams and exit codes.

use crate::support::{Workspace, free_port, http_ok, text};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn run_on_the_embedded_default_succeeds_and_shows_steps() {
    let ws = Workspace::new();
    // No agentd.toml in the workspace: the embedded default is used, with the
    // store redirected into the temp dir.
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["run", "demo", "hi"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "done: hi\n");
    assert!(stderr.contains("[0] llm mock"), "{stderr}");
    assert!(stderr.contains("[1] tool echo completed"), "{stderr}");
    assert!(stderr.contains("[2] llm mock completed"), "{stderr}");
    assert!(ws.path().join("agentd.db").exists());

    // The run is in the store, visible to `runs list` in its tenant only.
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["status"], "succeeded");
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list", "--json", "--tenant", "other"])
        .output()
        .unwrap();
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);

    // Filtered by creation time (a duration back from now) and by
    // conversation; a bad value is a usage error naming the flag.
    let list = |args: &[&str]| {
        let out = ws
            .cmd()
            .env("AGENTD_STORE__URL", ws.db_url())
            .args(["runs", "list", "--json"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        page["items"].as_array().unwrap().len()
    };
    assert_eq!(list(&["--since", "1h"]), 1);
    assert_eq!(list(&["--until", "1h"]), 0);
    assert_eq!(list(&["--conversation", "c-1"]), 0);
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list", "--since", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--since"),
        "{}",
        text(&out.stderr)
    );
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list", "--since", "1h", "--until", "2h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a reversed range is refused");
    assert!(text(&out.stderr).contains("--since is after --until"));
}

#[test]
fn a_paused_run_exits_3_and_resumes_from_the_cli() {
    let ws = Workspace::new();
    let config = ws.write_config(
        r#"
[providers.asker]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "Ship {{input}}?" } },
  { reply = "answer: {{tool_result}}" },
]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]
"#,
    );
    let cfg = config.to_str().unwrap();
    let out = ws.run(&["run", "asker", "v2", "--json", "--config", cfg]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("paused: Ship v2?"));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "paused");
    let id = run["id"].as_str().unwrap();

    let out = ws.run(&["runs", "resume", id, "--answer", "yes", "--config", cfg]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "answer: yes\n");

    // Resuming again is refused: the run is no longer paused.
    let out = ws.run(&["runs", "resume", id, "--answer", "again", "--config", cfg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("succeeded"),
        "{}",
        text(&out.stderr)
    );

    let out = ws.run(&["runs", "show", id, "--json", "--config", cfg]);
    assert_eq!(out.status.code(), Some(0));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["llm", "human", "llm"]);
    assert_eq!(shown["steps"][1]["output"], "yes");
}

#[test]
fn bad_config_exits_2_naming_file_key_and_expectation() {
    let ws = Workspace::new();
    let config = ws.write_config("[queue]\nworkers = \"many\"\n");
    let out = ws.run(&["run", "demo", "x", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("agentd.toml"), "{err}");
    assert!(err.contains("queue.workers"), "{err}");
    assert!(err.contains("integer"), "{err}");

    // An agent naming an unknown tool is a config error too.
    let config = ws.write_config(
        "[providers.m]\nkind = \"mock\"\nscript = [{ reply = \"x\" }]\n\n[[agents]]\nname = \"a\"\nproviders = [\"m\"]\ntools = [\"nope\"]\n",
    );
    let out = ws.run(&["run", "a", "x", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("agents[0].tools") && err.contains("nope"),
        "{err}"
    );

    // A missing file, and an unknown agent (on the embedded default).
    std::fs::remove_file(&config).unwrap();
    let out = ws.run(&["run", "demo", "x", "--config", "/nonexistent/agentd.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["run", "ghost", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ghost"));
}

#[test]
fn a_failing_provider_exits_1_with_the_error_code() {
    let ws = Workspace::new();
    let config = ws.write_config(
        "[providers.down]\nkind = \"mock\"\nscript = [{ error = \"server\" }]\n\n[[agents]]\nname = \"a\"\nproviders = [\"down\"]\n",
    );
    let out = ws.run(&["run", "a", "x", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("provider_error"), "{err}");
    assert!(err.contains("down"), "{err}");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn agentd_test_runs_contract_cases_and_fails_with_a_diff() {
    let ws = Workspace::new();
    let good = r#"
[providers.m]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[[agents]]
name = "a"
providers = ["m"]
tools = ["echo"]

[[agents.tests]]
name = "echoes"
input = "hello"
expect_output = "done: hello"
expect_tools = ["echo"]

[[agents.tests]]
name = "scripted"
input = "x"
script = [{ reply = "straight answer" }]
expect_output = "straight"
expect_tools = []
"#;
    let config = ws.write_config(good);
    let out = ws.run(&["test", "--config", config.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("ok   agent a / echoes"), "{stdout}");
    assert!(stdout.contains("ok   agent a / scripted"), "{stdout}");
    assert!(stdout.contains("tool echo schema"), "{stdout}");

    // A case whose expectation is wrong fails, showing expected and actual.
    let bad = good.replace(
        "expect_output = \"done: hello\"",
        "expect_output = \"goodbye\"",
    );
    let config = ws.write_config(&bad);
    let out = ws.run(&["test", "--config", config.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL agent a / echoes"), "{stdout}");
    assert!(
        stdout.contains("- output containing: \"goodbye\""),
        "{stdout}"
    );
    assert!(stdout.contains("+ output: \"done: hello\""), "{stdout}");
}

#[test]
fn dlq_lists_and_requeues_dead_runs() {
    let ws = Workspace::new();
    let cfg = ws.write_config(
        r#"
[queue]
max_attempts = 1

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "broken"
providers = ["down"]
"#,
    );
    let cfg = cfg.to_str().unwrap();
    let out = ws.run(&["--config", cfg, "run", "broken", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // Listed, with its error, as JSON and as a table.
    let out = ws.run(&["--config", cfg, "dlq", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "dead");
    assert_eq!(items[0]["error"]["code"], "provider_error");
    let id = items[0]["id"].as_str().unwrap().to_string();
    let out = ws.run(&["--config", cfg, "dlq", "list"]);
    let table = text(&out.stdout);
    assert!(
        table.contains(&id) && table.contains("provider_error"),
        "{table}"
    );
    // Another tenant's list is empty.
    let out = ws.run(&[
        "--config", cfg, "dlq", "list", "--json", "--tenant", "other",
    ]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"], serde_json::json!([]));

    // Requeued once; a second requeue finds it no longer dead.
    let out = ws.run(&["--config", cfg, "dlq", "requeue", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("queued again"));
    let out = ws.run(&["--config", cfg, "dlq", "requeue", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only a dead run can be requeued"),
        "{}",
        text(&out.stderr)
    );
    let out = ws.run(&["--config", cfg, "runs", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["run"]["status"], "queued");
    assert_eq!(shown["run"]["attempt"], 1);
}

#[test]
fn serve_warns_loudly_when_auth_none_listens_beyond_loopback() {
    for (host, warned) in [("0.0.0.0", true), ("127.0.0.1", false)] {
        // Arrange
        let ws = Workspace::new();
        let port = free_port();
        let config = ws.write_config(&format!(
            "[server]\nlisten = \"{host}:{port}\"\n\n[auth]\nmode = \"none\"\n"
        ));
        let log = ws.path().join("serve.log");

        // Act: start, wait until it serves, stop
        let mut child = ws
            .cmd()
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http_ok(&format!("http://127.0.0.1:{port}/health")) {
            assert!(Instant::now() < deadline, "{host}: agentd never served");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        // Assert: the warning is logged before serving, only beyond loopback
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            // The log is JSON (not a terminal): match around its escaping.
            stderr.contains("SECURITY: auth.mode") && stderr.contains("on a non-loopback address"),
            warned,
            "{host}: {stderr}"
        );
    }
}

#[test]
fn serve_logs_one_access_line_per_request_at_info() {
    // Arrange
    let ws = Workspace::new();
    let port = free_port();
    let config = ws.write_config(&format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    let log = ws.path().join("serve.log");
    let mut child = ws
        .cmd()
        .env("AGENTD_LOG", "info")
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_ok(&format!("{base}/health")) {
        assert!(Instant::now() < deadline, "agentd never served");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Act: a request that matches a route template and answers 404
    assert!(!http_ok(&format!(
        "{base}/v1/runs/0190d5a0-0000-7000-8000-000000000000"
    )));
    child.kill().unwrap();
    child.wait().unwrap();

    // Assert: one JSON line with the route template, status, duration and
    // request id as top-level fields
    let stderr = std::fs::read_to_string(&log).unwrap();
    let access: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "agentd::access" && v["route"] == "/v1/runs/{id}")
        .collect();
    assert_eq!(access.len(), 1, "{stderr}");
    let line = &access[0];
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert_eq!(
        line["request_id"].as_str().map(str::len),
        Some(36),
        "a UUID: {line}"
    );
}

#[test]
fn worker_serves_health_ready_and_metrics_on_metrics_listen() {
    // Arrange: a worker process (no API) with `server.metrics_listen`; its
    // `listen` is a port nobody serves.
    let ws = Workspace::new();
    let (api, ops) = (free_port(), free_port());
    let config = ws.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:{api}\"\nmetrics_listen = \"127.0.0.1:{ops}\"\n\n[queue]\nworkers = 3\n"
    ));
    let mut child = ws
        .cmd()
        .args(["worker", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{ops}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_ok(&format!("{base}/health")) {
        assert!(Instant::now() < deadline, "the worker never served");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Act
    let ready = http_ok(&format!("{base}/ready"));
    let metrics = get_body(ops, "/metrics");
    let api_served = http_ok(&format!("http://127.0.0.1:{api}/health"));
    child.kill().unwrap();
    child.wait().unwrap();

    // Assert: the worker's own slots, and no API anywhere
    assert!(ready);
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("agentd_worker_slots{state=\"free\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE process_cpu_seconds_total"),
        "{metrics}"
    );
    assert!(!api_served, "a worker serves no API");
}

/// The whole response to a GET on `127.0.0.1:port`.
fn get_body(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}
