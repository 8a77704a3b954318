//! Traces and logs of `agentd serve`, end to end: a real OTLP/HTTP receiver
//! in the test process decodes the exported protobuf spans, a local server
//! speaking OpenAI's wire format plays the model, and serve's debug JSON log
//! is read back.

use crate::support::{BIN, Workspace, free_port, http_ok};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key the provider is given: it must never reach the log.
const SECRET: &str = "sk-agentd-test-5f3a9c71e2d8b4a6";
/// The caller's trace: the run's spans must join it.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Spans received by the OTLP endpoint.
type Spans = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`.
async fn otlp_receiver() -> (u16, Spans) {
    async fn export(State(spans): State<Spans>, body: Bytes) -> (axum::http::StatusCode, Vec<u8>) {
        let req = ExportTraceServiceRequest::decode(body).unwrap();
        let mut all = spans.lock().unwrap();
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                all.extend(ss.spans);
            }
        }
        // An empty ExportTraceServiceResponse.
        (axum::http::StatusCode::OK, Vec::new())
    }
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(export))
        .with_state(spans.clone());
    (serve(app).await, spans)
}

/// Each model call's `traceparent` and `authorization` headers.
type Calls = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// An OpenAI-compatible chat-completions server: the first call asks for
/// `echo`, the second for `ask_human`, the third replies.
async fn openai_server() -> (u16, Calls) {
    async fn complete(
        State(calls): State<Calls>,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
        calls
            .lock()
            .unwrap()
            .push((header("traceparent"), header("authorization")));
        let tool_results = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .count();
        let message = match tool_results {
            0 => tool_call("echo", json!({ "text": "ping" })),
            1 => tool_call("ask_human", json!({ "question": "ship it?" })),
            _ => json!({ "role": "assistant", "content": "shipped" }),
        };
        axum::Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-test",
            "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28 }
        }))
    }
    fn tool_call(name: &str, args: Value) -> Value {
        json!({ "role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{name}"), "type": "function",
            "function": { "name": name, "arguments": args.to_string() }
        }]})
    }
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(complete))
        .with_state(calls.clone());
    (serve(app).await, calls)
}

async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// `agentd serve` with debug JSON logs appended to `log` and traces sent
/// to `otlp_port`.
fn start(ws: &Workspace, config: &Path, port: u16, otlp_port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(BIN)
        .current_dir(ws.path())
        .env_remove("AGENTD_CONFIG")
        .env("AGENTD_LOG", "debug")
        .env("AGENTD_LOG_FORMAT", "json")
        .env("TRACES_TEST_KEY", SECRET)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_ok(&format!("http://127.0.0.1:{port}/health")) {
        assert!(Instant::now() < deadline, "agentd never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGTERM and wait: the exit flushes the spans still buffered.
fn stop(mut child: Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn attr_int(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Any::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_and_resumed_run_is_one_trace_with_run_fields_in_every_log_line() {
    // Arrange: a W1-style agent on an OpenAI-compatible provider with a
    // key; traces to the in-test receiver.
    let (otlp_port, spans) = otlp_receiver().await;
    let (model_port, calls) = openai_server().await;
    let ws = Workspace::new();
    let port = free_port();
    let config = ws.write_config(&format!(
        r#"
[server]
listen = "127.0.0.1:{port}"

[auth]
mode = "api_key"

[providers.main]
kind = "openai"
base_url = "http://127.0.0.1:{model_port}/v1"
api_key_env = "TRACES_TEST_KEY"
model = "gpt-test"

[[agents]]
name = "w1"
providers = ["main"]
tools = ["echo", "ask_human"]
"#
    ));
    let log = ws.path().join("serve.log");
    let client = reqwest::Client::new();
    // The caller's bearer token: a secret too.
    let minted = ws
        .cmd()
        .args([
            "--json",
            "keys",
            "create",
            "--tenant",
            "acme",
            "--principal",
            "ops",
        ])
        .args(["--role", "admin", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let minted: Value = serde_json::from_slice(&minted.stdout).unwrap();
    let token = minted["key"].as_str().unwrap().to_owned();

    // Act 1: the caller's trace context comes in; the run pauses.
    let server = start(&ws, &config, port, otlp_port, &log);
    let res = client
        .post(format!("http://127.0.0.1:{port}/v1/agents/w1/runs"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({ "input": "deploy", "wait": true }))
        .send()
        .await
        .unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let run: Value = res.json().await.unwrap();
    assert_eq!(run["status"], "paused", "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    stop(server);

    // Act 2: another process resumes it, with no trace context of its own.
    let server = start(&ws, &config, port, otlp_port, &log);
    let done: Value = client
        .post(format!("http://127.0.0.1:{port}/v1/runs/{run_id}/resume"))
        .bearer_auth(&token)
        .json(&json!({ "answer": "yes", "wait": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    stop(server);

    // Assert (traces): both attempts, all steps and calls, in the caller's
    // trace, as a tree under the creating request.
    let spans = spans.lock().unwrap().clone();
    let trace = hex::decode(TRACE).unwrap();
    let in_trace: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == trace).collect();
    let names: Vec<&str> = in_trace.iter().map(|s| s.name.as_str()).collect();
    let create = named(&in_trace, "POST /v1/agents/{agent}/runs");
    assert_eq!(create.len(), 1, "{names:?}");
    let create = create[0];
    assert_eq!(create.parent_span_id, hex::decode(CALLER_SPAN).unwrap());
    assert!(
        matches!(
            attr_int(create, "http.response.status_code"),
            Some(200 | 202)
        ),
        "{create:?}"
    );
    let attempts = named(&in_trace, "run attempt");
    assert_eq!(attempts.len(), 2, "paused, then resumed: {names:?}");
    for a in &attempts {
        assert_eq!(
            a.parent_span_id, create.span_id,
            "stored context is the parent"
        );
        assert_eq!(attr_str(a, "agentd.run_id"), Some(run_id.as_str()));
        assert_eq!(attr_str(a, "agentd.tenant"), Some("acme"));
        assert_eq!(attr_str(a, "agentd.agent"), Some("w1"));
    }
    let attempt_ids: Vec<&Vec<u8>> = attempts.iter().map(|a| &a.span_id).collect();
    let llm_steps = named(&in_trace, "step llm");
    let tool_steps = named(&in_trace, "step tool");
    assert_eq!((llm_steps.len(), tool_steps.len()), (3, 2), "{names:?}");
    let mut step_indexes = Vec::new();
    for s in llm_steps.iter().chain(&tool_steps) {
        assert!(attempt_ids.contains(&&s.parent_span_id), "{s:?}");
        assert_eq!(attr_str(s, "agentd.run_id"), Some(run_id.as_str()));
        assert_eq!(attr_str(s, "agentd.tenant"), Some("acme"));
        step_indexes.push(attr_int(s, "agentd.step").unwrap());
    }
    step_indexes.sort_unstable();
    assert_eq!(step_indexes, [0, 1, 2, 3, 4]);
    let chats = named(&in_trace, "chat gpt-test");
    assert_eq!(chats.len(), 3, "{names:?}");
    let llm_ids: Vec<&Vec<u8>> = llm_steps.iter().map(|s| &s.span_id).collect();
    for c in &chats {
        assert!(llm_ids.contains(&&c.parent_span_id), "{c:?}");
        assert_eq!(attr_str(c, "gen_ai.system"), Some("openai"));
        assert_eq!(attr_str(c, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(attr_str(c, "gen_ai.request.model"), Some("gpt-test"));
        assert_eq!(attr_int(c, "gen_ai.usage.input_tokens"), Some(21));
        assert_eq!(attr_int(c, "gen_ai.usage.output_tokens"), Some(7));
        assert_eq!(attr_str(c, "agentd.run_id"), Some(run_id.as_str()));
        assert_eq!(attr_str(c, "agentd.tenant"), Some("acme"));
        let parent = llm_steps.iter().find(|s| s.span_id == c.parent_span_id);
        assert_eq!(
            attr_int(c, "agentd.step"),
            parent.and_then(|s| attr_int(s, "agentd.step"))
        );
    }
    let tool_ids: Vec<&Vec<u8>> = tool_steps.iter().map(|s| &s.span_id).collect();
    for name in ["tool echo", "tool ask_human"] {
        let t = named(&in_trace, name);
        assert_eq!(t.len(), 1, "{name}: {names:?}");
        assert!(tool_ids.contains(&&t[0].parent_span_id), "{name}");
    }

    // Assert (propagation): each model call carried its chat span's context.
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let chat_ids: Vec<String> = chats.iter().map(|c| hex::encode(&c.span_id)).collect();
    for (traceparent, _) in &calls {
        let tp = traceparent.as_deref().expect("traceparent sent");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts[1], TRACE, "{tp}");
        assert!(chat_ids.contains(&parts[2].to_owned()), "{tp}");
    }

    // Assert (logs): the run's lines carry its fields at the top level,
    // with the creating request's id and the trace id, in both processes.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let run_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["run_id"] == run_id.as_str())
        .collect();
    assert!(run_lines.len() >= 2, "{text}");
    for l in &run_lines {
        assert_eq!(l["tenant"], "acme", "{l}");
        assert_eq!(l["agent"], "w1", "{l}");
        assert_eq!(l["request_id"], request_id.as_str(), "{l}");
        assert_eq!(l["trace_id"], TRACE, "{l}");
        assert!(l.get("span").is_none() && l.get("spans").is_none(), "{l}");
    }

    // Assert (secrets): the keys reached the provider and the server,
    // never the log.
    assert_eq!(
        calls[0].1.as_deref(),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(!text.contains(SECRET), "the API key was logged");
    assert!(
        !text.contains("sk-agentd-test"),
        "part of the API key was logged"
    );
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "debug logs were on"
    );
}
