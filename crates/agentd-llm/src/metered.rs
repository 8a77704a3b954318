//! The metering decorator: every call to a provider (each retry is one)
//! is timed, a streamed call's first text delta is timed, and a failure is
//! counted by its class (`ProviderError::kind`), through the `metrics`
//! facade (names in [`agentd_core::metric`]). Without an installed
//! recorder these are no-ops.

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use agentd_core::metric;
use metrics::Histogram;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Meters `inner`'s calls under its provider name. Sits outside the
/// timeout decorator, so a call cut by its timeout is counted as one.
pub struct Metered<P> {
    inner: P,
    /// Looked up on the first call rather than at construction: the
    /// process's recorder may be installed after the chain is built.
    handles: OnceLock<Handles>,
}

/// The provider's histograms, labelled once.
struct Handles {
    duration: Histogram,
    first_token: Histogram,
}

impl<P: Provider> Metered<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let provider = self.inner.name().to_owned();
            Handles {
                duration: metrics::histogram!(metric::PROVIDER_CALL_DURATION, metric::PROVIDER => provider.clone()),
                first_token: metrics::histogram!(metric::PROVIDER_TIME_TO_FIRST_TOKEN, metric::PROVIDER => provider),
            }
        })
    }

    /// Records a finished call that started at `started`.
    fn record(&self, started: Instant, result: &Result<Completion, ProviderError>) {
        self.handles()
            .duration
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            metrics::counter!(
                metric::PROVIDER_ERRORS,
                metric::PROVIDER => self.inner.name().to_owned(),
                "class" => e.kind()
            )
            .increment(1);
        }
    }
}

#[async_trait::async_trait]
impl<P: Provider> Provider for Metered<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let started = Instant::now();
        let result = self.inner.complete(req).await;
        self.record(started, &result);
        result
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        let started = Instant::now();
        let first = AtomicBool::new(true);
        let timed = |text: &str| {
            if first.swap(false, Ordering::Relaxed) {
                self.handles()
                    .first_token
                    .record(started.elapsed().as_secs_f64());
            }
            on_token(text);
        };
        let result = self.inner.complete_streaming(req, &timed).await;
        self.record(started, &result);
        result
    }
}
