//! The audit trail on PostgreSQL: records written with a run's changes (and a
//! tenant's key changes), a run's trail, and the tenant's log as a list.

use super::*;

/// [`Store::audit`](crate::Store::audit) on this backend.
pub(super) async fn audit(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    actor: &str,
    event: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    sqlx::query(sql::INSERT_AUDIT)
        .bind(id.0)
        .bind(tenant.as_str())
        .bind(actor)
        .bind(event)
        .bind(
            store
                .codec
                .seal_json(Field::of(&id, "audit.detail"), detail)?,
        )
        .execute(&store.pool)
        .await?;
    store.committed();
    Ok(())
}

/// [`Store::list_audit`](crate::Store::list_audit) on this backend.
pub(super) async fn list_audit(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
) -> Result<Vec<AuditEntry>> {
    sqlx::query(sql::LIST_AUDIT)
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|row| crate::row::audit(&store.codec, row))
        .collect()
}

/// [`Store::list_audit_log`](crate::Store::list_audit_log) on this backend.
pub(super) async fn list_audit_log(
    store: &PgStore,
    tenant: &TenantId,
    filter: &AuditFilter,
) -> Result<Page<AuditEntry>> {
    use crate::audit::{Arg, cursor_of, list_sql};
    let (limit, _) = limit_of(filter.limit);
    let (sql, args) = list_sql(tenant.as_str(), filter, limit, |n| format!("${n}"))?;
    // Built from fixed clauses only; every value is a bound parameter.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
    for arg in args {
        query = match arg {
            Arg::Text(t) => query.bind(t),
            Arg::Run(r) => query.bind(r.0),
            Arg::Int(i) => query.bind(i),
        };
    }
    let items = query
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|row| crate::row::audit(&store.codec, row))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, cursor_of))
}
