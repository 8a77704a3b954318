//! `POST /v1/chat/completions`, `GET /v1/models`, `POST /v1/responses` and
//! `GET /v1/responses/{id}`: the OpenAI-compatible
//! API over agentd's runs (the translation lives in [`crate::openai`]).
//! Errors are in OpenAI's shape, so the OpenAI SDKs raise the matching
//! exception.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::openai::error::{OpenAiErrorBody, RUN_ID_HEADER};
use crate::openai::responses::{self, ResponseObject, ResponseRequest};
use crate::openai::responses_stream::ResponseStreamEvent;
use crate::openai::{self, ChatCompletion, ChatRequest, ModelList, OpenAiError};
use agentd_core::RunId;
use axum::Json;
use axum::extract::{Path, State};
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

/// `POST /v1/responses`: runs the agent `model` names on `input` and
/// answers with the response (the run): at once with `background`, as
/// Responses stream events with `stream`, else once the run finished or
/// paused. `previous_response_id` continues that response's conversation.
#[utoipa::path(
    post,
    path = "/v1/responses",
    operation_id = "create_response",
    tag = "openai",
    request_body = ResponseRequest,
    responses(
        (status = 200, description = "The response (the run; its `id` is the run id): \
            `queued` with `background`, else as the run is once it finished or paused \
            (`completed`, `incomplete` for a paused run, `failed`, `cancelled`). With \
            `stream`: Responses events (`response.created` ... `response.completed`).",
            body = ResponseObject, headers(("X-Agentd-Run-Id" = String)),
            content(
                (ResponseObject = "application/json"),
                (ResponseStreamEvent = "text/event-stream"),
            )),
        (status = 400, description = "A malformed request, or a `previous_response_id` \
            outside any conversation.", body = OpenAiErrorBody),
        (status = 401, description = "No valid API key (`invalid_api_key`).",
            body = OpenAiErrorBody),
        (status = 404, description = "No agent of that name (`model_not_found`), or no \
            such previous response (`previous_response_not_found`).", body = OpenAiErrorBody),
        (status = 429, description = "A rate limit refuses the request.",
            body = OpenAiErrorBody, headers(("Retry-After" = u64))),
    ),
)]
pub(crate) async fn create_response(
    State(app): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ResponseRequest>,
) -> Result<Response, OpenAiError> {
    let origin =
        agentd_telemetry::run_origin(headers.get("x-request-id").and_then(|v| v.to_str().ok()));
    let mut call = responses::parse(req, origin)?;
    let previous = match call.previous {
        Some(id) => app.engine.reads().run(&who, id).await?,
        None => None,
    };
    responses::join(&mut call, previous)?;
    let run = if call.stream {
        // Subscribed before the run exists, so no token is missed.
        let events = app.engine.subscribe();
        let run = app.engine.submit(&who, &call.agent, call.submit).await?;
        let id = run.id.to_string();
        let rx = openai::responses_stream::spawn(app.engine.clone(), events, run, app.wait_timeout);
        let sse = Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default());
        return Ok(with_run_id(sse.into_response(), &id));
    } else if call.background {
        app.engine.submit(&who, &call.agent, call.submit).await?
    } else {
        app.engine
            .submit_wait(&who, &call.agent, call.submit, app.wait_timeout)
            .await?
    };
    Ok(with_run_id(
        Json(responses::response(&run)).into_response(),
        &run.id.to_string(),
    ))
}

/// `GET /v1/responses/{id}`: the response as its run is now, read from the
/// store (so any process answers, also after a restart).
#[utoipa::path(
    get,
    path = "/v1/responses/{id}",
    operation_id = "get_response",
    tag = "openai",
    params(("id" = String, Path, description = "The response's id (its run's id).")),
    responses(
        (status = 200, description = "The response.", body = ResponseObject),
        (status = 401, description = "No valid API key (`invalid_api_key`).",
            body = OpenAiErrorBody),
        (status = 404, description = "No such response for the caller's tenant \
            (`response_not_found`).", body = OpenAiErrorBody),
    ),
)]
pub(crate) async fn get_response(
    State(app): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<ResponseObject>, OpenAiError> {
    let missing =
        || OpenAiError::not_found(format!("no response {id:?}"), "response_not_found", "id");
    let run_id = RunId::parse(&id).map_err(|_| missing())?;
    match app.engine.reads().run(&who, run_id).await? {
        Some(run) => Ok(Json(responses::response(&run))),
        None => Err(missing()),
    }
}
