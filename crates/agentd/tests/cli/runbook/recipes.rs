//! The runbook's recipes that one machine can run, end to end: each test
//! runs the lines of the blocks marked `<!-- runbook-test: NAME -->` as
//! the runbook writes them, placeholders replaced, then checks the outcome
//! the recipe promises.

use super::harness::{Env, sigterm};
use super::marked;
use crate::support::{http_ok, postgres_url, text};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A run of three steps: a model call asking for a tool, the tool, the
/// answer.
const DEMO: &str = r#"
[providers.m]
kind = "mock"
script = [{ tool = "echo", args = { text = "x" } }, { reply = "done" }]

[[agents]]
name = "demo"
providers = ["m"]
tools = ["echo"]
"#;

/// Runs of `flaky` are dead after one failed attempt.
const FLAKY: &str = r#"
[queue]
max_attempts = 1

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "flaky"
providers = ["down"]
"#;

/// `agentd run AGENT INPUT --tenant acme --json`: the run's id.
fn run_demo(env: &Env, input: &str) -> String {
    let run = env.agentd_json(&["run", "demo", input, "--tenant", "acme"]);
    assert_eq!(run["status"], "succeeded", "{run}");
    run["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn dead_letters_are_listed_and_requeued_as_the_runbook_says() {
    let mut env = Env::new(FLAKY, &["serve", "--no-workers"]);
    for i in 0..3 {
        let out = env.agentd(&["run", "flaky", &format!("hi {i}"), "--tenant", "acme"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    }
    let dead = ids(&env.agentd_json(&["dlq", "list", "--tenant", "acme"]));
    assert_eq!(dead.len(), 3);
    env.start();

    // Diagnose: the CLI and HTTP lists, the journal and the audit trail.
    let diagnose = marked("dead-letters-diagnose");
    let out = env.run_block(&diagnose.lines, &[("RUN_ID", &dead[0])], &[]);
    for id in &dead {
        assert!(out.contains(id.as_str()), "{id}: {out}");
    }
    assert!(out.contains("provider_error"), "{out}");
    assert!(out.contains("claimed") && out.contains("dead"), "{out}");

    // Act: one by the CLI, one over HTTP, the rest all at once.
    let act = marked("dead-letters-requeue");
    assert_eq!(act.lines.len(), 3, "{act:?}");
    env.run_block(&act.lines[..1], &[("RUN_ID", &dead[0])], &[]);
    let http = env.run_block(&act.lines[1..2], &[("RUN_ID", &dead[1])], &[]);
    let http: Value = serde_json::from_str(&http).unwrap();
    assert_eq!(http["status"], "queued", "{http}");
    env.run_block(&act.lines[2..], &[], &[]);

    // Verify: nothing dead, every run queued for a fresh attempt.
    assert!(ids(&env.agentd_json(&["dlq", "list", "--tenant", "acme"])).is_empty());
    for id in &dead {
        let shown = env.agentd_json(&["runs", "show", id, "--tenant", "acme"]);
        assert_eq!(shown["run"]["status"], "queued", "{shown}");
    }
}

#[test]
fn api_keys_rotate_with_overlap_as_the_runbook_says() {
    let mut env = Env::new(&format!("[auth]\nmode = \"api_key\"\n{DEMO}"), &["serve"]);
    let out = env.agentd(&[
        "keys",
        "create",
        "--tenant",
        "acme",
        "--principal",
        "ci",
        "--role",
        "admin",
        "--name",
        "ci deploy",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let old = text(&out.stdout).trim().to_owned();
    // The key id is the hex between `agd_` and the next `_`.
    let old_id = old
        .strip_prefix("agd_")
        .and_then(|r| r.split('_').next())
        .unwrap()
        .to_owned();
    env.set("OLD", &old);
    env.start();

    let rotate = marked("api-key-rotation");
    let mut lines = rotate.lines.clone();
    lines.push("printf %s \"$NEW\" > new.key".into());
    let listed = env.run_block(&lines, &[("OLD_KEY_ID", &old_id)], &[]);
    assert!(listed.contains(&old_id), "{listed}");
    let new = std::fs::read_to_string(env.path().join("new.key")).unwrap();
    assert!(new.starts_with("agd_"), "{new}");

    // Verify: the old key is refused within 5 s, the new one works.
    let verify = marked("api-key-rotation-verify");
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = env.run_block(&verify.lines, &[], &[]);
        if out.contains("\"reason\":\"revoked\"") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(out.contains("\"reason\":\"revoked\""), "{out}");
    assert!(out.contains("ci deploy 2027-01"), "{out}");
    assert!(out.contains("key_revoked"), "{out}");
    env.set("NEW", &new);
    let page = env.sh_ok(r#"curl -sf "$API/v1/runs" -H "Authorization: Bearer $NEW""#);
    assert!(page.contains("\"items\""), "{page}");
}

#[test]
fn encryption_keys_rotate_as_the_runbook_says() {
    let k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let mut env = Env::new(DEMO, &["serve"]);
    env.set("AGENTD_STORE__ENCRYPTION_KEY_ENV", "AGENTD_ENCRYPTION_KEY");
    env.set("AGENTD_ENCRYPTION_KEY", &format!("k1:{k1}"));
    let old = run_demo(&env, "sealed with k1");

    // The new keyring (k2 first, k1 kept), then a run written with it.
    let rotate = marked("encryption-key-rotation");
    let mut lines = rotate.lines.clone();
    lines.push("agentd --json run demo 'sealed with k2' --tenant acme > new.json".into());
    lines.push(format!(
        "agentd --json runs show {old} --tenant acme > old.json"
    ));
    lines.push("printf %s \"$AGENTD_ENCRYPTION_KEY\" > keyring".into());
    env.run_block(&lines, &[("<the current key>", k1)], &[]);
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(env.path().join(f)).unwrap()).unwrap()
    };
    let new = read("new.json")["id"].as_str().unwrap().to_owned();
    assert_eq!(read("old.json")["run"]["input"], "sealed with k1");
    let keyring = std::fs::read_to_string(env.path().join("keyring")).unwrap();
    assert!(keyring.starts_with("k2:") && keyring.ends_with(&format!(",k1:{k1}")));

    // Both runs read with the new keyring; k1 alone cannot read the new one.
    env.set("AGENTD_ENCRYPTION_KEY", &keyring);
    let shown = env.agentd_json(&["runs", "show", &new, "--tenant", "acme"]);
    assert_eq!(shown["run"]["input"], "sealed with k2");
    env.set("AGENTD_ENCRYPTION_KEY", &format!("k1:{k1}"));
    let out = env.agentd(&["runs", "show", &new, "--tenant", "acme"]);
    assert!(
        text(&out.stderr).contains("with key k2"),
        "{}",
        text(&out.stderr)
    );

    // The count of rows per key id, by SQL (the SQLite line).
    let count = marked("encryption-key-count");
    let db = env.path().join("agentd.db");
    let out = env.run_block(
        &count.lines,
        &[("/var/lib/agentd/agentd.db", db.to_str().unwrap())],
        &["psql"],
    );
    assert!(out.contains("k1|1") && out.contains("k2|1"), "{out}");
}

#[test]
fn backup_and_restore_as_the_runbook_says() {
    let mut env = Env::new(DEMO, &["serve"]);
    env.start();
    let kept = run_demo(&env, "before the backup");
    let backups = format!("{}/backups/", env.path().display());

    let backup = marked("backup");
    env.run_block(&backup.lines, &[("/backups/", &backups)], &[]);
    let files: Vec<_> = std::fs::read_dir(env.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].to_str().unwrap().to_owned();
    assert!(
        file.contains("/backups/agentd-") && file.ends_with("Z.db"),
        "{file}"
    );
    let lost = run_demo(&env, "after the backup");

    // Restore: the server stopped and started by the block's systemctl lines.
    let restore = marked("restore");
    env.run_block(
        &restore.lines,
        &[("/backups/agentd-20261204T120000Z.db", &file)],
        &[],
    );
    let runs = ids(&env.agentd_json(&["runs", "list", "--tenant", "acme"]));
    assert_eq!(runs, [kept], "{lost}, run after the backup, is gone");
    let out = env.agentd(&["healthcheck", "--ready"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_run_forks_from_a_step_as_the_runbook_says() {
    let mut env = Env::new(DEMO, &["serve"]);
    let id = run_demo(&env, "fork me");
    let fork = marked("fork");
    env.run_block(
        &fork.lines,
        &[("RUN_ID", &id), ("--from-step N", "--from-step 1")],
        &[],
    );
    let runs = env.agentd_json(&["runs", "list", "--tenant", "acme"]);
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{runs}");
    assert_eq!(items[0]["status"], "succeeded", "{runs}");
    assert_eq!(items[0]["forked_from"]["run_id"], id.as_str(), "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_moves_to_postgres_as_the_runbook_says() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let schema = format!("rb_copy_{}", std::process::id());
    let target = format!("{pg}?schema={schema}");
    let mut env = Env::new(DEMO, &["serve"]);
    env.start();
    let id = run_demo(&env, "moved");
    let backups = format!("{}/backups/", env.path().display());
    let source = env.ws.db_url();

    let copy = marked("sqlite-to-postgres");
    env.run_block(
        &copy.lines,
        &[
            ("sqlite:///var/lib/agentd/agentd.db", &source),
            ("postgres://agentd@db/agentd?schema=agentd", &target),
            ("/backups/", &backups),
        ],
        &[],
    );
    assert!(env.path().join("backups/before-postgres.db").is_file());
    env.set("AGENTD_STORE__URL", &target);
    let runs = ids(&env.agentd_json(&["runs", "list", "--tenant", "acme"]));
    assert_eq!(runs, [id]);
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_process_joins_as_the_runbook_says() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let schema = format!("rb_scale_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    let mut env = Env::new(DEMO, &["serve"]);
    env.set("AGENTD_STORE__URL", &url);
    env.start();

    // The block's bare worker line (compose and kubectl need their tools),
    // with the metrics listener and slots of the runbook's trial.
    let scale = marked("scaling");
    let runnable: Vec<_> = scale
        .lines
        .iter()
        .filter(|l| !l.starts_with("docker") && !l.starts_with("kubectl"))
        .collect();
    assert_eq!(runnable.len(), 1, "{scale:?}");
    let line = runnable[0].replace("/etc/agentd/agentd.toml", env.config.to_str().unwrap());
    let metrics_port = crate::support::free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    env.set("AGENTD_SERVER__METRICS_LISTEN", &metrics);
    env.set("AGENTD_QUEUE__WORKERS", "4");
    env.set("METRICS", &format!("http://{metrics}"));
    let mut worker = std::process::Command::new("sh")
        .args(["-c", &format!("exec {line}")])
        .current_dir(env.path())
        .envs(env.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(
            "PATH",
            format!(
                "{}:{}",
                std::path::Path::new(crate::support::BIN)
                    .parent()
                    .unwrap()
                    .display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("AGENTD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_ok(&format!("http://{metrics}/ready")) {
        assert!(Instant::now() < deadline, "the worker did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Diagnose: the worker's slots on its metrics listener.
    let diagnose = marked("scaling-diagnose");
    let out = env.run_block(&diagnose.lines, &[], &[]);
    assert!(
        out.contains("agentd_worker_slots{state=\"free\"} 4"),
        "{out}"
    );

    // Two processes in the registry: `agentd check` gives the point.
    let report = env.agentd_json(&["check"]);
    let workers = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["target"]["kind"] == "workers")
        .unwrap()
        .clone();
    assert_eq!(workers["ok"], true, "{report}");
    // The worker, second on this host, claims as HOSTNAME-PID.
    let store = agentd_store::open(&url).await.unwrap();
    let mut nodes: Vec<_> = store
        .list_workers(Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.node_id)
        .collect();
    nodes.sort();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(
        nodes[1],
        format!("{}-{}", nodes[0], worker.id()),
        "{nodes:?}"
    );

    // A run submitted over HTTP is executed by the fleet.
    let run = env.sh_ok(
        r#"curl -sf -X POST "$API/v1/agents/demo/runs" -H 'X-Tenant-Id: acme' -H 'content-type: application/json' -d '{"input": "scaled", "wait": true}'"#,
    );
    let run: Value = serde_json::from_str(&run).unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = env.agentd_json(&["runs", "show", &id, "--tenant", "acme"]);
        if shown["run"]["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{shown}");
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&mut worker);
    env.stop();
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}
