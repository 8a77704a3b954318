//! `agentd audit`: the tenant's audit log from the configured store, as an
//! admin of `--tenant`: a local run's trail and a minted key, filtered,
//! paged, as a table or `{items, next_cursor}`; never another tenant's
//! entries; bad filters exit 2.

use crate::support::{Workspace, text};
use serde_json::Value;
use std::path::Path;

const AGENT: &str = r#"
[providers.mock]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done" }]

[[agents]]
name = "demo"
providers = ["mock"]
tools = ["echo"]
"#;

/// `agentd --config CFG audit ARGS... --json`, which must succeed.
fn audit_json(ws: &Workspace, cfg: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ws.ok(cfg, &[&["audit"], args, &["--json"]].concat())).unwrap()
}

fn kinds(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn audit_shows_a_tenants_trail_filtered_and_paged() {
    // Arrange: alice runs demo in tenant acme, a key is minted there, and
    // a run in another tenant.
    let ws = Workspace::new();
    let cfg = ws.write_config(AGENT);
    let cfg_s = cfg.to_str().unwrap();
    let run = ws.run(&[
        "--config",
        cfg_s,
        "run",
        "demo",
        "hi",
        "--tenant",
        "acme",
        "--principal",
        "alice",
        "--json",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let run: Value = serde_json::from_slice(&run.stdout).unwrap();
    let run_id = run["id"].as_str().unwrap();
    let key = ws.run(&[
        "--config",
        cfg_s,
        "keys",
        "create",
        "--tenant",
        "acme",
        "--principal",
        "bot",
    ]);
    assert_eq!(key.status.code(), Some(0), "{}", text(&key.stderr));
    let other = ws.run(&["--config", cfg_s, "run", "demo", "x", "--tenant", "other"]);
    assert_eq!(other.status.code(), Some(0), "{}", text(&other.stderr));

    // Act + Assert: the tenant's log, newest first.
    let all = audit_json(&ws, &cfg, &["--tenant", "acme"]);
    assert_eq!(
        kinds(&all),
        ["key_created", "succeeded", "claimed", "created"]
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let created = &all["items"][3];
    assert_eq!(created["actor"], "alice");
    assert_eq!(created["run_id"], run_id);
    assert!(created["time"].as_str().unwrap().ends_with('Z'));
    let minted = &all["items"][0];
    assert_eq!(minted["actor"], "cli");
    assert_eq!(minted["run_id"], Value::Null);
    assert_eq!(minted["details"]["principal"], "bot");

    // Filters and pages.
    let by_run = audit_json(&ws, &cfg, &["--tenant", "acme", "--run", run_id]);
    assert_eq!(kinds(&by_run), ["succeeded", "claimed", "created"]);
    let by_actor = audit_json(&ws, &cfg, &["--tenant", "acme", "--actor", "alice"]);
    assert_eq!(kinds(&by_actor), ["created"]);
    let by_kind = audit_json(&ws, &cfg, &["--tenant", "acme", "--kind", "key_created"]);
    assert_eq!(kinds(&by_kind), ["key_created"]);
    let recent = audit_json(&ws, &cfg, &["--tenant", "acme", "--since", "1h"]);
    assert_eq!(recent["items"], all["items"]);
    let future = audit_json(
        &ws,
        &cfg,
        &["--tenant", "acme", "--since", "2999-01-01T00:00:00Z"],
    );
    assert_eq!(kinds(&future), Vec::<&str>::new());
    let first = audit_json(&ws, &cfg, &["--tenant", "acme", "--limit", "3"]);
    assert_eq!(kinds(&first), ["key_created", "succeeded", "claimed"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = audit_json(
        &ws,
        &cfg,
        &["--tenant", "acme", "--limit", "3", "--cursor", cursor],
    );
    assert_eq!(kinds(&rest), ["created"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // Another tenant sees only its own run.
    let theirs = audit_json(&ws, &cfg, &["--tenant", "other"]);
    assert_eq!(kinds(&theirs), ["succeeded", "claimed", "created"]);
    assert!(!theirs.to_string().contains(run_id));

    // The table for humans.
    let table = ws.run(&["--config", cfg_s, "audit", "--tenant", "acme"]);
    assert_eq!(table.status.code(), Some(0));
    let out = text(&table.stdout);
    assert!(out.starts_with("TIME"), "{out}");
    assert!(out.contains("key_created") && out.contains(run_id), "{out}");

    // Bad filters are usage errors.
    for bad in [
        &["--kind", "bogus"][..],
        &["--since", "yesterday"],
        &["--cursor", "zzz"],
        &["--run", "nope"],
        &["--limit", "0"],
    ] {
        let out = ws.run(&[&["--config", cfg_s, "audit", "--tenant", "acme"][..], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}
