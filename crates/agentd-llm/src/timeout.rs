//! The per-call timeout decorator: any provider, bounded by a deadline.

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use std::time::Duration;

/// Fails a call with [`ProviderError::Timeout`] when `inner` takes longer
/// than `timeout` (the HTTP clients also enforce it themselves; this bounds
/// any provider, the mock included, and is what tests drive with paused time).
#[derive(Debug, Clone)]
pub struct WithTimeout<P> {
    inner: P,
    timeout: Duration,
}

impl<P: Provider> WithTimeout<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    fn elapsed(&self) -> ProviderError {
        ProviderError::Timeout {
            provider: self.inner.name().to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl<P: Provider> Provider for WithTimeout<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        tokio::time::timeout(self.timeout, self.inner.complete(req))
            .await
            .unwrap_or_else(|_| Err(self.elapsed()))
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        tokio::time::timeout(self.timeout, self.inner.complete_streaming(req, on_token))
            .await
            .unwrap_or_else(|_| Err(self.elapsed()))
    }
}
