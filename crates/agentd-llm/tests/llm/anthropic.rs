//! The Anthropic Messages client against a wiremock server answering with
//! recorded message bodies and event streams.

use crate::{KEY, KEY_VAR, Tokens, bodies, full_request, hello, provider};
use agentd_config::ProviderKind;
use agentd_llm::ProviderError;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn server_answering(status: u16, body: &str, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), content_type))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn request_carries_system_tool_use_and_merged_tool_results() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            include_str!("fixtures/anthropic/reply.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(
        ProviderKind::Anthropic,
        &server.uri(),
        Duration::from_secs(5),
    );

    let c = p.complete(&full_request()).await.unwrap();

    assert_eq!(c.message.content, "Hello! How can I help you today?");
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (12, 11));
    assert_eq!(c.model, "claude-sonnet-4-5");
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("authorization").is_none());
    assert_eq!(
        bodies(&server).await[0],
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "stream": false,
            "system": "You are a weather bot.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Bogotá?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Bogotá"}}
                ]},
                // Both results in one user turn, as the API requires.
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "22C"}
                ]}
            ],
            "tools": [{
                "name": "get_weather",
                "description": "Current weather of a city",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }]
        })
    );
}

#[tokio::test]
async fn tool_use_blocks_become_tool_calls() {
    let server = server_answering(
        200,
        include_str!("fixtures/anthropic/tool_use.json"),
        "application/json",
    )
    .await;
    let p = provider(
        ProviderKind::Anthropic,
        &server.uri(),
        Duration::from_secs(5),
    );

    let c = p.complete(&hello()).await.unwrap();

    assert_eq!(c.message.content, "I'll check the weather in both cities.");
    let calls = &c.message.tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(
        calls[0].args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    assert_eq!(calls[1].args["location"], "Paris, France");
    // Cached prompt tokens are prompt tokens too.
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (484, 132));
}

#[tokio::test]
async fn streamed_text_and_tool_input_deltas_are_assembled() {
    let server = server_answering(
        200,
        include_str!("fixtures/anthropic/tool_use.sse"),
        "text/event-stream",
    )
    .await;
    let p = provider(
        ProviderKind::Anthropic,
        &server.uri(),
        Duration::from_secs(5),
    );
    let tokens = Tokens::default();

    let c = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap();

    assert_eq!(
        tokens.all(),
        ["Okay", ", let's check the weather for San Francisco, CA:"]
    );
    assert_eq!(
        c.message.content,
        "Okay, let's check the weather for San Francisco, CA:"
    );
    let calls = &c.message.tool_calls;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(
        calls[0].args,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(calls[1].name, "get_time");
    assert_eq!(calls[1].args, json!({"tz": "America/Los_Angeles"}));
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (472, 89));
    assert_eq!(bodies(&server).await[0]["stream"], json!(true));
}

#[tokio::test]
async fn an_overloaded_event_mid_stream_is_retryable() {
    let server = server_answering(
        200,
        include_str!("fixtures/anthropic/overloaded_midstream.sse"),
        "text/event-stream",
    )
    .await;
    let p = provider(
        ProviderKind::Anthropic,
        &server.uri(),
        Duration::from_secs(5),
    );

    let e = p.complete_streaming(&hello(), &|_| {}).await.unwrap_err();

    assert!(matches!(e, ProviderError::Server { .. }), "{e:?}");
    assert!(e.retryable());
    assert!(e.to_string().contains("529"), "{e}");
}

async fn error_for(status: u16, body: &str, headers: &[(&str, &str)]) -> ProviderError {
    let server = MockServer::start().await;
    let mut t = ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json");
    for (k, v) in headers {
        t = t.insert_header(*k, *v);
    }
    Mock::given(method("POST"))
        .respond_with(t)
        .mount(&server)
        .await;
    let p = provider(
        ProviderKind::Anthropic,
        &server.uri(),
        Duration::from_secs(5),
    );
    let e = p.complete(&hello()).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(KEY), "{e:?}");
    e
}

#[tokio::test]
async fn errors_are_classified() {
    let e = error_for(
        400,
        include_str!("fixtures/anthropic/error_prompt_too_long.json"),
        &[],
    )
    .await;
    assert!(matches!(e, ProviderError::ContextLength { .. }), "{e:?}");
    assert!(!e.retryable());

    let e = error_for(
        400,
        include_str!("fixtures/anthropic/error_bad_request.json"),
        &[],
    )
    .await;
    assert!(matches!(e, ProviderError::BadRequest { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("invalid_request_error: messages.1.content.0"),
        "{e}"
    );

    let e = error_for(401, include_str!("fixtures/anthropic/error_auth.json"), &[]).await;
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
    assert!(!e.retryable());
    let text = e.to_string();
    assert!(
        text.contains("provider main") && text.contains(KEY_VAR),
        "{text}"
    );
    assert!(text.contains("invalid x-api-key"), "{text}");

    let e = error_for(
        429,
        include_str!("fixtures/anthropic/error_rate_limit.json"),
        &[("retry-after", "13")],
    )
    .await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(13)));
    assert!(
        matches!(e, ProviderError::RateLimited { .. }) && e.retryable(),
        "{e:?}"
    );

    let e = error_for(
        529,
        include_str!("fixtures/anthropic/error_overloaded.json"),
        &[],
    )
    .await;
    assert!(
        matches!(e, ProviderError::Server { .. }) && e.retryable(),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("HTTP 529: overloaded_error: Overloaded"),
        "{e}"
    );

    let e = error_for(500, include_str!("fixtures/anthropic/error_api.json"), &[]).await;
    assert!(
        matches!(e, ProviderError::Server { .. }) && e.retryable(),
        "{e:?}"
    );
}
