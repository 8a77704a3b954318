//! The per-process limiter: one `governor` keyed GCRA limiter per limit.
//! A limit of `n` per minute lets a cell through every `60 s / n`, with a
//! burst of `n`, as the Redis script does, so falling back from Redis
//! changes where the state lives, not the rule.

use super::{Decision, Limits, Scope, Verdict};
use agentd_core::{Identity, PrincipalId, TenantId};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{NotUntil, Quota};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed<K, C> = governor::RateLimiter<K, DashMapStateStore<K>, C, StateInformationMiddleware>;

/// A limit's rate (requests per minute) and its limiter.
type Limit<K, C> = Option<(u32, Keyed<K, C>)>;

/// Both request limits of one process, over clock `C` (a fake one in
/// tests).
pub(crate) struct Local<C: Clock = DefaultClock> {
    principal: Limit<(TenantId, PrincipalId), C>,
    tenant: Limit<TenantId, C>,
    clock: C,
}

impl Local {
    /// The limiter of `limits` on the real clock.
    pub(crate) fn new(limits: Limits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Local<C> {
    /// The limiter of `limits` on `clock`.
    pub(crate) fn with_clock(limits: Limits, clock: C) -> Self {
        fn keyed<K: Hash + Eq + Clone, C: Clock + Clone>(
            rpm: u32,
            clock: &C,
        ) -> Option<(u32, Keyed<K, C>)> {
            let quota = Quota::per_minute(NonZeroU32::new(rpm)?);
            let state: DashMapStateStore<K> = DashMapStateStore::default();
            let limiter = governor::RateLimiter::<
                K,
                _,
                C,
                governor::middleware::NoOpMiddleware<C::Instant>,
            >::new(quota, state, clock.clone())
            .with_middleware::<StateInformationMiddleware>();
            Some((rpm, limiter))
        }
        Self {
            principal: limits.per_principal_rpm.and_then(|n| keyed(n, &clock)),
            tenant: limits.per_tenant_rpm.and_then(|n| keyed(n, &clock)),
            clock,
        }
    }

    /// Counts a request of `who`. The principal's limit is asked first: a
    /// request it refuses costs the tenant nothing. (One the tenant's
    /// limit refuses has still used a cell of the principal's; governor
    /// cannot test without taking.)
    pub(crate) fn check(&self, who: &Identity) -> Decision {
        let mut verdicts = Vec::with_capacity(2);
        if let Some((rpm, limiter)) = &self.principal {
            let v = self.verdict(
                Scope::Principal,
                *rpm,
                limiter.check_key(&(who.tenant.clone(), who.principal.clone())),
            );
            verdicts.push(v);
        }
        if verdicts.iter().all(|v| v.allowed)
            && let Some((rpm, limiter)) = &self.tenant
        {
            verdicts.push(self.verdict(Scope::Tenant, *rpm, limiter.check_key(&who.tenant)));
        }
        Decision::fold(verdicts).unwrap_or(Decision {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: None,
            scope: Scope::Tenant,
        })
    }

    fn verdict(
        &self,
        scope: Scope,
        rpm: u32,
        outcome: Result<governor::middleware::StateSnapshot, NotUntil<C::Instant>>,
    ) -> Verdict {
        let interval = Duration::from_secs(60) / rpm;
        match outcome {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Verdict {
                    scope,
                    allowed: true,
                    limit: rpm,
                    remaining,
                    // The cells in use come back one per interval.
                    reset: interval * (rpm - remaining.min(rpm)),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Verdict {
                    scope,
                    allowed: false,
                    limit: rpm,
                    remaining: 0,
                    // The next cell comes after `wait`, the others after
                    // one interval each.
                    reset: wait + interval * (rpm - 1),
                    retry_after: wait,
                }
            }
        }
    }

    /// Forgets keys whose state is indistinguishable from a fresh one.
    pub(crate) fn retain_recent(&self) {
        if let Some((_, l)) = &self.principal {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some((_, l)) = &self.tenant {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys held now (tests of the retention).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.principal.as_ref().map_or(0, |(_, l)| l.len())
            + self.tenant.as_ref().map_or(0, |(_, l)| l.len())
    }
}
