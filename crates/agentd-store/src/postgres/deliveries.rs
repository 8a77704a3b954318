//! PostgreSQL's completion-webhook outbox (see [`crate::delivery`]).

use super::*;
use crate::delivery::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus, cursor_of, parse_cursor, shown_next,
};
use crate::{Page, codec::corrupt};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A delivery row of [`DELIVERY_COLS`].
fn delivery(row: &PgRow) -> Result<Delivery> {
    let tenant: String = row.try_get(1)?;
    let status = DeliveryStatus::parse(row.try_get::<&str, _>(6)?)?;
    let attempts: i32 = row.try_get(7)?;
    let code: Option<i32> = row.try_get(8)?;
    Ok(Delivery {
        id: row.try_get(0)?,
        tenant: TenantId::parse(tenant.clone())
            .map_err(|e| corrupt(format_args!("deliveries.tenant {tenant:?}: {e}")))?,
        run_id: RunId(row.try_get(2)?),
        url: row.try_get(3)?,
        tool: row.try_get(4)?,
        event: row.try_get(5)?,
        status,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.try_get(9)?,
        created_at: row.try_get(10)?,
        next_attempt_at: shown_next(status, row.try_get(11)?),
        delivered_at: row.try_get(12)?,
        payload: row
            .try_get::<Option<String>, _>(13)?
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| corrupt(format_args!("deliveries.payload: {e}")))?,
    })
}

/// A run's deliveries after a cursor.
const LIST: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries WHERE tenant = $1 AND run_id = $2 \
     AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $5"
);

/// [`Store::list_deliveries`](crate::Store::list_deliveries) on this backend.
pub(super) async fn list_deliveries(
    store: &PgStore,
    tenant: &TenantId,
    run: RunId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Option<Page<Delivery>>> {
    let (at, id) = cursor
        .map(parse_cursor)
        .transpose()?
        .unwrap_or((i64::MIN, String::new()));
    let exists: bool = sqlx::query_scalar(sql::RUN_EXISTS)
        .bind(run.0)
        .bind(tenant.as_str())
        .fetch_one(&store.pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    let rows = sqlx::query(LIST)
        .bind(tenant.as_str())
        .bind(run.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&store.pool)
        .await?;
    let mut items = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more.then(|| items.last().map(cursor_of)).flatten();
    Ok(Some(Page { items, next_cursor }))
}

/// Leases due deliveries; concurrent claimers skip each other's rows.
const CLAIM: &str = "WITH c AS (SELECT id FROM deliveries WHERE status = 'pending' \
     AND next_attempt_at <= (floor(extract(epoch FROM now()) * 1000)::int8) \
     AND (lease_until IS NULL OR lease_until <= (floor(extract(epoch FROM now()) * 1000)::int8)) \
     ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE deliveries d SET lease_owner = $1, \
     lease_until = (floor(extract(epoch FROM now()) * 1000)::int8) + $2 \
     FROM c WHERE d.id = c.id RETURNING d.id, d.tenant, d.run_id, d.url, d.tool, d.event, \
     d.status, d.attempts, d.last_status_code, d.last_error, d.created_at, d.next_attempt_at, \
     d.delivered_at, d.payload";

/// [`Store::claim_deliveries`](crate::Store::claim_deliveries) on this backend.
pub(super) async fn claim_deliveries(
    store: &PgStore,
    owner: &str,
    lease_for: Duration,
    max: u32,
) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(CLAIM)
        .bind(owner)
        .bind(i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX))
        .bind(i64::from(max))
        .fetch_all(&store.pool)
        .await?;
    store.committed();
    let mut out = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|d| (d.next_attempt_at, d.created_at));
    Ok(out)
}

/// Records the attempt and ends the lease; the attempt's row only if the
/// update found the lease.
const RECORD: &str = "WITH u AS (UPDATE deliveries SET attempts = attempts + 1, \
     last_status_code = $1, last_error = $2, status = $3, \
     next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, lease_owner = NULL, \
     lease_until = NULL WHERE id = $6 AND tenant = $7 AND lease_owner = $8 RETURNING id, attempts), \
     a AS (INSERT INTO delivery_attempts (delivery_id, n, at, duration_ms, status_code, error) \
     SELECT id, attempts, $9, $10, $1, $2 FROM u) SELECT count(*) FROM u";

/// [`Store::record_delivery`](crate::Store::record_delivery) on this backend.
pub(super) async fn record_delivery(store: &PgStore, a: &DeliveryAttempt) -> Result<bool> {
    let (status, next, delivered) = match a.outcome {
        AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(a.at)),
        AttemptOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(at), None),
        AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
    };
    let n: i64 = sqlx::query_scalar(RECORD)
        .bind(a.status_code.map(i32::from))
        .bind(a.error.as_deref())
        .bind(status.as_str())
        .bind(next)
        .bind(delivered)
        .bind(&a.id)
        .bind(a.tenant.as_str())
        .bind(&a.owner)
        .bind(a.at)
        .bind(a.duration_ms)
        .fetch_one(&store.pool)
        .await?;
    store.committed();
    Ok(n == 1)
}
