//! The worker registry: a process takes its node id before recovery, so a
//! second process on one host never releases the first one's leases.

use crate::helpers::{build_engine, identity, open_store, start_workers};
use agentd_core::{NewRun, RunId, RunStatus};
use agentd_engine::EngineError;
use agentd_store::{ClaimRequest, WorkerRegistration};
use std::time::Duration;

const AGENT: &str = r#"
[providers.m]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "a"
providers = ["m"]
"#;

fn config(node_id: Option<&str>) -> String {
    let node = node_id.map_or(String::new(), |n| format!("node_id = \"{n}\"\n"));
    format!("[queue]\nworkers = 2\nlease = \"30s\"\n{node}{AGENT}")
}

fn foreign(node_id: &str, host: &str, pid: u32) -> WorkerRegistration {
    WorkerRegistration {
        node_id: node_id.into(),
        host: host.into(),
        pid,
        slots: 4,
        version: "0.0.9".into(),
    }
}

#[tokio::test]
async fn a_node_id_held_by_a_live_process_is_neither_shared_nor_recovered() -> anyhow::Result<()> {
    // Arrange: another live process (another host) holds this host's
    // default node id and leases a run under it.
    let dir = tempfile::tempdir()?;
    let store = open_store(&dir).await?;
    let unconfigured = build_engine(&config(None), store.clone()).await?;
    let host_default = unconfigured.settings().owner.clone();
    let other = foreign(&host_default, "other-host", 4242);
    assert_eq!(store.register_worker(&other, None).await?, None);
    let tenant = identity("t1")?.tenant;
    let id = RunId::new();
    let run = NewRun {
        agent_version: None,
        id,
        agent: "a".into(),
        principal: identity("t1")?.principal,
        input: serde_json::json!("hi"),
        conversation_id: None,
        metadata: None,
        roles: Vec::new(),
        idempotency: None,
        origin: Default::default(),
        if_busy: Default::default(),
        callbacks: Vec::new(),
    };
    let claim = ClaimRequest::new(host_default.clone(), Duration::from_secs(30));
    let created = store.create_run(&tenant, &run, Some(&claim)).await?;
    assert!(created.claimed.is_some(), "the other process holds the run");

    // Act: a process without `queue.node_id` starts.
    let node_id = unconfigured.join_fleet().await?;
    let released = unconfigured.recover().await?;

    // Assert: it runs as HOSTNAME-PID and left the other's lease alone.
    assert_eq!(node_id, format!("{host_default}-{}", std::process::id()));
    assert_eq!(unconfigured.node_id(), node_id);
    assert_eq!(released, 0);
    let still = store.get_run(&tenant, id).await?.expect("run");
    assert_eq!(still.status, RunStatus::Running);
    let live = store.list_workers(Duration::from_secs(120)).await?;
    let mut ids: Vec<_> = live.iter().map(|w| w.node_id.clone()).collect();
    ids.sort();
    let mut want = vec![host_default.clone(), node_id.clone()];
    want.sort();
    assert_eq!(ids, want);

    // Act: a process configured with that node id explicitly starts.
    let configured = build_engine(&config(Some(&host_default)), store.clone()).await?;
    let refused = configured.join_fleet().await;

    // Assert: a config error naming the key and the holder.
    let Err(EngineError::Config(msg)) = refused else {
        panic!("expected a config error, got {refused:?}");
    };
    assert!(msg.contains("`queue.node_id`"), "{msg}");
    assert!(msg.contains("host other-host, pid 4242"), "{msg}");
    assert!(msg.contains("s ago"), "{msg}");
    Ok(())
}

/// This host's name as agentd reads it.
fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::test]
async fn a_crashed_holder_on_this_host_is_taken_over_and_workers_leave_on_shutdown()
-> anyhow::Result<()> {
    // Arrange: the configured node id is held by a process of this host
    // that is gone (a crash): a child that already exited.
    let dir = tempfile::tempdir()?;
    let store = open_store(&dir).await?;
    let mut child = std::process::Command::new("true").spawn()?;
    let dead_pid = child.id();
    child.wait()?;
    store
        .register_worker(&foreign("node-b", &this_host(), dead_pid), None)
        .await?;
    let engine = build_engine(&config(Some("node-b")), store.clone()).await?;

    // Act
    let joined = engine.join_fleet().await?;

    // Assert: its node id is taken over, not refused.
    assert_eq!(joined, "node-b");
    let rows = store.list_workers(Duration::from_secs(60)).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].pid, rows[0].slots), (std::process::id(), 2));

    // Act: workers run, then stop.
    let workers = start_workers(&engine);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = store.list_workers(Duration::from_secs(60)).await?;
    workers.stop().await?;

    // Assert: listed while running, gone after a graceful stop.
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].version, env!("CARGO_PKG_VERSION"));
    assert!(
        store
            .list_workers(Duration::from_secs(60))
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_running_pool_keeps_its_row_fresh() -> anyhow::Result<()> {
    // Arrange: a short lease, so the row is refreshed every 100 ms.
    let dir = tempfile::tempdir()?;
    let store = open_store(&dir).await?;
    let toml = format!("[queue]\nworkers = 1\nlease = \"300ms\"\nnode_id = \"fresh\"\n{AGENT}");
    let engine = build_engine(&toml, store.clone()).await?;
    engine.join_fleet().await?;
    let workers = start_workers(&engine);

    // Act: wait several leases.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let recent = store.list_workers(Duration::from_millis(300)).await?;
    workers.stop().await?;

    // Assert: seen within the last lease all along, then gone.
    assert_eq!(recent.len(), 1, "not refreshed: {recent:?}");
    assert!(
        recent[0].last_seen - recent[0].started_at >= 500,
        "{recent:?}"
    );
    assert!(
        store
            .list_workers(Duration::from_secs(60))
            .await?
            .is_empty()
    );
    Ok(())
}
