//! Conversation memory, the audit trail and the commit counter.

use crate::harness::{
    Ctx, claim, conv_run, conversation, msg, new_run, pause, principal, step, tenant, waiting,
};
use agentd_core::{ErrorCode, Role, RunError, RunId, StepKind};
use agentd_store::{ClaimRequest, Outcome, RunFilter, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs one run of conversation `conv` to the end.
async fn converse(s: &dyn Store, conv: &str, outcome: Outcome) -> RunId {
    let t = tenant("acme");
    let c = s
        .create_run(&t, &conv_run("chat", conv), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .expect("the conversation is idle");
    s.finish_run(&c.lease, &[step(0, StepKind::Llm)], &outcome)
        .await
        .unwrap();
    c.lease.run_id
}

fn said(texts: &[&str]) -> Vec<agentd_core::Message> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            msg(role, t)
        })
        .collect()
}

fn succeeded(texts: &[&str]) -> Outcome {
    Outcome::Succeeded {
        output_json: None,
        output: serde_json::json!(texts.last()),
        messages: said(texts),
    }
}

pub async fn messages_and_history_window(ctx: &Ctx) {
    let s = ctx.store.as_ref();
    let t = tenant("acme");
    let chat = conversation("chat");
    let r1 = converse(s, "chat", succeeded(&["u1", "a1"])).await;
    // A failed run adds nothing.
    converse(
        s,
        "chat",
        Outcome::Failed {
            error: RunError::new(ErrorCode::ProviderError, "down"),
        },
    )
    .await;
    let r3 = converse(s, "chat", succeeded(&["u3", "a3"])).await;
    // A run outside any conversation stores no messages.
    let lone = s
        .create_run(&t, &new_run("chat"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(&lone.lease, &[], &succeeded(&["x", "y"]))
        .await
        .unwrap();
    // Another conversation numbers its own messages.
    converse(s, "other", succeeded(&["o1", "o2"])).await;

    let all = s.list_messages(&t, &chat, None, 100).await.unwrap();
    assert_eq!(all.next_cursor, None);
    let got: Vec<_> = all
        .items
        .iter()
        .map(|m| (m.seq, m.run_id, m.message.content.as_str()))
        .collect();
    assert_eq!(
        got,
        [(1, r1, "u1"), (2, r1, "a1"), (3, r3, "u3"), (4, r3, "a3")]
    );
    assert_eq!(all.items[1].message.role, Role::Assistant);
    assert!(all.items.iter().all(|m| m.created_at > 0));
    let first = s.list_messages(&t, &chat, None, 3).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.next_cursor.as_deref(), Some("3"));
    let rest = s.list_messages(&t, &chat, Some(3), 3).await.unwrap();
    assert_eq!(
        rest.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(rest.next_cursor, None);
    let other = s
        .list_messages(&t, &conversation("other"), None, 100)
        .await
        .unwrap();
    assert_eq!(
        other.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );

    // The next run of "chat" loads the conversation, windowed per agent.
    let id = s
        .create_run(&t, &conv_run("chat", "chat"), None)
        .await
        .unwrap()
        .run
        .id;
    let windowed = ClaimRequest {
        history_limits: Arc::new(HashMap::from([("chat".to_string(), 3)])),
        ..ClaimRequest::new("w", Duration::from_secs(60))
    };
    let c = s.claim_run(&t, id, &windowed).await.unwrap().unwrap();
    let window = vec![
        msg(Role::Assistant, "a1"),
        msg(Role::User, "u3"),
        msg(Role::Assistant, "a3"),
    ];
    assert_eq!(c.journal.history, window);
    s.release(&c.lease).await.unwrap();
    // Agents without a limit see everything.
    let other_agent = ClaimRequest {
        history_limits: Arc::new(HashMap::from([("someone-else".to_string(), 1)])),
        ..ClaimRequest::new("w", Duration::from_secs(60))
    };
    let c = s.claim_run(&t, id, &other_agent).await.unwrap().unwrap();
    assert_eq!(c.journal.history, said(&["u1", "a1", "u3", "a3"]));
    s.finish_run(&c.lease, &[], &succeeded(&["u5", "a5"]))
        .await
        .unwrap();
    let all = s.list_messages(&t, &chat, None, 100).await.unwrap();
    assert_eq!(
        all.items.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all.items[4].run_id, id);
}

pub async fn audit_trail(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let c = s.create_run(&t, &new_run("a"), None).await.unwrap().run;
    let first = s.claim_next(&claim("node-a")).await.unwrap().unwrap();
    s.pause_run(
        &first.lease,
        &[step(0, StepKind::Llm), waiting(1)],
        &pause("deploy?", 1),
    )
    .await
    .unwrap();
    s.resume_run(&t, c.id, &serde_json::json!("yes"), &principal("ops"), None)
        .await
        .unwrap();
    let second = s.claim_next(&claim("node-b")).await.unwrap().unwrap();
    s.finish_run(
        &second.lease,
        &[step(2, StepKind::Llm)],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("deployed"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    let audit = s.list_audit(&t, c.id).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("created", "alice"),
            ("claimed", "node-a"),
            ("paused", "agent"),
            ("resumed", "ops"),
            ("claimed", "node-b"),
            ("succeeded", "agent"),
        ]
    );
    assert!(audit.iter().all(|e| e.run_id == Some(c.id)));
    assert!(audit.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        audit[2].detail,
        serde_json::json!({ "question": "deploy?" })
    );
    assert_eq!(audit[0].detail, serde_json::Value::Null);
    // Only this run's records.
    let other = s.create_run(&t, &new_run("a"), None).await.unwrap().run;
    assert_eq!(s.list_audit(&t, other.id).await.unwrap().len(), 1);
    assert_eq!(s.list_audit(&t, c.id).await.unwrap().len(), 6);
    assert!(s.list_audit(&t, RunId::new()).await.unwrap().is_empty());
}

pub async fn commits_count_writes_only(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let bob = principal("bob");
    let c0 = s.commits();
    let expect = |n: u64, what: &str| {
        assert_eq!(s.commits(), c0 + n, "after {what}");
    };

    // Reads and claims that find nothing write nothing.
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    s.list_runs(&t, &RunFilter::default()).await.unwrap();
    s.ping().await.unwrap();
    expect(0, "reads");

    let id = s.create_run(&t, &new_run("a"), None).await.unwrap().run.id;
    expect(1, "create");
    s.get_run(&t, id).await.unwrap();
    s.list_steps(&t, id, None, 10).await.unwrap();
    s.list_audit(&t, id).await.unwrap();
    assert!(
        s.claim_run(&tenant("other"), id, &claim("w"))
            .await
            .unwrap()
            .is_none()
    );
    expect(1, "reads of a run");
    let c = s.claim_next(&claim("w")).await.unwrap().unwrap();
    expect(2, "claim");
    assert!(s.claim_run(&t, id, &claim("w")).await.unwrap().is_none());
    assert!(s.claim_next(&claim("w")).await.unwrap().is_none());
    expect(2, "claims of a running run");
    s.append_steps(&c.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    expect(3, "append");
    s.append_steps(&c.lease, &[], Duration::from_secs(60))
        .await
        .unwrap();
    expect(3, "empty append");
    s.finish_run(
        &c.lease,
        &[step(1, StepKind::Llm)],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("ok"),
            messages: vec![msg(Role::User, "x")],
        },
    )
    .await
    .unwrap();
    expect(4, "finish");
    // Failed writes and refused transitions write nothing.
    assert!(
        s.append_steps(&c.lease, &[step(2, StepKind::Llm)], Duration::from_secs(60))
            .await
            .is_err()
    );
    s.release(&c.lease).await.unwrap();
    s.cancel_run(&t, id, &bob).await.unwrap();
    s.cancel_run(&t, RunId::new(), &bob).await.unwrap();
    s.resume_run(&t, id, &serde_json::json!(1), &bob, None)
        .await
        .unwrap();
    assert_eq!(s.release_owner("nobody").await.unwrap(), 0);
    assert!(
        s.create_run(&t, &agentd_core::NewRun { id, ..new_run("a") }, None)
            .await
            .is_err()
    );
    s.migrate().await.unwrap();
    expect(4, "refused writes");
}

pub async fn shared_circuits(ctx: &Ctx) {
    let s = &ctx.store;
    assert!(s.open_circuits().await.unwrap().is_empty());
    s.set_circuit("openai", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    // Opening again for less never shortens it.
    s.set_circuit("openai", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    s.set_circuit("anthropic", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    let mut open = s.open_circuits().await.unwrap();
    open.sort();
    assert_eq!(open.len(), 2, "{open:?}");
    assert_eq!(open[1].0, "openai");
    assert!(open[1].1 > Duration::from_secs(28), "{open:?}");
    // Expired circuits are not reported; closed ones are gone.
    ctx.advance(Duration::from_millis(400)).await;
    let open = s.open_circuits().await.unwrap();
    assert_eq!(
        open.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["openai"]
    );
    s.set_circuit("openai", None).await.unwrap();
    assert!(s.open_circuits().await.unwrap().is_empty());
}
