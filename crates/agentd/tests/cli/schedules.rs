//! `agentd schedules list`: the tenant's schedules before any tick, then
//! with the tick a served process started.

use crate::support::{Server, Workspace, free_port, text};
use std::time::{Duration, Instant};

#[test]
fn schedules_list_shows_next_and_last_ticks_and_the_run() {
    let ws = Workspace::new();
    let port = free_port();
    let cfg = ws.write_config(&format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[providers.m]
kind = "mock"
script = [{{ reply = "ok" }}]

[[agents]]
name = "bot"
providers = ["m"]

[[schedules]]
name = "every-second"
agent = "bot"
cron = "*/1 * * * * *"
timezone = "Europe/Paris"
input = "go"
"#
    ));
    let cfg = cfg.to_str().unwrap();
    let list = |extra: &[&str]| {
        let mut args = vec!["--config", cfg, "schedules", "list", "--json"];
        args.extend_from_slice(extra);
        let out = ws.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };

    // Before any process ran: the next tick, no last one.
    let before = list(&[]);
    let s = &before["items"][0];
    assert_eq!(s["name"], "every-second");
    assert_eq!(s["timezone"], "Europe/Paris");
    assert!(s["next_tick"].is_string(), "{before}");
    assert!(
        s["last_tick"].is_null() && s["last_run_id"].is_null(),
        "{before}"
    );
    assert_eq!(list(&["--tenant", "other"])["items"], serde_json::json!([]));

    // A served process starts a run at a tick.
    let server = Server::start(&ws, std::path::Path::new(cfg), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let v = list(&[]);
        if !v["items"][0]["last_run_id"].is_null() || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    server.kill9();
    let id = after["items"][0]["last_run_id"]
        .as_str()
        .expect("a tick started a run")
        .to_owned();

    // The table names the schedule and the run.
    let out = ws.run(&["--config", cfg, "schedules", "list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("every-second") && table.contains("*/1 * * * * *") && table.contains(&id),
        "{table}"
    );
    let out = ws.run(&["--config", cfg, "runs", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["run"]["principal"], "schedule:every-second");
}
