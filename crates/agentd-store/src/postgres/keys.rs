//! PostgreSQL API keys: minting, listing, revoking, the change feed of the
//! key caches and their batched `last_used_at` writes. Times are the
//! database's clock, so every process stamps changes on one clock.

use super::*;
use crate::keys::{KeyRow, cursor_of, list_bound};
use crate::{ApiKey, KeyChanges, KeyCredential, NewApiKey};
use agentd_core::{KeyId, Millis};

fn key_row(r: &PgRow) -> Result<KeyRow> {
    Ok(KeyRow {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        principal: r.try_get(2)?,
        roles: r.try_get(3)?,
        name: r.try_get(4)?,
        created_at: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
        secret_hash: r.try_get(9)?,
    })
}

fn decode(r: &PgRow) -> Result<KeyCredential> {
    key_row(r)?.decode()
}

/// [`Store::create_key`](crate::Store::create_key) on this backend.
pub(super) async fn create_key(
    store: &PgStore,
    tenant: &TenantId,
    key: &NewApiKey,
    actor: &str,
) -> Result<ApiKey> {
    let detail = store.codec.seal_json(
        Field::unowned("audit.detail"),
        &crate::keys::created_detail(key),
    )?;
    let inserted = sqlx::query(sql::CREATE_KEY)
        .bind(key.id.as_str())
        .bind(tenant.as_str())
        .bind(key.principal.as_str())
        .bind(crate::codec::to_json(&key.roles)?)
        .bind(key.name.as_deref())
        .bind(key.secret_hash.as_bytes().as_slice())
        .bind(key.expires_at)
        .bind(actor)
        .bind(detail)
        .fetch_one(&store.pool)
        .await;
    match inserted {
        Ok(row) => {
            store.committed();
            Ok(decode(&row)?.key)
        }
        Err(e) if is_violation_of(&e, "api_keys_pkey") => Err(StoreError::Duplicate {
            what: format!("API key {}", key.id),
        }),
        Err(e) => Err(e.into()),
    }
}

/// [`Store::list_keys`](crate::Store::list_keys) on this backend.
pub(super) async fn list_keys(
    store: &PgStore,
    tenant: Option<&TenantId>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ApiKey>> {
    let (at, id) = list_bound(cursor)?;
    let (limit, fetch) = limit_of(limit);
    let rows = match tenant {
        Some(t) => {
            sqlx::query(sql::LIST_TENANT_KEYS)
                .bind(t.as_str())
                .bind(at)
                .bind(id)
                .bind(fetch)
                .fetch_all(&store.pool)
                .await?
        }
        None => {
            sqlx::query(sql::LIST_ALL_KEYS)
                .bind(at)
                .bind(id)
                .bind(fetch)
                .fetch_all(&store.pool)
                .await?
        }
    };
    let keys = rows
        .iter()
        .map(|r| Ok(decode(r)?.key))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(keys, limit, cursor_of))
}

/// [`Store::revoke_key`](crate::Store::revoke_key) on this backend.
pub(super) async fn revoke_key(
    store: &PgStore,
    tenant: Option<&TenantId>,
    id: &KeyId,
    actor: &str,
) -> Result<Option<ApiKey>> {
    let detail = store.codec.seal_json(
        Field::unowned("audit.detail"),
        &crate::keys::revoked_detail(id),
    )?;
    let row = sqlx::query(sql::REVOKE_KEY)
        .bind(id.as_str())
        .bind(tenant.map(TenantId::as_str))
        .bind(actor)
        .bind(detail)
        .fetch_optional(&store.pool)
        .await?;
    store.committed();
    row.map(|r| Ok(decode(&r)?.key)).transpose()
}

/// [`Store::key_credential`](crate::Store::key_credential) on this backend.
pub(super) async fn key_credential(store: &PgStore, id: &KeyId) -> Result<Option<KeyCredential>> {
    sqlx::query(sql::KEY_BY_ID)
        .bind(id.as_str())
        .fetch_optional(&store.pool)
        .await?
        .map(|r| decode(&r))
        .transpose()
}

/// [`Store::key_changes`](crate::Store::key_changes) on this backend.
pub(super) async fn key_changes(store: &PgStore, since: Option<Millis>) -> Result<KeyChanges> {
    // The clock first: a change stamped after it may be missed by this
    // read, and is found by the next, which starts before `read_at`.
    let read_at: i64 = sqlx::query_scalar(sql::STORE_NOW)
        .fetch_one(&store.pool)
        .await?;
    let keys = sqlx::query(sql::KEYS_CHANGED)
        .bind(since.unwrap_or(Millis::MIN))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<Vec<_>>>()?;
    Ok(KeyChanges { keys, read_at })
}

/// [`Store::touch_keys`](crate::Store::touch_keys) on this backend.
pub(super) async fn touch_keys(store: &PgStore, used: &[(KeyId, Millis)]) -> Result<()> {
    if used.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = used.iter().map(|(id, _)| id.as_str()).collect();
    let ats: Vec<Millis> = used.iter().map(|(_, at)| *at).collect();
    sqlx::query(sql::TOUCH_KEYS)
        .bind(ids)
        .bind(ats)
        .execute(&store.pool)
        .await?;
    store.committed();
    Ok(())
}
