//! W3C trace context (`traceparent`, `tracestate`): read from incoming
//! requests, stored with a run so every later attempt continues the same
//! trace, and written on outgoing HTTP calls.

use agentd_core::RunOrigin;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Writes the current span's trace context into `headers` (an outgoing
/// request); nothing when no span is being traced.
pub fn inject(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    }
}

/// Makes the trace context of an incoming request's headers the parent of
/// `span`; a missing or malformed `traceparent` leaves `span` a root.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    set_parent(span, cx);
}

/// Makes the trace context stored with a run the parent of `span` (an
/// attempt of that run, possibly in another process days later).
pub fn set_parent_from_origin(span: &tracing::Span, origin: &RunOrigin) {
    if origin.traceparent.is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&OriginFields(origin));
    set_parent(span, cx);
}

fn set_parent(span: &tracing::Span, cx: Context) {
    if cx.span().span_context().is_valid() {
        // Err only when the span is not traced (no OpenTelemetry layer) or
        // already started; either way there is no parent to set.
        let _ = span.set_parent(cx);
    }
}

/// Where a run being created comes from: the request id and the current
/// span's trace context, to be stored with the run.
pub fn run_origin(request_id: Option<&str>) -> RunOrigin {
    let mut origin = RunOrigin {
        request_id: request_id.filter(|s| !s.is_empty()).map(str::to_owned),
        ..RunOrigin::default()
    };
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut OriginFields(&mut origin));
    }
    origin
}

/// The current span's trace id (32 hex digits), when it is traced.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The two W3C fields of a stored [`RunOrigin`], read or written.
struct OriginFields<T>(T);

impl Extractor for OriginFields<&RunOrigin> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.0.traceparent.as_deref(),
            TRACESTATE => self.0.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

impl Injector for OriginFields<&mut RunOrigin> {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.0.traceparent = Some(value),
            TRACESTATE if !value.is_empty() => self.0.tracestate = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn traced() -> impl tracing::Subscriber + Send + Sync {
        let provider = SdkTracerProvider::builder().build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
    }

    #[test]
    fn an_incoming_parent_is_stored_and_sent_on() {
        tracing::subscriber::with_default(traced(), || {
            let mut incoming = http::HeaderMap::new();
            incoming.insert(TRACEPARENT, PARENT.parse().unwrap());
            incoming.insert(TRACESTATE, "vendor=1".parse().unwrap());
            let span = tracing::info_span!("request");
            set_parent_from_headers(&span, &incoming);
            let _entered = span.enter();

            let origin = run_origin(Some("req-1"));
            assert_eq!(origin.request_id.as_deref(), Some("req-1"));
            let stored = origin.traceparent.clone().unwrap();
            assert!(stored.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
            assert_ne!(stored, PARENT, "the request's own span is the parent");
            assert_eq!(origin.tracestate.as_deref(), Some("vendor=1"));
            assert_eq!(
                current_trace_id().as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );

            let mut outgoing = http::HeaderMap::new();
            inject(&mut outgoing);
            assert_eq!(outgoing[TRACEPARENT], stored.as_str());

            // A later attempt, anywhere, joins the same trace.
            let attempt = tracing::info_span!(parent: None, "attempt");
            set_parent_from_origin(&attempt, &origin);
            let _entered = attempt.enter();
            assert_eq!(
                current_trace_id().as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736")
            );
        });
    }

    #[test]
    fn untraced_spans_propagate_nothing() {
        let span = tracing::info_span!("request");
        let _entered = span.enter();
        let mut outgoing = http::HeaderMap::new();
        inject(&mut outgoing);
        assert!(outgoing.is_empty());
        let origin = run_origin(None);
        assert_eq!(origin, RunOrigin::default());
        assert!(current_trace_id().is_none());
    }
}
