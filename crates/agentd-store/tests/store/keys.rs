//! API keys: minting, tenant-scoped lists and revocation, the change feed
//! the key caches poll, and batched `last_used_at` writes.

use crate::harness::{Ctx, principal, tenant};
use agentd_core::{ApiKeyToken, KeyId, TenantId};
use agentd_store::{ApiKey, NewApiKey, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Mints a key of `t` straight into the store; returns the key as stored
/// and the token its owner would present.
async fn mint(s: &Arc<dyn Store>, t: &TenantId, name: &str) -> (ApiKey, ApiKeyToken) {
    let token = ApiKeyToken::generate().unwrap();
    let key = s
        .create_key(
            t,
            &NewApiKey {
                id: token.id().clone(),
                principal: principal("bot"),
                roles: vec!["admin".into(), "reader".into()],
                name: Some(name.into()),
                secret_hash: token.secret_hash(),
                expires_at: Some(4_000_000_000_000),
            },
            "test",
        )
        .await
        .unwrap();
    (key, token)
}

fn ids(keys: &[ApiKey]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

pub async fn create_list_revoke_within_a_tenant(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, b) = (tenant("a"), tenant("b"));
    let (a1, token) = mint(s, &a, "first").await;
    ctx.advance(Duration::from_millis(5)).await;
    let (a2, _) = mint(s, &a, "second").await;
    ctx.advance(Duration::from_millis(5)).await;
    let (b1, _) = mint(s, &b, "theirs").await;

    // What was stored is what the owner holds, and nothing secret is listed.
    assert_eq!(a1.tenant, a);
    assert_eq!(a1.principal, principal("bot"));
    assert_eq!(a1.roles, ["admin", "reader"]);
    assert_eq!(a1.name.as_deref(), Some("first"));
    assert_eq!(a1.expires_at, Some(4_000_000_000_000));
    assert_eq!((a1.last_used_at, a1.revoked_at), (None, None));
    let listed = serde_json::to_string(&a1).unwrap();
    assert!(!listed.contains("hash"), "{listed}");
    let cred = s.key_credential(token.id()).await.unwrap().unwrap();
    assert!(cred.secret_hash.matches(&token));
    assert_eq!(cred.key.id, a1.id);

    // A tenant lists its own keys only, newest first, page by page.
    let page = s.list_keys(Some(&a), 1, None).await.unwrap();
    assert_eq!(ids(&page.items), [a2.id.as_str()]);
    let cursor = page.next_cursor.expect("a second page");
    let page = s.list_keys(Some(&a), 1, Some(&cursor)).await.unwrap();
    assert_eq!(ids(&page.items), [a1.id.as_str()]);
    assert_eq!(page.next_cursor, None);
    // Every tenant's, for operators.
    let all = s.list_keys(None, 10, None).await.unwrap();
    assert_eq!(
        ids(&all.items),
        [b1.id.as_str(), a2.id.as_str(), a1.id.as_str()]
    );
    assert!(matches!(
        s.list_keys(Some(&a), 10, Some("not-a-cursor")).await,
        Err(StoreError::BadCursor(_))
    ));

    // Tenant a can neither see nor revoke b's key.
    assert!(
        s.revoke_key(Some(&a), &b1.id, "test")
            .await
            .unwrap()
            .is_none()
    );
    let unknown = KeyId::parse("0000000000000000").unwrap();
    assert!(
        s.revoke_key(None, &unknown, "test")
            .await
            .unwrap()
            .is_none()
    );
    let b_keys = s.list_keys(Some(&b), 10, None).await.unwrap();
    assert_eq!(b_keys.items[0].revoked_at, None);

    // b revokes it; a second revocation keeps the first time.
    let revoked = s
        .revoke_key(Some(&b), &b1.id, "test")
        .await
        .unwrap()
        .unwrap();
    let at = revoked.revoked_at.expect("revoked");
    ctx.advance(Duration::from_millis(5)).await;
    let again = s.revoke_key(None, &b1.id, "test").await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at));

    // An id is a key's for good.
    let dup = s
        .create_key(
            &b,
            &NewApiKey {
                id: a1.id.clone(),
                principal: principal("x"),
                roles: vec![],
                name: None,
                secret_hash: ApiKeyToken::generate().unwrap().secret_hash(),
                expires_at: None,
            },
            "test",
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
}

pub async fn change_feed_and_last_used(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("a");
    let (old, _) = mint(s, &t, "old").await;

    // A full read has every key; reading from its time on finds only
    // what changed later.
    let full = s.key_changes(None).await.unwrap();
    assert_eq!(full.keys.len(), 1);
    ctx.advance(Duration::from_millis(20)).await;
    let (new, _) = mint(s, &t, "new").await;
    let changed = s.key_changes(Some(full.read_at + 1)).await.unwrap();
    let changed_ids: HashSet<&str> = changed.keys.iter().map(|k| k.key.id.as_str()).collect();
    assert_eq!(changed_ids, HashSet::from([new.id.as_str()]));
    assert!(changed.read_at >= full.read_at);

    // Using keys is no change; revoking one is.
    s.touch_keys(&[(old.id.clone(), 1_000), (new.id.clone(), 2_000)])
        .await
        .unwrap();
    s.touch_keys(&[(old.id.clone(), 500)]).await.unwrap();
    ctx.advance(Duration::from_millis(20)).await;
    let mark = s.key_changes(None).await.unwrap().read_at + 1;
    ctx.advance(Duration::from_millis(20)).await;
    assert!(s.key_changes(Some(mark)).await.unwrap().keys.is_empty());
    s.revoke_key(Some(&t), &old.id, "test").await.unwrap();
    let changed = s.key_changes(Some(mark)).await.unwrap();
    assert_eq!(changed.keys.len(), 1);
    assert_eq!(changed.keys[0].key.id, old.id);
    assert!(changed.keys[0].key.revoked_at.is_some());

    // last_used_at only moves forward; unknown ids are ignored.
    let unknown = KeyId::parse("0000000000000000").unwrap();
    s.touch_keys(&[(unknown, 9_000)]).await.unwrap();
    let keys = s.list_keys(Some(&t), 10, None).await.unwrap().items;
    let used = |id: &KeyId| keys.iter().find(|k| &k.id == id).unwrap().last_used_at;
    assert_eq!(used(&old.id), Some(1_000));
    assert_eq!(used(&new.id), Some(2_000));
}
