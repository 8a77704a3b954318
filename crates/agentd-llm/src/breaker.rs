//! Circuit breakers, one per provider and shared by every agent of the
//! process that uses it: closed → open after `failures` consecutive provider
//! faults → half-open once `reset` has passed (one probe call) → closed on
//! the probe's success or open again on its failure.
//!
//! Each transition is logged (`tracing::warn!`) and passed to the registry's
//! [`BreakerObserver`]s; [`BreakerSnapshot`] / [`CircuitBreaker::restore`]
//! let a shared store mirror the state between processes later.

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use agentd_config::CircuitBreakerConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Where a breaker is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; consecutive faults are counted.
    Closed,
    /// Calls are rejected until `reset` has passed.
    Open,
    /// One probe call may pass; its outcome closes or reopens the circuit.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive provider faults that open the circuit (at least 1).
    pub failures: u32,
    /// Time open before a probe is let through.
    pub reset: Duration,
}

impl From<&CircuitBreakerConfig> for BreakerSettings {
    fn from(c: &CircuitBreakerConfig) -> Self {
        Self {
            failures: c.failures.max(1),
            reset: c.reset.get(),
        }
    }
}

/// One change of state, as observers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerTransition {
    pub provider: String,
    pub from: BreakerState,
    pub to: BreakerState,
    /// Consecutive faults counted when it happened.
    pub consecutive_failures: u32,
    /// Wall-clock time of the transition.
    pub at: SystemTime,
}

/// Told about every transition of every breaker of a registry (after the
/// breaker's lock is released, so it may call back into the breaker). A
/// shared-store mirror would write the breaker's snapshot here.
pub trait BreakerObserver: Send + Sync {
    /// Called once per transition.
    fn on_transition(&self, transition: &BreakerTransition);
}

/// A breaker's state, portable between processes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerSnapshot {
    pub provider: String,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// While open: time left before a probe is allowed (relative, so clocks
    /// of different machines need not agree).
    pub open_remaining: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

/// The breaker of one provider.
pub struct CircuitBreaker {
    provider: String,
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    observers: Vec<Arc<dyn BreakerObserver>>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("provider", &self.provider)
            .field("settings", &self.settings)
            .field("inner", &*self.lock())
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker for `provider`.
    pub fn new(
        provider: impl Into<String>,
        settings: BreakerSettings,
        observers: Vec<Arc<dyn BreakerObserver>>,
    ) -> Self {
        Self {
            provider: provider.into(),
            settings,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
                probe_in_flight: false,
            }),
            observers,
        }
    }

    /// The provider it guards.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Its settings.
    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// A poisoned lock only means another thread panicked mid-update of
    /// plain counters; the state is still usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state; an open breaker whose reset time has passed
    /// becomes half-open here.
    pub fn state(&self) -> BreakerState {
        let (state, t) = {
            let mut inner = self.lock();
            let t = self.expire(&mut inner);
            (inner.state, t)
        };
        self.announce(t);
        state
    }

    /// Whether a call would be let through now (without taking the probe).
    pub fn is_call_permitted(&self) -> bool {
        let (ok, t) = {
            let mut inner = self.lock();
            let t = self.expire(&mut inner);
            let ok = match inner.state {
                BreakerState::Closed => true,
                BreakerState::Open => false,
                BreakerState::HalfOpen => !inner.probe_in_flight,
            };
            (ok, t)
        };
        self.announce(t);
        ok
    }

    /// Asks to make a call. The permit must be given the call's outcome;
    /// dropped without one (the call was cancelled), it only frees the probe.
    ///
    /// # Errors
    /// [`ProviderError::CircuitOpen`] when the circuit is open, or half-open
    /// with its probe already in flight.
    pub fn try_acquire(&self) -> Result<Permit<'_>, ProviderError> {
        let (result, t) = {
            let mut inner = self.lock();
            let t = self.expire(&mut inner);
            let result = match inner.state {
                BreakerState::Closed => Ok(false),
                BreakerState::HalfOpen if !inner.probe_in_flight => {
                    inner.probe_in_flight = true;
                    Ok(true)
                }
                _ => Err(ProviderError::CircuitOpen {
                    provider: self.provider.clone(),
                }),
            };
            (result, t)
        };
        self.announce(t);
        result.map(|probe| Permit {
            breaker: self,
            probe,
            done: false,
        })
    }

    /// A snapshot of the state, for a shared store or `/ready`.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let (snap, t) = {
            let mut inner = self.lock();
            let t = self.expire(&mut inner);
            let open_remaining = match (inner.state, inner.opened_at) {
                (BreakerState::Open, Some(at)) => {
                    Some(self.settings.reset.saturating_sub(at.elapsed()))
                }
                _ => None,
            };
            let snap = BreakerSnapshot {
                provider: self.provider.clone(),
                state: inner.state,
                consecutive_failures: inner.failures,
                open_remaining,
            };
            (snap, t)
        };
        self.announce(t);
        snap
    }

    /// Adopts a snapshot (from a shared store). Logged like a transition
    /// but not passed to observers, so a mirror does not echo its own write.
    pub fn restore(&self, snap: &BreakerSnapshot) {
        let from = {
            let mut inner = self.lock();
            let from = inner.state;
            inner.state = snap.state;
            inner.failures = snap.consecutive_failures;
            inner.probe_in_flight = false;
            inner.opened_at = match snap.state {
                BreakerState::Open => {
                    let remaining = snap.open_remaining.unwrap_or(self.settings.reset);
                    let elapsed = self.settings.reset.saturating_sub(remaining);
                    let now = Instant::now();
                    Some(now.checked_sub(elapsed).unwrap_or(now))
                }
                _ => None,
            };
            from
        };
        if from != snap.state {
            tracing::warn!(
                provider = %self.provider,
                from = %from,
                to = %snap.state,
                consecutive_failures = snap.consecutive_failures,
                "circuit breaker state restored"
            );
        }
    }

    /// Open → half-open once the reset time has passed.
    fn expire(&self, inner: &mut Inner) -> Option<BreakerTransition> {
        match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) if at.elapsed() >= self.settings.reset => {
                inner.probe_in_flight = false;
                Some(self.transition(inner, BreakerState::HalfOpen))
            }
            _ => None,
        }
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) -> BreakerTransition {
        let from = inner.state;
        inner.state = to;
        inner.opened_at = (to == BreakerState::Open).then(Instant::now);
        BreakerTransition {
            provider: self.provider.clone(),
            from,
            to,
            consecutive_failures: inner.failures,
            at: SystemTime::now(),
        }
    }

    fn announce(&self, t: Option<BreakerTransition>) {
        let Some(t) = t else { return };
        tracing::warn!(
            provider = %t.provider,
            from = %t.from,
            to = %t.to,
            consecutive_failures = t.consecutive_failures,
            "circuit breaker transition"
        );
        for o in &self.observers {
            o.on_transition(&t);
        }
    }

    /// Records a call's outcome. Outcomes of calls that started in an
    /// earlier state (a late success after the circuit opened) are ignored;
    /// in half-open only the probe counts.
    fn record(&self, probe: bool, fault: bool) {
        let t = {
            let mut inner = self.lock();
            if probe {
                inner.probe_in_flight = false;
            }
            match inner.state {
                BreakerState::Closed if fault => {
                    inner.failures = inner.failures.saturating_add(1);
                    (inner.failures >= self.settings.failures)
                        .then(|| self.transition(&mut inner, BreakerState::Open))
                }
                BreakerState::Closed => {
                    inner.failures = 0;
                    None
                }
                BreakerState::HalfOpen if probe && fault => {
                    inner.failures = inner.failures.saturating_add(1);
                    Some(self.transition(&mut inner, BreakerState::Open))
                }
                BreakerState::HalfOpen if probe => {
                    inner.failures = 0;
                    Some(self.transition(&mut inner, BreakerState::Closed))
                }
                _ => None,
            }
        };
        self.announce(t);
    }

    fn release_probe(&self) {
        self.lock().probe_in_flight = false;
    }
}

/// Leave to make one call through a breaker.
#[derive(Debug)]
#[must_use = "give the permit the call's outcome"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the call's result: provider faults count against the
    /// circuit; successes and the caller's own errors (bad request) do not.
    pub fn record<T>(mut self, result: &Result<T, ProviderError>) {
        self.done = true;
        let fault = result.as_ref().err().is_some_and(|e| e.is_provider_fault());
        self.breaker.record(self.probe, fault);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.release_probe();
        }
    }
}

/// The breakers of a process, by provider name. Build one at start-up and
/// hand it to every [`crate::ProviderChain`]; `/ready` reads
/// [`BreakerRegistry::breaker_states`].
#[derive(Default)]
pub struct BreakerRegistry {
    breakers: Mutex<BTreeMap<String, Arc<CircuitBreaker>>>,
    observers: Vec<Arc<dyn BreakerObserver>>,
}

impl fmt::Debug for BreakerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("states", &self.breaker_states())
            .finish()
    }
}

impl BreakerRegistry {
    /// An empty registry (transitions are logged, nothing else).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose breakers also report to `observers`.
    pub fn with_observers(observers: Vec<Arc<dyn BreakerObserver>>) -> Self {
        Self {
            breakers: Mutex::default(),
            observers,
        }
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<CircuitBreaker>>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The breaker of `provider`, created with `settings` on first use.
    /// Agents that share a provider share its breaker; if they configure it
    /// differently, the first settings stay (and a warning says so).
    pub fn get_or_create(&self, provider: &str, settings: BreakerSettings) -> Arc<CircuitBreaker> {
        let mut map = self.map();
        if let Some(b) = map.get(provider) {
            if b.settings() != settings {
                tracing::warn!(
                    provider,
                    kept_failures = b.settings().failures,
                    kept_reset_ms = b.settings().reset.as_millis() as u64,
                    "agents configure this provider's circuit breaker differently; the first settings apply"
                );
            }
            return b.clone();
        }
        let b = Arc::new(CircuitBreaker::new(
            provider,
            settings,
            self.observers.clone(),
        ));
        map.insert(provider.to_owned(), b.clone());
        b
    }

    /// The breaker of `provider`, if one was created.
    pub fn get(&self, provider: &str) -> Option<Arc<CircuitBreaker>> {
        self.map().get(provider).cloned()
    }

    fn all(&self) -> Vec<Arc<CircuitBreaker>> {
        self.map().values().cloned().collect()
    }

    /// `(provider, state)` of every breaker, by provider name (for `/ready`).
    pub fn breaker_states(&self) -> Vec<(String, BreakerState)> {
        self.all()
            .into_iter()
            .map(|b| (b.provider().to_owned(), b.state()))
            .collect()
    }

    /// Snapshots of every breaker (for a shared store).
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        self.all().into_iter().map(|b| b.snapshot()).collect()
    }
}

/// The breaker decorator: rejects calls while the circuit is open and
/// records every outcome.
#[derive(Debug, Clone)]
pub struct WithBreaker<P> {
    inner: P,
    breaker: Arc<CircuitBreaker>,
}

impl<P: Provider> WithBreaker<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, breaker: Arc<CircuitBreaker>) -> Self {
        Self { inner, breaker }
    }

    /// The breaker it consults.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

#[async_trait::async_trait]
impl<P: Provider> Provider for WithBreaker<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let permit = self.breaker.try_acquire()?;
        let result = self.inner.complete(req).await;
        permit.record(&result);
        result
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        let permit = self.breaker.try_acquire()?;
        let result = self.inner.complete_streaming(req, on_token).await;
        permit.record(&result);
        result
    }
}
