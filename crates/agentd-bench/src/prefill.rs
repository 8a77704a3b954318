//! `--prefill N`: fills the store with N finished W1 runs before the
//! measured workload, so the costs of a store that has been in use for a
//! while show.
//!
//! One real W1 run is the template: its run row, journal steps and audit
//! records are copied N times in bulk SQL, so the copies are exactly what a
//! finished W1 run leaves, whatever the schema holds today. Each copy gets a
//! UUIDv7 id whose time, like its `created_at`, lies before the template's,
//! so the prefilled runs are older than every run the bench then measures.
//! Columns are read from the database, not listed here: a column the store
//! adds later is copied from the template too.

use std::path::Path;
use std::time::Instant;

use agentd_core::RunId;
use agentd_store::PgStore;
use anyhow::{Context, bail};

use crate::Setup;

/// Runs copied per statement: the unit of progress reports.
const CHUNK: u64 = 100_000;
/// Milliseconds between two prefilled runs' creation: 1,000,000 runs span
/// about 2.8 hours before the template.
const GAP_MS: i64 = 10;

/// What [`fill`] made: the tenant the runs belong to.
pub struct Filled {
    /// The template's tenant, which every prefilled run shares.
    pub tenant: String,
}

/// Copies the finished run `template` `n` times into the store of `s`.
pub async fn fill(s: &Setup, template: &str, n: u64) -> anyhow::Result<Filled> {
    let id = RunId::parse(template)?;
    let t0 = Instant::now();
    let filled = match (&s.db, &s.pg) {
        (Some(db), _) => {
            let db = db.clone();
            tokio::task::spawn_blocking(move || sqlite(&db, &id, n)).await??
        }
        (None, Some((url, schema))) => {
            let store = PgStore::open_in_schema(url, schema).await?;
            let filled = postgres(&store, template, n).await;
            store.close().await;
            filled?
        }
        (None, None) => bail!("no store to prefill"),
    };
    eprintln!("prefill: {n} runs in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(filled)
}

/// The copy of each column of `table` in the INSERT ... SELECT: `over`
/// gives the expression of the columns that change per copy, the others
/// come from the template row `alias`. Returns (column list, expressions).
fn projection(
    columns: &[String],
    alias: &str,
    over: impl Fn(&str) -> Option<String>,
) -> (String, String) {
    let mut names = Vec::new();
    let mut exprs = Vec::new();
    for c in columns {
        match over(c) {
            Some(e) if e.is_empty() => continue,
            Some(e) => exprs.push(e),
            None => exprs.push(format!("{alias}.{c}")),
        }
        names.push(c.clone());
    }
    (names.join(", "), exprs.join(", "))
}

/// The INSERT ... SELECT statements (runs, steps, audit, the runs' usage
/// per provider) reading the
/// copies' id and time from `ids` (columns `id`, `ts`), which a caller
/// defines, and the template from parameter `tmpl`.
fn statements(
    cols: &dyn Fn(&str) -> anyhow::Result<Vec<String>>,
    ids: &str,
    tmpl: &str,
) -> anyhow::Result<[String; 4]> {
    let (rc, re) = projection(&cols("runs")?, "t", |c| match c {
        "id" => Some("p.id".into()),
        "created_at" | "available_at" => Some("p.ts".into()),
        "updated_at" => Some("p.ts + (t.updated_at - t.created_at)".into()),
        _ => None,
    });
    let runs = format!(
        "INSERT INTO runs ({rc}) SELECT {re} FROM {ids} CROSS JOIN runs t WHERE t.id = {tmpl}"
    );
    let (sc, se) = projection(&cols("steps")?, "s", |c| match c {
        "run_id" => Some("p.id".into()),
        "started_at" => Some("p.ts + (s.started_at - t.created_at)".into()),
        _ => None,
    });
    let steps = format!(
        "INSERT INTO steps ({sc}) SELECT {se} FROM {ids} CROSS JOIN runs t \
         JOIN steps s ON s.run_id = t.id WHERE t.id = {tmpl} ORDER BY p.id, s.idx"
    );
    let (ac, ae) = projection(&cols("audit")?, "a", |c| match c {
        // New records take the next id, as the store gives them.
        "id" => Some(String::new()),
        "run_id" => Some("p.id".into()),
        "at" => Some("p.ts + (a.at - t.created_at)".into()),
        _ => None,
    });
    let audit = format!(
        "INSERT INTO audit ({ac}) SELECT {ae} FROM {ids} CROSS JOIN runs t \
         JOIN audit a ON a.run_id = t.id WHERE t.id = {tmpl} ORDER BY p.id, a.id"
    );
    let (uc, ue) = projection(&cols("run_provider_usage")?, "u", |c| match c {
        "run_id" => Some("p.id".into()),
        "created_at" => Some("p.ts".into()),
        _ => None,
    });
    let usage = format!(
        "INSERT INTO run_provider_usage ({uc}) SELECT {ue} FROM {ids} CROSS JOIN runs t \
         JOIN run_provider_usage u ON u.run_id = t.id WHERE t.id = {tmpl} ORDER BY p.id"
    );
    Ok([runs, steps, audit, usage])
}

/// SQLite: one transaction; the copies' ids and times go to a temporary
/// table first, then each chunk is four INSERT ... SELECT statements.
fn sqlite(db: &Path, template: &RunId, n: u64) -> anyhow::Result<Filled> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    let tmpl = template.0.as_bytes().to_vec();
    let (tenant, created): (String, i64) = conn
        .query_row(
            "SELECT tenant, created_at FROM runs WHERE id = ?1",
            [&tmpl],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .context("the template run is not in the store")?;
    let cols = |table: &str| -> anyhow::Result<Vec<String>> {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    };
    let ids = "(SELECT id, ts FROM temp.prefill WHERE n >= ?2 AND n < ?3) p";
    let sql = statements(&cols, ids, "?1")?;
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TEMP TABLE prefill (n INTEGER PRIMARY KEY, id BLOB NOT NULL, ts INTEGER NOT NULL)",
    )?;
    // UUIDv7: 48-bit ms time, version 7, then the variant and the copy's
    // number where the random bits go, so ids are unique and time-ordered.
    tx.execute(
        "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1) \
         INSERT INTO temp.prefill (n, id, ts) \
         SELECT n, unhex(printf('%012x', ?2 + n * ?3) || '7000' || '8' || printf('%015x', n)), \
                ?2 + n * ?3 FROM seq",
        rusqlite::params![n as i64, base_ms(created, n), GAP_MS],
    )?;
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        for stmt in &sql {
            tx.execute(stmt, rusqlite::params![tmpl, done as i64, end as i64])?;
        }
        done = end;
        eprintln!("prefill: {done} of {n} runs");
    }
    tx.execute_batch("DROP TABLE temp.prefill")?;
    tx.commit()?;
    Ok(Filled { tenant })
}

/// PostgreSQL: per chunk, four INSERT ... SELECT over `generate_series`,
/// the ids built from the series in SQL; then ANALYZE, as autovacuum would
/// after that many rows.
async fn postgres(store: &PgStore, template: &str, n: u64) -> anyhow::Result<Filled> {
    let pool = store.pool();
    let (tenant, created): (String, i64) =
        sqlx::query_as("SELECT tenant, created_at FROM runs WHERE id = $1::uuid")
            .bind(template)
            .fetch_optional(pool)
            .await?
            .context("the template run is not in the store")?;
    let mut columns = std::collections::HashMap::new();
    for table in ["runs", "steps", "audit", "run_provider_usage"] {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(pool)
        .await?;
        columns.insert(table, names);
    }
    let cols = |table: &str| -> anyhow::Result<Vec<String>> {
        columns
            .get(table)
            .cloned()
            .with_context(|| format!("no table {table}"))
    };
    let ids = "(SELECT (lpad(to_hex($4 + g * $5), 12, '0') || '7000' || '8' \
               || lpad(to_hex(g), 15, '0'))::uuid AS id, $4 + g * $5 AS ts \
               FROM generate_series($2::int8, $3::int8 - 1) AS g) p";
    let sql = statements(&cols, ids, "$1::uuid")?;
    let base = base_ms(created, n);
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        let mut tx = pool.begin().await?;
        for stmt in &sql {
            sqlx::query(sqlx::AssertSqlSafe(stmt.as_str()))
                .bind(template)
                .bind(done as i64)
                .bind(end as i64)
                .bind(base)
                .bind(GAP_MS)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        done = end;
        eprintln!("prefill: {done} of {n} runs");
    }
    for table in ["runs", "steps", "audit", "run_provider_usage"] {
        let analyze = format!("ANALYZE {table}");
        sqlx::query(sqlx::AssertSqlSafe(analyze))
            .execute(pool)
            .await?;
    }
    Ok(Filled { tenant })
}

/// The creation time of the first of `n` copies: they end a second before
/// the template was created.
fn base_ms(template_created: i64, n: u64) -> i64 {
    template_created - 1_000 - n as i64 * GAP_MS
}
