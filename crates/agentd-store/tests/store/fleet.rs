//! The fleet tables: the worker registry (one live holder per node id) and
//! the record of backups.

use crate::harness::Ctx;
use agentd_store::{NewBackup, WorkerRegistration};
use std::time::Duration;

fn reg(node: &str, host: &str, pid: u32) -> WorkerRegistration {
    WorkerRegistration {
        node_id: node.into(),
        host: host.into(),
        pid,
        slots: 4,
        version: "0.1.0".into(),
    }
}

pub async fn worker_registry_keeps_one_live_holder_per_node_id(ctx: &Ctx) {
    let s = &ctx.store;
    let lease = Duration::from_millis(600);
    let a = reg("node-a", "host-1", 100);
    assert_eq!(s.register_worker(&a, Some(lease)).await.unwrap(), None);
    // The same process registering again keeps its node id.
    assert_eq!(s.register_worker(&a, Some(lease)).await.unwrap(), None);
    // Another process asking for a live node id is refused and told who
    // holds it.
    let b = reg("node-a", "host-1", 200);
    let holder = s
        .register_worker(&b, Some(lease))
        .await
        .unwrap()
        .expect("refused");
    assert_eq!((holder.host.as_str(), holder.pid), ("host-1", 100));
    assert!(holder.seen_ago < lease, "{holder:?}");
    // A second node id is independent.
    let c = reg("node-c", "host-2", 100);
    assert_eq!(s.register_worker(&c, Some(lease)).await.unwrap(), None);
    let listed = s.list_workers(Duration::from_secs(60)).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|w| w.node_id.as_str()).collect();
    assert_eq!(ids, ["node-a", "node-c"]);
    assert_eq!((listed[0].pid, listed[0].slots), (100, 4));
    assert_eq!(listed[0].version, "0.1.0");
    assert!(listed[0].last_seen >= listed[0].started_at);
    // Only the holder refreshes the row.
    assert!(s.touch_worker(&a).await.unwrap());
    assert!(!s.touch_worker(&b).await.unwrap());

    // Once the holder is silent for longer than the window, it is stale:
    // it no longer lists as seen, and another process may take its id.
    ctx.advance(Duration::from_millis(900)).await;
    assert!(s.touch_worker(&c).await.unwrap());
    let recent = s.list_workers(Duration::from_millis(600)).await.unwrap();
    let ids: Vec<_> = recent.iter().map(|w| w.node_id.as_str()).collect();
    assert_eq!(ids, ["node-c"]);
    assert_eq!(s.register_worker(&b, Some(lease)).await.unwrap(), None);
    let a_row = s.list_workers(Duration::from_secs(60)).await.unwrap();
    assert_eq!(a_row[0].pid, 200, "taken over: {a_row:?}");
    // The old holder lost it: its refresh says so.
    assert!(!s.touch_worker(&a).await.unwrap());
    // Forcing replaces even a live holder.
    assert_eq!(s.register_worker(&a, None).await.unwrap(), None);
    assert_eq!(
        s.list_workers(Duration::from_secs(60)).await.unwrap()[0].pid,
        100
    );

    // Deregistering removes only the holder's own row.
    s.deregister_worker(&b).await.unwrap();
    assert_eq!(
        s.list_workers(Duration::from_secs(60)).await.unwrap().len(),
        2
    );
    s.deregister_worker(&a).await.unwrap();
    s.deregister_worker(&c).await.unwrap();
    assert!(
        s.list_workers(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn backups_are_recorded_newest_first(ctx: &Ctx) {
    let s = &ctx.store;
    assert_eq!(s.last_backup().await.unwrap(), None);
    let first = NewBackup {
        backend: "sqlite".into(),
        bytes: 4096,
        file: "/backups/a.db".into(),
    };
    s.record_backup(&first).await.unwrap();
    ctx.advance(Duration::from_millis(300)).await;
    let second = NewBackup {
        backend: "sqlite".into(),
        bytes: 8192,
        file: "/backups/b.db".into(),
    };
    s.record_backup(&second).await.unwrap();
    ctx.advance(Duration::from_millis(200)).await;
    let last = s.last_backup().await.unwrap().expect("recorded");
    assert_eq!(
        (last.backend.as_str(), last.bytes, last.file.as_str()),
        ("sqlite", 8192, "/backups/b.db")
    );
    assert!(
        last.age >= Duration::from_millis(150) && last.age < Duration::from_secs(30),
        "{last:?}"
    );
}
