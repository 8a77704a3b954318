//! The fleet-wide limiter: GCRA state in Redis, decided by one Lua script
//! per request that checks both limits and takes a cell of each only if
//! both allow, atomically (a script runs alone on the server). Time is the
//! server's (`TIME`), so the clocks of agentd processes do not matter.
//!
//! A key holds the limit's theoretical arrival time (TAT, microseconds)
//! and expires when the TAT is reached, as the state is then the same as
//! no state. Keys are `agentd:ratelimit:{TENANT}:t` and
//! `agentd:ratelimit:{TENANT}:p:PRINCIPAL`: the hash tag puts a tenant's
//! keys in one slot, so the script also runs on a Redis Cluster, and ids
//! cannot contain `}` or spaces, so keys of different callers never meet.

use super::{Decision, Limits, Scope, Verdict};
use agentd_core::Identity;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of every key the limiter writes.
pub const KEY_PREFIX: &str = "agentd:ratelimit:";

/// The longest a request waits for Redis before the local limiter decides
/// instead: Redis answers in well under a millisecond on a healthy
/// network, so this only cuts off a hung or far-away server.
pub const TIMEOUT: Duration = Duration::from_millis(100);

/// `KEYS[i]`: a limit's key; `ARGV[2i-1]`: its emission interval (µs),
/// `ARGV[2i]`: its burst. Returns `allowed` (1/0), then per key
/// `allowed, remaining, reset µs, retry-after µs`. TATs are written only
/// when every limit allows. Microseconds since the epoch are below 2^53,
/// exact in Lua's doubles.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {1}
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    out[1] = 0
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, tat - now)
    table.insert(out, allow_at - now)
  else
    table.insert(out, 1)
    table.insert(out, math.floor((now - allow_at) / interval))
    table.insert(out, new_tat - now)
    table.insert(out, 0)
  end
  tats[i] = new_tat
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tats[i], 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
end
return out
"#;

/// Why Redis did not decide.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis answered the rate limit script with {0:?}")]
    BadReply(Vec<i64>),
}

/// A handle on the shared limiter. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RedisLimiter {
    conn: ConnectionManager,
    script: Arc<redis::Script>,
    prefix: Arc<str>,
    limits: Limits,
}

impl RedisLimiter {
    /// A limiter on the Redis at `url`, its keys under `prefix`. Connects
    /// on first use, and reconnects by itself after a failure.
    pub(crate) fn new(url: &str, prefix: &str, limits: Limits) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            // The caller falls back at once and tries again later; the
            // manager need not retry for it.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            script: Arc::new(redis::Script::new(SCRIPT)),
            prefix: prefix.into(),
            limits,
        })
    }

    /// Counts a request of `who` against both limits, within [`TIMEOUT`].
    pub(crate) async fn check(&self, who: &Identity) -> Result<Decision, CheckError> {
        let tenant = who.tenant.as_str();
        let mut scopes = Vec::with_capacity(2);
        let mut invocation = self.script.prepare_invoke();
        if let Some(rpm) = self.limits.per_principal_rpm {
            let key = format!("{}{{{tenant}}}:p:{}", self.prefix, who.principal.as_str());
            invocation.key(key).arg(interval_us(rpm)).arg(rpm);
            scopes.push((Scope::Principal, rpm));
        }
        if let Some(rpm) = self.limits.per_tenant_rpm {
            let key = format!("{}{{{tenant}}}:t", self.prefix);
            invocation.key(key).arg(interval_us(rpm)).arg(rpm);
            scopes.push((Scope::Tenant, rpm));
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| CheckError::Timeout(TIMEOUT))??;
        verdicts(&scopes, &reply)
            .and_then(Decision::fold)
            .ok_or(CheckError::BadReply(reply))
    }
}

/// The emission interval of `rpm` requests per minute, in microseconds.
fn interval_us(rpm: u32) -> u64 {
    60_000_000 / u64::from(rpm.max(1))
}

/// The script's reply as one verdict per limit, or `None` if it does not
/// have the expected shape.
fn verdicts(scopes: &[(Scope, u32)], reply: &[i64]) -> Option<Vec<Verdict>> {
    let per_key = reply.get(1..)?;
    if per_key.len() != scopes.len() * 4 {
        return None;
    }
    let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    Some(
        scopes
            .iter()
            .zip(per_key.chunks_exact(4))
            .map(|(&(scope, limit), r)| Verdict {
                scope,
                allowed: r[0] == 1,
                limit,
                remaining: u32::try_from(r[1]).unwrap_or(0),
                reset: us(r[2]),
                retry_after: us(r[3]),
            })
            .collect(),
    )
}
