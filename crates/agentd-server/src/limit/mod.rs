//! Request rate limits (`[rate_limit]`): `per_principal_rpm` keyed by
//! tenant and principal, `per_tenant_rpm` keyed by tenant, both GCRA with a
//! burst of one minute's amount, checked on every authenticated request.
//!
//! [`RateLimiter::check`] decides; [`middleware`] only turns the
//! [`Decision`] into a 429 or into `RateLimit-*` headers. With
//! `backend = "redis"` the decision is taken by one Lua script on the
//! shared Redis (one limit for the fleet); when Redis cannot answer within
//! [`redis::TIMEOUT`], the local limiter decides instead, a warning is
//! logged (at most every [`WARN_EVERY`]) and
//! [`metric::REDIS_FALLBACKS`] counts the request: a limiter outage never
//! fails a request. `max_concurrent_runs_per_tenant` is not here: the
//! store enforces it when a run is created (see
//! `agentd_store::Store::create_run_capped`).

mod local;
mod redis;

pub(crate) use local::Local;
pub(crate) use redis::RedisLimiter;

use crate::AppState;
use crate::error::{ApiError, ceil_secs};
use agentd_config::{RateLimitBackend, RateLimitConfig};
use agentd_core::Identity;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Metric names of the limiter (counters through the `metrics` facade).
pub mod metric {
    pub use agentd_core::metric::{
        RATE_LIMIT_REDIS_FALLBACKS as REDIS_FALLBACKS, RATE_LIMITED as LIMITED,
    };
}

/// How often the "Redis limiter unavailable" warning may be logged: one
/// line per outage and period, not one per request.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// After a Redis failure, requests go to the local limiter for this long
/// before Redis is tried again, so an outage costs one timeout per period,
/// not one per request.
const REDIS_COOLDOWN: Duration = Duration::from_secs(1);

/// How often the local limiter forgets keys whose state is back to full.
pub const RETAIN_EVERY: Duration = Duration::from_secs(60);

/// Why the limiter cannot be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum LimitSetupError {
    #[error("rate_limit.redis_url is not usable: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("rate_limit.backend = \"redis\" needs rate_limit.redis_url")]
    MissingRedisUrl,
}

/// Which request limit a [`Verdict`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `per_principal_rpm`: one tenant's principal.
    Principal,
    /// `per_tenant_rpm`: every principal of a tenant together.
    Tenant,
}

/// The requests per minute of each configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_principal_rpm: Option<u32>,
    pub per_tenant_rpm: Option<u32>,
}

impl Limits {
    /// Whether any request limit is set.
    pub fn any(&self) -> bool {
        self.per_principal_rpm.is_some() || self.per_tenant_rpm.is_some()
    }
}

/// One limit's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub scope: Scope,
    pub allowed: bool,
    /// The limit, requests per minute (also the burst).
    pub limit: u32,
    /// Requests that could be made at once after this one.
    pub remaining: u32,
    /// Until the limit's whole burst is available again.
    pub reset: Duration,
    /// Until a request would be allowed (zero when allowed).
    pub retry_after: Duration,
}

/// What the limiter says about a request: both limits folded into the one
/// that binds (the refusing one, or the one with the fewest requests left),
/// which is what the `RateLimit-*` headers describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
    /// `Some` when refused: when to try again.
    pub retry_after: Option<Duration>,
    /// Which limit binds.
    pub scope: Scope,
}

impl Decision {
    /// Folds the verdicts of the configured limits; `None` when there are
    /// none.
    pub fn fold(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Self> {
        let tightest = verdicts.into_iter().reduce(|a, b| {
            let key = |v: &Verdict| (v.allowed, std::cmp::Reverse(v.retry_after), v.remaining);
            if key(&b) < key(&a) { b } else { a }
        })?;
        Some(Self {
            allowed: tightest.allowed,
            limit: tightest.limit,
            remaining: tightest.remaining,
            reset: tightest.reset,
            retry_after: (!tightest.allowed).then_some(tightest.retry_after),
            scope: tightest.scope,
        })
    }

    /// Sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// (IETF httpapi-ratelimit-headers draft; the reset in whole seconds,
    /// rounded up), and `Retry-After` when refused.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(ceil_secs(self.reset)));
        if let Some(after) = self.retry_after {
            headers.insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(ceil_secs(after).max(1)),
            );
        }
    }
}

/// The request limits of this process: the local limiter, and the Redis
/// one when the config asks for it. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    local: Local,
    redis: Option<RedisLimiter>,
    limited: AtomicU64,
    fallbacks: AtomicU64,
    /// Milliseconds since `epoch` until which Redis is not asked (0: ask).
    redis_down_until: AtomicU64,
    /// Milliseconds since `epoch` of the last fallback warning (0: none).
    last_warning: AtomicU64,
    epoch: Instant,
}

impl RateLimiter {
    /// The limiter `[rate_limit]` describes, or `None` when it sets no
    /// request limit. The Redis connection is made lazily, on the first
    /// request: a Redis that is down at start-up only means local limits
    /// until it is up.
    pub fn from_config(config: Option<&RateLimitConfig>) -> Result<Option<Self>, LimitSetupError> {
        let Some(config) = config else {
            return Ok(None);
        };
        let limits = Limits {
            per_principal_rpm: config.per_principal_rpm,
            per_tenant_rpm: config.per_tenant_rpm,
        };
        if !limits.any() {
            return Ok(None);
        }
        let redis = match config.backend {
            RateLimitBackend::Local => None,
            RateLimitBackend::Redis => {
                let url = config
                    .redis_url
                    .as_deref()
                    .ok_or(LimitSetupError::MissingRedisUrl)?;
                Some(RedisLimiter::new(url, redis::KEY_PREFIX, limits)?)
            }
        };
        Ok(Some(Self::new(Local::new(limits), redis)))
    }

    /// A limiter over `local`, and `redis` when given (tests build their
    /// own, with a key prefix of their own).
    pub(crate) fn new(local: Local, redis: Option<RedisLimiter>) -> Self {
        // Registered at zero, so a scrape shows the limiter is on before it
        // first refuses a request.
        metrics::counter!(metric::LIMITED).increment(0);
        if redis.is_some() {
            metrics::counter!(metric::REDIS_FALLBACKS).increment(0);
        }
        Self {
            inner: Arc::new(Inner {
                local,
                redis,
                limited: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
                redis_down_until: AtomicU64::new(0),
                last_warning: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    /// Counts a request of `who` against its limits and says whether it
    /// may proceed. Never fails: without Redis, the local limiter decides.
    pub async fn check(&self, who: &Identity) -> Decision {
        let decision = match &self.inner.redis {
            Some(redis) => self.check_redis(redis, who).await,
            None => self.inner.local.check(who),
        };
        if !decision.allowed {
            self.inner.limited.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(metric::LIMITED).increment(1);
        }
        decision
    }

    async fn check_redis(&self, redis: &RedisLimiter, who: &Identity) -> Decision {
        let now = self.millis();
        if now >= self.inner.redis_down_until.load(Ordering::Relaxed) {
            match redis.check(who).await {
                Ok(decision) => {
                    if self.inner.redis_down_until.swap(0, Ordering::Relaxed) != 0 {
                        tracing::info!("rate limits: the Redis limiter answers again");
                    }
                    return decision;
                }
                Err(e) => {
                    // Never 0, which means "up".
                    let until = self.millis() + REDIS_COOLDOWN.as_millis() as u64;
                    self.inner.redis_down_until.store(until, Ordering::Relaxed);
                    self.warn_fallback(&e);
                }
            }
        }
        self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric::REDIS_FALLBACKS).increment(1);
        self.inner.local.check(who)
    }

    /// Logs that limits fell back to this process, at most every
    /// [`WARN_EVERY`].
    fn warn_fallback(&self, e: &redis::CheckError) {
        let now = self.millis().max(1);
        let last = self.inner.last_warning.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .inner
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %e,
                fallbacks_total = self.inner.fallbacks.load(Ordering::Relaxed),
                "rate limits: the Redis limiter is unavailable; limiting per process until \
                 it answers (requests are not failed)"
            );
        }
    }

    fn millis(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// Requests refused so far ([`metric::LIMITED`]).
    pub fn limited_total(&self) -> u64 {
        self.inner.limited.load(Ordering::Relaxed)
    }

    /// Requests decided locally because Redis failed
    /// ([`metric::REDIS_FALLBACKS`]).
    pub fn redis_fallbacks_total(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    /// Forgets local keys whose state is back to full, so memory follows
    /// the callers of the last minute, not every caller ever seen.
    pub fn retain_recent(&self) {
        self.inner.local.retain_recent();
    }

    /// Runs [`RateLimiter::retain_recent`] every [`RETAIN_EVERY`] until
    /// `stop` fires.
    pub async fn run_retention(self, stop: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(RETAIN_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => self.retain_recent(),
            }
        }
    }
}

/// Applies the request limits to an authenticated request: 429 when over,
/// `RateLimit-*` headers on every answer otherwise. Mounted inside the
/// authentication layer, which has put the caller in the extensions.
pub(crate) async fn middleware(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &state.limiter else {
        return next.run(req).await;
    };
    let Some(crate::Caller(who)) = req.extensions().get::<crate::Caller>() else {
        // Only if the layers were mounted in the wrong order: a bug, and
        // never a reason to let a request through unlimited.
        return ApiError::internal(std::io::Error::other(
            "rate limit layer runs before authentication",
        ))
        .into_response();
    };
    let decision = limiter.check(who).await;
    let mut res = if decision.allowed {
        next.run(req).await
    } else {
        crate::extract::drain_body(req, state.max_body_bytes).await;
        let scope = match decision.scope {
            Scope::Principal => "per_principal_rpm",
            Scope::Tenant => "per_tenant_rpm",
        };
        ApiError::RateLimited {
            message: format!(
                "rate limit exceeded ({scope} = {}); retry later",
                decision.limit
            ),
            retry_after: decision.retry_after.unwrap_or(Duration::from_secs(1)),
        }
        .into_response()
    };
    decision.write_headers(res.headers_mut());
    res
}

#[cfg(test)]
mod tests;
