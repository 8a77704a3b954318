//! `agentd keys`: a key minted on the command line authenticates against a
//! running `agentd serve` in `auth.mode = "api_key"`, stays in its tenant
//! whatever identity headers say, and stops working within seconds of
//! `keys revoke`; listings never show a secret; bad input exits 2.

use crate::support::{Server, Workspace, free_port, postgres_url, text};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// One agent on the mock provider.
const AGENT: &str = r#"
[providers.mock]
kind = "mock"
script = [{ reply = "ok" }]

[[agents]]
name = "demo"
providers = ["mock"]
"#;

/// Writes a config on `store_url` serving on `port` under API keys.
fn write_config(ws: &Workspace, store_url: &str, port: u16) -> PathBuf {
    let p = ws.path().join("agentd.toml");
    let body = format!(
        "[store]\nurl = \"{store_url}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [auth]\nmode = \"api_key\"\n\n{AGENT}"
    );
    std::fs::write(&p, body).unwrap();
    p
}

/// `agentd --config CFG ARGS...`.
fn keys(ws: &Workspace, cfg: &Path, args: &[&str]) -> Output {
    ws.cmd()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

/// `keys ... --json` that must succeed: its output.
fn keys_json(ws: &Workspace, cfg: &Path, args: &[&str]) -> Value {
    let out = keys(ws, cfg, &[args, &["--json"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `GET /v1/runs` with `key` until it answers `want`, for at most 5
/// seconds (the propagation bound); returns the last body.
async fn until_status(base: &str, key: &str, want: StatusCode) -> Value {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let res = client
            .get(format!("{base}/v1/runs"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = res.status();
        if status == want {
            if status == StatusCode::UNAUTHORIZED {
                let challenge = res.headers()["www-authenticate"].to_str().unwrap();
                assert!(challenge.starts_with("Bearer "), "{challenge}");
            }
            return res.json().await.unwrap_or(Value::Null);
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {status} after 5 s, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole life of a key on the store at `store_url`.
async fn key_lifecycle(ws: &Workspace, store_url: &str) {
    // Arrange: a key minted before the server starts, one listed page
    let port = free_port();
    let cfg = write_config(ws, store_url, port);
    let created = keys_json(
        ws,
        &cfg,
        &[
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
        ],
    );
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with(&format!("agd_{id}_")), "{created}");
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["principal"], "ci");
    assert_eq!(created["roles"], json!(["admin"]));
    assert_eq!(created["name"], "ci deploy");
    assert_eq!(created["expires_at"], Value::Null);
    let secret = key.rsplit('_').next().unwrap().to_string();

    // Act + Assert: list shows the key, never its secret
    let list = keys(ws, &cfg, &["keys", "list"]);
    let table = text(&list.stdout);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    assert!(table.starts_with("ID "), "{table}");
    for want in [&id[..], "ci deploy", "acme", "ci", "admin", "never"] {
        assert!(table.contains(want), "{want}: {table}");
    }
    let page = keys_json(ws, &cfg, &["keys", "list", "--tenant", "acme"]);
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    let item = &page["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert!(item.get("key").is_none() && item.get("secret_hash").is_none());
    for out in [&list.stdout, &list.stderr] {
        assert!(!text(out).contains(&secret));
    }
    assert!(!page.to_string().contains(&secret));
    let other = keys_json(ws, &cfg, &["keys", "list", "--tenant", "other"]);
    assert_eq!(other["items"], json!([]));

    // Act + Assert: the key authenticates against a real server, as its
    // own tenant whatever the identity headers claim
    let server = Server::start(ws, &cfg, port);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    until_status(&base, &key, StatusCode::OK).await;
    let res = client
        .post(format!("{base}/v1/agents/demo/runs"))
        .bearer_auth(&key)
        .header("x-tenant-id", "other")
        .header("x-principal-id", "root")
        .header("x-roles", "operator")
        .json(&json!({ "input": "hi", "wait": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["tenant"], "acme", "{run}");
    let res = client
        .get(format!("{base}/v1/keys?tenant=other"))
        .bearer_auth(&key)
        .header("x-roles", "operator")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = client.get(format!("{base}/v1/runs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "missing_credential", "{body}");

    // Act + Assert: a key minted while the server runs reaches it
    let out = keys(
        ws,
        &cfg,
        &["keys", "create", "--tenant", "acme", "--principal", "bot"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let late = text(&out.stdout).trim().to_string();
    assert!(late.starts_with("agd_"), "{late}");
    until_status(&base, &late, StatusCode::OK).await;

    // Act + Assert: revoked on the command line, refused by the running
    // server within 5 seconds
    let out = keys(ws, &cfg, &["keys", "revoke", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
    let body = until_status(&base, &key, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert_eq!(body["error"]["reason"], "revoked", "{body}");
    until_status(&base, &late, StatusCode::OK).await;
    let page = keys_json(ws, &cfg, &["keys", "list"]);
    let revoked = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{page}");

    // Act + Assert: a key with a short life expires
    let out = keys(
        ws,
        &cfg,
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--principal",
            "tmp",
            "--expires",
            "1s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let short = text(&out.stdout).trim().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let body = until_status(&base, &short, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["error"]["reason"], "expired", "{body}");

    // Act + Assert: paging walks every key once
    let first = keys_json(ws, &cfg, &["keys", "list", "--limit", "2"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let rest = keys_json(
        ws,
        &cfg,
        &["keys", "list", "--limit", "2", "--cursor", &cursor],
    );
    let ids: Vec<&Value> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|k| &k["id"])
        .collect();
    assert_eq!(ids.len(), 3, "{first} {rest}");
    assert!(ids.contains(&&json!(id)));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_key_authenticates_stays_in_its_tenant_and_dies_on_revoke_sqlite() {
    let ws = Workspace::new();
    let url = ws.db_url();
    key_lifecycle(&ws, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_key_authenticates_stays_in_its_tenant_and_dies_on_revoke_postgres() {
    let Some(pg) = postgres_url() else {
        return;
    };
    let ws = Workspace::new();
    let schema = format!("cli_keys_{}", std::process::id());
    key_lifecycle(&ws, &format!("{pg}?schema={schema}")).await;
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}

#[test]
fn keys_create_prints_the_key_once_and_bad_input_exits_2() {
    // Arrange
    let ws = Workspace::new();
    let cfg = ws.write_config("[auth]\nmode = \"api_key\"\n");

    // Act + Assert: the key alone on stdout, what it is on stderr
    let out = keys(
        &ws,
        &cfg,
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--principal",
            "ci",
            "--role",
            "admin",
            "--role",
            "reader",
            "--expires",
            "90d",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let key = stdout.trim();
    let id = &key["agd_".len()..key.rfind('_').unwrap()];
    assert!(stderr.contains("only time"), "{stderr}");
    for want in [id, "acme", "ci", "admin,reader"] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    assert!(!stderr.contains(key), "{stderr}");
    let page = keys_json(&ws, &cfg, &["keys", "list"]);
    assert!(page["items"][0]["expires_at"].is_string(), "{page}");

    // Act + Assert: bad input is a usage error naming what is wrong
    for (args, says) in [
        (&["--tenant", "a b", "--principal", "p"][..], "--tenant"),
        (&["--tenant", "a", "--principal", "p q"], "--principal"),
        (
            &["--tenant", "a", "--principal", "p", "--role", "a,b"],
            "roles",
        ),
        (
            &["--tenant", "a", "--principal", "p", "--expires", "soon"],
            "--expires",
        ),
        (
            &["--tenant", "a", "--principal", "p", "--expires", "0s"],
            "expires",
        ),
        (&["--principal", "p"], "--tenant"),
    ] {
        let out = keys(&ws, &cfg, &[&["keys", "create"], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    for args in [
        &["keys", "revoke", "not-an-id"][..],
        &["keys", "list", "--cursor", "bogus"],
        &["keys", "list", "--limit", "0"],
        &["keys", "list", "--tenant", "a b"],
    ] {
        let out = keys(&ws, &cfg, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // Act + Assert: an unknown key is a failure, not a usage error
    let out = keys(&ws, &cfg, &["keys", "revoke", "0123456789abcdef"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("0123456789abcdef not found"));
    let out = keys(&ws, &cfg, &["keys", "revoke", id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let revoked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(revoked["id"], id);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("key").is_none(), "{revoked}");
}
