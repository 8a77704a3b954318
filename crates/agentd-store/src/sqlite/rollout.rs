//! Rollout state and per-version outcomes on SQLite.

use super::*;
use crate::rollout::{Outcomes, RolloutChange, RolloutPhase, RolloutState, VersionStats};

const ROLLOUT_COLS: &str =
    "agent, base, stable, canary, percent, phase, reason, actor, started_at, updated_at";

fn rollout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RolloutState, String)> {
    let phase: String = r.get(5)?;
    Ok((
        RolloutState {
            agent: r.get(0)?,
            base: r.get(1)?,
            stable: r.get(2)?,
            canary: r.get(3)?,
            percent: r.get(4)?,
            phase: RolloutPhase::Active,
            reason: r.get(6)?,
            actor: r.get(7)?,
            started_at: r.get(8)?,
            updated_at: r.get(9)?,
        },
        phase,
    ))
}

fn decode((mut state, phase): (RolloutState, String)) -> Result<RolloutState> {
    state.phase = RolloutPhase::parse(&phase).ok_or_else(|| {
        corrupt(format_args!(
            "rollouts.phase of {:?}: unknown phase {phase:?}",
            state.agent
        ))
    })?;
    Ok(state)
}

fn select(conn: &Connection, agent: &str) -> Result<RolloutState> {
    let sql = format!("SELECT {ROLLOUT_COLS} FROM rollouts WHERE agent = ?1");
    decode(conn.prepare_cached(&sql)?.query_row([agent], rollout_row)?)
}

/// [`Store::sync_rollout`](crate::Store::sync_rollout) on this backend.
pub(super) async fn sync_rollout(store: &SqliteStore, seed: &RolloutState) -> Result<RolloutState> {
    let seed = seed.clone();
    store
        .write(move |conn, now, _| {
            conn.prepare_cached(
                "INSERT INTO rollouts (agent, base, stable, canary, percent, phase, reason, actor, \
                 started_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'active', NULL, ?6, ?7, ?7) \
                 ON CONFLICT (agent) DO UPDATE SET base = excluded.base, stable = excluded.stable, \
                 canary = excluded.canary, percent = excluded.percent, phase = 'active', \
                 reason = NULL, actor = excluded.actor, started_at = excluded.started_at, \
                 updated_at = excluded.updated_at WHERE rollouts.base <> excluded.base",
            )?
            .execute(params![
                seed.agent,
                seed.base,
                seed.stable,
                seed.canary,
                seed.percent,
                seed.actor,
                now
            ])?;
            select(conn, &seed.agent)
        })
        .await
}

/// [`Store::change_rollout`](crate::Store::change_rollout) on this backend.
pub(super) async fn change_rollout(
    store: &SqliteStore,
    agent: &str,
    base: &str,
    change: &RolloutChange,
) -> Result<Option<RolloutState>> {
    let (agent, base, change) = (agent.to_owned(), base.to_owned(), change.clone());
    store
        .write(move |conn, now, codec| {
            let sql = format!(
                "UPDATE rollouts SET stable = ?1, canary = NULL, percent = 0, phase = ?2, \
                 reason = ?3, actor = ?4, updated_at = ?5 WHERE agent = ?6 AND base = ?7 \
                 AND phase = 'active' AND canary IS NOT NULL RETURNING {ROLLOUT_COLS}"
            );
            let changed = conn
                .prepare_cached(&sql)?
                .query_row(
                    params![
                        change.stable,
                        change.phase.as_str(),
                        change.reason,
                        change.actor,
                        now,
                        agent,
                        base
                    ],
                    rollout_row,
                )
                .optional()?;
            let Some(changed) = changed else {
                return Ok(None);
            };
            let tenant = change.audit_tenant.as_str();
            let detail = Some(&change.audit_detail);
            match &change.audit_run {
                Some(run) => insert_audit(
                    conn,
                    codec,
                    tenant,
                    run,
                    now,
                    &change.actor,
                    change.audit_kind,
                    detail,
                )?,
                None => insert_tenant_audit(
                    conn,
                    codec,
                    tenant,
                    now,
                    &change.actor,
                    change.audit_kind,
                    &change.audit_detail,
                )?,
            }
            decode(changed).map(Some)
        })
        .await
}

/// [`Store::version_stats`](crate::Store::version_stats) on this backend.
pub(super) async fn version_stats(
    store: &SqliteStore,
    agent: &str,
    since: Millis,
) -> Result<Vec<VersionStats>> {
    let agent = agent.to_owned();
    store
        .read(move |conn, _| {
            let sql = "SELECT agent_version, status, COUNT(*), SUM(updated_at - created_at), \
                 SUM(cost_usd) FROM runs WHERE agent = ?1 AND agent_version IS NOT NULL \
                 AND updated_at >= ?2 AND status IN ('succeeded', 'failed', 'dead', 'cancelled') \
                 GROUP BY agent_version, status ORDER BY agent_version";
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![agent, since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, f64>(4)?,
                ))
            })?;
            let mut out: Vec<VersionStats> = Vec::new();
            for row in rows {
                let (version, status, n, duration, cost) = row?;
                if out.last().is_none_or(|s| s.version != version) {
                    out.push(VersionStats {
                        version,
                        ..Default::default()
                    });
                }
                if let Some(s) = out.last_mut() {
                    s.add(&status, u64::try_from(n).unwrap_or(0), duration, cost);
                }
            }
            Ok(out)
        })
        .await
}

/// [`Store::version_outcomes`](crate::Store::version_outcomes) on this
/// backend.
pub(super) async fn version_outcomes(
    store: &SqliteStore,
    agent: &str,
    version: &str,
    since: Millis,
    last: u32,
) -> Result<Outcomes> {
    let (agent, version) = (agent.to_owned(), version.to_owned());
    store
        .read(move |conn, _| {
            let sql = "SELECT COUNT(*), COALESCE(SUM(status IN ('failed', 'dead')), 0) FROM \
                 (SELECT status FROM runs WHERE agent = ?1 AND agent_version = ?2 \
                 AND updated_at >= ?3 AND status IN ('succeeded', 'failed', 'dead') \
                 ORDER BY updated_at DESC LIMIT ?4)";
            let (finished, failed): (i64, i64) = conn
                .prepare_cached(sql)?
                .query_row(params![agent, version, since, i64::from(last)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(Outcomes {
                finished: u32::try_from(finished).unwrap_or(u32::MAX),
                failed: u32::try_from(failed).unwrap_or(u32::MAX),
            })
        })
        .await
}
