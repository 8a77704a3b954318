//! `/v1/keys`: mint, list and revoke API keys. Who may do what is decided
//! by the engine's key facade (`agentd_engine::keys`), the same rules the
//! CLI goes through; these handlers only translate HTTP.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Caller, PathText};
use agentd_config::Dur;
use agentd_core::{KeyId, PrincipalId, TenantId};
use agentd_engine::keys::{Manager, MintRequest, Minted};
use agentd_store::ApiKey;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    principal: PrincipalId,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    /// e.g. `"90d"`; absent: the key does not expire.
    #[serde(default)]
    expires_in: Option<Dur>,
    /// Another tenant than the caller's (operators only).
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// A minted key as `POST /v1/keys` and `agentd keys create --json` show
/// it: the stored key and, this once, the key itself.
#[derive(Debug, Serialize)]
pub struct MintedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `agd_<id>_<secret>`: shown here and never again.
    #[serde(rename = "key")]
    pub token: String,
}

impl From<Minted> for MintedKey {
    fn from(minted: Minted) -> Self {
        let token = minted.token.reveal();
        Self {
            key: minted.key,
            token,
        }
    }
}

/// `POST /v1/keys`: 201 with the key, shown once.
pub(crate) async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<MintedKey>)> {
    let minted = app
        .engine
        .keys()
        .mint(
            Manager::Caller(&who),
            MintRequest {
                tenant: req.tenant,
                principal: req.principal,
                roles: req.roles,
                name: req.name,
                expires_in: req.expires_in.map(Dur::get),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(minted.into())))
}

/// Query of `GET /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
    /// Another tenant than the caller's (operators only).
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// `GET /v1/keys`: the tenant's keys, newest first, never their secrets.
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> ApiResult<Json<List<ApiKey>>> {
    let page = app
        .engine
        .keys()
        .list(
            Manager::Caller(&who),
            q.tenant,
            page_limit(q.limit)?,
            q.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page.into()))
}

/// Query of `DELETE /v1/keys/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeQuery {
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// `DELETE /v1/keys/{id}`: 204; 404 for a key that does not exist in the
/// tenant, whether it exists elsewhere or not.
pub(crate) async fn revoke(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(id): PathText,
    ApiQuery(q): ApiQuery<RevokeQuery>,
) -> ApiResult<StatusCode> {
    let id = KeyId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match app
        .engine
        .keys()
        .revoke(Manager::Caller(&who), q.tenant, &id)
        .await?
    {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::NotFound(format!("API key {id} not found"))),
    }
}
