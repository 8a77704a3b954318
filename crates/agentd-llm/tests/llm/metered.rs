//! The metering decorator around the real OpenAI-compatible client, against
//! a local server speaking its wire format: a streamed call's time to first
//! token, call durations, and failures counted by class. The test process
//! installs a Prometheus recorder once; each test meters providers with
//! names of its own.

use crate::{KEY, KEY_VAR, Tokens, dead_url, hello};
use agentd_config::{ProviderConfig, ProviderKind};
use agentd_llm::{Metered, Provider};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPLY_SSE: &str = include_str!("fixtures/openai/reply.sse");

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.1, 0.5, 1.0, 5.0])
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).unwrap();
        handle
    })
}

/// The value of the sample `name{labels...}` (labels in export order).
fn sample(name: &str, labels: &str) -> Option<f64> {
    let text = recorder().render();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.parse().unwrap())
}

/// An OpenAI-compatible provider named `name` at `base_url`, metered.
fn metered(name: &str, base_url: &str) -> Metered<Arc<dyn Provider>> {
    let cfg = ProviderConfig {
        kind: ProviderKind::OpenAi,
        base_url: Some(base_url.to_owned()),
        api_key_env: Some(KEY_VAR.to_owned()),
        model: Some("gpt-4o-mini".to_owned()),
        timeout: Some(Duration::from_secs(5).into()),
        ..ProviderConfig::default()
    };
    let p = agentd_llm::build_with_env(name, &cfg, &|v| (v == KEY_VAR).then(|| KEY.to_owned()))
        .unwrap();
    Metered::new(p)
}

#[tokio::test]
async fn a_streamed_call_times_its_first_token_and_its_whole_answer() {
    recorder();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(REPLY_SSE, "text/event-stream")
                .set_delay(Duration::from_millis(150)),
        )
        .mount(&server)
        .await;
    let p = metered("m_stream", &format!("{}/v1", server.uri()));
    let tokens = Tokens::default();

    let c = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap();

    assert_eq!(c.message.content, "Hello there!");
    assert_eq!(
        tokens.all().len(),
        3,
        "every delta still reaches the caller"
    );
    let labels = r#"provider="m_stream""#;
    let ttft = "agentd_provider_time_to_first_token_seconds";
    assert_eq!(
        sample(&format!("{ttft}_count"), labels),
        Some(1.0),
        "one first token"
    );
    let first = sample(&format!("{ttft}_sum"), labels).unwrap();
    assert!((0.15..5.0).contains(&first), "the server's delay: {first}");
    let call = "agentd_provider_call_duration_seconds";
    assert_eq!(sample(&format!("{call}_count"), labels), Some(1.0));
    assert!(sample(&format!("{call}_sum"), labels).unwrap() >= first);
    // A success is no error.
    let text = recorder().render();
    assert!(
        !text.contains(r#"agentd_provider_errors_total{provider="m_stream""#),
        "{text}"
    );
}

#[tokio::test]
async fn failures_are_counted_by_class() {
    recorder();
    let mut answers = Vec::new();
    for (status, body) in [
        (
            429,
            r#"{"error": {"message": "slow down", "type": "rate_limit"}}"#,
        ),
        (503, r#"{"error": {"message": "overloaded"}}"#),
        (401, r#"{"error": {"message": "bad key"}}"#),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
        answers.push(server);
    }
    let mut urls: Vec<String> = answers.iter().map(|s| format!("{}/v1", s.uri())).collect();
    urls.push(dead_url());

    for url in &urls {
        // One provider name for all: the class tells the failures apart.
        let p = metered("m_errors", url);
        assert!(p.complete(&hello()).await.is_err());
    }

    for class in ["rate_limited", "server", "auth", "connection"] {
        let labels = format!(r#"provider="m_errors",class="{class}""#);
        assert_eq!(
            sample("agentd_provider_errors_total", &labels),
            Some(1.0),
            "{class}: {}",
            recorder().render()
        );
    }
    let count = sample(
        "agentd_provider_call_duration_seconds_count",
        r#"provider="m_errors""#,
    );
    assert_eq!(count, Some(4.0), "failed calls are timed too");
}
