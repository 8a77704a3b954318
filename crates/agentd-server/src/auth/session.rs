//! The console's session: the credential a person signed in with (an API
//! key or a JWT), kept in an `HttpOnly`, `SameSite=Strict` cookie that the
//! API accepts in place of `Authorization: Bearer`, so every request the
//! console makes is authenticated, scoped and limited by the one code path
//! the API has. Revoking the key or the token's expiry ends the session at
//! the next request.
//!
//! CSRF: a request that changes state and carries the session cookie must
//! also carry [`CSRF_HEADER`] equal to [`csrf_token`] of the credential,
//! which the console reads from the readable [`CSRF_COOKIE`]. Another site
//! can neither read that cookie nor set the header without a CORS
//! preflight this server never grants; `SameSite=Strict` is a second wall.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie holding the credential (`HttpOnly`).
pub const SESSION_COOKIE: &str = "agentd_session";
/// The cookie the console's script reads its CSRF token from.
pub const CSRF_COOKIE: &str = "agentd_csrf";
/// The header a state-changing request sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts without signing in again.
const SESSION_SECS: u64 = 12 * 3600;

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session's credential: derived from it, so any
/// replica checks it without shared state, and unknown to a site that
/// cannot read the credential.
pub fn csrf_token(credential: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"agentd console csrf\0");
    h.update(credential.as_bytes());
    hex::encode(h.finalize())
}

/// Whether the request authenticates with the session cookie (it has no
/// `Authorization` header of its own).
pub(crate) fn uses_cookie(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION) && cookie(headers, SESSION_COOKIE).is_some()
}

/// Refuses (403) a state-changing request made with the session cookie
/// whose CSRF header is missing or wrong; anything else passes.
pub(crate) fn refuse_forgery(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if method.is_safe() || !uses_cookie(headers) {
        return Ok(());
    }
    let expected = csrf_token(cookie(headers, SESSION_COOKIE).unwrap_or_default());
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Compared in constant time: the token is a secret of the session.
    if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Ok(());
    }
    tracing::info!("console request refused: missing or wrong CSRF token");
    Err(ApiError::Forbidden(format!(
        "a request signed in with the console's session must carry the {CSRF_HEADER} \
         header from the {CSRF_COOKIE} cookie"
    )))
}

/// Whether the session cookies must be `Secure`: the API is served over
/// HTTPS by agentd (`tls`) or, behind a proxy that ends TLS, the request
/// came over HTTPS (`X-Forwarded-Proto`; a forged header can only add
/// `Secure`).
pub fn secure(tls: bool, headers: &HeaderMap) -> bool {
    tls || headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Whether `credential` can be kept in a cookie as it is: visible ASCII
/// without the separators a `Cookie` header gives meaning to.
pub fn cookie_safe(credential: &str) -> bool {
    !credential.is_empty()
        && credential
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'))
}

/// The `Set-Cookie` values that start a session with `credential`
/// (`secure` when the API is served over HTTPS).
pub fn start(credential: &str, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    let attrs = format!("Path=/; Max-Age={SESSION_SECS}; SameSite=Strict{secure}");
    [
        format!("{SESSION_COOKIE}={credential}; HttpOnly; {attrs}"),
        format!("{CSRF_COOKIE}={}; {attrs}", csrf_token(credential)),
    ]
    .map(|c| HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("")))
}

/// The `Set-Cookie` values that end the session.
pub fn end(secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [SESSION_COOKIE, CSRF_COOKIE].map(|name| {
        HeaderValue::from_str(&format!(
            "{name}=; Path=/; Max-Age=0; SameSite=Strict{secure}"
        ))
        .unwrap_or(HeaderValue::from_static(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_are_found_among_others_and_across_headers() {
        let h = with(&[
            ("cookie", "a=1; agentd_session=k_1"),
            ("cookie", "agentd_csrf=x"),
        ]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("k_1"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "agentd"), None);
        assert!(uses_cookie(&h));
        let bearer = with(&[
            ("cookie", "agentd_session=k"),
            ("authorization", "Bearer k"),
        ]);
        assert!(!uses_cookie(&bearer), "a bearer token wins over the cookie");
    }

    #[test]
    fn csrf_needs_the_token_of_the_sessions_credential() {
        let token = csrf_token("k_1");
        assert_eq!(token.len(), 64);
        assert_ne!(token, csrf_token("k_2"));
        let post = Method::POST;
        let ok = with(&[("cookie", "agentd_session=k_1"), ("x-csrf-token", &token)]);
        assert!(refuse_forgery(&post, &ok).is_ok());
        let other = csrf_token("k_2");
        for bad in [
            with(&[("cookie", "agentd_session=k_1")]),
            with(&[("cookie", "agentd_session=k_1"), ("x-csrf-token", &other)]),
            with(&[("cookie", "agentd_session=k_1"), ("x-csrf-token", "")]),
        ] {
            assert!(matches!(
                refuse_forgery(&post, &bad),
                Err(ApiError::Forbidden(_))
            ));
            // Reads need no token.
            assert!(refuse_forgery(&Method::GET, &bad).is_ok());
        }
        // Without the cookie (a bearer token, or nothing) there is no session.
        assert!(refuse_forgery(&post, &with(&[("authorization", "Bearer k")])).is_ok());
    }

    #[test]
    fn cookies_are_secure_over_tls_or_behind_an_https_proxy() {
        assert!(secure(true, &HeaderMap::new()));
        assert!(!secure(false, &HeaderMap::new()));
        assert!(secure(false, &with(&[("x-forwarded-proto", "HTTPS")])));
        assert!(!secure(false, &with(&[("x-forwarded-proto", "http")])));
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_secure_over_tls() {
        let [session, csrf] = start("k_1", true);
        let session = session.to_str().unwrap();
        assert!(
            session.starts_with("agentd_session=k_1; HttpOnly;"),
            "{session}"
        );
        assert!(session.contains("SameSite=Strict") && session.ends_with("; Secure"));
        let csrf = csrf.to_str().unwrap();
        assert!(!csrf.contains("HttpOnly") && csrf.contains(&csrf_token("k_1")));
        let [plain, _] = start("k_1", false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(end(false)[0].to_str().unwrap().contains("Max-Age=0"));
        assert!(cookie_safe("agentd_sk_abc.def-1"));
        assert!(!cookie_safe("a;b") && !cookie_safe("a b") && !cookie_safe(""));
    }
}
