//! `agentd usage`: the tenant's usage report from the configured store,
//! as JSON (the API's body) or a table; never another tenant's runs; a bad
//! `--group-by` exits 2.

use crate::support::{Workspace, text};
use serde_json::{Value, json};
use std::path::Path;

const AGENT: &str = r#"
[providers.mock]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done" }]

[pricing."mock"]
input_per_mtok = 1000000.0
output_per_mtok = 2000000.0

[[agents]]
name = "demo"
providers = ["mock"]
tools = ["echo"]
"#;

/// `agentd --config CFG usage ARGS...`, which must succeed; its stdout.
fn usage(ws: &Workspace, cfg: &Path, args: &[&str]) -> String {
    ws.ok(cfg, &[&["usage"], args].concat())
}

fn usage_json(ws: &Workspace, cfg: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&usage(ws, cfg, &args)).unwrap()
}

#[test]
fn usage_reports_a_tenants_runs() {
    // Arrange: alice and bob run demo in tenant acme, carol in another.
    let ws = Workspace::new();
    let cfg = ws.write_config(AGENT);
    let cfg_s = cfg.to_str().unwrap();
    let mut runs = Vec::new();
    for (tenant, who, input) in [
        ("acme", "alice", "hi"),
        ("acme", "bob", "something longer to count"),
        ("other", "carol", "not counted in acme"),
    ] {
        let out = ws.run(&[
            "--config",
            cfg_s,
            "run",
            "demo",
            input,
            "--tenant",
            tenant,
            "--principal",
            who,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        runs.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
    }
    let acme = &runs[..2];
    let sum = |f: &str| -> u64 { acme.iter().map(|r| r["usage"][f].as_u64().unwrap()).sum() };
    let (input, output) = (sum("input_tokens"), sum("output_tokens"));
    let cost = (input + 2 * output) as f64;
    let row = |r: &Value, key: &str| {
        json!({ "key": key, "runs": 1, "failed": 0, "input_tokens": r["usage"]["input_tokens"],
                "output_tokens": r["usage"]["output_tokens"], "cost_usd": r["cost_usd"] })
    };

    // Act and assert: the API's shape, grouped by principal and by agent.
    let by_principal = usage_json(&ws, &cfg, &["--group-by", "principal", "--tenant", "acme"]);
    assert_eq!(
        by_principal,
        json!({
            "group_by": "principal",
            "items": [row(&runs[0], "alice"), row(&runs[1], "bob")],
            "total": { "runs": 2, "failed": 0, "input_tokens": input,
                       "output_tokens": output, "cost_usd": cost },
        })
    );
    let by_agent = usage_json(
        &ws,
        &cfg,
        &["--group-by", "agent", "--tenant", "acme", "--since", "1h"],
    );
    assert_eq!(by_agent["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_agent["items"][0]["runs"], 2);
    assert_eq!(by_agent["items"][0]["input_tokens"], input);
    assert!(by_agent["since"].is_string());
    // Runs created an hour ago or earlier: none.
    let before = usage_json(
        &ws,
        &cfg,
        &["--group-by", "day", "--tenant", "acme", "--until", "1h"],
    );
    assert_eq!(before["items"], json!([]));
    let theirs = usage_json(&ws, &cfg, &["--group-by", "provider", "--tenant", "other"]);
    assert_eq!(theirs["items"][0]["key"], "mock");
    assert_eq!(theirs["items"][0]["runs"], 1);
    assert_eq!(
        theirs["items"][0]["input_tokens"],
        runs[2]["usage"]["input_tokens"]
    );

    // The table: a line per group and the total.
    let table = usage(&ws, &cfg, &["--group-by", "agent", "--tenant", "acme"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("AGENT"), "{table}");
    let demo: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        demo[..5],
        ["demo", "2", "0", &input.to_string(), &output.to_string()]
    );
    assert!(lines[2].starts_with("TOTAL"), "{table}");

    // A bad grouping is bad usage.
    let bad = ws.run(&["--config", cfg_s, "usage", "--group-by", "tenant"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("agent, principal, provider, day"));
}
