//! The caller side of the SQLite store: creating, reading and listing
//! runs, their journals and conversations, and the state
//! changes a caller asks for (cancel, requeue, resume).

use super::*;
use crate::codec::list_runs_index;

// ---- statements shared by the operations (all run inside a transaction) ----

pub(super) fn fetch_run(
    conn: &Connection,
    codec: &Codec,
    tenant: &str,
    id: &RunId,
) -> Result<Option<Run>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        run_cols!(),
        " FROM runs WHERE id = ?1 AND tenant = ?2"
    ))?;
    let mut rows = stmt.query(params![id.0.as_bytes(), tenant])?;
    match rows.next()? {
        Some(row) => Ok(Some(rows::run(codec, row, 0)?)),
        None => Ok(None),
    }
}

/// A run id that is already taken is the caller's conflict, not a store
/// failure.
pub(super) fn duplicate_run(e: rusqlite::Error, id: &RunId) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Duplicate {
                what: format!("run {id}"),
            }
        }
        e => e.into(),
    }
}

/// Reads the step records of run `run` a `SELECT step_cols!()` statement
/// returns.
pub(super) fn read_steps(
    stmt: &mut CachedStatement<'_>,
    codec: &Codec,
    run: &RunId,
    params: impl Params,
) -> Result<Vec<StepRecord>> {
    let mut rows = stmt.query(params)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(rows::step(codec, run, row)?);
    }
    Ok(records)
}

/// Records the run's idempotency key, or, if the key was used before with
/// the same request, the run it created then (`IdempotencyConflict` if
/// with another request).
fn take_idempotency_key(
    conn: &Connection,
    codec: &Codec,
    tenant: &TenantId,
    new: &NewRun,
    now: Millis,
) -> Result<Option<Created>> {
    let Some(idem) = &new.idempotency else {
        return Ok(None);
    };
    let seen: Option<(Vec<u8>, String)> = conn
        .prepare_cached(
            "SELECT run_id, fingerprint FROM idempotency_keys \
         WHERE tenant = ?1 AND key = ?2",
        )?
        .query_row(params![tenant.as_str(), idem.key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((id, fingerprint)) = seen {
        if fingerprint != idem.fingerprint {
            return Err(StoreError::IdempotencyConflict {
                key: idem.key.clone(),
            });
        }
        let id = rows::run_id(&id)?;
        let run = fetch_run(conn, codec, tenant.as_str(), &id)?
            .ok_or_else(|| corrupt(format_args!("idempotent run {id} vanished")))?;
        return Ok(Some(Created {
            run,
            claimed: None,
            replayed: true,
            interrupted: Vec::new(),
        }));
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (tenant, key, run_id, fingerprint, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        tenant.as_str(),
        idem.key,
        new.id.0.as_bytes(),
        idem.fingerprint,
        now
    ])?;
    Ok(None)
}

/// The tenant's queued and running runs: kept by triggers on `runs`
/// (migration 0011), so the check costs one lookup however long the queue.
const COUNT_ACTIVE: &str = "SELECT n FROM active_runs WHERE tenant = ?1";

/// Refuses a create when the tenant has `max` runs queued or running.
/// Inside the writer's transaction: every write of every process is
/// serialized (`BEGIN IMMEDIATE`), so no other create can slip in between
/// the count and the insert.
fn check_active(conn: &Connection, tenant: &TenantId, max: u32) -> Result<()> {
    let active: i64 = conn
        .prepare_cached(COUNT_ACTIVE)?
        .query_row(params![tenant.as_str()], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if active >= i64::from(max) {
        return Err(StoreError::TooManyActiveRuns { limit: max });
    }
    Ok(())
}

/// Inserts `new` as a queued run of `tenant`, with no audit record.
pub(super) fn insert_run(
    conn: &Connection,
    codec: &Codec,
    tenant: &TenantId,
    new: &NewRun,
    now: Millis,
) -> Result<Run> {
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT INTO runs (id, tenant, agent, principal, conversation_id, status, input, \
     metadata, created_at, updated_at, available_at, v, roles, origin, agent_version, \
     callbacks) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?8, ?8, ?9, ?10, ?11, ?12, ?13) \
     RETURNING ",
        run_cols!()
    ))?;
    stmt.query_row(
        params![
            new.id.0.as_bytes(),
            tenant.as_str(),
            new.agent,
            new.principal.as_str(),
            new.conversation_id.as_ref().map(|c| c.as_str()),
            codec.seal_json(Field::of(&new.id, "runs.input"), &new.input)?,
            codec.seal_opt(Field::of(&new.id, "runs.metadata"), new.metadata.as_ref())?,
            now,
            SCHEMA_VERSION,
            to_json(&new.roles)?,
            crate::codec::origin_json(&new.origin)?,
            new.agent_version,
            crate::codec::callbacks_json(&new.callbacks)?,
        ],
        |row| Ok(rows::run(codec, row, 0)),
    )
    .map_err(|e| duplicate_run(e, &new.id))?
}

/// [`Store::create_run_capped`](crate::Store::create_run_capped) on this
/// backend, and with `tick`
/// [`Store::create_scheduled_run`](crate::Store::create_scheduled_run):
/// `None` when the tick is not later than the schedule's recorded one.
pub(super) async fn create_ticked(
    store: &SqliteStore,
    tenant: &TenantId,
    run: &NewRun,
    claim: Option<&ClaimRequest>,
    max_active: Option<u32>,
    tick: Option<crate::schedule::Tick<'_>>,
) -> Result<Option<Created>> {
    let tenant = tenant.clone();
    let new = run.clone();
    let claim = claim.cloned();
    let tick = tick.map(|t| (t.schedule.to_owned(), t.at));
    store
        .write(move |conn, now, codec| {
            if let Some((schedule, at)) = &tick
                && !super::schedules::record_tick(conn, &tenant, schedule, *at, &new.id)?
            {
                return Ok(None);
            }
            if let Some(replayed) = take_idempotency_key(conn, codec, &tenant, &new, now)? {
                return Ok(Some(replayed));
            }
            // After the replay check (a retried request gets its run even
            // at the cap); a refusal undoes the key just recorded, as the
            // job's savepoint is rolled back.
            if let Some(max) = max_active {
                check_active(conn, &tenant, max)?;
            }
            let interrupted = match &new.conversation_id {
                Some(conv) => settle_busy(conn, codec, &tenant, conv, &new, now)?,
                None => Vec::new(),
            };
            let created = insert_run(conn, codec, &tenant, &new, now)?;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &new.id,
                now,
                new.principal.as_str(),
                "created",
                None,
            )?;
            let claimed = match &claim {
                Some(req) => claim_one(conn, codec, tenant.as_str(), &new.id, req, now)?,
                None => None,
            };
            Ok(Some(Created {
                run: claimed.as_ref().map_or(created, |c| c.journal.run.clone()),
                claimed,
                replayed: false,
                interrupted,
            }))
        })
        .await
}

/// [`Store::get_run`](crate::Store::get_run) on this backend.
pub(super) async fn get_run(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
) -> Result<Option<Run>> {
    let tenant = tenant.clone();
    store
        .read(move |c, codec| fetch_run(c, codec, tenant.as_str(), &id))
        .await
}

/// [`Store::list_runs`](crate::Store::list_runs) on this backend.
pub(super) async fn list_runs(
    store: &SqliteStore,
    tenant: &TenantId,
    filter: &RunFilter,
) -> Result<Page<Run>> {
    let limit = filter.limit.clamp(1, 1000);
    let cursor = crate::codec::run_cursor(filter)?;
    let tenant = tenant.as_str().to_string();
    let agent = filter.agent.clone();
    let conversation = filter.conversation_id.as_ref().map(|c| c.to_string());
    let statement = match conversation {
        Some(_) => LIST_BY_CONVERSATION,
        None => list_runs_sql(list_runs_index(agent.is_some(), filter.status)),
    };
    let status = filter.status.map(|s| s.as_str());
    let bound = crate::codec::list_upper_bound(cursor, filter);
    let mut items = store
        .read(move |c, codec| {
            let mut stmt = c.prepare_cached(statement)?;
            let below: &[u8] = &bound;
            let fetch = i64::from(limit) + 1;
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&tenant, &below, &fetch];
            match &conversation {
                Some(conversation) => args.extend([
                    conversation as &dyn rusqlite::ToSql,
                    &agent as &dyn rusqlite::ToSql,
                    &status as &dyn rusqlite::ToSql,
                ]),
                None => {
                    args.extend(agent.as_ref().map(|a| a as &dyn rusqlite::ToSql));
                    args.extend(status.as_ref().map(|s| s as &dyn rusqlite::ToSql));
                }
            }
            let mut rows = stmt.query(&args[..])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(rows::run(codec, row, 0)?);
            }
            Ok(out)
        })
        .await?;
    crate::codec::cut_at_since(&mut items, filter);
    Ok(page(items, limit, |r| r.id.to_string()))
}

/// [`Store::list_steps`](crate::Store::list_steps) on this backend.
pub(super) async fn list_steps(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    after: Option<u32>,
    limit: u32,
) -> Result<Option<Page<Step>>> {
    let limit = limit.clamp(1, 1000);
    let tenant = tenant.clone();
    let items = store
        .read(move |c, codec| {
            let exists: Option<i64> = c
                .prepare_cached("SELECT 1 FROM runs WHERE id = ?1 AND tenant = ?2")?
                .query_row(params![id.0.as_bytes(), tenant.as_str()], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let mut stmt = c.prepare_cached(LIST_STEPS)?;
            let page = read_steps(
                &mut stmt,
                codec,
                &id,
                params![
                    id.0.as_bytes(),
                    after.map_or(-1, i64::from),
                    i64::from(limit) + 1
                ],
            )?;
            // Older records are migrated with the journal before them.
            let page = match migration_prefix(&page) {
                None => page,
                Some(last) => read_steps(
                    &mut c.prepare_cached(concat!(
                        "SELECT ",
                        step_cols!(),
                        " FROM steps WHERE run_id = ?1 AND idx <= ?2 ORDER BY idx"
                    ))?,
                    codec,
                    &id,
                    params![id.0.as_bytes(), last],
                )?,
            };
            Ok(Some(in_page(migrate_journal(id, page)?, after)))
        })
        .await?;
    Ok(items.map(|items| page(items, limit, |s| s.index.to_string())))
}

/// [`Store::list_messages`](crate::Store::list_messages) on this backend.
pub(super) async fn list_messages(
    store: &SqliteStore,
    tenant: &TenantId,
    conversation: &ConversationId,
    after: Option<u64>,
    limit: u32,
) -> Result<Page<ConversationMessage>> {
    let limit = limit.clamp(1, 1000);
    let tenant = tenant.clone();
    let conversation = conversation.clone();
    let items = store
        .read(move |c, codec| {
            let mut stmt = c.prepare_cached(LIST_MESSAGES)?;
            let mut rows = stmt.query(params![
                tenant.as_str(),
                conversation.as_str(),
                i64::try_from(after.unwrap_or(0)).unwrap_or(i64::MAX),
                i64::from(limit) + 1
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::row::message(codec, row)?);
            }
            Ok(out)
        })
        .await?;
    Ok(page(items, limit, |m| m.seq.to_string()))
}

/// Cancels a run, revoking its lease: `?1` error, `?2` now, `?3` id,
/// `?4` tenant. Bumping the token revokes a running run's lease: its
/// worker's next write fails and it stops.
const CANCEL: &str = concat!(
    "UPDATE runs SET status = 'cancelled', error = ?1, pause = NULL, \
     lease_owner = NULL, lease_until = NULL, lease_token = lease_token + 1, \
     updated_at = ?2 WHERE id = ?3 AND tenant = ?4 RETURNING ",
    run_cols!()
);

/// Queues a dead run again as a first attempt: `?1` now, `?2` id, `?3`
/// tenant.
const REQUEUE: &str = concat!(
    "UPDATE runs SET status = 'queued', error = NULL, attempt = 1, \
     available_at = ?1, updated_at = ?1 WHERE id = ?2 AND tenant = ?3 RETURNING ",
    run_cols!()
);

/// A caller's change to a run, in one write: it applies only if `change`
/// does to the run as it is now; then `update` (returning the run's
/// columns, bound to `params`) applies it, and the audit trail records
/// `event` by `actor`.
#[allow(clippy::too_many_arguments)] // the change and the row it touches
fn apply_change(
    conn: &Connection,
    codec: &Codec,
    tenant: &TenantId,
    id: &RunId,
    actor: &PrincipalId,
    now: Millis,
    (change, event): (Change, &str),
    (update, params): (&str, impl Params),
) -> Result<Transition> {
    if let Err(refused) = admit(change, fetch_run(conn, codec, tenant.as_str(), id)?) {
        return Ok(refused.into());
    }
    let run = conn
        .prepare_cached(update)?
        .query_row(params, |row| Ok(rows::run(codec, row, 0)))??;
    insert_audit(
        conn,
        codec,
        tenant.as_str(),
        id,
        now,
        actor.as_str(),
        event,
        None,
    )?;
    Ok(Transition::Done(run, None))
}

/// `new.if_busy` against the conversation's unfinished runs (queued,
/// running, paused), in the creating transaction: `reject` refuses the
/// create, `interrupt` cancels them (a running one's lease is revoked, so
/// its worker stops at its next write) and answers them.
fn settle_busy(
    conn: &Connection,
    codec: &Codec,
    tenant: &TenantId,
    conv: &ConversationId,
    new: &NewRun,
    now: Millis,
) -> Result<Vec<Run>> {
    if new.if_busy == IfBusy::Enqueue {
        return Ok(Vec::new());
    }
    let busy: Vec<(RunId, String)> = conn
        .prepare_cached(
            "SELECT id, status FROM runs WHERE tenant = ?1 AND conversation_id = ?2 \
             AND status IN ('queued', 'running', 'paused') ORDER BY id",
        )?
        .query_map(params![tenant.as_str(), conv.as_str()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?
        .map(|row| {
            let (id, status) = row?;
            Ok((rows::run_id(&id)?, status))
        })
        .collect::<Result<_>>()?;
    if new.if_busy == IfBusy::Reject {
        return match busy.into_iter().next() {
            Some(first) => Err(conversation_busy(conv, first)),
            None => Ok(Vec::new()),
        };
    }
    let mut cancelled = Vec::with_capacity(busy.len());
    for (id, _) in busy {
        let error = codec.seal_json(
            Field::of(&id, "runs.error"),
            &interrupted_by(&new.id, &new.principal),
        )?;
        let params = params![error, now, id.0.as_bytes(), tenant.as_str()];
        let change = (Change::Cancel, "cancelled");
        let t = apply_change(
            conn,
            codec,
            tenant,
            &id,
            &new.principal,
            now,
            change,
            (CANCEL, params),
        )?;
        if let Transition::Done(run, _) = t {
            cancelled.push(run);
        }
    }
    Ok(cancelled)
}

/// [`Store::cancel_run`](crate::Store::cancel_run) on this backend.
pub(super) async fn cancel_run(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    actor: &PrincipalId,
) -> Result<Transition> {
    let tenant = tenant.clone();
    let actor = actor.clone();
    store
        .write(move |conn, now, codec| {
            let error = codec.seal_json(Field::of(&id, "runs.error"), &cancelled_by(&actor))?;
            let params = params![error, now, id.0.as_bytes(), tenant.as_str()];
            let change = (Change::Cancel, "cancelled");
            apply_change(
                conn,
                codec,
                &tenant,
                &id,
                &actor,
                now,
                change,
                (CANCEL, params),
            )
        })
        .await
}

/// [`Store::requeue_dead`](crate::Store::requeue_dead) on this backend.
pub(super) async fn requeue_dead(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    actor: &PrincipalId,
) -> Result<Transition> {
    let tenant = tenant.clone();
    let actor = actor.clone();
    store
        .write(move |conn, now, codec| {
            let params = params![now, id.0.as_bytes(), tenant.as_str()];
            let change = (Change::Requeue, "requeued");
            apply_change(
                conn,
                codec,
                &tenant,
                &id,
                &actor,
                now,
                change,
                (REQUEUE, params),
            )
        })
        .await
}

/// [`Store::resume_run`](crate::Store::resume_run) on this backend.
pub(super) async fn resume_run(
    store: &SqliteStore,
    tenant: &TenantId,
    id: RunId,
    answer: &serde_json::Value,
    actor: &PrincipalId,
    claim: Option<&ClaimRequest>,
) -> Result<Transition> {
    let tenant = tenant.clone();
    let actor = actor.clone();
    let answer = answer.clone();
    let claim = claim.cloned();
    store
        .write(move |conn, now, codec| {
            let step = match waiting_step(fetch_run(conn, codec, tenant.as_str(), &id)?) {
                Ok(step) => step,
                Err(answer) => return Ok(answer.into()),
            };
            let n = conn
                .prepare_cached(
                    "UPDATE steps SET status = 'completed', output = ?1, \
                 duration_ms = MAX(0, ?2 - started_at) \
                 WHERE run_id = ?3 AND idx = ?4 AND status = 'waiting'",
                )?
                .execute(params![
                    codec.seal_json(Field::step(&id, step, "steps.output"), &answer)?,
                    now,
                    id.0.as_bytes(),
                    step
                ])?;
            if n != 1 {
                return Err(no_waiting_step(&id, step));
            }
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'queued', pause = NULL, available_at = ?1, \
                 updated_at = ?1 WHERE id = ?2 AND tenant = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(params![now, id.0.as_bytes(), tenant.as_str()], |row| {
                    Ok(rows::run(codec, row, 0))
                })??;
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &id,
                now,
                actor.as_str(),
                "resumed",
                None,
            )?;
            let claimed = match &claim {
                Some(req) => claim_one(conn, codec, tenant.as_str(), &id, req, now)?,
                None => None,
            };
            Ok(done(run, claimed))
        })
        .await
}
