//! SQLite's completion-webhook outbox (see [`crate::delivery`]).

use super::*;
use crate::delivery::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryStatus, cursor_of, parse_cursor, shown_next,
};
use rusqlite::Row;

/// A delivery row of [`DELIVERY_COLS`].
fn delivery(row: &Row<'_>) -> Result<Delivery> {
    let id: Vec<u8> = row.get(2)?;
    let tenant: String = row.get(1)?;
    let status = DeliveryStatus::parse(&row.get::<_, String>(6)?)?;
    let attempts: i64 = row.get(7)?;
    let code: Option<i64> = row.get(8)?;
    Ok(Delivery {
        id: row.get(0)?,
        tenant: TenantId::parse(tenant.clone())
            .map_err(|e| corrupt(format_args!("deliveries.tenant {tenant:?}: {e}")))?,
        run_id: rows::run_id(&id)?,
        url: row.get(3)?,
        tool: row.get(4)?,
        event: row.get(5)?,
        status,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.get(9)?,
        created_at: row.get(10)?,
        next_attempt_at: shown_next(status, row.get(11)?),
        delivered_at: row.get(12)?,
        payload: row
            .get::<_, Option<String>>(13)?
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| corrupt(format_args!("deliveries.payload: {e}")))?,
    })
}

/// A run's deliveries after a cursor.
const LIST: &str = concat!(
    "SELECT ",
    delivery_cols!(),
    " FROM deliveries WHERE tenant = ?1 AND run_id = ?2 \
     AND (created_at, id) > (?3, ?4) ORDER BY created_at, id LIMIT ?5"
);

/// Leases due deliveries; the single writer serializes claimers.
const CLAIM: &str = concat!(
    "UPDATE deliveries SET lease_owner = ?1, lease_until = ?2 WHERE id IN \
     (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?3 \
     AND (lease_until IS NULL OR lease_until <= ?3) ORDER BY next_attempt_at LIMIT ?4) \
     RETURNING ",
    delivery_cols!()
);

/// [`Store::list_deliveries`](crate::Store::list_deliveries) on this backend.
pub(super) async fn list_deliveries(
    store: &SqliteStore,
    tenant: &TenantId,
    run: RunId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Option<Page<Delivery>>> {
    let tenant = tenant.clone();
    let after = cursor.map(parse_cursor).transpose()?;
    store
        .read(move |c, _| {
            let exists = c
                .prepare_cached("SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2")?
                .query_row(params![run.0.as_bytes(), tenant.as_str()], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let (at, id) = after.unwrap_or((i64::MIN, String::new()));
            let mut stmt = c.prepare_cached(LIST)?;
            let mut rows = stmt.query(params![
                tenant.as_str(),
                run.0.as_bytes(),
                at,
                id,
                i64::from(limit) + 1
            ])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(delivery(row)?);
            }
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_cursor = more.then(|| items.last().map(cursor_of)).flatten();
            Ok(Some(Page { items, next_cursor }))
        })
        .await
}

/// [`Store::claim_deliveries`](crate::Store::claim_deliveries) on this backend.
pub(super) async fn claim_deliveries(
    store: &SqliteStore,
    owner: &str,
    lease_for: Duration,
    max: u32,
) -> Result<Vec<Delivery>> {
    let owner = owner.to_string();
    store
        .write(move |conn, now, _| {
            let until =
                now.saturating_add(i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX));
            let mut stmt = conn.prepare_cached(CLAIM)?;
            let mut rows = stmt.query(params![owner, until, now, max])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(delivery(row)?);
            }
            out.sort_by_key(|d| (d.next_attempt_at, d.created_at));
            Ok(out)
        })
        .await
}

/// [`Store::record_delivery`](crate::Store::record_delivery) on this backend.
pub(super) async fn record_delivery(store: &SqliteStore, a: &DeliveryAttempt) -> Result<bool> {
    let a = a.clone();
    store
        .write(move |conn, _, _| {
            let (status, next, delivered) = match a.outcome {
                AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(a.at)),
                AttemptOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(at), None),
                AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
            };
            let n: Option<i64> = conn
                .prepare_cached(
                    "UPDATE deliveries SET attempts = attempts + 1, last_status_code = ?1, \
                     last_error = ?2, status = ?3, next_attempt_at = COALESCE(?4, next_attempt_at), \
                     delivered_at = ?5, lease_owner = NULL, lease_until = NULL \
                     WHERE id = ?6 AND tenant = ?7 AND lease_owner = ?8 RETURNING attempts",
                )?
                .query_row(
                    params![
                        a.status_code,
                        a.error,
                        status.as_str(),
                        next,
                        delivered,
                        a.id,
                        a.tenant.as_str(),
                        a.owner
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(n) = n else { return Ok(false) };
            conn.prepare_cached(
                "INSERT INTO delivery_attempts (delivery_id, n, at, duration_ms, status_code, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![a.id, n, a.at, a.duration_ms, a.status_code, a.error])?;
            Ok(true)
        })
        .await
}
