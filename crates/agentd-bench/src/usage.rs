//! `--mode usage`: how long the usage report (`Store::usage`) takes on a
//! store prefilled with `--prefill` finished runs, for each grouping over
//! the whole store and over one day.
//!
//! The prefill's copies are alike and a few hours apart; before measuring
//! they are spread over [`SPAN_DAYS`] days, eight agents and fifty
//! principals, one in twenty failed, and their model calls over three
//! provider names, one per run, in one UPDATE per table (the
//! report's cost depends on how many runs a range holds, not on their
//! values, but its groups should be many, as they are in use).

use std::sync::Arc;
use std::time::Instant;

use agentd_core::TenantId;
use agentd_store::{PgStore, Store, UsageGroup, UsageQuery};
use serde_json::{Map, Value, json};

use crate::Setup;
use crate::stats::percentiles;

/// Days the prefilled runs are spread over.
const SPAN_DAYS: i64 = 100;
const DAY_MS: i64 = 86_400_000;

/// Spreads the prefilled runs of `tenant` (see the module doc); `template`
/// is the run they copy, created last. Returns the time of the newest run.
pub async fn spread(s: &Setup, tenant: &str, n: u64) -> anyhow::Result<i64> {
    // A copy's number k (0 newest) is its distance from the template's
    // creation in the prefill's gap of 10 ms; its new time is k times
    // the gap that spreads n copies over the span.
    let gap = (SPAN_DAYS * DAY_MS / n.max(1) as i64).max(1);
    let runs = format!(
        "UPDATE runs SET created_at = t.c - ((t.c - created_at) / 10) * {gap}, \
         agent = 'agent-' || ((created_at / 10) % 8), \
         principal = 'user-' || ((created_at / 10) % 50), \
         status = CASE WHEN (created_at / 10) % 20 = 0 THEN 'failed' ELSE status END \
         FROM (SELECT max(created_at) AS c FROM runs WHERE tenant = '{tenant}') t \
         WHERE tenant = '{tenant}'"
    );
    // A run's model calls go to its agent's provider (the template's),
    // renamed to one of three; spread first, while its time is the run's.
    let usage = format!(
        "UPDATE run_provider_usage SET created_at = t.c - ((t.c - created_at) / 10) * {gap}, \
         provider = provider || '-' || ((created_at / 10) % 3) \
         FROM (SELECT max(created_at) AS c FROM runs WHERE tenant = '{tenant}') t \
         WHERE tenant = '{tenant}'"
    );
    let newest = "SELECT max(created_at) FROM runs";
    let t0 = Instant::now();
    let newest: i64 = match (&s.db, &s.pg) {
        (Some(db), _) => {
            let db = db.clone();
            let (runs, usage) = (runs.clone(), usage.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
                let mut conn = rusqlite::Connection::open(db)?;
                let tx = conn.transaction()?;
                tx.execute(&usage, [])?;
                tx.execute(&runs, [])?;
                let newest = tx.query_row(newest, [], |r| r.get(0))?;
                tx.commit()?;
                conn.execute_batch("ANALYZE")?;
                Ok(newest)
            })
            .await??
        }
        (None, Some((url, schema))) => {
            let store = PgStore::open_in_schema(url, schema).await?;
            let pool = store.pool();
            sqlx::query(sqlx::AssertSqlSafe(usage))
                .execute(pool)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(runs)).execute(pool).await?;
            // What autovacuum does after that many rows: index-only scans
            // need the visibility map.
            sqlx::query("VACUUM ANALYZE runs").execute(pool).await?;
            sqlx::query("VACUUM ANALYZE run_provider_usage")
                .execute(pool)
                .await?;
            let newest = sqlx::query_scalar(newest).fetch_one(pool).await?;
            store.close().await;
            newest
        }
        (None, None) => anyhow::bail!("no store to spread"),
    };
    eprintln!(
        "usage: spread {n} runs over {SPAN_DAYS} days in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(newest)
}

/// Times each grouping `iters` times over the whole store and over the
/// UTC day half the span before `newest`; returns
/// `{"<group>_all"|"<group>_day": {p50, p90, p99, max}}` in ms and the
/// runs each range held.
pub async fn measure(
    store: &Arc<dyn Store>,
    tenant: &str,
    newest: i64,
    iters: usize,
) -> anyhow::Result<Value> {
    let tenant = TenantId::parse(tenant)?;
    let day = (newest - SPAN_DAYS / 2 * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    let mut out = Map::new();
    for (range, since, until) in [("all", None, None), ("day", Some(day), Some(day + DAY_MS))] {
        for group_by in UsageGroup::ALL {
            let q = UsageQuery {
                group_by,
                since,
                until,
            };
            let mut lat = Vec::with_capacity(iters);
            let mut runs = 0;
            for _ in 0..iters {
                let t0 = Instant::now();
                let rows = store.usage(&tenant, &q).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                runs = rows.iter().map(|r| r.runs).sum::<u64>();
            }
            let name = format!("{}_{range}", group_by.as_str());
            eprintln!("usage: {name} done ({runs} runs counted)");
            let mut p = percentiles(&mut lat);
            if let Value::Object(m) = &mut p {
                m.insert("runs".into(), json!(runs));
            }
            out.insert(name, p);
        }
    }
    Ok(Value::Object(out))
}
