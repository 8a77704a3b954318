//! The SQLite journal: a lease holder appends steps, pauses the run or
//! ends its attempt.

use super::*;

pub(super) fn insert_step(
    conn: &Connection,
    codec: &Codec,
    run: &RunId,
    step: &Step,
) -> Result<()> {
    let field = |column| Field::step(run, step.index, column);
    conn.prepare_cached(
        "INSERT INTO steps (run_id, idx, kind, name, status, attempt, started_at, duration_ms, \
         input, output, error, input_tokens, output_tokens, v, call_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        run.0.as_bytes(),
        step.index,
        step.kind.as_str(),
        step.name,
        step.status.as_str(),
        step.attempt,
        step.started_at,
        step.duration_ms as i64,
        codec.seal_json(field("steps.input"), &step.input)?,
        codec.seal_json(field("steps.output"), &step.output)?,
        codec.seal_opt(field("steps.error"), step.error.as_ref())?,
        step.usage.map(|u| u.input_tokens as i64),
        step.usage.map(|u| u.output_tokens as i64),
        SCHEMA_VERSION,
        step.call_id,
    ])?;
    Ok(())
}

/// Journals `writes` under the lease and adds their totals to the run; fails
/// with `LeaseLost` if the lease token moved on. `lease_until` extends the
/// lease; `None` means the attempt ends with this write (pause or finish).
///
/// Model spending goes to the tenant's and the principal's budget periods
/// in the same transaction, and the run's budget reservation ends once what it covered
/// is spent or the attempt is over.
pub(super) fn journal_steps(
    conn: &Connection,
    codec: &Codec,
    lease: &Lease,
    writes: &[StepWrite],
    now: Millis,
    lease_until: Option<Millis>,
) -> Result<()> {
    let Added { cost, principal } = add_steps(conn, codec, lease, writes, now, lease_until)?;
    if cost > 0.0 {
        conn.prepare_cached(
            "UPDATE tenant_budgets SET spent_usd = spent_usd + ?1 WHERE tenant = ?2",
        )?
        .execute(params![cost, lease.tenant.as_str()])?;
        // A principal without a budget has no row: nothing to add to.
        conn.prepare_cached(
            "UPDATE principal_budgets SET spent_usd = spent_usd + ?1 \
             WHERE tenant = ?2 AND principal = ?3",
        )?
        .execute(params![cost, lease.tenant.as_str(), principal])?;
    }
    if cost > 0.0 || lease_until.is_none() {
        release_reservation(conn, &lease.run_id)?;
    }
    Ok(())
}

/// What a write added to its run.
pub(super) struct Added {
    /// What its steps cost.
    pub(super) cost: f64,
    /// The run's principal (empty when nothing was written).
    pub(super) principal: String,
}

/// Inserts the steps and adds their totals to the fenced run, and its
/// model steps' to the run's sums per provider.
pub(super) fn add_steps(
    conn: &Connection,
    codec: &Codec,
    lease: &Lease,
    writes: &[StepWrite],
    now: Millis,
    lease_until: Option<Millis>,
) -> Result<Added> {
    let Some(last) = writes.last() else {
        // Still check the lease: callers rely on it.
        check_lease(conn, lease)?;
        return Ok(Added {
            cost: 0.0,
            principal: String::new(),
        });
    };
    let (i, o, c) = writes.iter().fold((0i64, 0i64, 0f64), |(i, o, c), w| {
        (
            i + w.usage.input_tokens as i64,
            o + w.usage.output_tokens as i64,
            c + w.cost_usd,
        )
    });
    let (principal, created_at): (String, Millis) = conn
        .prepare_cached(&ADD_STEPS)?
        .query_row(
            params![
                i64::from(last.step.index) + 1,
                i,
                o,
                c,
                now,
                lease_until,
                lease.run_id.0.as_bytes(),
                lease.tenant.as_str(),
                lease.token
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::LeaseLost { run: lease.run_id })?;
    for w in writes {
        insert_step(conn, codec, &lease.run_id, &w.step)?;
    }
    // One row per provider, as the PostgreSQL statement groups them.
    let mut by_provider: Vec<(&str, i64, i64, f64)> = Vec::new();
    for w in writes
        .iter()
        .filter(|w| w.step.kind == agentd_core::StepKind::Llm)
    {
        let usage = w.step.usage.unwrap_or_default();
        let at = match by_provider.iter().position(|p| p.0 == w.step.name) {
            Some(at) => at,
            None => {
                by_provider.push((&w.step.name, 0, 0, 0.0));
                by_provider.len() - 1
            }
        };
        let sums = &mut by_provider[at];
        sums.1 += usage.input_tokens as i64;
        sums.2 += usage.output_tokens as i64;
        sums.3 += w.cost_usd;
    }
    for (provider, input, output, cost) in by_provider {
        conn.prepare_cached(
            "INSERT INTO run_provider_usage \
             (run_id, provider, tenant, created_at, input_tokens, output_tokens, cost_usd) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (run_id, provider) DO UPDATE SET \
             input_tokens = input_tokens + excluded.input_tokens, \
             output_tokens = output_tokens + excluded.output_tokens, \
             cost_usd = cost_usd + excluded.cost_usd",
        )?
        .execute(params![
            lease.run_id.0.as_bytes(),
            provider,
            lease.tenant.as_str(),
            created_at,
            input,
            output,
            cost
        ])?;
    }
    Ok(Added { cost: c, principal })
}

rendered! {
    /// Adds a write's steps and totals to the run under its lease.
    pub(super) static ADD_STEPS = "UPDATE runs SET steps = ?1, input_tokens = input_tokens + ?2, \
        output_tokens = output_tokens + ?3, cost_usd = cost_usd + ?4, updated_at = ?5, \
        lease_until = COALESCE(?6, lease_until) \
        WHERE id = ?7 AND tenant = ?8 AND lease_token = ?9 AND status {journal} \
        RETURNING principal, created_at";
}

rendered! {
    /// Ends an attempt under its lease.
    pub(super) static FINISH = concat!(
        "UPDATE runs SET status = ?1, output = ?2, error = ?3, lease_owner = NULL, \
         lease_until = NULL, updated_at = ?4, available_at = COALESCE(?8, available_at), \
         attempt = attempt + ?9, output_json = ?10 \
         WHERE id = ?5 AND tenant = ?6 AND lease_token = ?7 AND status {finish} RETURNING ",
        run_cols!()
    );
}

/// [`Store::append_steps`](crate::Store::append_steps) on this backend.
pub(super) async fn append_steps(
    store: &SqliteStore,
    lease: &Lease,
    writes: &[StepWrite],
    lease_for: Duration,
) -> Result<()> {
    let lease = lease.clone();
    let writes = writes.to_vec();
    store
        .write(move |conn, now, codec| {
            journal_steps(
                conn,
                codec,
                &lease,
                &writes,
                now,
                Some(now + lease_for.as_millis() as i64),
            )
        })
        .await
}

/// [`Store::pause_run`](crate::Store::pause_run) on this backend.
pub(super) async fn pause_run(
    store: &SqliteStore,
    lease: &Lease,
    writes: &[StepWrite],
    pause: &Pause,
) -> Result<Run> {
    let lease = lease.clone();
    let writes = writes.to_vec();
    let pause = pause.clone();
    store
        .write(move |conn, now, codec| {
            journal_steps(conn, codec, &lease, &writes, now, None)?;
            let run = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET status = 'paused', pause = ?1, lease_owner = NULL, \
                 lease_until = NULL, updated_at = ?2 WHERE id = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(
                    params![
                        codec.seal_json(Field::of(&lease.run_id, "runs.pause"), &pause)?,
                        now,
                        lease.run_id.0.as_bytes()
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )??;
            let detail = serde_json::json!({ "question": pause.question });
            insert_audit(
                conn,
                codec,
                lease.tenant.as_str(),
                &lease.run_id,
                now,
                "agent",
                "paused",
                Some(&detail),
            )?;
            Ok(run)
        })
        .await
}

/// Appends a finished run's messages to its conversation, numbered after
/// the conversation's last one.
fn append_messages(
    conn: &Connection,
    codec: &Codec,
    lease: &Lease,
    conv: &ConversationId,
    messages: &[Message],
    now: Millis,
) -> Result<()> {
    let next: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages \
             WHERE tenant = ?1 AND conversation_id = ?2",
        )?
        .query_row(params![lease.tenant.as_str(), conv.as_str()], |r| r.get(0))?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (tenant, conversation_id, seq, run_id, message, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, m) in (next..).zip(messages) {
        insert.execute(params![
            lease.tenant.as_str(),
            conv.as_str(),
            seq,
            lease.run_id.0.as_bytes(),
            codec.seal_json(Field::of(&lease.run_id, "messages.message"), m)?,
            now
        ])?;
    }
    Ok(())
}

/// [`Store::finish_run`](crate::Store::finish_run) on this backend.
pub(super) async fn finish_run(
    store: &SqliteStore,
    lease: &Lease,
    writes: &[StepWrite],
    outcome: &Outcome,
) -> Result<Run> {
    let lease = lease.clone();
    let writes = writes.to_vec();
    let outcome = outcome.clone();
    store
        .write(move |conn, now, codec| {
            journal_steps(conn, codec, &lease, &writes, now, None)?;
            let field = |column| Field::of(&lease.run_id, column);
            let (output, output_json) = outcome.sealed_outputs(codec, &lease.run_id)?;
            let error = outcome
                .error()
                .map(|e| codec.seal_json(field("runs.error"), e))
                .transpose()?;
            // A retry is due after its delay, as the next attempt.
            let delay = outcome.retry_delay();
            let available_at = delay.map(|d| now + d.as_millis() as i64);
            let run = conn
                .prepare_cached(&FINISH)?
                .query_row(
                    params![
                        outcome.status().as_str(),
                        output,
                        error,
                        now,
                        lease.run_id.0.as_bytes(),
                        lease.tenant.as_str(),
                        lease.token,
                        available_at,
                        i64::from(delay.is_some()),
                        output_json,
                    ],
                    |row| Ok(rows::run(codec, row, 0)),
                )
                .optional()?
                .ok_or(StoreError::LeaseLost { run: lease.run_id })??;
            if let (Outcome::Succeeded { messages, .. }, Some(conv)) =
                (&outcome, &run.conversation_id)
            {
                append_messages(conn, codec, &lease, conv, messages, now)?;
            }
            insert_audit(
                conn,
                codec,
                lease.tenant.as_str(),
                &lease.run_id,
                now,
                "agent",
                outcome.event(),
                outcome.audit_detail().as_ref(),
            )?;
            Ok(run)
        })
        .await
}
