//! Encryption at rest: payload columns are sealed with the keyring's
//! first key, read back with any of its keys, refused clearly without the
//! right key, and never reach the database in plain text.

use crate::harness::{
    Ctx, claim, conv_run, conversation, keyring, msg, pause, principal, step, tenant, waiting,
};
use agentd_core::{ErrorCode, Role, RunError, RunId, StepKind, TenantId};
use agentd_store::{Outcome, Store, StoreError, Transition};
use serde_json::json;
use std::time::Duration;

/// Writes one run through every payload path (input, metadata, steps with
/// an error, a pause and its answer, the output, conversation messages and
/// an audit detail), each carrying `marker`. Returns its tenant and id.
async fn marked_run(s: &dyn Store, marker: &str) -> (TenantId, RunId) {
    let t = tenant("acme");
    let mut new = conv_run("a", "c-1");
    new.input = json!({ "text": format!("input {marker}") });
    new.metadata = Some(json!({ "note": format!("metadata {marker}") }));
    let c = s
        .create_run(&t, &new, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    let id = c.lease.run_id;
    let mut llm = step(0, StepKind::Llm);
    llm.step.output = json!({ "role": "assistant", "content": format!("model {marker}") });
    let mut tool = step(1, StepKind::Tool);
    tool.step.input = json!({ "text": format!("tool input {marker}") });
    tool.step.output = json!(format!("tool output {marker}"));
    tool.step.error = Some(RunError::new(
        ErrorCode::ToolError,
        format!("tool error {marker}"),
    ));
    s.append_steps(&c.lease, &[llm, tool], Duration::from_secs(60))
        .await
        .unwrap();
    let mut ask = waiting(2);
    ask.step.input = json!({ "question": format!("question {marker}") });
    s.pause_run(&c.lease, &[ask], &pause(&format!("question {marker}"), 2))
        .await
        .unwrap();
    let answer = json!(format!("answer {marker}"));
    let t1 = s
        .resume_run(&t, id, &answer, &principal("bob"), Some(&claim("w")))
        .await
        .unwrap();
    let Transition::Done(_, Some(c)) = t1 else {
        panic!("resume: {t1:?}");
    };
    s.audit(
        &t,
        id,
        "policy",
        "tool_denied",
        &json!({ "why": format!("detail {marker}") }),
    )
    .await
    .unwrap();
    s.finish_run(
        &c.lease,
        &[step(3, StepKind::Llm)],
        &Outcome::Succeeded {
            output_json: None,
            output: json!(format!("output {marker}")),
            messages: vec![
                msg(Role::User, &format!("input {marker}")),
                msg(Role::Assistant, &format!("output {marker}")),
            ],
        },
    )
    .await
    .unwrap();
    (t, id)
}

/// Every text value in the tables that hold payloads, read behind the
/// store's back.
async fn stored_payloads(ctx: &Ctx) -> Vec<String> {
    let mut all = Vec::new();
    for sql in [
        "SELECT input FROM runs",
        "SELECT output FROM runs",
        "SELECT error FROM runs",
        "SELECT pause FROM runs",
        "SELECT metadata FROM runs",
        "SELECT input FROM steps",
        "SELECT output FROM steps",
        "SELECT error FROM steps",
        "SELECT message FROM messages",
        "SELECT detail FROM audit",
    ] {
        all.extend(ctx.texts(sql).await);
    }
    all
}

pub async fn sealed_round_trip(ctx: &Ctx) {
    // A row written before encryption was turned on stays readable.
    let (t, plain_id) = marked_run(ctx.store.as_ref(), "plain-row").await;
    let plain_run = ctx.store.get_run(&t, plain_id).await.unwrap().unwrap();

    let s = ctx.reopen(Some(keyring(&[("k1", 1)]))).await;
    assert_eq!(s.get_run(&t, plain_id).await.unwrap(), Some(plain_run));
    ctx.exec("DELETE FROM messages; DELETE FROM audit; DELETE FROM steps; DELETE FROM runs;")
        .await;

    let marker = "m4rker-0b5e55ed";
    let (t, id) = marked_run(s.as_ref(), marker).await;

    // Read back whole through the store.
    let run = s.get_run(&t, id).await.unwrap().unwrap();
    assert_eq!(run.input, json!({ "text": format!("input {marker}") }));
    assert_eq!(
        run.metadata,
        Some(json!({ "note": format!("metadata {marker}") }))
    );
    assert_eq!(run.output, Some(json!(format!("output {marker}"))));
    let steps = s
        .list_steps(&t, id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[1].output, json!(format!("tool output {marker}")));
    assert!(steps[1].error.as_ref().unwrap().message.contains(marker));
    assert_eq!(steps[2].output, json!(format!("answer {marker}")));
    let messages = s
        .list_messages(&t, &conversation("c-1"), None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].message.content, format!("output {marker}"));
    let audit = s.list_audit(&t, id).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.detail == json!({ "why": format!("detail {marker}") }))
    );
    let paused = audit.iter().find(|a| a.event == "paused").unwrap();
    assert_eq!(
        paused.detail,
        json!({ "question": format!("question {marker}") })
    );

    // What is stored: every payload sealed with k1, none in plain text.
    let stored = stored_payloads(ctx).await;
    assert!(stored.len() >= 15, "{stored:?}");
    for v in &stored {
        assert!(v.starts_with("enc:1:k1:"), "not sealed: {v}");
        assert!(!v.contains(marker), "plain text at rest: {v}");
    }

    // Without the keyring: a clear error, never the sealed text.
    let plain = ctx.store.as_ref();
    for err in [
        plain.get_run(&t, id).await.map(|_| ()).unwrap_err(),
        plain
            .list_steps(&t, id, None, 10)
            .await
            .map(|_| ())
            .unwrap_err(),
        plain
            .list_messages(&t, &conversation("c-1"), None, 10)
            .await
            .map(|_| ())
            .unwrap_err(),
        plain.list_audit(&t, id).await.map(|_| ()).unwrap_err(),
    ] {
        let StoreError::Encrypted { key_id, .. } = &err else {
            panic!("expected Encrypted, got {err:?}");
        };
        assert_eq!(key_id, "k1");
        let text = err.to_string();
        assert!(text.contains(&format!("run {id}")), "{text}");
        assert!(text.contains("encrypted with key id k1"), "{text}");
        assert!(text.contains("store.encryption_key_env"), "{text}");
    }
}

pub async fn key_rotation_and_wrong_keys(ctx: &Ctx) {
    let t = tenant("acme");
    let a = ctx.reopen(Some(keyring(&[("A", 1)]))).await;
    let old = a
        .create_run(&t, &conv_run("a", "c-1"), None)
        .await
        .unwrap()
        .run;
    let input_of = |id: RunId| format!("SELECT input FROM runs WHERE id = {}", ctx.id_sql(id));
    assert!(ctx.texts(&input_of(old.id)).await[0].starts_with("enc:1:A:"));

    // Rotated: B is new and seals new writes; A still opens old rows.
    let rotated = ctx.reopen(Some(keyring(&[("B", 2), ("A", 1)]))).await;
    assert_eq!(
        rotated.get_run(&t, old.id).await.unwrap(),
        Some(old.clone())
    );
    let new = rotated
        .create_run(&t, &conv_run("a", "c-2"), None)
        .await
        .unwrap()
        .run;
    assert!(ctx.texts(&input_of(new.id)).await[0].starts_with("enc:1:B:"));
    assert_eq!(
        rotated.get_run(&t, new.id).await.unwrap(),
        Some(new.clone())
    );

    // The same key id with other key bytes: an error naming the key.
    let wrong = ctx.reopen(Some(keyring(&[("A", 9)]))).await;
    let err = wrong.get_run(&t, old.id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Decrypt { key_id, reason, .. }
            if key_id == "A" && reason.contains("wrong key")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot decrypt runs.input of run {} with key A",
            old.id
        )),
        "{err}"
    );
    // A keyring without the row's key id.
    let only_b = ctx.reopen(Some(keyring(&[("B", 2)]))).await;
    let err = only_b.get_run(&t, old.id).await.unwrap_err();
    assert!(err.to_string().contains("no key with this id"), "{err}");
    assert!(only_b.get_run(&t, new.id).await.is_ok());

    // A sealed value moved to another run does not open there.
    ctx.exec(&format!(
        "UPDATE runs SET input = ({}) WHERE id = {}",
        input_of(old.id),
        ctx.id_sql(new.id)
    ))
    .await;
    let err = rotated.get_run(&t, new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
}

/// The SQLite file (and its WAL) with encryption on holds none of a run's
/// payloads; with it off (the control) they are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_no_plaintext_when_encrypted() {
    let marker = "gr3p-me-1f-you-can";
    for encrypted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = agentd_store::SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
            .with_keyring(encrypted.then(|| keyring(&[("k1", 7)])));
        store.migrate().await.unwrap();
        marked_run(&store, marker).await;

        let file_bytes = |path: &std::path::Path| {
            let mut bytes = std::fs::read(path).unwrap();
            let wal = path.with_extension("db-wal");
            if wal.exists() {
                bytes.extend(std::fs::read(wal).unwrap());
            }
            bytes
        };
        let contains = |bytes: &[u8]| bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
        // Before and after the WAL is checkpointed into the file.
        let before = file_bytes(&path);
        store.storage_bytes().await.unwrap();
        let after = file_bytes(&path);
        drop(store);
        assert_eq!(
            contains(&before),
            !encrypted,
            "WAL, encrypted = {encrypted}"
        );
        assert_eq!(
            contains(&after),
            !encrypted,
            "file, encrypted = {encrypted}"
        );
    }
}
