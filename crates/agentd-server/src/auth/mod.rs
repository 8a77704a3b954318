//! Who is calling. Every `/v1` request passes [`middleware`], which turns
//! the request's credential into an [`Identity`] through the configured
//! [`Authenticator`] and stores it for the [`Caller`](crate::Caller)
//! extractor; a request without a valid credential never reaches a handler.
//!
//! A failure answers 401 with a stable reason code only; why a credential
//! was refused (which claim, which key) goes to the log, never to the
//! client, so the API is no oracle for forging one.

pub(crate) mod headers;
mod jwt;
mod keys;
pub mod session;

pub use jwt::{JwksError, JwtSetupError};

use crate::AppState;
use crate::error::ApiError;
use agentd_config::{AuthMode, Config};
use agentd_core::{Identity, Millis};
use agentd_engine::keys::Operators;
use agentd_store::{Store, StoreError};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Role that may manage its own tenant's keys and dead letters.
pub use agentd_engine::ADMIN_ROLE;
/// Role that may manage API keys of every tenant.
pub use agentd_engine::keys::OPERATOR_ROLE;

pub use crate::error::Reason;

/// A refused credential: the code for the client and the detail for the log.
#[derive(Debug)]
pub struct AuthFailure {
    pub reason: Reason,
    pub detail: String,
}

impl AuthFailure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(f: AuthFailure) -> Self {
        tracing::info!(reason = f.reason.as_str(), detail = %f.detail, "credential refused");
        ApiError::Unauthorized(f.reason)
    }
}

/// Why authentication could not be set up from the config.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `auth.jwt` names keys that cannot be used.
    #[error(transparent)]
    Jwt(#[from] JwtSetupError),
    /// `auth.mode = "api_key"`: the keys could not be loaded.
    #[error("loading API keys from the store failed: {0}")]
    Keys(#[from] StoreError),
}

/// How the identity of a request is established.
enum Mode {
    /// `auth.mode = "none"`: trusted identity headers (development only).
    Headers,
    /// `auth.mode = "jwt"`: a bearer JWT from an OpenID Connect provider.
    Jwt(Box<jwt::JwtVerifier>),
    /// `auth.mode = "api_key"`: keys minted by `agentd keys create` or
    /// `POST /v1/keys`; `read_at` is when the cache was loaded, where its
    /// refresh starts.
    ApiKeys {
        cache: Arc<keys::KeyCache>,
        read_at: Millis,
    },
}

/// Establishes callers' identities under the configured `auth.mode`.
#[derive(Clone)]
pub struct Authenticator {
    mode: Arc<Mode>,
    /// Role `operator` and the principals named in `auth.operators`.
    operators: Operators,
}

impl Authenticator {
    /// The authenticator `config.auth` describes; API keys are loaded from
    /// `store`.
    pub async fn from_config(
        config: &Config,
        store: &Arc<dyn Store>,
    ) -> Result<Self, AuthSetupError> {
        let mode = match config.auth.mode {
            AuthMode::None => Mode::Headers,
            AuthMode::Jwt => Mode::Jwt(Box::new(jwt::JwtVerifier::from_config(config).await?)),
            AuthMode::ApiKey => {
                let (cache, read_at) = keys::KeyCache::load(store.clone()).await?;
                Mode::ApiKeys { cache, read_at }
            }
        };
        Ok(Self {
            mode: Arc::new(mode),
            operators: Operators::from_config(config),
        })
    }

    /// The background work of the mode until `stop`: for API keys, keeping
    /// the cache current. Returns at once for modes without any.
    pub async fn run(&self, stop: CancellationToken) {
        match &*self.mode {
            Mode::Headers | Mode::Jwt(_) => {}
            Mode::ApiKeys { cache, read_at } => cache.run(*read_at, stop).await,
        }
    }

    /// Whether identity comes from trusted headers (`auth.mode = "none"`).
    pub fn trusts_headers(&self) -> bool {
        matches!(*self.mode, Mode::Headers)
    }

    /// The identity the request's credential proves: its bearer token, or
    /// the console's session cookie (see [`session`]).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        match &*self.mode {
            Mode::Headers => headers::identity(headers),
            Mode::Jwt(_) | Mode::ApiKeys { .. } => {
                self.authenticate_credential(credential(headers)?).await
            }
        }
    }

    /// The identity `credential` (an API key or a JWT, as a bearer token)
    /// proves: how the console signs a person in.
    pub async fn authenticate_credential(&self, credential: &str) -> Result<Identity, ApiError> {
        match &*self.mode {
            Mode::Headers => Err(ApiError::BadRequest(
                "auth.mode is \"none\": there is no credential to sign in with".into(),
            )),
            Mode::Jwt(verifier) => Ok(verifier.verify(credential).await?),
            Mode::ApiKeys { cache, .. } => Ok(cache.authenticate(credential).await?),
        }
    }

    /// `none`, `api_key` or `jwt`.
    pub fn mode_name(&self) -> &'static str {
        match &*self.mode {
            Mode::Headers => "none",
            Mode::Jwt(_) => "jwt",
            Mode::ApiKeys { .. } => "api_key",
        }
    }

    /// Whether `who` may act on another tenant's keys: role `operator`, or
    /// a principal named in `auth.operators`.
    pub fn is_operator(&self, who: &Identity) -> bool {
        self.operators.includes(who)
    }
}

/// The credential of a request: its bearer token, else its console
/// session cookie.
fn credential(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    if session::uses_cookie(headers)
        && let Some(c) = session::cookie(headers, session::SESSION_COOKIE)
    {
        return Ok(c);
    }
    bearer(headers)
}

/// The `Authorization: Bearer <token>` credential of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| AuthFailure::new(Reason::MissingCredential, "no Authorization header"))?;
    let value = value.to_str().map_err(|_| {
        AuthFailure::new(
            Reason::MalformedCredential,
            "Authorization header is not visible ASCII",
        )
    })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        AuthFailure::new(
            Reason::MalformedCredential,
            "Authorization header is not `Bearer <token>`",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::new(
            Reason::MalformedCredential,
            format!("Authorization scheme {scheme:?} is not Bearer"),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthFailure::new(
            Reason::MalformedCredential,
            "empty bearer token",
        ));
    }
    Ok(token)
}

/// Authenticates the request and hands its identity to the handlers.
pub(crate) async fn middleware(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // A state change riding on the console's session cookie must prove
    // it comes from the console (see `session`).
    if !state.auth.trusts_headers()
        && let Err(e) = session::refuse_forgery(req.method(), req.headers())
    {
        crate::extract::drain_body(req, state.max_body_bytes).await;
        return e.into_response();
    }
    match state.auth.authenticate(req.headers()).await {
        Ok(identity) => {
            req.extensions_mut().insert(crate::Caller(identity));
            next.run(req).await
        }
        Err(e) => {
            crate::extract::drain_body(req, state.max_body_bytes).await;
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_and_other_schemes_refused() {
        assert_eq!(bearer(&with_auth("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(&with_auth("bearer  abc ")).unwrap(), "abc");
        for (value, reason) in [
            ("Basic dXNlcjpwdw==", Reason::MalformedCredential),
            ("Bearer", Reason::MalformedCredential),
            ("Bearer   ", Reason::MalformedCredential),
        ] {
            assert_eq!(
                bearer(&with_auth(value)).unwrap_err().reason,
                reason,
                "{value}"
            );
        }
        assert_eq!(
            bearer(&HeaderMap::new()).unwrap_err().reason,
            Reason::MissingCredential
        );
    }
}
