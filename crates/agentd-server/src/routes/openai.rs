//! `POST /v1/chat/completions` and `GET /v1/models`: the OpenAI-compatible
//! API over agentd's runs (the translation lives in [`crate::openai`]).
//! Errors are in OpenAI's shape, so the OpenAI SDKs raise the matching
//! exception.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::openai::error::{OpenAiErrorBody, RUN_ID_HEADER};
use crate::openai::{self, ChatCompletion, ChatRequest, ModelList, OpenAiError};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio_stream::wrappers::ReceiverStream;

/// `POST /v1/chat/completions`: runs the agent `model` names on the
/// conversation and answers with its output (or, with `stream`, streams
/// it). The completion's `id` is the run's id.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    operation_id = "create_chat_completion",
    tag = "openai",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The run's answer, once it finished or paused (a paused \
            run's question is the message; `agentd.status` is `paused`). With `stream`: \
            `chat.completion.chunk` Server-Sent Events ending with `data: [DONE]`.",
            body = ChatCompletion, headers(("X-Agentd-Run-Id" = String)),
            content(
                (ChatCompletion = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "A malformed request.", body = OpenAiErrorBody),
        (status = 401, description = "No valid API key (`invalid_api_key`).",
            body = OpenAiErrorBody),
        (status = 404, description = "No agent of that name (`model_not_found`).",
            body = OpenAiErrorBody),
        (status = 429, description = "A rate limit refuses the request.",
            body = OpenAiErrorBody, headers(("Retry-After" = u64))),
        (status = 500, description = "The run failed, died or was cancelled (its id in \
            `X-Agentd-Run-Id`).", body = OpenAiErrorBody),
    ),
)]
pub(crate) async fn chat_completions(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, OpenAiError> {
    let origin =
        agentd_telemetry::run_origin(headers.get("x-request-id").and_then(|v| v.to_str().ok()));
    let call = openai::parse(req, origin)?;
    if call.stream {
        // Subscribed before the run exists, so no token is missed.
        let events = app.engine.subscribe();
        let run = app.engine.submit(&who, &call.agent, call.submit).await?;
        let rx = openai::stream::spawn(
            app.engine.clone(),
            events,
            &run,
            app.wait_timeout,
            call.include_usage,
        );
        let sse = Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default());
        return Ok(with_run_id(sse.into_response(), &run.id.to_string()));
    }
    let run = app
        .engine
        .submit_wait(&who, &call.agent, call.submit, app.wait_timeout)
        .await?;
    let completion = openai::completion(&run)?;
    Ok(with_run_id(
        Json(completion).into_response(),
        &run.id.to_string(),
    ))
}

fn with_run_id(mut res: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut()
            .insert(HeaderName::from_static(RUN_ID_HEADER), v);
    }
    res
}

/// `GET /v1/models`: the agents, as OpenAI models.
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "list_models",
    tag = "openai",
    responses(
        (status = 200, description = "The configured agents, in OpenAI's list shape.",
            body = ModelList),
        (status = 401, description = "No valid API key (`invalid_api_key`).",
            body = OpenAiErrorBody),
    ),
)]
pub(crate) async fn models(State(app): State<AppState>, _who: Caller) -> Json<ModelList> {
    Json(openai::models(app.engine.agent_names(), app.started_at))
}
