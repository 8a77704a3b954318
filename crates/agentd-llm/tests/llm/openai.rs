//! The OpenAI-compatible client against a wiremock server answering with
//! recorded chat-completions bodies and SSE streams.

use crate::{KEY, KEY_VAR, Tokens, bodies, dead_url, full_request, hello, provider};
use agentd_config::ProviderKind;
use agentd_llm::{CompletionRequest, ProviderError};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPLY: &str = include_str!("fixtures/openai/reply.json");
const TOOL_CALLS: &str = include_str!("fixtures/openai/tool_calls.json");
const REPLY_SSE: &str = include_str!("fixtures/openai/reply.sse");
const TOOL_CALLS_SSE: &str = include_str!("fixtures/openai/tool_calls.sse");

async fn server_answering(status: u16, body: &str, content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), content_type))
        .mount(&server)
        .await;
    server
}

fn base(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

#[tokio::test]
async fn plain_reply_sends_the_conversation_and_reads_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(REPLY, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));

    let c = p.complete(&full_request()).await.unwrap();

    assert_eq!(c.message.content, "Hello! How can I assist you today?");
    assert!(c.message.tool_calls.is_empty());
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (19, 10));
    assert_eq!(c.model, "gpt-4o-mini", "the configured name, for [pricing]");
    let body = &bodies(&server).await[0];
    assert_eq!(
        body,
        &json!({
            "model": "gpt-4o-mini",
            "stream": false,
            "messages": [
                {"role": "system", "content": "You are a weather bot."},
                {"role": "user", "content": "Weather in Paris and Bogotá?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Bogotá\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": "22C"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather of a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }}]
        })
    );
}

#[tokio::test]
async fn several_tool_calls_in_one_response() {
    let server = server_answering(200, TOOL_CALLS, "application/json").await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));

    let c = p.complete(&hello()).await.unwrap();

    let calls = &c.message.tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].args, json!({"location": "Paris, France"}));
    assert_eq!(calls[1].args, json!({"location": "Bogotá, Colombia"}));
    assert_eq!(c.message.content, "");
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (82, 47));
    // No tools offered: no `tools` key (some servers reject an empty list).
    assert!(bodies(&server).await[0].get("tools").is_none());
}

#[tokio::test]
async fn streamed_text_is_forwarded_and_assembled() {
    let server = server_answering(200, REPLY_SSE, "text/event-stream").await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));
    let tokens = Tokens::default();

    let c = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap();

    assert_eq!(tokens.all(), ["Hello", " there", "!"]);
    assert_eq!(c.message.content, "Hello there!");
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (19, 3));
    let body = &bodies(&server).await[0];
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn streamed_tool_call_deltas_are_assembled() {
    let server = server_answering(200, TOOL_CALLS_SSE, "text/event-stream").await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));
    let tokens = Tokens::default();

    let c = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap();

    assert!(tokens.all().is_empty(), "tool-call deltas are not text");
    let calls = &c.message.tool_calls;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].id, "call_q8oPMnMQKw8sY4Fk3UBp2rLm");
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].args, json!({"location": "Paris"}));
    assert_eq!(calls[1].id, "call_Zu9ZKqB3ohUA9rHqkBVxkD5T");
    assert_eq!(calls[1].name, "get_time");
    assert_eq!(calls[1].args, json!({"tz": "Europe/Paris"}));
    assert_eq!((c.usage.input_tokens, c.usage.output_tokens), (90, 41));
}

#[tokio::test]
async fn a_stream_cut_before_its_end_is_a_retryable_connection_error() {
    let cut = REPLY_SSE
        .split("data: {\"id\"")
        .take(3)
        .collect::<Vec<_>>()
        .join("data: {\"id\"");
    let server = server_answering(200, &cut, "text/event-stream").await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));
    let tokens = Tokens::default();

    let e = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap_err();

    assert!(matches!(e, ProviderError::Connection { .. }), "{e:?}");
    assert_eq!(tokens.all(), ["Hello"]);
}

#[tokio::test]
async fn a_local_server_without_a_key_gets_no_auth_header() {
    let server = server_answering(200, REPLY, "application/json").await;
    let cfg = agentd_config::ProviderConfig {
        kind: ProviderKind::OpenAi,
        base_url: Some(base(&server)),
        model: Some("llama3.1".into()),
        ..Default::default()
    };
    let p = agentd_llm::build_with_env("ollama", &cfg, &|_| None).unwrap();

    let c = p.complete(&hello()).await.unwrap();

    assert_eq!(c.model, "llama3.1");
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("authorization").is_none());
}

/// One error response and what it must become.
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
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));
    let e = p.complete(&hello()).await.unwrap_err();
    // Neither the Display nor the Debug of any error may carry the key.
    assert!(!e.to_string().contains("abcdefghijkl"), "{e}");
    assert!(!format!("{e:?}").contains(KEY), "{e:?}");
    e
}

#[tokio::test]
async fn errors_are_classified() {
    let e = error_for(
        400,
        include_str!("fixtures/openai/error_context_length.json"),
        &[],
    )
    .await;
    assert!(matches!(e, ProviderError::ContextLength { .. }), "{e:?}");
    assert!(!e.retryable());
    assert!(
        e.to_string().contains("maximum context length is 128000"),
        "{e}"
    );

    let e = error_for(
        400,
        include_str!("fixtures/openai/error_vllm_context.json"),
        &[],
    )
    .await;
    assert!(
        matches!(e, ProviderError::ContextLength { .. }),
        "vLLM: {e:?}"
    );

    let e = error_for(
        400,
        include_str!("fixtures/openai/error_bad_request.json"),
        &[],
    )
    .await;
    assert!(matches!(e, ProviderError::BadRequest { .. }), "{e:?}");
    assert!(!e.retryable());
    assert!(
        e.to_string()
            .contains("Invalid type for 'messages[1].content'"),
        "{e}"
    );

    let e = error_for(
        401,
        include_str!("fixtures/openai/error_invalid_key.json"),
        &[],
    )
    .await;
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
    assert!(!e.retryable());
    let text = e.to_string();
    assert!(text.contains("provider main"), "{text}");
    assert!(text.contains(KEY_VAR), "names the variable: {text}");
    assert!(!text.contains("sk-test"), "no key fragment either: {text}");

    let e = error_for(403, r#"{"error":{"message":"Project does not have access to model","type":"invalid_request_error","code":"model_not_found"}}"#, &[]).await;
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
    assert!(
        e.to_string().contains("permission denied (HTTP 403)"),
        "{e}"
    );

    let e = error_for(
        429,
        include_str!("fixtures/openai/error_rate_limit.json"),
        &[("retry-after", "20")],
    )
    .await;
    assert_eq!(
        e,
        ProviderError::RateLimited {
            provider: "main".into(),
            retry_after: Some(Duration::from_secs(20)),
        }
    );
    assert!(e.retryable());

    let e = error_for(429, include_str!("fixtures/openai/error_quota.json"), &[]).await;
    assert!(matches!(e, ProviderError::Quota { .. }), "{e:?}");
    assert!(
        !e.retryable(),
        "an empty account does not refill by retrying"
    );

    for status in [500, 502, 503] {
        let e = error_for(
            status,
            include_str!("fixtures/openai/error_server.json"),
            &[],
        )
        .await;
        assert!(matches!(e, ProviderError::Server { .. }), "{status}: {e:?}");
        assert!(e.retryable());
        assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
    }

    let e = error_for(
        404,
        r#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        &[],
    )
    .await;
    assert!(
        matches!(e, ProviderError::BadRequest { .. }),
        "Ollama: {e:?}"
    );
    assert!(e.to_string().contains("model \"llama9\" not found"), "{e}");
}

#[tokio::test]
async fn connection_refused_and_timeouts_are_retryable() {
    let p = provider(ProviderKind::OpenAi, &dead_url(), Duration::from_secs(5));
    let e = p.complete(&hello()).await.unwrap_err();
    assert!(matches!(e, ProviderError::Connection { .. }), "{e:?}");
    assert!(e.retryable());

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(REPLY, "application/json")
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let p = provider(
        ProviderKind::OpenAi,
        &base(&server),
        Duration::from_millis(300),
    );
    let t0 = std::time::Instant::now();
    let e = p.complete(&hello()).await.unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e:?}");
    assert!(e.retryable());
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn a_stalled_stream_times_out_after_its_tokens() {
    use axum::body::Body;
    use futures::StreamExt;
    // First chunk, then silence: only the idle-gap / overall deadline ends it.
    let first = REPLY_SSE
        .split("\n\n")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n\n";
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let first = first.clone();
            async move {
                let chunks = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
                    .chain(futures::stream::pending());
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let p = provider(
        ProviderKind::OpenAi,
        &format!("http://{addr}/v1"),
        Duration::from_millis(400),
    );
    let tokens = Tokens::default();

    let e = p
        .complete_streaming(&hello(), &tokens.sink())
        .await
        .unwrap_err();

    assert!(matches!(e, ProviderError::Timeout { .. }), "{e:?}");
    assert_eq!(tokens.all(), ["Hello"]);
}

#[tokio::test]
async fn an_error_inside_the_stream_is_classified() {
    let sse = "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"rate_limit_error\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let server = server_answering(200, sse, "text/event-stream").await;
    let p = provider(ProviderKind::OpenAi, &base(&server), Duration::from_secs(5));
    let e = p
        .complete_streaming(&CompletionRequest { ..hello() }, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
}
