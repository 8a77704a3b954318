//! The retry decorator: exponential backoff with jitter on retryable
//! failures, honouring `Retry-After`, and never retrying a streamed call once
//! text has been forwarded (the consumer has already shown it).

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use agentd_config::RetryConfig;
use rand::RngExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often and how patiently to retry one call on one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled after each failure.
    pub initial: Duration,
    /// Cap of the backoff. A `Retry-After` longer than this is not waited
    /// for: the call fails so the chain can fall back.
    pub max: Duration,
}

impl RetryPolicy {
    /// One attempt, no retry (an agent without `retry`).
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        initial: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// The policy of `agents[].retry` (`None`: [`RetryPolicy::NONE`]).
    pub fn from_config(cfg: Option<&RetryConfig>) -> Self {
        cfg.map_or(Self::NONE, |c| Self {
            max_attempts: c.max_attempts.max(1),
            initial: c.initial.get(),
            max: c.max.get(),
        })
    }

    /// The jittered exponential backoff of this policy.
    fn schedule(&self) -> agentd_core::Backoff {
        agentd_core::Backoff {
            initial: self.initial,
            max: self.max,
            jitter: true,
        }
    }

    /// The un-jittered backoff after failed attempt `attempt` (1-based):
    /// `initial * 2^(attempt-1)`, capped at `max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.schedule().base(attempt)
    }

    /// The wait before the attempt after `attempt`, or `None` when `error`
    /// must not be retried. Jitter keeps the wait in `[d/2, d]` so many runs
    /// failing together do not retry in lockstep; a `Retry-After` is a floor.
    pub fn delay(&self, attempt: u32, error: &ProviderError) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.retryable() {
            return None;
        }
        let wait = self
            .schedule()
            .delay(attempt, rand::rng().random_range(0.0..=1.0));
        match error.retry_after() {
            Some(asked) if asked > self.max => None,
            Some(asked) => Some(wait.max(asked)),
            None => Some(wait),
        }
    }
}

/// What a retried call produced.
#[derive(Debug)]
pub struct RetryOutcome {
    /// The last attempt's result.
    pub result: Result<Completion, ProviderError>,
    /// Attempts made (0 only if none was).
    pub attempts: u32,
    /// Whether any text reached `on_token`; such a call is never retried.
    pub tokens_forwarded: bool,
}

/// Retries `inner` per `policy`.
#[derive(Debug, Clone)]
pub struct Retry<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P: Provider> Retry<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Runs the call (streaming when `on_token` is given) with retries, and
    /// reports how many attempts it took.
    pub async fn run(
        &self,
        req: &CompletionRequest,
        on_token: Option<OnToken<'_>>,
    ) -> RetryOutcome {
        let forwarded = AtomicBool::new(false);
        let sink = |t: &str| {
            forwarded.store(true, Ordering::Relaxed);
            if let Some(f) = on_token {
                f(t);
            }
        };
        let mut attempt = 0;
        let mut previous: Option<ProviderError> = None;
        loop {
            attempt += 1;
            let result = match on_token {
                Some(_) => self.inner.complete_streaming(req, &sink).await,
                None => self.inner.complete(req).await,
            };
            let tokens_forwarded = forwarded.load(Ordering::Relaxed);
            let error = match result {
                Ok(c) => {
                    return RetryOutcome {
                        result: Ok(c),
                        attempts: attempt,
                        tokens_forwarded,
                    };
                }
                // A rejection by the breaker is not a call: report the
                // failure that opened it, if it was ours.
                Err(e @ ProviderError::CircuitOpen { .. }) => {
                    return RetryOutcome {
                        result: Err(previous.unwrap_or(e)),
                        attempts: attempt - 1,
                        tokens_forwarded,
                    };
                }
                Err(e) => e,
            };
            let delay = if tokens_forwarded {
                None
            } else {
                self.policy.delay(attempt, &error)
            };
            let Some(delay) = delay else {
                return RetryOutcome {
                    result: Err(error),
                    attempts: attempt,
                    tokens_forwarded,
                };
            };
            tracing::warn!(
                provider = self.inner.name(),
                attempt,
                max_attempts = self.policy.max_attempts,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "model call failed; retrying"
            );
            previous = Some(error);
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait::async_trait]
impl<P: Provider> Provider for Retry<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.run(req, None).await.result
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        self.run(req, Some(on_token)).await.result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_jitters_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(9), Duration::from_secs(1));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
        let server = ProviderError::Server {
            provider: "p".into(),
            message: "x".into(),
            retry_after: None,
        };
        for _ in 0..200 {
            let d = p.delay(3, &server).unwrap();
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
                "{d:?}"
            );
        }
        // Retry-After is a floor, unless it exceeds the cap.
        let limited = |s| ProviderError::RateLimited {
            provider: "p".into(),
            retry_after: Some(Duration::from_millis(s)),
        };
        assert_eq!(p.delay(1, &limited(900)), Some(Duration::from_millis(900)));
        assert_eq!(p.delay(1, &limited(1500)), None);
        // Out of attempts, or not retryable.
        assert_eq!(p.delay(10, &server), None);
        let bad = ProviderError::BadRequest {
            provider: "p".into(),
            message: "x".into(),
        };
        assert_eq!(p.delay(1, &bad), None);
    }
}
