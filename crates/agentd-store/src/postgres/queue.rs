//! The PostgreSQL run queue: claiming runs (`FOR UPDATE SKIP LOCKED`,
//! fenced by lease tokens), heartbeats and giving runs back.

use super::*;

/// The lease a claim's result row (`reclaim, lease_token, roles, origin,
/// run_cols`) grants.
pub(super) fn claimed_lease(row: &PgRow) -> Result<Lease> {
    Ok(Lease {
        run_id: RunId(row.try_get(4)?),
        tenant: TenantId::parse(row.try_get::<String, _>(5)?).map_err(corrupt)?,
        token: row.try_get(1)?,
    })
}

/// Reads a claim's result row (`reclaim, lease_token, roles, origin,
/// run_cols`) and
/// the journal. Only the lease holder writes a run's journal, so it may be
/// read after the claim committed.
pub(super) async fn claimed(
    conn: &mut PgConnection,
    codec: &Codec,
    row: &PgRow,
    req: &ClaimRequest,
) -> Result<Claimed> {
    if row.try_get::<bool, _>(0)? {
        crate::meter::reclaimed();
    }
    let token: i64 = row.try_get(1)?;
    let roles: Option<String> = row.try_get(2)?;
    let origin: Option<String> = row.try_get(3)?;
    let run = rows::run(codec, row, 4)?;
    let roles: Vec<String> = crate::codec::parse_opt("roles", roles)?.unwrap_or_default();
    let origin = crate::codec::parse_opt("origin", origin)?.unwrap_or_default();
    let steps = if run.steps > 0 {
        load_steps(conn, codec, &run.id).await?
    } else {
        Vec::new()
    };
    let history = match &run.conversation_id {
        None => Vec::new(),
        Some(conv) => {
            load_history(
                conn,
                codec,
                &run.tenant,
                conv,
                req.history_limits.get(&run.agent).copied(),
            )
            .await?
        }
    };
    Ok(Claimed::new(
        token,
        Journal {
            run,
            steps,
            history,
            roles,
            origin,
        },
    ))
}

/// Claims run `id` of `tenant` if it is runnable, inside the caller's
/// transaction.
pub(super) async fn claim_one(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    id: RunId,
    req: &ClaimRequest,
) -> Result<Option<Claimed>> {
    let row = sqlx::query(sql::CLAIM_ONE.as_str())
        .bind(&req.owner)
        .bind(lease_ms(req.lease_for))
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => claimed(conn, codec, &row, req).await.map(Some),
    }
}

pub(super) async fn load_steps(
    conn: &mut PgConnection,
    codec: &Codec,
    id: &RunId,
) -> Result<Vec<Step>> {
    let records = sqlx::query(sql::LOAD_STEPS)
        .bind(id.0)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| rows::step(codec, id, row))
        .collect::<Result<Vec<_>>>()?;
    Ok(migrate_journal(*id, records)?)
}

pub(super) async fn load_history(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    conv: &ConversationId,
    limit: Option<u32>,
) -> Result<Vec<Message>> {
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(sql::LOAD_HISTORY)
        .bind(tenant.as_str())
        .bind(conv.as_str())
        .bind(limit.map(i64::from))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(run, text)| codec.parse(Field::of(&RunId(run), "messages.message"), text))
        .collect()
}

/// [`Store::claim_batch`](crate::Store::claim_batch) on this backend.
pub(super) async fn claim_batch(
    store: &PgStore,
    req: &ClaimRequest,
    max: u32,
) -> Result<Vec<Claimed>> {
    // One statement claims them all and commits; each journal is read
    // after, as only the lease holder writes it.
    let mut conn = store.pool.acquire().await?;
    let rows = sqlx::query(sql::CLAIM_NEXT.as_str())
        .bind(&req.owner)
        .bind(lease_ms(req.lease_for))
        .bind(i64::from(max.clamp(1, crate::MAX_CLAIM_BATCH)))
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    store.committed();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        match claimed(&mut conn, &store.codec, row, req).await {
            Ok(c) => out.push(c),
            Err(e) => {
                // The claims committed: give the runs back rather than
                // leave them leased to nobody until the lease expires.
                drop(conn);
                for row in &rows {
                    if let Ok(lease) = claimed_lease(row) {
                        let _ = store.release(&lease).await;
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// [`Store::claim_run`](crate::Store::claim_run) on this backend.
pub(super) async fn claim_run(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    req: &ClaimRequest,
) -> Result<Option<Claimed>> {
    let mut tx = store.pool.begin().await?;
    let claimed = claim_one(&mut tx, &store.codec, tenant, id, req).await?;
    if claimed.is_some() {
        store.commit(tx).await?;
    }
    Ok(claimed)
}

/// [`Store::heartbeat`](crate::Store::heartbeat) on this backend.
pub(super) async fn heartbeat(store: &PgStore, lease: &Lease, lease_for: Duration) -> Result<()> {
    let n = sqlx::query(sql::HEARTBEAT.as_str())
        .bind(lease.run_id.0)
        .bind(lease.tenant.as_str())
        .bind(lease.token)
        .bind(lease_ms(lease_for))
        .execute(&store.pool)
        .await?
        .rows_affected();
    if n == 0 {
        // The run is no longer ours: its reservation, if any, expires.
        store.set_reserved(lease.run_id, false);
        return Err(StoreError::LeaseLost { run: lease.run_id });
    }
    store.committed();
    Ok(())
}

/// [`Store::release`](crate::Store::release) on this backend.
pub(super) async fn release(store: &PgStore, lease: &Lease) -> Result<()> {
    let n = sqlx::query(sql::RELEASE.as_str())
        .bind(lease.run_id.0)
        .bind(lease.tenant.as_str())
        .bind(lease.token)
        .execute(&store.pool)
        .await?
        .rows_affected();
    if n > 0 {
        store.committed();
        // Due at once: another process may continue it now.
        store.announce_queued();
    }
    Ok(())
}

/// [`Store::release_owner`](crate::Store::release_owner) on this backend.
pub(super) async fn release_owner(store: &PgStore, owner: &str) -> Result<u64> {
    let n = sqlx::query(sql::RELEASE_OWNER.as_str())
        .bind(owner)
        .execute(&store.pool)
        .await?
        .rows_affected();
    if n > 0 {
        store.committed();
        store.announce_queued();
    }
    Ok(n)
}
