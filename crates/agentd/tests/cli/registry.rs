//! The worker registry across real processes on one PostgreSQL store: two
//! `agentd worker`s on one host get distinct node ids, an explicit node id
//! a live process holds is refused, and a graceful stop leaves the registry.

use crate::support::{Workspace, postgres_url, text};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn config(url: &str, node_id: Option<&str>) -> String {
    let node = node_id.map_or(String::new(), |n| format!("node_id = \"{n}\"\n"));
    format!(
        r#"[store]
url = "{url}"

[queue]
workers = 2
lease = "30s"
{node}
[providers.m]
kind = "mock"
script = [{{ reply = "ok" }}]

[[agents]]
name = "a"
providers = ["m"]
"#
    )
}

/// The node ids the registry lists now, sorted.
async fn node_ids(url: &str) -> Vec<(String, u32)> {
    let store = agentd_store::open(url).await.unwrap();
    let mut ids: Vec<_> = store
        .list_workers(Duration::from_secs(120))
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.node_id, w.pid))
        .collect();
    ids.sort();
    ids
}

async fn wait_for_rows(url: &str, n: usize) -> Vec<(String, u32)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = node_ids(url).await;
        if ids.len() == n || Instant::now() > deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn worker(ws: &Workspace, config: &std::path::Path, host: &str) -> Child {
    ws.cmd()
        .env("HOSTNAME", host)
        .args(["worker", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &mut Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "worker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_host_get_their_own_node_ids() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let ws = Workspace::new();
    let schema = format!("cli_registry_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    let host = format!("host-{}", std::process::id());
    let default = ws.path().join("default.toml");
    std::fs::write(&default, config(&url, None)).unwrap();

    // Arrange: a worker holds this host's default node id.
    let store = agentd_store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let mut first = worker(&ws, &default, &host);
    let rows = wait_for_rows(&url, 1).await;
    assert_eq!(rows, [(host.clone(), first.id())]);

    // Act: a second worker on the same host, node id not configured.
    let mut second = worker(&ws, &default, &host);
    let rows = wait_for_rows(&url, 2).await;

    // Assert: it took HOSTNAME-PID instead of sharing the node id.
    let own = format!("{host}-{}", second.id());
    assert_eq!(rows, [(host.clone(), first.id()), (own, second.id())]);

    // Act: a third one is told explicitly to be the first one's node id.
    let explicit = ws.path().join("explicit.toml");
    std::fs::write(&explicit, config(&url, Some(&host))).unwrap();
    let out = ws
        .cmd()
        .env("HOSTNAME", &host)
        .args(["worker", "--config"])
        .arg(&explicit)
        .output()
        .unwrap();

    // Assert: refused as a config error naming the key and the holder.
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`queue.node_id`"), "{err}");
    assert!(
        err.contains(&format!("host {host}, pid {}", first.id())),
        "{err}"
    );
    assert!(err.contains("s ago"), "{err}");

    // A graceful stop removes each process's row.
    sigterm(&mut second);
    assert_eq!(wait_for_rows(&url, 1).await.len(), 1);
    sigterm(&mut first);
    assert!(wait_for_rows(&url, 0).await.is_empty());
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}
