//! Provider circuits shared through the store: when one process opens a
//! provider's circuit, every process on the same store skips that provider
//! until the reset period is over, instead of each finding out the hard way.
//! A process that sees a probe succeed closes the shared circuit.

use crate::Engine;
use agentd_llm::{BreakerObserver, BreakerSnapshot, BreakerState, BreakerTransition};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a process adopts circuits others opened.
pub(crate) const ADOPT_EVERY: Duration = Duration::from_secs(1);

/// Transitions waiting to be written to the store.
pub(crate) type Events = mpsc::UnboundedReceiver<(String, BreakerState)>;

/// The breaker observer: hands transitions to the sharing task (observers
/// are called synchronously, so no store I/O happens here).
pub(crate) struct ShareTransitions(mpsc::UnboundedSender<(String, BreakerState)>);

impl ShareTransitions {
    pub(crate) fn channel() -> (Self, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }
}

impl BreakerObserver for ShareTransitions {
    fn on_transition(&self, t: &BreakerTransition) {
        // Closed when the task has gone: nothing left to share with.
        let _ = self.0.send((t.provider.clone(), t.to));
    }
}

impl Engine {
    /// Until `shutdown`: writes this process's circuit openings and
    /// closings to the store, and every [`ADOPT_EVERY`] opens local
    /// breakers whose shared circuit another process opened.
    pub(crate) async fn share_circuits(&self, shutdown: CancellationToken) {
        let taken = self
            .inner
            .circuit_events
            .lock()
            .ok()
            .and_then(|mut e| e.take());
        let Some(mut events) = taken else {
            return;
        };
        let mut adopt = tokio::time::interval(ADOPT_EVERY);
        adopt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some((provider, to)) = events.recv() => self.publish(&provider, to).await,
                _ = adopt.tick() => self.adopt_circuits().await,
                _ = shutdown.cancelled() => break,
            }
        }
        if let Ok(mut e) = self.inner.circuit_events.lock() {
            *e = Some(events);
        }
    }

    async fn publish(&self, provider: &str, to: BreakerState) {
        let open_for = match to {
            BreakerState::Open => match self.inner.breakers.get(provider) {
                Some(b) => Some(b.settings().reset),
                None => return,
            },
            BreakerState::Closed => None,
            // A probe is under way: its outcome is what gets shared.
            BreakerState::HalfOpen => return,
        };
        if let Err(e) = self.inner.store.set_circuit(provider, open_for).await {
            tracing::warn!(provider, error = %e, "sharing a circuit change failed");
        }
    }

    /// Opens local breakers of circuits other processes opened.
    pub(crate) async fn adopt_circuits(&self) {
        let open = match self.inner.store.open_circuits().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "reading shared circuits failed");
                return;
            }
        };
        for (provider, remaining) in open {
            let Some(b) = self.inner.breakers.get(&provider) else {
                continue;
            };
            if b.state() == BreakerState::Open {
                continue;
            }
            b.restore(&BreakerSnapshot {
                provider,
                state: BreakerState::Open,
                consecutive_failures: b.settings().failures,
                open_remaining: Some(remaining),
            });
        }
    }
}
