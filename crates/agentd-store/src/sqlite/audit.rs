//! The audit trail on SQLite: records written with a run's changes (and a
//! tenant's key changes), a run's trail, and the tenant's log as a list.

use super::*;

#[allow(clippy::too_many_arguments)] // one audit row's columns
pub(super) fn insert_audit(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    run: &RunId,
    at: Millis,
    actor: &str,
    event: &str,
    detail: Option<&serde_json::Value>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (tenant, run_id, at, actor, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        tenant,
        run.0.as_bytes(),
        at,
        actor,
        event,
        codec.seal_opt(Field::of(run, "audit.detail"), detail)?
    ])?;
    Ok(())
}

/// [`Store::audit`](crate::Store::audit) on this backend.
pub(super) async fn audit(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    actor: &str,
    event: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    let tenant = tenant.clone();
    let actor = actor.to_string();
    let event = event.to_string();
    let detail = detail.clone();
    store
        .write(move |conn, now, codec| {
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                &actor,
                &event,
                Some(&detail),
            )
        })
        .await
}

/// [`Store::list_audit`](crate::Store::list_audit) on this backend.
pub(super) async fn list_audit(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
) -> Result<Vec<AuditEntry>> {
    let tenant = tenant.clone();
    store
        .read(move |c, codec| {
            let mut stmt = c.prepare_cached(LIST_AUDIT)?;
            let mut rows = stmt.query(params![tenant.as_str(), id.0.as_bytes()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::row::audit(codec, row)?);
            }
            Ok(out)
        })
        .await
}

/// [`Store::list_audit_log`](crate::Store::list_audit_log) on this backend.
pub(super) async fn list_audit_log(
    store: &SqliteStore,
    tenant: &TenantId,
    filter: &AuditFilter,
) -> Result<Page<AuditEntry>> {
    use crate::audit::{Arg, cursor_of, list_sql};
    let limit = filter.limit.clamp(1, 1000);
    let (sql, args) = list_sql(tenant.as_str(), filter, limit, |n| format!("?{n}"))?;
    let items = store
        .read(move |c, codec| {
            let mut stmt = c.prepare_cached(&sql)?;
            let values: Vec<rusqlite::types::Value> = args
                .into_iter()
                .map(|a| match a {
                    Arg::Text(t) => rusqlite::types::Value::Text(t),
                    Arg::Run(r) => rusqlite::types::Value::Blob(r.0.as_bytes().to_vec()),
                    Arg::Int(i) => rusqlite::types::Value::Integer(i),
                })
                .collect();
            let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::row::audit(codec, row)?);
            }
            Ok(out)
        })
        .await?;
    Ok(page(items, limit, cursor_of))
}

/// Records an event of the tenant that concerns no run (an API key
/// created or revoked), in the caller's transaction.
pub(super) fn insert_tenant_audit(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    at: Millis,
    actor: &str,
    event: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (tenant, run_id, at, actor, event, detail) \
         VALUES (?1, NULL, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        tenant,
        at,
        actor,
        event,
        codec.seal_json(Field::unowned("audit.detail"), detail)?
    ])?;
    Ok(())
}
