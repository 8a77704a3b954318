//! `guardrails.pii` end to end on the real binary: a W1 run whose input
//! carries an email address and a card number. The model's requests (the
//! mock records them), the database file and the logs never hold the
//! values, with and without encryption at rest; with it, the caller's
//! output has them back.

use crate::support::{Workspace, text};

const EMAIL: &str = "ada.lovelace@example.com";
const CARD: &str = "4111 1111 1111 1111";
/// The store's keyring when encrypted.
const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INPUT: &str = "Refund the card 4111 1111 1111 1111 and mail ada.lovelace@example.com";

fn config(restore: bool, encrypted: bool) -> String {
    let store = if encrypted {
        "[store]\nencryption_key_env = \"TEST_PII_KEY\"\n"
    } else {
        ""
    };
    format!(
        r#"{store}
[providers.m]
kind = "mock"
record = "requests.jsonl"
script = [
  {{ tool = "echo", args = {{ text = "{{{{input}}}}" }} }},
  {{ reply = "done: {{{{tool_result}}}}" }},
]

[[agents]]
name = "w1"
providers = ["m"]
tools = ["echo"]
guardrails = {{ pii = {{ detect = ["email", "card"], restore = {restore} }} }}

# Its tool fails with an error quoting the URL it was given back.
[providers.leak]
kind = "mock"
script = [
  {{ tool = "http_get", args = {{ url = "http://127.0.0.1:9/{{{{input}}}}" }} }},
  {{ reply = "done" }},
]

[tools.http_get]
allow = ["127.0.0.1"]

[[agents]]
name = "leaky"
providers = ["leak"]
tools = ["http_get"]
guardrails = {{ pii = {{ detect = ["email"], restore = {restore} }} }}
"#
    )
}

/// Every byte the run left on disk: the database and its WAL.
fn stored(ws: &Workspace) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(ws.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("agentd.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database file");
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Runs W1 on `INPUT` with debug logs; its stdout and stderr.
fn run_w1(ws: &Workspace, restore: bool, encrypted: bool) -> (String, String) {
    // Written by the first `store` section of the workspace's config, so
    // the encryption key goes in a second one via the environment.
    let path = ws.path().join("agentd.toml");
    let mut body = config(restore, encrypted);
    if !encrypted {
        body = format!("[store]\nurl = \"{}\"\n{body}", ws.db_url());
    } else {
        body = body.replacen(
            "[store]\n",
            &format!("[store]\nurl = \"{}\"\n", ws.db_url()),
            1,
        );
    }
    std::fs::write(&path, body).unwrap();
    let out = ws
        .cmd()
        .args(["--config", path.to_str().unwrap(), "--log-format", "json"])
        .args(["run", "w1", INPUT])
        .env("AGENTD_LOG", "debug")
        .env("TEST_PII_KEY", KEY)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stdout, stderr)
}

fn assert_nowhere(ws: &Workspace, logs: &str) {
    let requests = std::fs::read_to_string(ws.path().join("requests.jsonl")).unwrap();
    assert_eq!(requests.lines().count(), 2, "{requests}");
    let db = stored(ws);
    for value in [EMAIL, CARD, "4111111111111111"] {
        assert!(
            !requests.contains(value),
            "the model was sent {value}: {requests}"
        );
        assert!(!holds(&db, value), "the database holds {value}");
        assert!(!logs.contains(value), "the logs hold {value}");
    }
    assert!(requests.contains("[EMAIL_1]"), "{requests}");
    assert!(requests.contains("[CARD_1]"), "{requests}");
}

#[test]
fn with_encryption_the_values_stay_out_of_the_model_store_and_logs_and_come_back_to_the_caller() {
    let ws = Workspace::new();

    let (stdout, stderr) = run_w1(&ws, true, true);

    assert_eq!(
        stdout.trim_end(),
        "done: Refund the card 4111 1111 1111 1111 and mail ada.lovelace@example.com"
    );
    assert_nowhere(&ws, &stderr);

    // A tool that gets the real address back and fails quoting it: the
    // journal, read back decrypted, holds its placeholder only.
    let out = ws
        .cmd()
        .args(["--config", ws.path().join("agentd.toml").to_str().unwrap()])
        .args(["--json", "run", "leaky", EMAIL])
        .env("TEST_PII_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["id"].as_str().unwrap();
    let out = ws
        .cmd()
        .args(["--config", ws.path().join("agentd.toml").to_str().unwrap()])
        .args(["--json", "runs", "show", id])
        .env("TEST_PII_KEY", KEY)
        .output()
        .unwrap();
    let journal = text(&out.stdout);
    assert!(journal.contains("[EMAIL_1]"), "{journal}");
    assert!(
        !journal.contains(EMAIL),
        "the journal holds {EMAIL}: {journal}"
    );
}

#[test]
fn without_encryption_nothing_is_kept_and_the_output_keeps_its_placeholders() {
    let ws = Workspace::new();

    let (stdout, stderr) = run_w1(&ws, false, false);

    assert_eq!(
        stdout.trim_end(),
        "done: Refund the card [CARD_1] and mail [EMAIL_1]"
    );
    assert_nowhere(&ws, &stderr);
}

#[test]
fn keeping_the_values_without_encryption_is_refused_at_load() {
    let ws = Workspace::new();
    let path = ws.write_config(&config(true, false));

    let out = ws
        .cmd()
        .args(["--config", path.to_str().unwrap(), "run", "w1", "hi"])
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("agents[0].guardrails.pii.restore"),
        "{stderr}"
    );
    assert!(stderr.contains("store.encryption_key_env"), "{stderr}");
}
