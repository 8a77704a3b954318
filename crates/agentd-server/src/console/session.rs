//! `/console/api/session`: who is signed in (`GET`, through the API's own
//! authentication), signing in with an API key or a JWT (`POST`, which
//! checks it as the API would and keeps it in the session cookie), and
//! signing out (`DELETE`). See [`crate::auth::session`].

use crate::AppState;
use crate::auth::session as cookies;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use agentd_core::Identity;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The signed-in caller, as the console shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Session {
    tenant: String,
    principal: String,
    roles: Vec<String>,
    /// `none`, `api_key` or `jwt`.
    auth_mode: &'static str,
    /// May requeue dead letters: role `admin`, as the engine requires.
    admin: bool,
}

impl Session {
    fn of(app: &AppState, who: Identity) -> Self {
        let admin = who.has_role(crate::auth::ADMIN_ROLE);
        Self {
            tenant: who.tenant.to_string(),
            principal: who.principal.to_string(),
            roles: who.roles,
            auth_mode: app.auth.mode_name(),
            admin,
        }
    }
}

/// `GET /console/api/session`: 401 when not signed in.
pub(crate) async fn get(State(app): State<AppState>, Caller(who): Caller) -> Json<Session> {
    Json(Session::of(&app, who))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// An API key, or a JWT from the configured identity provider.
    credential: String,
}

/// `POST /console/api/session`: checks the credential as the API checks a
/// bearer token (a refusal is the API's 401) and starts the session.
/// Under `auth.mode = "none"` there is nothing to sign in with: the
/// caller is who the identity headers say, and no cookie is set.
pub(crate) async fn sign_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    if app.auth.trusts_headers() {
        let who = app.auth.authenticate(&headers).await?;
        return Ok(Json(Session::of(&app, who)).into_response());
    }
    let credential = body.credential.trim();
    if !cookies::cookie_safe(credential) {
        return Err(ApiError::BadRequest(
            "credential must be an API key or a JWT: visible ASCII without spaces, \
             quotes, commas or semicolons"
                .into(),
        ));
    }
    let who = app.auth.authenticate_credential(credential).await?;
    let mut res = Json(Session::of(&app, who)).into_response();
    for c in cookies::start(credential, cookies::secure(app.secure_cookies, &headers)) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

/// `DELETE /console/api/session`: ends the session (204). With the
/// session cookie it needs the CSRF header, so another site cannot sign
/// a person out.
pub(crate) async fn sign_out(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    cookies::refuse_forgery(&method, &headers)?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    for c in cookies::end(cookies::secure(app.secure_cookies, &headers)) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}
