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

/// Query of the messages list; `cursor` is an alias of `after` (a `seq`), so
/// `next_cursor` can be echoed back as either.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagesQuery {
    #[serde(default, alias = "cursor")]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/conversations/{id}/messages`: oldest first. A conversation
/// nobody wrote to (or another tenant's) is an empty list, not a 404:
/// conversations exist only through their messages.
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
