//! The PostgreSQL journal: a lease holder appends steps, pauses the run
//! or ends its attempt, through the group commit of [`super::batch`].

use super::*;

/// [`Store::append_steps`](crate::Store::append_steps) on this backend.
pub(super) async fn append_steps(
    store: &PgStore,
    lease: &Lease,
    writes: &[StepWrite],
    lease_for: Duration,
) -> Result<()> {
    if writes.is_empty() {
        // Nothing to write; still tell the caller whether it holds the
        // lease.
        let held: bool = sqlx::query_scalar(sql::HOLDS_LEASE.as_str())
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(lease.token)
            .fetch_one(&store.pool)
            .await?;
        return if held {
            Ok(())
        } else {
            Err(StoreError::LeaseLost { run: lease.run_id })
        };
    }
    let totals = Totals::of(writes);
    // Spending settles the run's reservation.
    let settles = totals.cost_usd > 0.0;
    if settles {
        store.set_reserved(lease.run_id, false);
    }
    store
        .batcher
        .append(AppendRow {
            lease: lease.clone(),
            steps: StepColumns::of(&store.codec, &lease.run_id, writes)?,
            totals,
            lease_ms: lease_ms(lease_for),
            settles,
        })
        .await
}

/// [`Store::pause_run`](crate::Store::pause_run) on this backend.
pub(super) async fn pause_run(
    store: &PgStore,
    lease: &Lease,
    writes: &[StepWrite],
    pause: &Pause,
) -> Result<Run> {
    let field = |column| Field::of(&lease.run_id, column);
    let detail = serde_json::json!({ "question": pause.question });
    // The pause settles and releases whatever the run reserved.
    store.set_reserved(lease.run_id, false);
    let mut w = WriteColumns::default();
    w.push(lease, &Totals::of(writes));
    let steps = StepColumns::of(&store.codec, &lease.run_id, writes)?;
    let q = w
        .bind(StepColumns::bind(
            sqlx::query(sql::PAUSE.as_str()),
            &[&steps],
        ))
        .bind([store.codec.seal_json(field("runs.pause"), pause)?])
        .bind([store.codec.seal_json(field("audit.detail"), &detail)?]);
    let row = StepColumns::bind_costs(q, &[&steps])
        .fetch_optional(&store.pool)
        .await?
        .ok_or(StoreError::LeaseLost { run: lease.run_id })?;
    store.committed();
    rows::run(&store.codec, &row, 0)
}

/// [`Store::finish_run`](crate::Store::finish_run) on this backend.
pub(super) async fn finish_run(
    store: &PgStore,
    lease: &Lease,
    writes: &[StepWrite],
    outcome: &Outcome,
) -> Result<Run> {
    let codec = &store.codec;
    let field = |column| Field::of(&lease.run_id, column);
    let (output, output_json) = outcome.sealed_outputs(codec, &lease.run_id)?;
    let messages = match outcome {
        Outcome::Succeeded { messages, .. } => messages
            .iter()
            .map(|m| codec.seal_json(field("messages.message"), m))
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let delay = outcome.retry_delay();
    let totals = Totals::of(writes);
    let settles = store.set_reserved(lease.run_id, false) || totals.cost_usd > 0.0;
    let run = store
        .batcher
        .finish(FinishRow {
            lease: lease.clone(),
            steps: StepColumns::of(codec, &lease.run_id, writes)?,
            totals,
            settles,
            status: outcome.status().as_str(),
            output,
            output_json,
            error: outcome
                .error()
                .map(|e| codec.seal_json(field("runs.error"), e))
                .transpose()?,
            detail: outcome
                .audit_detail()
                .map(|d| codec.seal_json(field("audit.detail"), &d))
                .transpose()?,
            delay_ms: delay.map(lease_ms),
            attempts: i32::from(delay.is_some()),
            event: outcome.event(),
            messages,
        })
        .await?;
    // The next run of its conversation may be runnable now.
    if run.conversation_id.is_some() && run.status.is_terminal() {
        store.announce_queued();
    }
    Ok(run)
}
