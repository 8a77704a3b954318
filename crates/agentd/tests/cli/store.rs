//! The store's lifecycle from the command line: encryption at rest
//! (`store.encryption_key_env`) and the retention purge (`runs purge`).

use crate::support::{Workspace, text};

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
