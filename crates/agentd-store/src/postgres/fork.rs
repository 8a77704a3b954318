//! Forking a run on PostgreSQL: the new run and its copied journal are
//! written in one transaction, with the original row-locked so its
//! journal cannot move while it is read.

use super::*;

/// [`Store::fork_run`](crate::Store::fork_run) on this backend.
pub(super) async fn fork_run(
    store: &PgStore,
    tenant: &TenantId,
    from: RunId,
    from_step: u32,
    run: &NewRun,
) -> Result<Option<Run>> {
    let codec = &store.codec;
    let new_row = store.create_row(tenant, run, None)?;
    let mut tx = store.pool.begin().await?;
    let Some(source) = runs::lock_run(&mut tx, codec, tenant, from).await? else {
        return Ok(None);
    };
    let records = sqlx::query(sql::STEPS_UP_TO)
        .bind(from.0)
        .bind(int::<i32, _>(from_step) - 1)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| rows::step(codec, &from, row))
        .collect::<Result<Vec<_>>>()?;
    let kept = crate::fork::kept_steps(&source, migrate_journal(from, records)?, from_step)?;
    // The insert records the `created` audit event.
    batch::bind_creates(&[&new_row])
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| batch::create_error(e.into(), &run.id.0))?;
    if !kept.is_empty() {
        // Re-sealed under the new run's id: sealed values are bound to
        // their run and index. No usage or cost: the original paid.
        let writes: Vec<StepWrite> = kept
            .into_iter()
            .map(|step| StepWrite {
                step,
                usage: Default::default(),
                cost_usd: 0.0,
            })
            .collect();
        let steps = StepColumns::of(codec, &run.id, &writes)?;
        StepColumns::bind(sqlx::query(sql::INSERT_FORK_STEPS), &[&steps])
            .bind(run.id.0)
            .execute(&mut *tx)
            .await?;
    }
    let row = sqlx::query(sql::SET_FORKED_FROM)
        .bind(int::<i32, _>(from_step))
        .bind(from.0)
        .bind(run.id.0)
        .fetch_one(&mut *tx)
        .await?;
    let forked = rows::run(codec, &row, 0)?;
    let detail = serde_json::json!({ "from_run": from, "from_step": from_step });
    sqlx::query(sql::INSERT_AUDIT)
        .bind(run.id.0)
        .bind(tenant.as_str())
        .bind(run.principal.as_str())
        .bind("forked")
        .bind(codec.seal_json(Field::of(&run.id, "audit.detail"), &detail)?)
        .execute(&mut *tx)
        .await?;
    store.commit(tx).await?;
    store.announce_queued();
    Ok(Some(forked))
}
