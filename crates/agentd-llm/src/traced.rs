//! One span per provider call, the innermost decorator (so each retry is
//! its own span), with the OpenTelemetry GenAI semantic-convention
//! attributes, and the run's when the engine names it ([`for_run`]). The
//! HTTP clients send its trace context as `traceparent`.

use crate::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use async_trait::async_trait;
use tracing::Instrument;
use tracing::field::Empty;

tokio::task_local! {
    static RUN: RunTags;
}

/// The run, tenant and step a model call is made for.
#[derive(Debug, Clone)]
pub struct RunTags {
    /// `agentd.run_id`.
    pub run_id: String,
    /// `agentd.tenant`.
    pub tenant: String,
    /// `agentd.step`: the journal index of the model step.
    pub step: u32,
}

/// Runs `call` (a model call through a chain) so that every provider-call
/// span made inside it carries `tags`: the chain and its decorators know
/// nothing of runs.
pub async fn for_run<F: Future>(tags: RunTags, call: F) -> F::Output {
    RUN.scope(tags, call).await
}

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
        RUN.try_with(|tags| self.span_for(Some(tags)))
            .unwrap_or_else(|_| self.span_for(None))
    }

    fn span_for(&self, run: Option<&RunTags>) -> tracing::Span {
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
            agentd.run_id = run.map(|r| r.run_id.as_str()),
            agentd.tenant = run.map(|r| r.tenant.as_str()),
            agentd.step = run.map(|r| i64::from(r.step)),
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
