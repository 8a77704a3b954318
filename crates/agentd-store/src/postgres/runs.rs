//! The caller side of the PostgreSQL store: creating, reading and
//! listing runs, their journals and conversations, and the
//! state changes a caller asks for (cancel, requeue, resume).

use super::*;

/// Reads and row-locks run `id` of `tenant` for a state change.
pub(super) async fn lock_run(
    conn: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    id: RunId,
) -> Result<Option<Run>> {
    sqlx::query(sql::LOCK_RUN)
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| rows::run(codec, &row, 0))
        .transpose()
}

pub(super) async fn lock_conversation(
    conn: &mut PgConnection,
    tenant: &TenantId,
    conv: &ConversationId,
) -> Result<()> {
    sqlx::query(sql::LOCK_CONVERSATION)
        .bind(tenant.as_str())
        .bind(conv.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Refuses a create when the tenant has `max` runs queued or running.
/// The per-tenant lock makes concurrent capped creates of every process
/// take turns, and each count is a new statement (read committed), so it
/// sees the runs the previous holder committed: the cap cannot be
/// overshot. Runs leaving the active set need no lock (they only lower
/// the count).
async fn check_active(conn: &mut PgConnection, tenant: &TenantId, max: u32) -> Result<()> {
    sqlx::query(sql::LOCK_ACTIVE_RUNS)
        .bind(tenant.as_str())
        .execute(&mut *conn)
        .await?;
    let active: i64 = sqlx::query_scalar(sql::COUNT_ACTIVE)
        .bind(tenant.as_str())
        .bind(i64::from(max))
        .fetch_one(&mut *conn)
        .await?;
    if active >= i64::from(max) {
        return Err(StoreError::TooManyActiveRuns { limit: max });
    }
    Ok(())
}

/// [`Store::create_run_capped`](crate::Store::create_run_capped) on this
/// backend, and with `tick`
/// [`Store::create_scheduled_run`](crate::Store::create_scheduled_run):
/// `None` when the tick is not later than the schedule's recorded one.
pub(super) async fn create_ticked(
    store: &PgStore,
    tenant: &TenantId,
    run: &NewRun,
    claim: Option<&ClaimRequest>,
    max_active: Option<u32>,
    tick: Option<crate::schedule::Tick<'_>>,
) -> Result<Option<Created>> {
    let conv = match (&run.conversation_id, &run.idempotency, max_active, tick) {
        (Some(conv), _, _, _) => Some(conv),
        (None, Some(_), _, _) | (None, None, Some(_), _) | (None, None, None, Some(_)) => None,
        // Group commit only when nothing must be checked first: a capped
        // create needs its count and insert in one transaction, a
        // scheduled one its tick.
        (None, None, None, None) => {
            return store.create_unconversed(tenant, run, claim).await.map(Some);
        }
    };
    // A claim, if asked for, is decided inside the transaction (the
    // conversation may have older runs active).
    let new_row = store.create_row(tenant, run, None)?;
    let mut tx = store.pool.begin().await?;
    // First: a concurrent create of the same tick waits here on the row
    // until this transaction ends, then finds the tick recorded.
    if let Some(tick) = tick
        && !super::schedules::record_tick(&mut tx, tenant, tick, run.id).await?
    {
        tx.rollback().await?;
        return Ok(None);
    }
    if let Some(idem) = &run.idempotency {
        sqlx::query(sql::LOCK_IDEMPOTENCY)
            .bind(tenant.as_str())
            .bind(&idem.key)
            .execute(&mut *tx)
            .await?;
        let seen: Option<(uuid::Uuid, String)> = sqlx::query_as(sql::GET_IDEMPOTENCY)
            .bind(tenant.as_str())
            .bind(&idem.key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((id, fingerprint)) = seen {
            tx.rollback().await?;
            if fingerprint != idem.fingerprint {
                return Err(StoreError::IdempotencyConflict {
                    key: idem.key.clone(),
                });
            }
            let run = store.get_run(tenant, RunId(id)).await?.ok_or_else(|| {
                crate::codec::corrupt(format_args!("idempotent run {id} vanished"))
            })?;
            return Ok(Some(Created {
                run,
                claimed: None,
                replayed: true,
                interrupted: Vec::new(),
            }));
        }
        sqlx::query(sql::INSERT_IDEMPOTENCY)
            .bind(tenant.as_str())
            .bind(&idem.key)
            .bind(run.id.0)
            .bind(&idem.fingerprint)
            .execute(&mut *tx)
            .await?;
    }
    // After the replay check: a retried request gets its run even at the
    // cap; a refusal rolls back the key just recorded with the rest.
    if let Some(max) = max_active {
        check_active(&mut tx, tenant, max).await?;
    }
    let mut interrupted = Vec::new();
    if let Some(conv) = conv {
        lock_conversation(&mut tx, tenant, conv).await?;
        if run.if_busy != IfBusy::Enqueue {
            interrupted = settle_busy(&mut tx, &store.codec, tenant, conv, run).await?;
        }
    }
    let row = batch::bind_creates(&[&new_row])
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| batch::create_error(e.into(), &run.id.0))?;
    let created = rows::run(&store.codec, &row, 0)?;
    let claimed = match claim {
        Some(req) => claim_one(&mut tx, &store.codec, tenant, run.id, req).await?,
        None => None,
    };
    store.commit(tx).await?;
    if claimed.is_none() {
        store.announce_queued();
    }
    if !interrupted.is_empty() {
        // The next run of the conversation (this one) may be runnable now.
        store.announce_queued();
    }
    Ok(Some(Created {
        run: claimed.as_ref().map_or(created, |c| c.journal.run.clone()),
        claimed,
        replayed: false,
        interrupted,
    }))
}

/// `new.if_busy` against the conversation's unfinished runs (queued,
/// running, paused), in the creating transaction under the conversation's
/// lock: `reject` refuses the create, `interrupt` cancels them (bumping a
/// running one's lease token, so its worker stops at its next write) and
/// answers them.
async fn settle_busy(
    tx: &mut PgConnection,
    codec: &Codec,
    tenant: &TenantId,
    conv: &ConversationId,
    new: &NewRun,
) -> Result<Vec<Run>> {
    let busy: Vec<(uuid::Uuid, String)> = sqlx::query_as(sql::BUSY_IN_CONVERSATION)
        .bind(tenant.as_str())
        .bind(conv.as_str())
        .fetch_all(&mut *tx)
        .await?;
    if new.if_busy == IfBusy::Reject {
        return match busy.into_iter().next() {
            Some((id, status)) => Err(conversation_busy(conv, (RunId(id), status))),
            None => Ok(Vec::new()),
        };
    }
    let mut cancelled = Vec::with_capacity(busy.len());
    for (id, _) in busy {
        let id = RunId(id);
        let error = codec.seal_json(
            Field::of(&id, "runs.error"),
            &interrupted_by(&new.id, &new.principal),
        )?;
        let row = sqlx::query(sql::CANCEL)
            .bind(id.0)
            .bind(tenant.as_str())
            .bind(error)
            .bind(new.principal.as_str())
            .fetch_one(&mut *tx)
            .await?;
        cancelled.push(rows::run(codec, &row, 0)?);
    }
    Ok(cancelled)
}

/// [`Store::get_run`](crate::Store::get_run) on this backend.
pub(super) async fn get_run(store: &PgStore, tenant: &TenantId, id: RunId) -> Result<Option<Run>> {
    sqlx::query(sql::GET_RUN)
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_optional(&store.pool)
        .await?
        .map(|row| rows::run(&store.codec, &row, 0))
        .transpose()
}

/// The tenant's runs below a cursor, newest first: `$1` tenant, `$2`
/// cursor (exclusive), `$3` limit, then the agent and status filters that
/// are set. Settled runs are ranges of the partial indexes `runs_by_agent`
/// and `runs_by_status` (migration 9), whose predicate `status NOT
/// {active}` each query states; active runs come from the queue's indexes
/// `runs_queued` and `runs_leased` (`active!`), and only they are sorted.
macro_rules! list_runs {
    ($filter:expr) => {
        concat!(
            "SELECT ",
            run_cols!(),
            " FROM runs WHERE tenant = $1 AND id < $2",
            $filter,
            " ORDER BY id DESC LIMIT $3"
        )
    };
}

/// Every active run, read first (`MATERIALIZED`) from the queue's partial
/// indexes `runs_queued` and `runs_leased` (`lease_owner` is set exactly
/// while a run is running), so the planner cannot choose to walk the
/// primary key instead. Their number is bounded by the runs in flight and
/// waiting in the queue, not by the store.
macro_rules! with_active {
    () => {
        concat!(
            "WITH active AS MATERIALIZED (SELECT ",
            run_cols!(),
            " FROM runs WHERE status = 'queued' UNION ALL SELECT ",
            run_cols!(),
            " FROM runs WHERE lease_owner IS NOT NULL) "
        )
    };
}

/// The tenant's active runs below the cursor that match `$filter`.
macro_rules! active {
    ($filter:expr) => {
        concat!(
            "SELECT ",
            run_cols!(),
            " FROM active WHERE tenant = $1 AND id < $2 AND status {active}",
            $filter,
            " ORDER BY id DESC LIMIT $3"
        )
    };
}

/// `settled` merged with `active`, newest first.
macro_rules! merged {
    ($settled:expr, $active:expr) => {
        concat!(
            with_active!(),
            "SELECT * FROM ((",
            $settled,
            ") UNION ALL (",
            $active,
            ")) r ORDER BY id DESC LIMIT $3"
        )
    };
}

rendered! {
    static LIST_BY_AGENT = merged!(
        list_runs!(" AND agent = $4 AND status NOT {active}"),
        active!(" AND agent = $4")
    );
}
rendered! {
    static LIST_BY_STATUS = list_runs!(" AND status = $4 AND status NOT {active}");
}
rendered! {
    static LIST_BY_AGENT_STATUS =
        list_runs!(" AND agent = $4 AND status = $5 AND status NOT {active}");
}
rendered! {
    static LIST_BY_ACTIVE_STATUS = concat!(with_active!(), active!(" AND status = $4"));
}
rendered! {
    static LIST_BY_AGENT_ACTIVE_STATUS =
        concat!(with_active!(), active!(" AND agent = $4 AND status = $5"));
}

/// All of a tenant's runs below a cursor, newest first: a merge of its
/// settled runs of each status, each a range of `runs_by_status`, and its
/// active runs, so PostgreSQL needs no `(tenant, id)` index of its own
/// (one index fewer to write on every update of a run).
static LIST_ALL_RUNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let active = agentd_core::RunStatus::ACTIVE;
    let mut branches: Vec<String> = agentd_core::RunStatus::ALL
        .iter()
        .filter(|s| !active.contains(s))
        .map(|s| {
            format!(
                "({})",
                list_runs!(" AND status = '{status}' AND status NOT {active}")
                    .replace("{status}", s.as_str())
            )
        })
        .collect();
    branches.push(format!("({})", active!("")));
    crate::status::render(&format!(
        "{}SELECT * FROM ({}) r ORDER BY id DESC LIMIT $3",
        with_active!(),
        branches.join(" UNION ALL ")
    ))
});

/// A conversation's runs below a cursor, newest first: a range of
/// `runs_by_conversation` (a conversation holds few runs), `$4` the
/// conversation, `$5` and `$6` the agent and status filters or NULL.
pub(super) const LIST_BY_CONVERSATION: &str = concat!(
    "SELECT ",
    run_cols!(),
    " FROM runs WHERE tenant = $1 AND conversation_id = $4 AND id < $2 \
     AND ($5::text IS NULL OR agent = $5) AND ($6::text IS NULL OR status = $6) \
     ORDER BY id DESC LIMIT $3"
);

/// The `list_runs` statement `index` (see `codec::list_runs_index`).
pub(super) fn list_runs_sql(index: usize) -> &'static str {
    match index {
        0 => LIST_ALL_RUNS.as_str(),
        1 => LIST_BY_AGENT.as_str(),
        2 => LIST_BY_STATUS.as_str(),
        3 => LIST_BY_AGENT_STATUS.as_str(),
        4 => LIST_BY_ACTIVE_STATUS.as_str(),
        _ => LIST_BY_AGENT_ACTIVE_STATUS.as_str(),
    }
}

/// [`Store::list_runs`](crate::Store::list_runs) on this backend.
pub(super) async fn list_runs(
    store: &PgStore,
    tenant: &TenantId,
    filter: &RunFilter,
) -> Result<Page<Run>> {
    let (limit, fetch) = limit_of(filter.limit);
    let cursor = crate::codec::run_cursor(filter)?;
    let bound = uuid::Uuid::from_bytes(crate::codec::list_upper_bound(cursor, filter));
    let statement = match filter.conversation_id {
        Some(_) => LIST_BY_CONVERSATION,
        None => list_runs_sql(crate::codec::list_runs_index(
            filter.agent.is_some(),
            filter.status,
        )),
    };
    let mut query = sqlx::query(statement)
        .bind(tenant.as_str())
        .bind(bound)
        .bind(fetch);
    match &filter.conversation_id {
        Some(conversation) => {
            query = query
                .bind(conversation.as_str())
                .bind(filter.agent.as_deref())
                .bind(filter.status.map(|s| s.as_str()));
        }
        None => {
            if let Some(agent) = filter.agent.as_deref() {
                query = query.bind(agent);
            }
            if let Some(status) = filter.status {
                query = query.bind(status.as_str());
            }
        }
    }
    let mut items = query
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|row| rows::run(&store.codec, row, 0))
        .collect::<Result<Vec<_>>>()?;
    crate::codec::cut_at_since(&mut items, filter);
    Ok(page(items, limit, |r| r.id.to_string()))
}

/// [`Store::list_steps`](crate::Store::list_steps) on this backend.
pub(super) async fn list_steps(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    after: Option<u32>,
    limit: u32,
) -> Result<Option<Page<Step>>> {
    let (limit, fetch) = limit_of(limit);
    let exists: bool = sqlx::query_scalar(sql::RUN_EXISTS)
        .bind(id.0)
        .bind(tenant.as_str())
        .fetch_one(&store.pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    let records = sqlx::query(sql::LIST_STEPS)
        .bind(id.0)
        .bind(after.map_or(-1, i64::from))
        .bind(fetch)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|row| rows::step(&store.codec, &id, row))
        .collect::<Result<Vec<_>>>()?;
    // Older records are migrated with the journal before them.
    let records = match migration_prefix(&records) {
        None => records,
        Some(last) => sqlx::query(sql::STEPS_UP_TO)
            .bind(id.0)
            .bind(int::<i32, _>(last))
            .fetch_all(&store.pool)
            .await?
            .iter()
            .map(|row| rows::step(&store.codec, &id, row))
            .collect::<Result<Vec<_>>>()?,
    };
    let items = in_page(migrate_journal(id, records)?, after);
    Ok(Some(page(items, limit, |s| s.index.to_string())))
}

/// [`Store::list_messages`](crate::Store::list_messages) on this backend.
pub(super) async fn list_messages(
    store: &PgStore,
    tenant: &TenantId,
    conversation: &ConversationId,
    after: Option<u64>,
    limit: u32,
) -> Result<Page<ConversationMessage>> {
    let (limit, fetch) = limit_of(limit);
    let items = sqlx::query(sql::LIST_MESSAGES)
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .bind(after.map_or(0, int::<i64, _>))
        .bind(fetch)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|row| crate::row::message(&store.codec, row))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |m| m.seq.to_string()))
}

/// A caller's change to a run, in one transaction: the run is locked; it
/// applies only if `change` does to the run as it is now; then `update`
/// (which audits it and returns the run's columns) applies it.
async fn apply_change(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    change: Change,
    update: rows::Query<'_>,
) -> Result<Transition> {
    let mut tx = store.pool.begin().await?;
    if let Err(refused) = admit(change, lock_run(&mut tx, &store.codec, tenant, id).await?) {
        return Ok(refused.into());
    }
    let row = update.fetch_one(&mut *tx).await?;
    let run = rows::run(&store.codec, &row, 0)?;
    store.commit(tx).await?;
    Ok(Transition::Done(run, None))
}

/// [`Store::cancel_run`](crate::Store::cancel_run) on this backend.
pub(super) async fn cancel_run(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    actor: &PrincipalId,
) -> Result<Transition> {
    let error = store
        .codec
        .seal_json(Field::of(&id, "runs.error"), &cancelled_by(actor))?;
    // Bumping the token revokes a running run's lease: its worker's next
    // write fails and it stops.
    let update = sqlx::query(sql::CANCEL)
        .bind(id.0)
        .bind(tenant.as_str())
        .bind(error)
        .bind(actor.as_str());
    let t = apply_change(store, tenant, id, Change::Cancel, update).await?;
    // The next run of its conversation may be runnable now.
    if let Transition::Done(run, _) = &t
        && run.conversation_id.is_some()
    {
        store.announce_queued();
    }
    Ok(t)
}

/// [`Store::requeue_dead`](crate::Store::requeue_dead) on this backend.
pub(super) async fn requeue_dead(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    actor: &PrincipalId,
) -> Result<Transition> {
    let update = sqlx::query(sql::REQUEUE.as_str())
        .bind(id.0)
        .bind(tenant.as_str())
        .bind(actor.as_str());
    let t = apply_change(store, tenant, id, Change::Requeue, update).await?;
    if matches!(t, Transition::Done(..)) {
        store.announce_queued();
    }
    Ok(t)
}

/// [`Store::resume_run`](crate::Store::resume_run) on this backend.
pub(super) async fn resume_run(
    store: &PgStore,
    tenant: &TenantId,
    id: RunId,
    answer: &serde_json::Value,
    actor: &PrincipalId,
    claim: Option<&ClaimRequest>,
) -> Result<Transition> {
    let mut tx = store.pool.begin().await?;
    let step = match waiting_step(lock_run(&mut tx, &store.codec, tenant, id).await?) {
        Ok(step) => step,
        Err(answer) => return Ok(answer.into()),
    };
    let row = sqlx::query(sql::RESUME)
        .bind(id.0)
        .bind(tenant.as_str())
        .bind(int::<i32, _>(step))
        .bind(
            store
                .codec
                .seal_json(Field::step(&id, step, "steps.output"), answer)?,
        )
        .bind(actor.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let answered: i64 = row.try_get(0)?;
    if answered != 1 {
        return Err(no_waiting_step(&id, step));
    }
    let resumed = rows::run(&store.codec, &row, 1)?;
    let claimed = match claim {
        Some(req) => claim_one(&mut tx, &store.codec, tenant, id, req).await?,
        None => None,
    };
    store.commit(tx).await?;
    if claimed.is_none() {
        store.announce_queued();
    }
    Ok(done(resumed, claimed))
}
