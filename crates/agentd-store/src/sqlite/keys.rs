//! SQLite API keys: minting, listing, revoking, the change feed of the key
//! caches and their batched `last_used_at` writes.

use super::*;
use crate::keys::{KeyRow, cursor_of, list_bound};
use crate::{ApiKey, KeyChanges, KeyCredential, NewApiKey};
use agentd_core::{KeyId, Millis};

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        principal: r.get(2)?,
        roles: r.get(3)?,
        name: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        last_used_at: r.get(7)?,
        revoked_at: r.get(8)?,
        secret_hash: r.get(9)?,
    })
}

fn decode_all(mut stmt: CachedStatement<'_>, params: impl Params) -> Result<Vec<KeyCredential>> {
    let rows = stmt.query_map(params, key_row)?;
    let mut keys = Vec::new();
    for row in rows {
        keys.push(row?.decode()?);
    }
    Ok(keys)
}

/// [`Store::create_key`](crate::Store::create_key) on this backend.
pub(super) async fn create_key(
    store: &SqliteStore,
    tenant: &TenantId,
    key: &NewApiKey,
    actor: &str,
) -> Result<ApiKey> {
    let tenant = tenant.clone();
    let key = key.clone();
    let actor = actor.to_string();
    store
        .write(move |conn, now, codec| {
            let inserted = conn
                .prepare_cached(concat!(
                    "INSERT INTO api_keys (id, tenant, principal, roles, name, secret_hash, \
                     created_at, expires_at, changed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7) RETURNING ",
                    key_columns!()
                ))?
                .query_row(
                    params![
                        key.id.as_str(),
                        tenant.as_str(),
                        key.principal.as_str(),
                        to_json(&key.roles)?,
                        key.name,
                        key.secret_hash.as_bytes().as_slice(),
                        now,
                        key.expires_at,
                    ],
                    key_row,
                );
            match inserted {
                Ok(row) => {
                    insert_tenant_audit(
                        conn,
                        codec,
                        tenant.as_str(),
                        now,
                        &actor,
                        "key_created",
                        &crate::keys::created_detail(&key),
                    )?;
                    Ok(row.decode()?.key)
                }
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                {
                    Err(StoreError::Duplicate {
                        what: format!("API key {}", key.id),
                    })
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
}

/// [`Store::list_keys`](crate::Store::list_keys) on this backend.
pub(super) async fn list_keys(
    store: &SqliteStore,
    tenant: Option<&TenantId>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ApiKey>> {
    let (at, id) = list_bound(cursor)?;
    let limit = limit.clamp(1, 1000);
    let tenant = tenant.cloned();
    store
        .read(move |conn, _| {
            let fetch = i64::from(limit) + 1;
            let keys = match &tenant {
                Some(t) => decode_all(
                    conn.prepare_cached(LIST_TENANT_KEYS)?,
                    params![t.as_str(), at, id, fetch],
                )?,
                None => decode_all(conn.prepare_cached(LIST_ALL_KEYS)?, params![at, id, fetch])?,
            };
            let keys = keys.into_iter().map(|k| k.key).collect();
            Ok(page(keys, limit, cursor_of))
        })
        .await
}

/// One tenant's keys, newest first, below the cursor's `(created_at, id)`.
pub(super) const LIST_TENANT_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE tenant = ?1 AND (created_at, id) < (?2, ?3) \
     ORDER BY created_at DESC, id DESC LIMIT ?4"
);

/// Every tenant's keys, newest first, below the cursor's `(created_at, id)`.
pub(super) const LIST_ALL_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE (created_at, id) < (?1, ?2) \
     ORDER BY created_at DESC, id DESC LIMIT ?3"
);

/// [`Store::revoke_key`](crate::Store::revoke_key) on this backend.
pub(super) async fn revoke_key(
    store: &SqliteStore,
    tenant: Option<&TenantId>,
    id: &KeyId,
    actor: &str,
) -> Result<Option<ApiKey>> {
    let tenant = tenant.map(|t| t.as_str().to_string());
    let id = id.clone();
    let actor = actor.to_string();
    store
        .write(move |conn, now, codec| {
            let live: Option<bool> = conn
                .prepare_cached(
                    "SELECT revoked_at IS NULL FROM api_keys \
                     WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
                )?
                .query_row(params![id.as_str(), tenant], |r| r.get(0))
                .optional()?;
            // A second revocation changes nothing, so the caches see no
            // change either, and the audit log no second record.
            let row = conn
                .prepare_cached(concat!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1), \
                     changed_at = CASE WHEN revoked_at IS NULL THEN ?1 ELSE changed_at END \
                     WHERE id = ?2 AND (?3 IS NULL OR tenant = ?3) RETURNING ",
                    key_columns!()
                ))?
                .query_row(params![now, id.as_str(), tenant], key_row)
                .optional()?;
            let Some(key) = row.map(|r| r.decode()).transpose()?.map(|k| k.key) else {
                return Ok(None);
            };
            if live == Some(true) {
                insert_tenant_audit(
                    conn,
                    codec,
                    key.tenant.as_str(),
                    now,
                    &actor,
                    "key_revoked",
                    &crate::keys::revoked_detail(&key.id),
                )?;
            }
            Ok(Some(key))
        })
        .await
}

/// [`Store::key_credential`](crate::Store::key_credential) on this backend.
pub(super) async fn key_credential(
    store: &SqliteStore,
    id: &KeyId,
) -> Result<Option<KeyCredential>> {
    let id = id.clone();
    store
        .read(move |conn, _| {
            conn.prepare_cached(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE id = ?1"
            ))?
            .query_row(params![id.as_str()], key_row)
            .optional()?
            .map(KeyRow::decode)
            .transpose()
        })
        .await
}

/// [`Store::key_changes`](crate::Store::key_changes) on this backend.
pub(super) async fn key_changes(store: &SqliteStore, since: Option<Millis>) -> Result<KeyChanges> {
    let read_at = (store.clock)();
    store
        .read(move |conn, _| {
            let keys = decode_all(
                conn.prepare_cached(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM api_keys WHERE changed_at >= ?1 ORDER BY changed_at"
                ))?,
                params![since.unwrap_or(Millis::MIN)],
            )?;
            Ok(KeyChanges { keys, read_at })
        })
        .await
}

/// [`Store::touch_keys`](crate::Store::touch_keys) on this backend.
pub(super) async fn touch_keys(store: &SqliteStore, used: &[(KeyId, Millis)]) -> Result<()> {
    if used.is_empty() {
        return Ok(());
    }
    let used = used.to_vec();
    store
        .write(move |conn, _, _| {
            let mut stmt = conn.prepare_cached(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ?2), ?2) \
                 WHERE id = ?1",
            )?;
            for (id, at) in &used {
                stmt.execute(params![id.as_str(), at])?;
            }
            Ok(())
        })
        .await
}
