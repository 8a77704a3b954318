//! Rollout state and per-version outcomes on PostgreSQL.

use super::*;
use crate::rollout::{Outcomes, RolloutChange, RolloutPhase, RolloutState, VersionStats};

fn decode(r: &PgRow) -> Result<RolloutState> {
    let agent: String = r.try_get(0)?;
    let phase: String = r.try_get(5)?;
    Ok(RolloutState {
        phase: RolloutPhase::parse(&phase).ok_or_else(|| {
            corrupt(format_args!(
                "rollouts.phase of {agent:?}: unknown phase {phase:?}"
            ))
        })?,
        agent,
        base: r.try_get(1)?,
        stable: r.try_get(2)?,
        canary: r.try_get(3)?,
        percent: r.try_get(4)?,
        reason: r.try_get(6)?,
        actor: r.try_get(7)?,
        started_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
    })
}

/// [`Store::sync_rollout`](crate::Store::sync_rollout) on this backend.
pub(super) async fn sync_rollout(store: &PgStore, seed: &RolloutState) -> Result<RolloutState> {
    let row = sqlx::query(sql::SYNC_ROLLOUT)
        .bind(&seed.agent)
        .bind(&seed.base)
        .bind(&seed.stable)
        .bind(&seed.canary)
        .bind(seed.percent)
        .bind(&seed.actor)
        .fetch_one(&store.pool)
        .await?;
    decode(&row)
}

/// [`Store::change_rollout`](crate::Store::change_rollout) on this backend.
pub(super) async fn change_rollout(
    store: &PgStore,
    agent: &str,
    base: &str,
    change: &RolloutChange,
) -> Result<Option<RolloutState>> {
    let mut tx = store.pool.begin().await?;
    let Some(row) = sqlx::query(sql::CHANGE_ROLLOUT)
        .bind(&change.stable)
        .bind(change.phase.as_str())
        .bind(&change.reason)
        .bind(&change.actor)
        .bind(agent)
        .bind(base)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let state = decode(&row)?;
    let detail = match &change.audit_run {
        Some(run) => store
            .codec
            .seal_json(Field::of(run, "audit.detail"), &change.audit_detail)?,
        None => store
            .codec
            .seal_json(Field::unowned("audit.detail"), &change.audit_detail)?,
    };
    sqlx::query(sql::INSERT_AUDIT)
        .bind(change.audit_run.map(|r| r.0))
        .bind(change.audit_tenant.as_str())
        .bind(&change.actor)
        .bind(change.audit_kind)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    store.committed();
    Ok(Some(state))
}

/// [`Store::version_stats`](crate::Store::version_stats) on this backend.
pub(super) async fn version_stats(
    store: &PgStore,
    agent: &str,
    since: agentd_core::Millis,
) -> Result<Vec<VersionStats>> {
    let rows = sqlx::query(sql::VERSION_STATS)
        .bind(agent)
        .bind(since)
        .fetch_all(&store.pool)
        .await?;
    let mut out: Vec<VersionStats> = Vec::new();
    for row in rows {
        let version: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let n: i64 = row.try_get(2)?;
        if out.last().is_none_or(|s| s.version != version) {
            out.push(VersionStats {
                version,
                ..Default::default()
            });
        }
        if let Some(s) = out.last_mut() {
            s.add(
                &status,
                u64::try_from(n).unwrap_or(0),
                row.try_get(3)?,
                row.try_get(4)?,
            );
        }
    }
    Ok(out)
}

/// [`Store::version_outcomes`](crate::Store::version_outcomes) on this
/// backend.
pub(super) async fn version_outcomes(
    store: &PgStore,
    agent: &str,
    version: &str,
    since: agentd_core::Millis,
    last: u32,
) -> Result<Outcomes> {
    let (finished, failed): (i64, i64) = sqlx::query_as(sql::VERSION_OUTCOMES)
        .bind(agent)
        .bind(version)
        .bind(since)
        .bind(i64::from(last))
        .fetch_one(&store.pool)
        .await?;
    Ok(Outcomes {
        finished: u32::try_from(finished).unwrap_or(u32::MAX),
        failed: u32::try_from(failed).unwrap_or(u32::MAX),
    })
}
