//! One span per provider call, the innermost decorator (so each retry is
//! its own span), with the OpenTelemetry GenAI semantic-convention
//! attributes. The HTTP clients send its trace context as `traceparent`.

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use async_trait::async_trait;
use tracing::Instrument;
use tracing::field::Empty;

/// A provider whose calls are traced.
pub struct Traced<P> {
    inner: P,
    /// `gen_ai.system`: the provider kind (`openai`, `anthropic`, `mock`).
    system: &'static str,
    model: String,
    /// `chat <model>`, built once: span names must stay low-cardinality,
    /// and models are configured, not chosen by callers.
    span_name: String,
}

impl<P: Provider> Traced<P> {
    /// Wraps `inner`, a provider of kind `system` calling `model`.
    pub fn new(inner: P, system: &'static str, model: impl Into<String>) -> Self {
        let model = model.into();
        Self {
            inner,
            system,
            span_name: format!("chat {model}"),
            model,
        }
    }

    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "provider_call",
            otel.name = self.span_name.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.system = self.system,
            gen_ai.request.model = self.model.as_str(),
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            agentd.provider = self.inner.name(),
            error.type = Empty,
        )
    }
}

/// Records the call's outcome on its span.
fn record(span: &tracing::Span, result: &Result<Completion, ProviderError>) {
    match result {
        Ok(c) => {
            span.record("gen_ai.response.model", c.model.as_str());
            // i64: tracing-opentelemetry exports unsigned values as strings.
            let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            span.record("gen_ai.usage.input_tokens", int(c.usage.input_tokens));
            span.record("gen_ai.usage.output_tokens", int(c.usage.output_tokens));
        }
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", e.code().as_str());
        }
    }
}

#[async_trait]
impl<P: Provider> Provider for Traced<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let span = self.span();
        let result = self.inner.complete(req).instrument(span.clone()).await;
        record(&span, &result);
        result
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        let span = self.span();
        let result = self
            .inner
            .complete_streaming(req, on_token)
            .instrument(span.clone())
            .await;
        record(&span, &result);
        result
    }
}
