//! The web console at `/console`: a page and its script and stylesheet,
//! embedded in the binary (versioned with it, no CDN, no separate
//! deployment), and the session endpoints that sign a person in. The page
//! is a client of the same `/v1` API as any other, through the same
//! authentication, tenant scoping, roles and limits: the console has no
//! data path of its own.
//!
//! Every console response carries a Content-Security-Policy that allows
//! only this server's own script, styles and connections, no inline script
//! or style, and no framing.

mod session;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// What the console's pages may load and do.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// An embedded file: its bytes and content type.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../../console/index.html"),
    content_type: "text/html; charset=utf-8",
};

/// The files under `/console/assets/`.
fn asset(name: &str) -> Option<Asset> {
    Some(match name {
        "app.js" => Asset {
            body: include_str!("../../console/app.js"),
            content_type: "text/javascript; charset=utf-8",
        },
        "app.css" => Asset {
            body: include_str!("../../console/app.css"),
            content_type: "text/css; charset=utf-8",
        },
        "favicon.svg" => Asset {
            body: include_str!("../../console/favicon.svg"),
            content_type: "image/svg+xml",
        },
        _ => return None,
    })
}

/// The console's routes: the page (for every path under `/console`, which
/// the page's script routes itself), its assets and the session API.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let session = Router::new()
        .route(
            "/console/api/session",
            get(session::get).layer(middleware::from_fn_with_state(
                state.clone(),
                crate::auth::middleware,
            )),
        )
        .route(
            "/console/api/session",
            axum::routing::post(session::sign_in).delete(session::sign_out),
        );
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/assets/{name}", get(serve_asset))
        .route("/console/{*path}", get(page))
        .merge(session)
        .layer(middleware::map_response(security_headers))
}

/// The page, whatever the path under `/console` (the script reads it).
async fn page(headers: HeaderMap) -> Response {
    respond(&INDEX, &headers)
}

async fn serve_asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match asset(&name) {
        Some(a) => respond(&a, &headers),
        None => ApiError::NotFound(format!("no console asset {name:?}")).into_response(),
    }
}

/// An asset with its type and an ETag of its bytes: browsers revalidate
/// (`no-cache`) and get a 304 while the binary is the same, so a new
/// binary's console is picked up at once.
fn respond(a: &Asset, headers: &HeaderMap) -> Response {
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(a.body.as_bytes()))[..16]
    );
    let cache = [
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::ETAG, etag.clone()),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, a.content_type.to_owned())],
        cache,
        a.body,
    )
        .into_response()
}

/// The headers every console response carries.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}
