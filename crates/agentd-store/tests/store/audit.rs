//! The audit log as a list: a tenant's records of runs and of its API keys,
//! newest first, filtered by run, actor, kind and time, page by page, and
//! never another tenant's.

use crate::harness::{Ctx, claim, keyring, new_run, principal, step, tenant};
use agentd_core::{ApiKeyToken, StepKind, TenantId};
use agentd_store::{ApiKey, AuditEntry, AuditFilter, NewApiKey, Outcome, Page, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

async fn mint(s: &Arc<dyn Store>, t: &TenantId, actor: &str) -> (ApiKey, ApiKeyToken) {
    let token = ApiKeyToken::generate().unwrap();
    let key = s
        .create_key(
            t,
            &NewApiKey {
                id: token.id().clone(),
                principal: principal("bot"),
                roles: vec!["reader".into()],
                name: Some("ci".into()),
                secret_hash: token.secret_hash(),
                expires_at: None,
            },
            actor,
        )
        .await
        .unwrap();
    (key, token)
}

async fn log(s: &Arc<dyn Store>, t: &TenantId, filter: AuditFilter) -> Page<AuditEntry> {
    let filter = AuditFilter {
        limit: if filter.limit == 0 { 100 } else { filter.limit },
        ..filter
    };
    s.list_audit_log(t, &filter).await.unwrap()
}

fn kinds(page: &Page<AuditEntry>) -> Vec<&str> {
    page.items.iter().map(|e| e.event.as_str()).collect()
}

pub async fn audit_log_filters_pages_and_isolates_tenants(ctx: &Ctx) {
    // Arrange: in tenant a, a run that succeeds, one cancelled by bob, a
    // key minted and revoked (twice) by ops; in tenant b, a run and a key.
    let s = &ctx.store;
    let (a, b) = (tenant("a"), tenant("b"));
    let done = s
        .create_run(&a, &new_run("x"), Some(&claim("node-1")))
        .await
        .unwrap()
        .claimed
        .unwrap();
    s.finish_run(
        &done.lease,
        &[step(0, StepKind::Llm)],
        &Outcome::Succeeded {
            output_json: None,
            output: serde_json::json!("ok"),
            messages: vec![],
        },
    )
    .await
    .unwrap();
    ctx.advance(Duration::from_millis(5)).await;
    let cancelled = s.create_run(&a, &new_run("x"), None).await.unwrap().run;
    s.cancel_run(&a, cancelled.id, &principal("bob"))
        .await
        .unwrap();
    ctx.advance(Duration::from_millis(5)).await;
    let (key, token) = mint(s, &a, "ops").await;
    s.revoke_key(None, &key.id, "ops").await.unwrap().unwrap();
    ctx.advance(Duration::from_millis(5)).await;
    s.revoke_key(Some(&a), &key.id, "ops")
        .await
        .unwrap()
        .unwrap();
    let theirs = s.create_run(&b, &new_run("x"), None).await.unwrap().run;
    mint(s, &b, "ops").await;

    // Act + Assert: the tenant's whole log, newest first.
    let all = log(s, &a, AuditFilter::default()).await;
    assert_eq!(
        kinds(&all),
        [
            "key_revoked",
            "key_created",
            "cancelled",
            "created",
            "succeeded",
            "claimed",
            "created"
        ]
    );
    assert_eq!(all.next_cursor, None);
    assert!(
        all.items
            .windows(2)
            .all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id))
    );
    let created = &all.items[1];
    assert_eq!((created.actor.as_str(), created.run_id), ("ops", None));
    assert_eq!(
        created.detail,
        serde_json::json!({
            "key_id": key.id, "principal": "bot", "roles": ["reader"], "name": "ci"
        })
    );
    let shown = serde_json::to_string(&all.items).unwrap();
    assert!(
        !shown.contains(&token.reveal()) && !shown.contains("hash"),
        "{shown}"
    );
    let item = serde_json::to_value(&all.items[2]).unwrap();
    assert_eq!(item["kind"], "cancelled");
    assert_eq!(item["actor"], "bob");
    assert_eq!(item["run_id"], cancelled.id.to_string());
    assert!(item["time"].as_str().unwrap().ends_with('Z'), "{item}");
    assert!(item.get("details").is_some(), "{item}");

    // Each filter, alone and together.
    let by_run = log(
        s,
        &a,
        AuditFilter {
            run_id: Some(done.lease.run_id),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kinds(&by_run), ["succeeded", "claimed", "created"]);
    let by_actor = log(
        s,
        &a,
        AuditFilter {
            actor: Some("bob".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kinds(&by_actor), ["cancelled"]);
    let by_kind = log(
        s,
        &a,
        AuditFilter {
            kind: Some("created".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_kind.items.len(), 2);
    assert!(by_kind.items.iter().all(|e| e.actor == "alice"));
    let both = AuditFilter {
        actor: Some("ops".into()),
        kind: Some("key_revoked".into()),
        ..Default::default()
    };
    assert_eq!(log(s, &a, both).await.items.len(), 1);
    let since = AuditFilter {
        since: Some(all.items[1].at),
        ..Default::default()
    };
    assert_eq!(
        kinds(&log(s, &a, since).await),
        ["key_revoked", "key_created"]
    );

    // Page by page, the same records once each.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = log(
            s,
            &a,
            AuditFilter {
                limit: 2,
                cursor,
                ..Default::default()
            },
        )
        .await;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all.items.iter().map(|e| e.id).collect::<Vec<_>>());
    let bad = AuditFilter {
        cursor: Some("nope".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(
        s.list_audit_log(&a, &bad).await,
        Err(StoreError::BadCursor(_))
    ));

    // Tenant b sees its own two records and nothing of a's.
    let b_log = log(s, &b, AuditFilter::default()).await;
    assert_eq!(kinds(&b_log), ["key_created", "created"]);
    assert_eq!(b_log.items[1].run_id, Some(theirs.id));
    let b_on_a = AuditFilter {
        run_id: Some(done.lease.run_id),
        ..Default::default()
    };
    assert!(log(s, &b, b_on_a).await.items.is_empty());
    let b_bob = AuditFilter {
        actor: Some("bob".into()),
        ..Default::default()
    };
    assert!(log(s, &b, b_bob).await.items.is_empty());
    assert!(
        log(s, &tenant("c"), AuditFilter::default())
            .await
            .items
            .is_empty()
    );
}

pub async fn key_records_are_sealed_like_run_records(ctx: &Ctx) {
    let t = tenant("a");
    let sealed = ctx.reopen(Some(keyring(&[("k1", 7)]))).await;
    let (key, _) = mint(&sealed, &t, "ops").await;

    let page = log(&sealed, &t, AuditFilter::default()).await;
    assert_eq!(page.items[0].detail["key_id"], key.id.as_str());
    let stored = ctx.texts("SELECT detail FROM audit").await;
    assert!(
        stored.iter().all(|d| !d.contains("bot")),
        "plain detail at rest: {stored:?}"
    );
    assert!(matches!(
        ctx.store
            .list_audit_log(
                &t,
                &AuditFilter {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Encrypted { .. })
    ));
}
