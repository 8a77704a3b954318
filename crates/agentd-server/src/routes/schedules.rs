//! `/v1/schedules`: the caller's tenant's `[[schedules]]`, with their next
//! tick and the latest tick that started a run.

use super::List;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Caller;
use agentd_engine::ScheduleStatus;
use agentd_store::Page;
use axum::Json;
use axum::extract::State;

/// `GET /v1/schedules`.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    operation_id = "list_schedules",
    tag = "schedules",
    responses(
        (status = 200, description = "The tenant's schedules by name (one page: \
            `next_cursor` is always null).", body = List<ScheduleStatus>),
    ),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<List<ScheduleStatus>>> {
    let items = app.engine.schedules(&who).await?;
    Ok(Json(
        Page {
            items,
            next_cursor: None,
        }
        .into(),
    ))
}
