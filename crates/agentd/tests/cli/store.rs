//! The store's lifecycle from the command line: encryption at rest
//! (`store.encryption_key_env`) and the retention purge (`runs purge`).

use crate::support::{Server, Workspace, free_port, text};
use std::time::{Duration, Instant};

/// The variable the tests name in `store.encryption_key_env`.
const KEY_VAR: &str = "AGENTD_TEST_CLI_KEYRING";

/// `KEYID:BASE64` with a 32-byte key.
const KEYRING: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

#[test]
fn the_encryption_key_variable_is_required_read_and_used() {
    let ws = Workspace::new();
    let cmd = |keyring: Option<&str>, args: &[&str]| {
        let mut c = ws.cmd();
        c.env("AGENTD_STORE__URL", ws.db_url())
            .env("AGENTD_STORE__ENCRYPTION_KEY_ENV", KEY_VAR)
            .env_remove(KEY_VAR)
            .args(args);
        if let Some(k) = keyring {
            c.env(KEY_VAR, k);
        }
        c.output().unwrap()
    };

    // Configured but missing, or malformed: a config error naming the
    // variable, whatever the command, and the key never echoed.
    for args in [
        &["run", "demo", "hi"][..],
        &["runs", "list"],
        &["migrate"],
        &["test"],
    ] {
        let out = cmd(None, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("store.encryption_key_env"), "{stderr}");
        assert!(
            stderr.contains(&format!("{KEY_VAR} is not set")),
            "{stderr}"
        );
    }
    let out = cmd(Some("k1:c2VjcmV0"), &["runs", "list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(KEY_VAR), "{stderr}");
    assert!(stderr.contains("6 bytes, not 32"), "{stderr}");
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");

    // With the key: runs are written sealed and read back.
    let marker = "cli-m4rker-3nc";
    let out = cmd(Some(KEYRING), &["run", "demo", marker]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("done: {marker}\n"));
    let out = cmd(Some(KEYRING), &["runs", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"][0]["input"], marker);
    let db = std::fs::read(ws.path().join("agentd.db")).unwrap();
    let wal = std::fs::read(ws.path().join("agentd.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()));
    }

    // The same database without encryption configured: a clear error.
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("encrypted with key id k1"), "{stderr}");
}

/// `runs list --json` in `tenant` on the workspace's database: the items.
fn list(ws: &Workspace, tenant: &str) -> Vec<serde_json::Value> {
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["runs", "list", "--json", "--tenant", tenant])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    page["items"].as_array().unwrap().clone()
}

#[test]
fn runs_purge_deletes_finished_runs_older_than_given_in_every_tenant() {
    let ws = Workspace::new();
    let cmd = |args: &[&str]| {
        ws.cmd()
            .env("AGENTD_STORE__URL", ws.db_url())
            .args(args)
            .output()
            .unwrap()
    };
    for tenant in ["default", "other"] {
        let out = cmd(&["run", "demo", "hi", "--tenant", tenant]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    // No age given and no TTL configured: a usage error.
    let out = cmd(&["runs", "purge"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--older-than"), "{stderr}");
    assert!(stderr.contains("store.checkpoint_ttl"), "{stderr}");
    let out = cmd(&["runs", "purge", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // The configured TTL is the default age: nothing is a day old.
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .env("AGENTD_STORE__CHECKPOINT_TTL", "1d")
        .args(["runs", "purge", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let purged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(purged, serde_json::json!({ "purged": 0 }));
    assert_eq!(
        (list(&ws, "default").len(), list(&ws, "other").len()),
        (1, 1)
    );

    // Older than 10 ms: both tenants' finished runs go.
    std::thread::sleep(Duration::from_millis(50));
    let out = cmd(&["runs", "purge", "--older-than", "10ms"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2\n");
    assert!(text(&out.stderr).contains("purged 2 finished runs"));
    assert_eq!(
        (list(&ws, "default").len(), list(&ws, "other").len()),
        (0, 0)
    );
}

#[test]
fn serve_purges_finished_runs_past_the_checkpoint_ttl() {
    let ws = Workspace::new();
    let out = ws
        .cmd()
        .env("AGENTD_STORE__URL", ws.db_url())
        .args(["run", "demo", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(list(&ws, "default").len(), 1);
    // Older than the TTL by the time the server starts.
    std::thread::sleep(Duration::from_millis(1_200));

    let port = free_port();
    let config = ws.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\ncheckpoint_ttl = \"1s\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [providers.m]\nkind = \"mock\"\nscript = [{{ reply = \"ok\" }}]\n\n\
             [[agents]]\nname = \"a\"\nproviders = [\"m\"]\n",
            ws.db_url()
        ),
    )
    .unwrap();
    let server = Server::start(&ws, &config, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !list(&ws, "default").is_empty() {
        assert!(Instant::now() < deadline, "serve did not purge the run");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
}
