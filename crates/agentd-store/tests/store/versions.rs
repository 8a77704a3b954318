//! Journal record versions: records an older agentd wrote are migrated on
//! read (through `agentd_core::checkpoint`), newer ones are refused. The
//! SQLite fixture written by schema v1 is in `fixture.rs`.

use crate::harness::{Ctx, claim, pause, principal, running, step, tenant, waiting};
use agentd_core::checkpoint::MigrationError;
use agentd_core::{RunStatus, SCHEMA_VERSION, StepKind};
use agentd_store::{StepWrite, StoreError, Transition};
use serde_json::json;

/// A model step calling `ids` (each an `echo`).
fn llm_calling(index: u32, ids: &[&str]) -> StepWrite {
    let mut w = step(index, StepKind::Llm);
    let calls: Vec<_> = ids
        .iter()
        .map(|id| json!({ "id": id, "name": "echo", "args": { "text": id } }))
        .collect();
    w.step.output = json!({ "role": "assistant", "content": "", "tool_calls": calls });
    w
}

fn call_ids(steps: &[agentd_core::Step]) -> Vec<Option<&str>> {
    steps.iter().map(|s| s.call_id.as_deref()).collect()
}

pub async fn v1_records_are_migrated_on_read(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let c = running(s, &t).await;
    let id = c.lease.run_id;
    let journal = [
        llm_calling(0, &["c1", "c2"]),
        step(1, StepKind::Tool),
        step(2, StepKind::Tool),
        llm_calling(3, &["c3"]),
        waiting(4),
    ];
    s.pause_run(&c.lease, &journal, &pause("ok?", 4))
        .await
        .unwrap();
    // As schema v1 stored them: no call ids, version 1.
    ctx.exec(&format!(
        "UPDATE steps SET v = 1, call_id = NULL WHERE run_id = {id}; \
         UPDATE runs SET v = 1 WHERE id = {id};",
        id = ctx.id_sql(id)
    ))
    .await;

    // The whole journal: each result is paired with its call.
    let steps = s
        .list_steps(&t, id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    let expected = [None, Some("c1"), Some("c2"), None, Some("c3")];
    assert_eq!(call_ids(&steps), expected);
    // Every other field is as written.
    for (read, written) in steps.iter().zip(&journal) {
        let mut written = written.step.clone();
        written.call_id = read.call_id.clone();
        assert_eq!(*read, written);
    }
    // A page that starts mid-journal is migrated with the steps before it.
    let page = s.list_steps(&t, id, Some(1), 2).await.unwrap().unwrap();
    assert_eq!(
        page.items.iter().map(|s| s.index).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(call_ids(&page.items), [Some("c2"), None]);
    assert_eq!(page.next_cursor.as_deref(), Some("3"));

    // A v1 run resumes; its claimed journal is migrated too, and new steps
    // are written as the current version after the old ones.
    let resumed = s
        .resume_run(&t, id, &json!("yes"), &principal("bob"), Some(&claim("w")))
        .await
        .unwrap();
    let Transition::Done(run, Some(claimed)) = resumed else {
        panic!("resume: {resumed:?}");
    };
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(call_ids(&claimed.journal.steps), expected);
    s.append_steps(
        &claimed.lease,
        &[step(5, StepKind::Tool)],
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    let versions = ctx
        .texts(&format!(
            "SELECT CAST(v AS TEXT) FROM steps WHERE run_id = {} ORDER BY idx",
            ctx.id_sql(id)
        ))
        .await;
    let current = SCHEMA_VERSION.to_string();
    assert_eq!(versions, ["1", "1", "1", "1", "1", current.as_str()]);
    let steps = s
        .list_steps(&t, id, None, 100)
        .await
        .unwrap()
        .unwrap()
        .items;
    assert_eq!(steps[5].call_id.as_deref(), Some("call_5"));

    // Records of a newer agentd are refused, naming the record.
    let newer = SCHEMA_VERSION + 1;
    ctx.exec(&format!(
        "UPDATE steps SET v = {newer} WHERE run_id = {id} AND idx = 3",
        id = ctx.id_sql(id)
    ))
    .await;
    let err = s.list_steps(&t, id, None, 100).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Checkpoint(MigrationError::Newer { version, .. }) if *version == newer),
        "{err:?}"
    );
    assert!(err.to_string().contains("step 3 of run"), "{err}");
    ctx.exec(&format!(
        "UPDATE runs SET v = {newer} WHERE id = {id}",
        id = ctx.id_sql(id)
    ))
    .await;
    let err = s.get_run(&t, id).await.unwrap_err();
    assert!(err.to_string().contains("newer agentd"), "{err}");
}
