//! `POST /v1/admin/reload`: reloads the config file (the same as SIGHUP).

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Caller;
use agentd_engine::{ADMIN_ROLE, Reloaded};
use axum::Json;
use axum::extract::State;

/// `POST /v1/admin/reload`.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    operation_id = "reload_config",
    tag = "admin",
    responses(
        (status = 200, description = "The config was reloaded: agents, providers, tools, \
            policies, pricing, budgets and rollouts are the file's now; runs in flight keep \
            their definitions. `restart_required` names changed keys that apply only at the \
            next start.", body = Reloaded),
        (status = 403, description = "The caller lacks role `admin`.", body = ErrorBody),
        (status = 409, description = "The config does not load or validate (the message \
            says where), or this process has no config source to reload; the config in \
            force stays.", body = ErrorBody),
    ),
)]
pub(crate) async fn reload(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Reloaded>> {
    if !who.has_role(ADMIN_ROLE) {
        return Err(ApiError::Forbidden(format!(
            "reloading the config needs role {ADMIN_ROLE:?}"
        )));
    }
    let Some(reloader) = &app.reloader else {
        return Err(ApiError::Conflict(
            "this process was not started from a config it can reload".into(),
        ));
    };
    let trigger = format!("POST /v1/admin/reload by {}", who.principal);
    match reloader.reload(&trigger).await {
        Ok(done) => Ok(Json(done)),
        Err(e) => Err(ApiError::Conflict(format!(
            "config rejected, the previous one stays in force: {e}"
        ))),
    }
}
