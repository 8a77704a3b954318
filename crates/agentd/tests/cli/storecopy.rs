//! `agentd store copy`: a SQLite store filled through the engine (runs of
//! every kind, a conversation, audit, an API key) copied to PostgreSQL and
//! back reads the same, a paused run resumes on the copy, the key still
//! authenticates; refusals and their exit codes.

use crate::support::{Workspace, postgres_url, text};
use agentd_core::{ApiKeyToken, ConversationId, NewRun, PrincipalId, RunId, TenantId};
use agentd_store::{AuditFilter, ClaimRequest, RunFilter, Store};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

/// A W1 agent, one that pauses for a human and one whose provider is
/// down (dead after its single attempt).
const AGENTS: &str = r#"
[queue]
max_attempts = 1

[providers.asker]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "Ship {{input}}?" } },
  { reply = "answer: {{tool_result}}" },
]

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]

[[agents]]
name = "broken"
providers = ["down"]
"#;

const TENANTS: [&str; 2] = ["default", "acme"];

fn agents() -> String {
    format!(
        "{AGENTS}\n[providers.w1]\nkind = \"mock\"\nscript = {}\n\n[[agents]]\nname = \"w1\"\nproviders = [\"w1\"]\ntools = [\"echo\"]\n",
        agentd_test_support::W1_SCRIPT
    )
}

/// A config file in `ws` whose store is `url`.
fn config_for(ws: &Workspace, name: &str, url: &str) -> std::path::PathBuf {
    let p = ws.path().join(name);
    std::fs::write(&p, format!("[store]\nurl = \"{url}\"\n{}", agents())).unwrap();
    p
}

fn agentd(ws: &Workspace, cfg: &Path, args: &[&str]) -> Output {
    ws.cmd()
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

fn copy(ws: &Workspace, from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["store", "copy", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    ws.run(&args)
}

/// The id of the run `agentd run ... --json` printed.
fn run_id(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Everything a tenant reads back, as text: runs, their steps and audit
/// trails, the audit log and the conversation.
async fn contents(store: &Arc<dyn Store>) -> Vec<String> {
    let mut out = Vec::new();
    for tenant in TENANTS {
        let tenant = TenantId::parse(tenant).unwrap();
        let filter = RunFilter {
            limit: 1000,
            ..Default::default()
        };
        let runs = store.list_runs(&tenant, &filter).await.unwrap().items;
        for run in &runs {
            let steps = store
                .list_steps(&tenant, run.id, None, 1000)
                .await
                .unwrap()
                .unwrap()
                .items;
            out.push(format!("{run:?}\n{steps:?}"));
            out.push(format!(
                "{:?}",
                store.list_audit(&tenant, run.id).await.unwrap()
            ));
        }
        let log = AuditFilter {
            limit: 1000,
            ..Default::default()
        };
        out.push(format!(
            "{:?}",
            store.list_audit_log(&tenant, &log).await.unwrap().items
        ));
        let conv = ConversationId::parse("c1").unwrap();
        out.push(format!(
            "{:?}",
            store
                .list_messages(&tenant, &conv, None, 1000)
                .await
                .unwrap()
                .items
        ));
    }
    out
}

async fn open(url: &str) -> Arc<dyn Store> {
    agentd_store::open(url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_copied_to_postgres_and_back_reads_the_same() {
    let Some(pg) = postgres_url() else {
        return;
    };
    // Arrange: a SQLite store filled through the engine.
    let ws = Workspace::new();
    let sqlite = ws.db_url();
    let cfg = config_for(&ws, "agentd.toml", &sqlite);
    for (tenant, input) in [("default", "one"), ("acme", "two")] {
        let out = agentd(&ws, &cfg, &["run", "w1", input, "--tenant", tenant]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    for input in ["hello", "again"] {
        let out = agentd(&ws, &cfg, &["run", "w1", input, "--conversation", "c1"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let out = agentd(&ws, &cfg, &["run", "asker", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let paused = run_id(&out);
    let out = agentd(&ws, &cfg, &["run", "broken", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = agentd(
        &ws,
        &cfg,
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--principal",
            "bob",
            "--role",
            "admin",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = ApiKeyToken::parse(text(&out.stdout).trim()).unwrap();
    let source = open(&sqlite).await;
    let queued = NewRun {
        agent_version: None,
        id: RunId::new(),
        agent: "w1".into(),
        principal: PrincipalId::parse("cli").unwrap(),
        input: "later".into(),
        conversation_id: None,
        metadata: None,
        roles: Vec::new(),
        idempotency: None,
        origin: Default::default(),
        if_busy: Default::default(),
        callbacks: Vec::new(),
    };
    let acme = TenantId::parse("acme").unwrap();
    // Queued by a schedule's tick: its `schedule_ticks` row travels too.
    source
        .create_scheduled_run(&acme, "nightly", 1_800_000_000_000, &queued, None, None)
        .await
        .unwrap()
        .unwrap();
    let ticks = source.schedule_ticks(&acme).await.unwrap();
    assert_eq!(ticks.len(), 1);
    let before = contents(&source).await;
    let statuses = before.join("\n");
    for status in ["Succeeded", "Paused", "Dead", "Queued"] {
        assert!(statuses.contains(&format!("status: {status}")), "{status}");
    }

    // Act: copy to a fresh PostgreSQL schema, in small batches.
    let schema = format!("cli_copy_{}", std::process::id());
    let pg_url = format!("{pg}?schema={schema}");
    let out = copy(&ws, &sqlite, &pg_url, &["--batch", "2"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("runs: 2/7") && err.contains("runs: 7/7"),
        "{err}"
    );
    assert!(err.contains("api_keys: 1/1"), "{err}");
    assert!(err.contains("row counts match"), "{err}");

    // Assert: PostgreSQL reads the same, the key authenticates, the paused
    // run resumes there and completes.
    let target = open(&pg_url).await;
    assert_eq!(contents(&target).await, before);
    assert_eq!(target.schedule_ticks(&acme).await.unwrap(), ticks);
    let cred = target.key_credential(token.id()).await.unwrap().unwrap();
    assert!(cred.secret_hash.matches(&token));
    assert_eq!(cred.key.tenant, acme);
    let pg_cfg = config_for(&ws, "pg.toml", &pg_url);
    let out = agentd(
        &ws,
        &pg_cfg,
        &["runs", "resume", &paused, "--answer", "yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "answer: yes\n");
    // New audit entries get fresh ids after the copied ones.
    let out = agentd(&ws, &pg_cfg, &["run", "w1", "after", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A non-empty target is refused unless --force.
    let out = copy(&ws, &sqlite, &pg_url, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not empty (8 runs, 1 API keys); pass --force"),
        "{}",
        text(&out.stderr)
    );

    // And back: PostgreSQL to a new SQLite store.
    let back = Workspace::new();
    let back_url = back.db_url();
    let out = copy(&ws, &pg_url, &back_url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = contents(&target).await;
    assert!(after.join("\n").contains("answer: yes"));
    let back_store = open(&back_url).await;
    assert_eq!(contents(&back_store).await, after);
    assert_eq!(back_store.schedule_ticks(&acme).await.unwrap(), ticks);

    // PostgreSQL to another schema of PostgreSQL.
    let schema2 = format!("cli_copy2_{}", std::process::id());
    let pg_url2 = format!("{pg}?schema={schema2}");
    let out = copy(&ws, &pg_url, &pg_url2, &["--batch", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(contents(&open(&pg_url2).await).await, after);
    let _ = agentd_test_support::drop_schema(&pg, &schema2).await;

    // A store is never copied onto itself, even with --force.
    for url in [&pg_url, &sqlite] {
        let out = copy(&ws, url, url, &["--force"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("it is the source store itself"), "{err}");
    }

    // --force replaces the target's contents with the source's.
    let out = copy(&ws, &sqlite, &pg_url, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(contents(&target).await, before);
    drop(target);
    let _ = agentd_test_support::drop_schema(&pg, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_refused_from_leased_or_older_sources() {
    let ws = Workspace::new();
    let sqlite = ws.db_url();
    let cfg = config_for(&ws, "agentd.toml", &sqlite);
    let out = agentd(&ws, &cfg, &["run", "w1", "one"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A run a worker holds a live lease on.
    let source = open(&sqlite).await;
    let run = NewRun {
        agent_version: None,
        id: RunId::new(),
        agent: "w1".into(),
        principal: PrincipalId::parse("cli").unwrap(),
        input: "held".into(),
        conversation_id: None,
        metadata: None,
        roles: Vec::new(),
        idempotency: None,
        origin: Default::default(),
        callbacks: Vec::new(),
        if_busy: Default::default(),
    };
    let tenant = TenantId::parse("default").unwrap();
    let claim = ClaimRequest::new("elsewhere", Duration::from_secs(300));
    let created = source
        .create_run(&tenant, &run, Some(&claim))
        .await
        .unwrap();
    assert!(created.claimed.is_some());
    let target = Workspace::new();
    let out = copy(&ws, &sqlite, &target.db_url(), &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has 1 runs leased by a worker"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let out = copy(&ws, &sqlite, &target.db_url(), &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        contents(&open(&target.db_url()).await).await,
        contents(&source).await
    );

    // A store at an older schema version: migrate it first.
    let old = ws.path().join("old.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../agentd-store/tests/fixtures/journal-v1.db"),
        &old,
    )
    .unwrap();
    let old_url = format!("sqlite://{}", old.display());
    let other = Workspace::new();
    let out = copy(&ws, &old_url, &other.db_url(), &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("run `agentd migrate` on it first"), "{err}");
    assert!(!other.path().join("agentd.db").exists(), "nothing written");

    // URLs that name no store to copy.
    let out = copy(&ws, "sqlite::memory:", &other.db_url(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = copy(&ws, "mysql://x", &other.db_url(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn an_encrypted_store_is_copied_sealed_and_reads_with_the_same_key() {
    const KEY_VAR: &str = "AGENTD_TEST_COPY_KEYRING";
    const KEYRING: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let ws = Workspace::new();
    let target = Workspace::new();
    let with_key = |url: &str, keyring: Option<&str>, args: &[&str]| {
        let mut c = ws.cmd();
        c.env("AGENTD_STORE__URL", url)
            .env("AGENTD_STORE__ENCRYPTION_KEY_ENV", KEY_VAR)
            .env_remove(KEY_VAR)
            .args(args);
        if let Some(k) = keyring {
            c.env(KEY_VAR, k);
        }
        c.output().unwrap()
    };
    let marker = "c0py-m4rker-s3aled";
    let out = with_key(
        &ws.db_url(),
        Some(KEYRING),
        &["run", "demo", marker, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = run_id(&out);

    let out = copy(&ws, &ws.db_url(), &target.db_url(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Copied as stored: the plaintext is nowhere in the target's file...
    // (the copy's plain columns are there, so the scan does find text).
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(target.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let found = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(found(&id) || found("demo"), "the scan reads the copy");
    assert!(!found(marker));
    // ...and the same keyring reads it; another key cannot.
    let out = with_key(
        &target.db_url(),
        Some(KEYRING),
        &["runs", "show", &id, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["run"]["input"], marker);
    let other = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let out = with_key(
        &target.db_url(),
        Some(other),
        &["runs", "show", &id, "--json"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("k1"), "{}", text(&out.stderr));
}
