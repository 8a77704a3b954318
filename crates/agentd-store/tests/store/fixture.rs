//! A database written by an older agentd opens under this one: the SQLite
//! fixture `tests/fixtures/journal-v1.db` (see the README there) holds runs
//! journaled with schema v1. Its records come back through
//! `agentd_core::checkpoint`, and its paused runs resume.

use crate::harness::{claim, principal, tenant};
use agentd_core::{RunStatus, StepKind, StepStatus};
use agentd_store::{RunFilter, SqliteStore, Store, Transition};
use serde_json::json;

/// Opens a copy of the v1 fixture (never the committed file itself).
async fn open_fixture_copy(dir: &tempfile::TempDir) -> SqliteStore {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journal-v1.db");
    let path = dir.path().join("v1.db");
    std::fs::copy(fixture, &path).unwrap();
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_database_migrates_and_its_paused_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_fixture_copy(&dir).await;
    // Schema migrations of the tables first (the v1 file is at 3).
    assert!(s.ping().await.is_err());
    s.migrate().await.unwrap();
    s.ping().await.unwrap();

    let t = tenant("t1");
    let all = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    let runs = s.list_runs(&t, &all).await.unwrap().items;
    let by_agent = |agent: &str| runs.iter().find(|r| r.agent == agent).unwrap().clone();
    let (helper, asker, careful) = (by_agent("helper"), by_agent("asker"), by_agent("careful"));
    assert_eq!(runs.len(), 3);
    assert_eq!(
        (helper.status, &helper.input, &helper.output),
        (
            RunStatus::Succeeded,
            &json!("alpha"),
            &Some(json!("done: alpha"))
        )
    );
    assert_eq!(helper.metadata, Some(json!({ "fixture": true })));
    // v1 audited a claim as `running`; the migration renames it `claimed`.
    let trail = s.list_audit(&t, helper.id).await.unwrap();
    let kinds: Vec<&str> = trail.iter().map(|a| a.event.as_str()).collect();
    assert!(kinds.contains(&"claimed"), "{kinds:?}");
    assert!(!kinds.contains(&"running"), "{kinds:?}");
    assert_eq!(asker.status, RunStatus::Paused);
    assert_eq!(asker.pause.as_ref().unwrap().question, "Ship beta?");
    assert_eq!(
        careful.pause.as_ref().unwrap().tool.as_deref(),
        Some("http_get")
    );

    // v1 steps come back as v2: each tool or human step names its call.
    let (s_ref, t_ref) = (&s, &t);
    let steps = |id| async move {
        s_ref
            .list_steps(t_ref, id, None, 100)
            .await
            .unwrap()
            .unwrap()
            .items
    };
    let h = steps(helper.id).await;
    assert_eq!(
        h.iter()
            .map(|s| (s.kind, s.call_id.as_deref()))
            .collect::<Vec<_>>(),
        [
            (StepKind::Llm, None),
            (StepKind::Tool, Some("call_0")),
            (StepKind::Llm, None)
        ]
    );
    assert_eq!(h[1].output, json!("alpha"));
    let a = steps(asker.id).await;
    assert_eq!(
        a.iter().map(|s| s.call_id.as_deref()).collect::<Vec<_>>(),
        [None, Some("call_0"), None, Some("call_1")]
    );
    assert_eq!(a[3].status, StepStatus::Waiting);
    let c = steps(careful.id).await;
    assert_eq!(c[1].call_id.as_deref(), Some("call_0"));
    assert!(c[1].input.get("approval").is_some());
    let messages = s
        .list_messages(&t, &helper.conversation_id.clone().unwrap(), None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(messages.len(), 4);

    // The paused v1 runs resume under this version and are claimed with
    // their migrated journals.
    for (run, answer) in [
        (&asker, json!("yes")),
        (&careful, json!({ "approve": false, "reason": "no" })),
    ] {
        let t1 = s
            .resume_run(&t, run.id, &answer, &principal("op"), Some(&claim("w")))
            .await
            .unwrap();
        let Transition::Done(resumed, Some(claimed)) = t1 else {
            panic!("resume of {}: {t1:?}", run.agent);
        };
        assert_eq!(resumed.status, RunStatus::Running);
        let journal = &claimed.journal.steps;
        let last = journal.last().unwrap();
        assert_eq!(
            (last.status, &last.output),
            (StepStatus::Completed, &answer)
        );
        assert!(
            journal
                .iter()
                .all(|s| (s.kind == StepKind::Llm) == s.call_id.is_none())
        );
        assert_eq!(claimed.journal.run.input, run.input);
    }
    // A finished run stays finished: nothing to claim.
    assert!(
        s.claim_run(&t, helper.id, &claim("w"))
            .await
            .unwrap()
            .is_none()
    );
}
