//! The PostgreSQL server of the tests: whether it is there, and dropping a
//! test's schema.

use sqlx::Connection;
use std::time::Duration;

/// The PostgreSQL server for tests (`AGENTD_TEST_PG_URL`, default the local
/// one), or `None` with a printed reason when it is unreachable. With `CI`
/// set, unreachable is a failure, not a skip. Synchronous (a TCP connect),
/// so tests without a runtime can ask too.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("AGENTD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let host = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    service_reachable("PostgreSQL", &host, "AGENTD_TEST_PG_URL").then_some(url)
}

/// Whether a test service answers a TCP connect at `host` (`HOST:PORT`).
/// Unreachable prints why and is `false`, or fails the test when `CI` is
/// set: CI starts the services, so a missing one is a broken run, not a
/// reason to skip.
pub(crate) fn service_reachable(what: &str, host: &str, var: &str) -> bool {
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} at {host} is unreachable and CI is set");
    }
    eprintln!("skipping: {what} at {host} is unreachable (set {var})");
    false
}

/// Drops a test's PostgreSQL schema.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// Ends, on the server, every connection whose `application_name` is
/// `name` (a store's change-feed listeners are named after their channel):
/// how tests show a lost connection is survived. Returns how many ended.
pub async fn terminate_connections(url: &str, name: &str) -> Result<usize, sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(ended.into_iter().filter(|e| *e).count())
}
