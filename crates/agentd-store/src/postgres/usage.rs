//! The PostgreSQL usage report ([`Store::usage`](crate::Store::usage)).

use super::*;
use crate::usage::{GroupKey, GroupSums, bounds, finish};
use crate::{UsageGroup, UsageQuery, UsageRow};

/// [`Store::usage`](crate::Store::usage) on this backend.
pub(super) async fn usage(
    store: &PgStore,
    tenant: &TenantId,
    q: &UsageQuery,
) -> Result<Vec<UsageRow>> {
    let sql = match q.group_by {
        UsageGroup::Agent => sql::USAGE_BY_AGENT,
        UsageGroup::Principal => sql::USAGE_BY_PRINCIPAL,
        UsageGroup::Day => sql::USAGE_BY_DAY,
        UsageGroup::Provider => sql::USAGE_BY_PROVIDER,
    };
    let (since, until) = bounds(q);
    let rows = sqlx::query(sql)
        .bind(tenant.as_str())
        .bind(since)
        .bind(until)
        .fetch_all(&store.pool)
        .await?;
    let raw = rows
        .iter()
        .map(|row| {
            Ok(GroupSums {
                key: match q.group_by {
                    UsageGroup::Day => GroupKey::Day(row.try_get(0)?),
                    _ => GroupKey::Name(row.try_get(0)?),
                },
                runs: row.try_get(1)?,
                failed: row.try_get(2)?,
                input_tokens: row.try_get(3)?,
                output_tokens: row.try_get(4)?,
                cost_usd: row.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(finish(raw))
}
