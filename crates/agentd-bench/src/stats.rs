//! Process figures read from /proc: resident memory and CPU time.

/// Resident set size now, and its peak, in MiB.
pub fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of a process, in milliseconds.
pub fn cpu_ms(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 1000.0 / clock_ticks())
        })
        .unwrap_or(0.0)
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux this runs on.
    100.0
}

/// Latency percentiles by nearest rank, in ms.
pub fn percentiles(lat: &mut [f64]) -> serde_json::Value {
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * lat.len() as f64).ceil() as usize;
        round3(lat[rank.clamp(1, lat.len()) - 1])
    };
    serde_json::json!({ "p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "max": pct(100.0) })
}

/// Rounds to three decimals for readable output.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rows in agentd's SQLite tables.
pub fn sqlite_rows(path: &std::path::Path) -> anyhow::Result<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut total = 0u64;
    for table in ["runs", "steps", "messages", "audit"] {
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        total += n as u64;
    }
    Ok(total)
}

/// Rows in agentd's PostgreSQL tables (the pool's `search_path` picks the
/// schema).
pub async fn pg_rows(pool: &sqlx::PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM steps) \
         + (SELECT count(*) FROM messages) + (SELECT count(*) FROM audit)",
    )
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(n)?)
}
