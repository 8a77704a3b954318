//! Forking a run on SQLite: the new run and its copied journal are
//! written by the single writer in one transaction.

use super::*;

/// [`Store::fork_run`](crate::Store::fork_run) on this backend.
pub(super) async fn fork_run(
    store: &SqliteStore,
    tenant: &TenantId,
    from: RunId,
    from_step: u32,
    run: &NewRun,
) -> Result<Option<Run>> {
    let tenant = tenant.clone();
    let new = run.clone();
    store
        .write(move |conn, now, codec| {
            let Some(source) = fetch_run(conn, codec, tenant.as_str(), &from)? else {
                return Ok(None);
            };
            let records = read_steps(
                &mut conn.prepare_cached(concat!(
                    "SELECT ",
                    step_cols!(),
                    " FROM steps WHERE run_id = ?1 AND idx < ?2 ORDER BY idx"
                ))?,
                codec,
                &from,
                params![from.0.as_bytes(), i64::from(from_step)],
            )?;
            let kept =
                crate::fork::kept_steps(&source, migrate_journal(from, records)?, from_step)?;
            insert_run(conn, codec, &tenant, &new, now)?;
            // Re-sealed under the new run's id: sealed values are bound to
            // their run and index.
            for step in &kept {
                journal::insert_step(conn, codec, &new.id, step)?;
            }
            let forked = conn
                .prepare_cached(concat!(
                    "UPDATE runs SET steps = ?1, forked_from = ?2, fork_step = ?1 \
                     WHERE id = ?3 RETURNING ",
                    run_cols!()
                ))?
                .query_row(
                    params![i64::from(from_step), from.0.as_bytes(), new.id.0.as_bytes()],
                    |row| Ok(rows::run(codec, row, 0)),
                )??;
            let actor = new.principal.as_str();
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &new.id,
                now,
                actor,
                "created",
                None,
            )?;
            let detail = serde_json::json!({ "from_run": from, "from_step": from_step });
            insert_audit(
                conn,
                codec,
                tenant.as_str(),
                &new.id,
                now,
                actor,
                "forked",
                Some(&detail),
            )?;
            Ok(Some(forked))
        })
        .await
}
