//! Creating, reading and listing runs; tenant isolation; schema upkeep.

use crate::harness::{
    Backend, Ctx, claim, conv_run, msg, new_run, pause, principal, running, step, tenant, waiting,
};
use agentd_core::{Role, RunStatus, StepKind};
use agentd_store::{Outcome, RunFilter, StoreError, Transition};

pub async fn create_get_list(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let mut ids = Vec::new();
    for (i, agent) in ["a", "b", "a", "b", "a"].into_iter().enumerate() {
        let mut new = new_run(agent);
        if i == 0 {
            new.metadata = Some(serde_json::json!({ "source": "test" }));
        }
        let created = s.create_run(&t, &new, None).await.unwrap();
        assert!(created.claimed.is_none());
        let run = created.run;
        assert_eq!(run.id, new.id);
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!((run.steps, run.attempt), (0, 1));
        assert_eq!(run.tenant, t);
        assert_eq!(run.principal, principal("alice"));
        assert_eq!(run.input, new.input);
        assert_eq!(run.metadata, new.metadata);
        assert_eq!(run.created_at, run.updated_at);
        // The store's clock is this machine's (SQLite) or the server's on
        // loopback (PostgreSQL): close to ours.
        assert!((run.created_at - agentd_core::now_millis()).abs() < 60_000);
        assert_eq!(s.get_run(&t, run.id).await.unwrap(), Some(run));
        ids.push(new.id);
    }
    assert_eq!(
        s.get_run(&t, agentd_core::RunId::new()).await.unwrap(),
        None
    );

    // Newest first, in pages.
    let mut seen = Vec::new();
    let mut filter = RunFilter {
        limit: 2,
        ..RunFilter::default()
    };
    let mut pages = 0;
    loop {
        let page = s.list_runs(&t, &filter).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<_> = ids.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);

    // Filters.
    let by_agent = s
        .list_runs(
            &t,
            &RunFilter {
                agent: Some("a".into()),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        by_agent.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[4], ids[2], ids[0]]
    );
    assert_eq!(by_agent.next_cursor, None);
    // A settled run (in the list indexes) and active ones (found through
    // the queue's index) merge newest first, page by page.
    s.cancel_run(&t, ids[2], &principal("alice")).await.unwrap();
    let mut merged = Vec::new();
    let mut filter = RunFilter {
        agent: Some("a".into()),
        limit: 1,
        ..RunFilter::default()
    };
    loop {
        let page = s.list_runs(&t, &filter).await.unwrap();
        merged.extend(page.items.iter().map(|r| (r.id, r.status)));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        merged,
        vec![
            (ids[4], RunStatus::Queued),
            (ids[2], RunStatus::Cancelled),
            (ids[0], RunStatus::Queued)
        ]
    );
    s.claim_run(&t, ids[1], &claim("w")).await.unwrap().unwrap();
    let running = s
        .list_runs(
            &t,
            &RunFilter {
                status: Some(RunStatus::Running),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        running.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let queued_b = s
        .list_runs(
            &t,
            &RunFilter {
                agent: Some("b".into()),
                status: Some(RunStatus::Queued),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        queued_b.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[3]]
    );
    // A limit of 0 still returns a page.
    let one = s.list_runs(&t, &RunFilter::default()).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next_cursor.is_some());
    let bad = s
        .list_runs(
            &t,
            &RunFilter {
                cursor: Some("not-a-cursor".into()),
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(StoreError::BadCursor(_))), "{bad:?}");
}

pub async fn duplicate_run_id(ctx: &Ctx) {
    let s = &ctx.store;
    let new = new_run("a");
    s.create_run(&tenant("acme"), &new, None).await.unwrap();
    let commits = s.commits();
    for t in ["acme", "other"] {
        let again = s.create_run(&tenant(t), &new, None).await;
        assert!(
            matches!(again, Err(StoreError::Duplicate { .. })),
            "{again:?}"
        );
    }
    let mut conv = conv_run("a", "c");
    conv.id = new.id;
    let again = s
        .create_run(&tenant("acme"), &conv, Some(&claim("w")))
        .await;
    assert!(
        matches!(again, Err(StoreError::Duplicate { .. })),
        "{again:?}"
    );
    assert_eq!(s.commits(), commits);
    assert_eq!(
        s.list_audit(&tenant("acme"), new.id).await.unwrap().len(),
        1
    );
}

pub async fn tenant_isolation(ctx: &Ctx) {
    let s = &ctx.store;
    let (mine, theirs) = (tenant("acme"), tenant("globex"));
    let who = principal("mallory");

    // acme: a finished run with a journal, messages and audit; a queued
    // run; a paused run in the same conversation.
    let done = s
        .create_run(&mine, &conv_run("a", "c1"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.append_steps(
        &done.lease,
        &[step(0, StepKind::Llm)],
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    let messages = vec![msg(Role::User, "hi"), msg(Role::Assistant, "hello")];
    s.finish_run(
        &done.lease,
        &[],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("hello"),
            messages,
        },
    )
    .await
    .unwrap();
    let queued = s.create_run(&mine, &new_run("a"), None).await.unwrap().run;
    let paused = s
        .create_run(&mine, &conv_run("a", "c1"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.pause_run(&paused.lease, &[waiting(0)], &pause("ok?", 0))
        .await
        .unwrap();
    let done_id = done.lease.run_id;
    let paused_id = paused.lease.run_id;
    let before: Vec<_> = {
        let mut v = Vec::new();
        for id in [done_id, queued.id, paused_id] {
            v.push(s.get_run(&mine, id).await.unwrap().unwrap());
        }
        v
    };

    // globex sees none of it and can change none of it.
    let c1 = crate::harness::conversation("c1");
    for id in [done_id, queued.id, paused_id] {
        assert_eq!(s.get_run(&theirs, id).await.unwrap(), None);
        assert!(s.list_steps(&theirs, id, None, 10).await.unwrap().is_none());
        assert!(s.list_audit(&theirs, id).await.unwrap().is_empty());
        assert!(matches!(
            s.cancel_run(&theirs, id, &who).await.unwrap(),
            Transition::NotFound
        ));
        assert!(matches!(
            s.resume_run(
                &theirs,
                id,
                &serde_json::json!("x"),
                &who,
                Some(&claim("x"))
            )
            .await
            .unwrap(),
            Transition::NotFound
        ));
        assert!(
            s.claim_run(&theirs, id, &claim("x"))
                .await
                .unwrap()
                .is_none()
        );
    }
    let listed = s
        .list_runs(
            &theirs,
            &agentd_store::RunFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(
        s.list_messages(&theirs, &c1, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    for (id, was) in [done_id, queued.id, paused_id].into_iter().zip(&before) {
        assert_eq!(s.get_run(&mine, id).await.unwrap().as_ref(), Some(was));
    }

    // Conversations are per tenant: globex's "c1" does not wait for
    // acme's paused run, and loads none of acme's messages.
    let other = s
        .create_run(&theirs, &conv_run("a", "c1"), Some(&claim("w")))
        .await
        .unwrap();
    let claimed = other.claimed.expect("globex's c1 run starts at once");
    assert!(claimed.journal.history.is_empty());
    assert_eq!(claimed.lease.tenant, theirs);

    // acme still sees all of its own.
    assert_eq!(
        s.list_messages(&mine, &c1, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        s.list_runs(
            &mine,
            &agentd_store::RunFilter {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .items
        .len(),
        3
    );
}

pub async fn migrate_ping_storage(ctx: &Ctx) {
    let s = &ctx.store;
    let want = match ctx.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(s.backend(), want);
    s.ping().await.unwrap();
    // Migrating again is a no-op and no commit.
    let commits = s.commits();
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
    assert_eq!(s.commits(), commits);

    let empty = ctx.empty_store().await;
    assert!(matches!(empty.ping().await, Err(StoreError::Migrate(_))));
    empty.migrate().await.unwrap();
    empty.ping().await.unwrap();
    assert_eq!(empty.backend(), want);

    let t = tenant("acme");
    let before = s.storage_bytes().await.unwrap();
    assert!(before > 0);
    for _ in 0..100 {
        let c = running(s, &t).await;
        s.finish_run(
            &c.lease,
            &[step(0, StepKind::Llm), step(1, StepKind::Tool)],
            &Outcome::Succeeded {
                output_json: None,
                output: serde_json::json!("done"),
                messages: vec![],
            },
        )
        .await
        .unwrap();
    }
    let after = s.storage_bytes().await.unwrap();
    assert!(after > before, "{after} > {before}");
}

pub async fn open_by_url(ctx: &Ctx) {
    let url = ctx.fresh_url();
    let s = agentd_store::open(&url).await.unwrap();
    assert_eq!(s.backend(), ctx.store.backend());
    assert!(matches!(s.ping().await, Err(StoreError::Migrate(_))));
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
    let t = tenant("acme");
    let run = s.create_run(&t, &new_run("a"), None).await.unwrap().run;
    // The same URL opens the same data; the test's own store is elsewhere.
    let again = agentd_store::open(&url).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.get_run(&t, run.id).await.unwrap(), Some(run.clone()));
    assert_eq!(ctx.store.get_run(&t, run.id).await.unwrap(), None);

    for bad in ["mysql://x", "redis://x", ""] {
        assert!(matches!(
            agentd_store::open(bad).await,
            Err(StoreError::BadUrl { .. })
        ));
    }
    if ctx.backend == Backend::Postgres {
        for bad in ["Bad-Schema", "1x", "x;drop"] {
            let url = format!("postgres://u@127.0.0.1/db?schema={bad}");
            assert!(matches!(
                agentd_store::open(&url).await,
                Err(StoreError::BadUrl { .. })
            ));
        }
        assert!(matches!(
            agentd_store::open("postgres://u@127.0.0.1/db?max_connections=0").await,
            Err(StoreError::BadUrl { .. })
        ));
    }
}

/// An idempotency key (per tenant) replays the run it created for the same
/// request and refuses a different one.
pub async fn idempotency_keys(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, b) = (tenant("acme"), tenant("other"));
    let keyed = |fingerprint: &str| agentd_core::NewRun {
        idempotency: Some(agentd_core::IdempotencyKey {
            key: "k-1".into(),
            fingerprint: fingerprint.into(),
        }),
        ..new_run("a")
    };

    let first = s.create_run(&a, &keyed("f1"), None).await.unwrap();
    assert!(!first.replayed);
    let again = s.create_run(&a, &keyed("f1"), None).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.run.id, first.run.id);
    let conflict = s.create_run(&a, &keyed("f2"), None).await;
    assert!(
        matches!(conflict, Err(StoreError::IdempotencyConflict { .. })),
        "{conflict:?}"
    );
    // Keys are scoped per tenant.
    let elsewhere = s.create_run(&b, &keyed("f2"), None).await.unwrap();
    assert!(!elsewhere.replayed);
    assert_ne!(elsewhere.run.id, first.run.id);
    // Only the first request and the other tenant's created runs.
    let all = RunFilter {
        limit: 100,
        ..RunFilter::default()
    };
    assert_eq!(s.list_runs(&a, &all).await.unwrap().items.len(), 1);
}

/// `list_runs` by conversation, and by the time a run was created
/// (`[since, until)`, as its time-ordered id carries it), alone and with
/// the other filters, paged; never another tenant's.
pub async fn list_by_conversation_and_time(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, other) = (tenant("acme"), tenant("globex"));
    let mut ids = Vec::new();
    for (agent, conv) in [
        ("a", Some("c1")),
        ("b", None),
        ("a", Some("c1")),
        ("b", Some("c1")),
    ] {
        let mut new = new_run(agent);
        new.conversation_id = conv.map(crate::harness::conversation);
        ids.push(s.create_run(&t, &new, None).await.unwrap().run.id);
        // Ids carry milliseconds: keep the runs' times apart.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let mut theirs = new_run("a");
    theirs.conversation_id = Some(crate::harness::conversation("c1"));
    s.create_run(&other, &theirs, None).await.unwrap();
    let list = async |f: RunFilter| -> (Vec<agentd_core::RunId>, Option<String>) {
        let page = s.list_runs(&t, &f).await.unwrap();
        (page.items.iter().map(|r| r.id).collect(), page.next_cursor)
    };
    let c1 = || RunFilter {
        conversation_id: Some(crate::harness::conversation("c1")),
        limit: 10,
        ..RunFilter::default()
    };

    // The conversation's runs, newest first, and paged.
    assert_eq!(list(c1()).await, (vec![ids[3], ids[2], ids[0]], None));
    let (first, cursor) = list(RunFilter { limit: 2, ..c1() }).await;
    assert_eq!(first, [ids[3], ids[2]]);
    let rest = list(RunFilter {
        limit: 2,
        cursor,
        ..c1()
    })
    .await;
    assert_eq!(rest, (vec![ids[0]], None));
    // With the agent and status filters.
    let of_a = list(RunFilter {
        agent: Some("a".into()),
        ..c1()
    })
    .await;
    assert_eq!(of_a.0, [ids[2], ids[0]]);
    s.cancel_run(&t, ids[2], &principal("alice")).await.unwrap();
    let cancelled = list(RunFilter {
        status: Some(agentd_core::RunStatus::Cancelled),
        ..c1()
    })
    .await;
    assert_eq!(cancelled.0, [ids[2]]);

    // By time: the runs' ids give their creation times.
    let at = |i: usize| {
        i64::try_from(u64::from_be_bytes({
            let mut b = [0u8; 8];
            b[2..].copy_from_slice(&ids[i].0.as_bytes()[..6]);
            b
        }))
        .unwrap()
    };
    let window = list(RunFilter {
        since: Some(at(1)),
        until: Some(at(3)),
        limit: 10,
        ..RunFilter::default()
    })
    .await;
    assert_eq!(window, (vec![ids[2], ids[1]], None));
    // A page cut by `since` has no next page, even when full.
    let cut = list(RunFilter {
        since: Some(at(2)),
        limit: 2,
        ..RunFilter::default()
    })
    .await;
    assert_eq!(cut, (vec![ids[3], ids[2]], None));
    let in_conversation = list(RunFilter {
        since: Some(at(1)),
        ..c1()
    })
    .await;
    assert_eq!(in_conversation.0, [ids[3], ids[2]]);
    let with_status = list(RunFilter {
        until: Some(at(3)),
        status: Some(agentd_core::RunStatus::Queued),
        limit: 10,
        ..RunFilter::default()
    })
    .await;
    assert_eq!(with_status.0, [ids[1], ids[0]]);
}
