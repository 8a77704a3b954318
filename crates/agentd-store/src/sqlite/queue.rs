//! The SQLite run queue: claiming runs (leases and their fencing tokens),
//! heartbeats and giving runs back.

use super::*;

rendered! {
    /// Whether a lease is held.
    pub(super) static LEASE_HELD = "SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2 AND lease_token = ?3 \
        AND status {journal}";
}

pub(super) fn check_lease(conn: &Connection, lease: &Lease) -> Result<()> {
    let held: Option<i64> = conn
        .prepare_cached(&LEASE_HELD)?
        .query_row(
            params![
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ],
            |r| r.get(0),
        )
        .optional()?;
    held.map(|_| ())
        .ok_or(StoreError::LeaseLost { run: lease.run_id })
}

/// Runs that may be claimed: due and queued, or running on an expired lease;
/// a conversation's runs wait for its older active runs. The leading
/// `status {claim}` is what lets SQLite use the partial index
/// `runs_runnable` (it cannot infer it from the OR below): without it a
/// claim scans every run the store holds, finished ones included.
macro_rules! runnable {
    () => {
        concat!(
            "r.status {claim} AND ((r.status = 'queued' AND r.available_at <= ?1) \
             OR (r.status = 'running' AND r.lease_until < ?1)) AND ",
            conversation_turn!()
        )
    };
}

rendered! {
    /// The next runnable run, oldest first.
    pub(super) static NEXT_RUNNABLE = concat!(
        "SELECT r.id, r.status FROM runs r WHERE ",
        runnable!(),
        " ORDER BY r.available_at, r.id LIMIT 1"
    );
}

rendered! {
    /// Run `?2` of tenant `?3`, if it is runnable.
    pub(super) static RUNNABLE = concat!(
        "SELECT r.status FROM runs r WHERE r.id = ?2 AND r.tenant = ?3 AND ",
        runnable!()
    );
}

/// Claims run `id` (already known runnable) and reads its journal.
pub(super) fn take_lease(
    conn: &Connection,
    codec: &Codec,
    id: &[u8],
    was_running: bool,
    req: &ClaimRequest,
    now: Millis,
) -> Result<Claimed> {
    let mut stmt = conn.prepare_cached(concat!(
        "UPDATE runs SET status = 'running', lease_owner = ?1, lease_until = ?2, \
         lease_token = lease_token + 1, attempt = attempt + ?3, updated_at = ?4 \
         WHERE id = ?5 RETURNING lease_token, ",
        run_cols!()
    ))?;
    let mut rows = stmt.query(params![
        req.owner,
        now + req.lease_for.as_millis() as i64,
        i64::from(was_running),
        now,
        id
    ])?;
    let row = rows
        .next()?
        .ok_or_else(|| corrupt("claimed run vanished"))?;
    let token: i64 = row.get(0)?;
    let run = rows::run(codec, row, 1)?;
    drop(rows);
    // A run found `running` had its lease expire: its worker died mid-run.
    let event = if was_running {
        crate::meter::reclaimed();
        "reclaimed"
    } else {
        "claimed"
    };
    insert_audit(
        conn,
        codec,
        run.tenant.as_str(),
        &run.id,
        now,
        &req.owner,
        event,
        None,
    )?;
    let steps = load_steps(conn, codec, &run.id)?;
    let (roles, origin) = load_roles(conn, &run.id)?;
    let history = match &run.conversation_id {
        None => Vec::new(),
        Some(conv) => load_history(
            conn,
            codec,
            run.tenant.as_str(),
            conv,
            req.history_limits.get(&run.agent).copied(),
        )?,
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

/// Claims run `id` of `tenant` if it is runnable now.
pub(super) fn claim_one(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    id: &RunId,
    req: &ClaimRequest,
    now: Millis,
) -> Result<Option<Claimed>> {
    let candidate: Option<String> = conn
        .prepare_cached(&RUNNABLE)?
        .query_row(params![now, id.0.as_bytes(), tenant], |r| r.get(0))
        .optional()?;
    match candidate {
        None => Ok(None),
        Some(status) => {
            take_lease(conn, codec, id.0.as_bytes(), status == "running", req, now).map(Some)
        }
    }
}

/// The creator's roles and the run's origin, kept beside the run's row.
pub(super) fn load_roles(
    conn: &Connection,
    id: &RunId,
) -> Result<(Vec<String>, agentd_core::RunOrigin)> {
    let (roles, origin): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT roles, origin FROM runs WHERE id = ?1")?
        .query_row(params![id.0.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((
        crate::codec::parse_opt("roles", roles)?.unwrap_or_default(),
        crate::codec::parse_opt("origin", origin)?.unwrap_or_default(),
    ))
}

pub(super) fn load_steps(conn: &Connection, codec: &Codec, id: &RunId) -> Result<Vec<Step>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        step_cols!(),
        " FROM steps WHERE run_id = ?1 ORDER BY idx"
    ))?;
    let records = read_steps(&mut stmt, codec, id, params![id.0.as_bytes()])?;
    Ok(migrate_journal(*id, records)?)
}

pub(super) fn load_history(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    conv: &ConversationId,
    limit: Option<u32>,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(
        "SELECT run_id, message FROM (SELECT seq, run_id, message FROM messages \
         WHERE tenant = ?1 AND conversation_id = ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![tenant, conv.as_str(), limit.map_or(-1, i64::from)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let run = rows::run_id(&row.get::<_, Vec<u8>>(0)?)?;
        out.push(codec.parse(Field::of(&run, "messages.message"), row.get(1)?)?);
    }
    Ok(out)
}

rendered! {
    /// Extends a held lease.
    pub(super) static HEARTBEAT = "UPDATE runs SET lease_until = ?1 \
        WHERE id = ?2 AND tenant = ?3 AND lease_token = ?4 AND status {journal}";
}

rendered! {
    /// Gives a leased run back to the queue.
    pub(super) static RELEASE = "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
        available_at = ?1, updated_at = ?1 \
        WHERE id = ?2 AND tenant = ?3 AND lease_token = ?4 AND status {release}";
}

rendered! {
    /// Gives every lease of an owner back to the queue.
    pub(super) static RELEASE_OWNER = "UPDATE runs SET status = 'queued', lease_owner = NULL, \
        lease_until = NULL, available_at = ?1, updated_at = ?1, attempt = attempt + 1 \
        WHERE lease_owner = ?2 AND status {release}";
}

/// [`Store::claim_batch`](crate::Store::claim_batch) on this backend.
pub(super) async fn claim_batch(
    store: &SqliteStore,
    req: &ClaimRequest,
    max: u32,
) -> Result<Vec<Claimed>> {
    let req = req.clone();
    let max = max.clamp(1, crate::MAX_CLAIM_BATCH) as usize;
    store
        .write(move |conn, now, codec| {
            let mut claimed = Vec::new();
            // A claimed run is no longer runnable, so each pass finds the
            // next one.
            while claimed.len() < max {
                let candidate: Option<(Vec<u8>, String)> = conn
                    .prepare_cached(&NEXT_RUNNABLE)?
                    .query_row(params![now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((id, status)) = candidate else { break };
                claimed.push(take_lease(
                    conn,
                    codec,
                    &id,
                    status == "running",
                    &req,
                    now,
                )?);
            }
            Ok(claimed)
        })
        .await
}

/// [`Store::claim_run`](crate::Store::claim_run) on this backend.
pub(super) async fn claim_run(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    req: &ClaimRequest,
) -> Result<Option<Claimed>> {
    let tenant = tenant.clone();
    let req = req.clone();
    store
        .write(move |conn, now, codec| claim_one(conn, codec, tenant.as_str(), &id, &req, now))
        .await
}

/// [`Store::heartbeat`](crate::Store::heartbeat) on this backend.
pub(super) async fn heartbeat(
    store: &SqliteStore,
    lease: &Lease,
    lease_for: Duration,
) -> Result<()> {
    let lease = lease.clone();
    store
        .write(move |conn, now, _| {
            let n = conn.prepare_cached(&HEARTBEAT)?.execute(params![
                now + lease_for.as_millis() as i64,
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ])?;
            if n == 0 {
                return Err(StoreError::LeaseLost { run: lease.run_id });
            }
            Ok(())
        })
        .await
}

/// [`Store::release`](crate::Store::release) on this backend.
pub(super) async fn release(store: &SqliteStore, lease: &Lease) -> Result<()> {
    let lease = lease.clone();
    store
        .write(move |conn, now, _| {
            conn.prepare_cached(&RELEASE)?.execute(params![
                now,
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ])?;
            Ok(())
        })
        .await
}

/// [`Store::release_owner`](crate::Store::release_owner) on this backend.
pub(super) async fn release_owner(store: &SqliteStore, owner: &str) -> Result<u64> {
    let owner = owner.to_string();
    store
        .write(move |conn, now, _| {
            let n = conn
                .prepare_cached(&RELEASE_OWNER)?
                .execute(params![now, owner])?;
            Ok(n as u64)
        })
        .await
}
