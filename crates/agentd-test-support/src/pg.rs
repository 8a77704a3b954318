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
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&host.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(url);
    }
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL at {host} is unreachable and CI is set");
    }
    eprintln!("skipping: PostgreSQL at {host} is unreachable (set AGENTD_TEST_PG_URL)");
    None
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
