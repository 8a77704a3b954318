//! The Redis server of the tests (the rate limiter's shared backend).

use crate::pg::service_reachable;

/// The Redis server for tests (`AGENTD_TEST_REDIS_URL`, default the local
/// one on 127.0.0.1:6379), or `None` with a printed reason when it is
/// unreachable. With `CI` set, unreachable is a failure, not a skip.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("AGENTD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let host = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    service_reachable("Redis", &host, "AGENTD_TEST_REDIS_URL").then_some(url)
}
