//! Hot reload of a real `agentd serve`: SIGHUP applies a changed file
//! without a restart, rejects one that does not validate (logging the key
//! at fault and keeping the config in force) and names restart-only keys;
//! `agentd rollout` shows, promotes and rolls back a versioned agent on the
//! store the server shares.

use crate::support::{Serve, Workspace, free_port, text};
use std::time::{Duration, Instant};

const AGENTS: &str = r#"
[providers.m]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "demo"
providers = ["m"]
"#;

async fn create(base: &str, agent: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/v1/agents/{agent}/runs"))
        .json(&serde_json::json!({ "input": "x" }))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::SERVICE_UNAVAILABLE)
}

/// Waits until `log` contains `needle`.
fn until_logged(serve: &Serve, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "never logged {needle:?}:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test]
async fn sighup_reloads_the_config_and_keeps_it_when_the_file_is_bad() {
    let ws = Workspace::new();
    let port = free_port();
    let head = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
    let config = ws.write_config(&format!("{head}{AGENTS}"));
    let serve = Serve::start(&ws, &config);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while create(&base, "demo").await != reqwest::StatusCode::ACCEPTED {
        assert!(Instant::now() < deadline, "{}", serve.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(create(&base, "fresh").await, reqwest::StatusCode::NOT_FOUND);

    // A new agent, and a restart-only key.
    ws.write_config(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndrain_delay = \"1s\"\n{AGENTS}\
         [[agents]]\nname = \"fresh\"\nproviders = [\"m\"]\n"
    ));
    serve.signal("-HUP");
    until_logged(&serve, "configuration reloaded");
    assert_eq!(create(&base, "fresh").await, reqwest::StatusCode::ACCEPTED);
    let log = serve.log();
    assert!(log.contains("server.drain_delay"), "{log}");
    assert!(log.contains("apply only after a restart"), "{log}");

    // A file that does not validate: rejected, the key named, the last
    // good config still served.
    ws.write_config(&format!(
        "{head}{AGENTS}[[agents]]\nname = \"worse\"\nproviders = [\"nope\"]\n"
    ));
    serve.signal("-HUP");
    until_logged(&serve, "configuration rejected");
    let log = serve.log();
    assert!(log.contains("agents[1].providers"), "{log}");
    assert_eq!(create(&base, "fresh").await, reqwest::StatusCode::ACCEPTED);
    assert_eq!(create(&base, "worse").await, reqwest::StatusCode::NOT_FOUND);
}

const VERSIONED: &str = r#"
[providers.m]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "bot"
version = "v1"
providers = ["m"]

[[agents]]
name = "bot"
version = "v2"
providers = ["m"]

[rollout.bot]
stable = "v1"
canary = "v2"
percent = 25
"#;

#[test]
fn rollout_status_promote_and_rollback() {
    let ws = Workspace::new();
    let config = ws.write_config(VERSIONED);
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = ws.run(&[&["--config", config], args].concat());
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    let (code, out, err) = run(&["rollout", "status", "bot"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("active (stable v1, canary v2 at 25%)"),
        "{out}"
    );
    assert!(out.contains("VERSION"), "{out}");

    let (code, out, err) = run(&["--json", "rollout", "promote", "bot", "--reason", "fine"]);
    assert_eq!(code, Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["phase"], "promoted");
    assert_eq!(report["stable"], "v2");
    assert_eq!(report["updated_by"], "cli");

    // Nothing left in trial.
    let (code, _, err) = run(&["rollout", "rollback", "bot"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no canary in trial"), "{err}");
    // The change is audited in the tenant's log.
    let (code, out, err) = run(&["audit", "--kind", "rollout_promoted"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("rollout_promoted"), "{out}");

    let (code, _, err) = run(&["rollout", "status", "nobody"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown agent \"nobody\""), "{err}");
}
