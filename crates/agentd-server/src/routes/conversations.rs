//! `/v1/conversations/{id}/messages`: a conversation's memory, read-only.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Caller, PathText};
use agentd_core::ConversationId;
use agentd_store::ConversationMessage;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of the messages list; `cursor` is an alias of `after` (a `seq`), so
/// `next_cursor` can be echoed back as either.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessagesQuery {
    /// Messages after this `seq` (`cursor` is an alias: echo `next_cursor`).
    #[serde(default, alias = "cursor")]
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// `GET /v1/conversations/{id}/messages`: oldest first. A conversation
/// nobody wrote to (or another tenant's) is an empty list, not a 404:
/// conversations exist only through their messages.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}/messages",
    operation_id = "list_messages",
    tag = "conversations",
    params(("id" = ConversationId, Path, description = "The conversation's id."), MessagesQuery),
    responses((status = 200, description = "A page of the conversation's messages, oldest \
        first; empty for a conversation nobody wrote to.", body = List<ConversationMessage>)),
)]
pub(crate) async fn messages(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(raw): PathText,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> ApiResult<Json<List<ConversationMessage>>> {
    let id = ConversationId::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = page_limit(q.limit)?;
    let page = app
        .engine
        .reads()
        .messages(&who, &id, q.after, limit)
        .await?;
    Ok(Json(page.into()))
}
