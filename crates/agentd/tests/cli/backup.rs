//! `agentd backup` and `agentd restore`: a backup taken under load restores
//! every finished run intact and a paused run resumable; refusals and their
//! exit codes; PostgreSQL through pg_dump / pg_restore.

use crate::support::{Server, Workspace, free_port, postgres_url, text};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A W1 agent (`echo`) and one that pauses for a human (`asker`).
fn agents(w1: &str) -> String {
    format!(
        r#"
[providers.w1]
kind = "mock"
script = {w1}

[providers.asker]
kind = "mock"
script = [
  {{ tool = "ask_human", args = {{ question = "Ship {{{{input}}}}?" }} }},
  {{ reply = "answer: {{{{tool_result}}}}" }},
]

[[agents]]
name = "w1"
providers = ["w1"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]
"#
    )
}

fn run_with(ws: &Workspace, cfg: &Path, args: &[&str]) -> Output {
    let mut c = ws.cmd();
    c.args(args).arg("--config").arg(cfg);
    c.output().unwrap()
}

/// `runs show ID --json` on the store `cfg` names.
fn show(ws: &Workspace, cfg: &Path, id: &str) -> Value {
    let out = run_with(ws, cfg, &["runs", "show", id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn start_run(client: &reqwest::Client, base: &str, agent: &str, body: Value) -> Value {
    client
        .post(format!("{base}/v1/agents/{agent}/runs"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_w1_load_restores_finished_runs_and_a_resumable_pause() {
    // Arrange: a serving agentd with a paused run and finished W1 runs.
    let ws = Workspace::new();
    let port = free_port();
    let body = agents(agentd_test_support::W1_SCRIPT);
    let cfg = ws.write_config(&format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{body}"));
    let server = Server::start(&ws, &cfg, port);
    let client = reqwest::Client::new();
    let paused = start_run(
        &client,
        &server.base,
        "asker",
        json!({"input": "v2", "wait": true}),
    )
    .await;
    assert_eq!(paused["status"], "paused", "{paused}");
    let paused = paused["id"].as_str().unwrap().to_string();
    let mut finished = Vec::new();
    for i in 0..12 {
        let run = start_run(
            &client,
            &server.base,
            "w1",
            json!({"input": format!("before-{i}"), "wait": true}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        finished.push(run["id"].as_str().unwrap().to_string());
    }

    // Act: W1 load (runs created and executed) while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for task in 0..4 {
        let (stop, created, client, base) = (
            stop.clone(),
            created.clone(),
            client.clone(),
            server.base.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let wait = i % 2 == 0;
                let run = start_run(
                    &client,
                    &base,
                    "w1",
                    json!({"input": format!("load-{task}-{i}"), "wait": wait}),
                )
                .await;
                assert!(run["id"].is_string(), "{run}");
                created.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    while created.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = created.load(Ordering::Relaxed);
    let file = ws.path().join("agentd.backup");
    let (ws_path, cfg2, file2) = (ws.path().to_path_buf(), cfg.clone(), file.clone());
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::support::BIN)
            .current_dir(ws_path)
            .env("AGENTD_LOG", "warn")
            .args(["backup", "--out"])
            .arg(&file2)
            .arg("--config")
            .arg(&cfg2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let during = created.load(Ordering::Relaxed) - before;
    eprintln!(
        "backup took {:?} (process start included); {during} runs were created meanwhile",
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    drop(server);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("backed up"),
        "{}",
        text(&out.stderr)
    );
    assert!(during > 0, "no run was created while the backup ran");

    // Restore into a new store.
    let target = Workspace::new();
    let cfg_new = target.write_config(&body);
    let out = run_with(&target, &cfg_new, &["restore", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Assert: every run finished before the backup is as it was (status,
    // output, steps: the whole record), and the paused run resumes.
    for id in &finished {
        let restored = show(&target, &cfg_new, id);
        assert_eq!(restored["run"]["status"], "succeeded");
        assert!(
            restored["run"]["output"]
                .as_str()
                .unwrap()
                .starts_with("done: before-")
        );
        assert_eq!(restored["steps"].as_array().unwrap().len(), 3, "{restored}");
        assert_eq!(restored, show(&ws, &cfg, id));
    }
    let out = run_with(
        &target,
        &cfg_new,
        &["runs", "resume", &paused, "--answer", "yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "answer: yes\n");
    assert_eq!(
        show(&target, &cfg_new, &paused)["run"]["status"],
        "succeeded"
    );
}

#[test]
fn backup_and_restore_refuse_existing_targets_and_bad_files() {
    let ws = Workspace::new();
    let cfg = ws.write_config(&agents(agentd_test_support::W1_SCRIPT));
    let out = ws.run(&["run", "w1", "hi", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = ws.path().join("b.db");
    let backup = |force: bool| {
        let mut args = vec!["backup", "--out", file.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        run_with(&ws, &cfg, &args)
    };
    assert_eq!(backup(false).status.code(), Some(0));

    // An existing output file is kept unless --force.
    let out = backup(false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exists; pass --force"),
        "{}",
        text(&out.stderr)
    );
    let out = backup(true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The store's own file is never a backup's output nor its input.
    let db = ws.path().join("agentd.db");
    for args in [
        vec!["backup", "--out", db.to_str().unwrap(), "--force"],
        vec!["restore", db.to_str().unwrap(), "--force"],
    ] {
        let out = run_with(&ws, &cfg, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("it is the store's own database file"), "{err}");
    }

    // Restoring over a store that holds data needs --force.
    let out = run_with(&ws, &cfg, &["restore", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("already holds an agentd store; pass --force"),
        "{err}"
    );
    let out = run_with(&ws, &cfg, &["restore", file.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run_with(&ws, &cfg, &["runs", "list", "--json"]);
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"][0]["output"], "done: hi");

    // Files that are not agentd backups are refused before anything is
    // touched: text, a SQLite database without agentd's tables, a missing
    // file.
    let target = Workspace::new();
    let cfg_new = target.write_config(&agents(agentd_test_support::W1_SCRIPT));
    let junk = target.path().join("junk");
    std::fs::write(
        &junk,
        "not a database at all, just some text to fill a page",
    )
    .unwrap();
    // SQLite opens an empty file as an empty database.
    let other = target.path().join("other.db");
    std::fs::write(&other, b"").unwrap();
    for bad in [&junk, &other, &target.path().join("missing")] {
        let out = run_with(
            &target,
            &cfg_new,
            &["restore", bad.to_str().unwrap(), "--force"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("is not an agentd backup"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!target.path().join("agentd.db").exists());
}

#[test]
fn postgres_backup_without_pg_dump_prints_the_recipe_without_the_password() {
    let ws = Workspace::new();
    let empty = tempfile::tempdir().unwrap();
    let out = ws
        .cmd()
        .env(
            "AGENTD_STORE__URL",
            "postgres://agentd:s3cret@db.example:5432/agentd?schema=prod",
        )
        .env("PATH", empty.path())
        .args(["backup", "--out", "x.dump"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pg_dump is not on the PATH"), "{err}");
    assert!(
        err.contains("pg_dump --format=custom --schema=prod --dbname='postgres://agentd@db.example:5432/agentd'"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!ws.path().join("x.dump").exists());
}

/// pg_dump and pg_restore, when there: the local machine and CI have them.
fn pg_tools() -> bool {
    let found = ["pg_dump", "pg_restore"].iter().all(|tool| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "pg_dump/pg_restore missing and CI is set"
        );
        eprintln!("skipping: pg_dump/pg_restore are not on the PATH");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backup_and_restore_round_trip_through_pg_dump() {
    let Some(pg) = postgres_url() else {
        return;
    };
    if !pg_tools() {
        return;
    }
    let ws = Workspace::new();
    let schema = format!("cli_backup_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    let cmd = |args: &[&str]| {
        ws.cmd()
            .env("AGENTD_STORE__URL", &url)
            .args(args)
            .output()
            .unwrap()
    };
    let out = cmd(&["run", "demo", "kept", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = cmd(&["runs", "show", &id, "--json"]);
    let before: Value = serde_json::from_slice(&shown.stdout).unwrap();

    let out = cmd(&["backup", "--out", "pg.dump"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The schema still has agentd's tables: refused without --force.
    let out = cmd(&["restore", "pg.dump"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass --force"),
        "{}",
        text(&out.stderr)
    );

    // Into an empty database (the schema dropped), and again over it with --force.
    agentd_test_support::drop_schema(&pg, &schema)
        .await
        .unwrap();
    let out = cmd(&["restore", "pg.dump"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cmd(&["restore", "pg.dump", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = cmd(&["runs", "show", &id, "--json"]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&shown.stdout).unwrap(),
        before
    );

    // A SQLite file is not a PostgreSQL backup.
    std::fs::write(ws.path().join("junk.dump"), "SQLite format 3\0").unwrap();
    let out = cmd(&["restore", "junk.dump", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}
