//! The guarded HTTP client behind `http_get`, `http_request` and webhooks:
//! SSRF checks on every hop (redirects are followed by hand), no proxies, a
//! streaming body read that stops at `max_bytes`, and one deadline for the
//! whole exchange.

use std::sync::Arc;
use std::time::Duration;

use agentd_config::ToolConfig;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::error::ToolsError;
use crate::ssrf::{DnsResolver, Guard, GuardResolver, SsrfError};

/// Default `timeout` of the HTTP tools.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `max_bytes` of the HTTP tools.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 1_048_576;
/// Hops followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A request as the tools build it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Vec<u8>>,
}

/// A response read within the limits.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    /// The URL that answered (after redirects).
    pub(crate) url: Url,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
    /// The body was longer than `max_bytes` and was cut there.
    pub(crate) truncated: bool,
}

impl Response {
    /// The shape the model sees.
    pub(crate) fn to_value(&self) -> Value {
        json!({
            "status": self.status.as_u16(),
            "url": self.url.as_str(),
            "content_type": self.content_type,
            "body": String::from_utf8_lossy(&self.body),
            "truncated": self.truncated,
        })
    }
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The guard refused the URL or a redirect target.
    #[error(transparent)]
    Refused(#[from] SsrfError),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("redirect without a usable Location header")]
    BadRedirect,
    #[error("request failed: {0}")]
    Transport(String),
}

/// Settings shared by the HTTP tools and webhooks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: u64,
}

impl Limits {
    pub(crate) fn from_config(cfg: Option<&ToolConfig>) -> Limits {
        Limits {
            timeout: cfg
                .and_then(|c| c.timeout)
                .map_or(DEFAULT_TIMEOUT, |d| d.get()),
            max_bytes: cfg.and_then(|c| c.max_bytes).unwrap_or(DEFAULT_MAX_BYTES),
        }
    }
}

/// A reqwest client whose every connection goes through the guard.
#[derive(Clone)]
pub(crate) struct GuardedClient {
    client: reqwest::Client,
    guard: Arc<Guard>,
    limits: Limits,
}

impl GuardedClient {
    /// `key` names the config table for errors (`tools.http_get`).
    pub(crate) fn new(
        key: &str,
        allow: &[String],
        limits: Limits,
        resolver: Arc<dyn DnsResolver>,
    ) -> Result<GuardedClient, ToolsError> {
        let guard = Arc::new(
            Guard::new(allow, resolver)
                .map_err(|(i, msg)| ToolsError::config(format!("{key}.allow[{i}]"), msg))?,
        );
        let client = reqwest::Client::builder()
            // Redirects are followed by hand so each hop is checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, out of the guard's sight.
            .no_proxy()
            .dns_resolver(Arc::new(GuardResolver(guard.clone())))
            .connect_timeout(limits.timeout)
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ToolsError::config(key.to_owned(), format!("cannot build HTTP client: {e}"))
            })?;
        Ok(GuardedClient {
            client,
            guard,
            limits,
        })
    }

    pub(crate) fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Sends `req`, following up to five redirects when `follow` (each
    /// target checked; 301/302/303 turn into a GET without body; headers
    /// that carry credentials are dropped when the origin changes).
    pub(crate) async fn send(&self, req: Request, follow: bool) -> Result<Response, HttpError> {
        let timeout = self.limits.timeout;
        tokio::time::timeout(timeout, self.send_inner(req, follow))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn send_inner(&self, mut req: Request, follow: bool) -> Result<Response, HttpError> {
        let mut hops = 0usize;
        loop {
            self.guard.check_url(&req.url)?;
            let mut builder = self
                .client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            // The tool call's trace context, when traced.
            let mut trace = reqwest::header::HeaderMap::new();
            agentd_telemetry::inject(&mut trace);
            if !trace.is_empty() {
                builder = builder.headers(trace);
            }
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            let resp = builder.send().await.map_err(classify)?;
            let status = resp.status();
            if follow && status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(HttpError::TooManyRedirects);
                }
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| req.url.join(l).ok())
                    .ok_or(HttpError::BadRedirect)?;
                if next.origin() != req.url.origin() {
                    for h in [
                        reqwest::header::AUTHORIZATION,
                        reqwest::header::COOKIE,
                        reqwest::header::PROXY_AUTHORIZATION,
                    ] {
                        req.headers.remove(h);
                    }
                }
                if matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
                ) && req.method != Method::HEAD
                {
                    req.method = Method::GET;
                    req.body = None;
                    req.headers.remove(reqwest::header::CONTENT_TYPE);
                }
                req.url = next;
                continue;
            }
            return self.read(resp).await;
        }
    }

    async fn read(&self, mut resp: reqwest::Response) -> Result<Response, HttpError> {
        let status = resp.status();
        let url = resp.url().clone();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max = usize::try_from(self.limits.max_bytes).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            let room = max.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            url,
            content_type,
            body,
            truncated,
        })
    }
}

/// Finds the guard's refusal inside reqwest's error chain (it comes from the
/// resolver), or describes the transport failure.
fn classify(err: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<SsrfError>() {
            return HttpError::Refused(refused.clone());
        }
        source = e.source();
    }
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
    }
    HttpError::Transport(message)
}

/// Parses `{"Name": "value"}` into headers, refusing ones that would change
/// where or how the request is sent.
pub(crate) fn parse_headers(
    tool: &str,
    value: Option<&Value>,
) -> Result<HeaderMap, crate::ToolError> {
    let mut headers = HeaderMap::new();
    let Some(value) = value else {
        return Ok(headers);
    };
    let Some(map) = value.as_object() else {
        return Err(crate::ToolError::invalid(
            tool,
            "`headers` must be an object of strings",
        ));
    };
    for (name, v) in map {
        let Some(v) = v.as_str() else {
            return Err(crate::ToolError::invalid(
                tool,
                format!("header {name:?} must be a string"),
            ));
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            crate::ToolError::invalid(tool, format!("invalid header name {name:?}"))
        })?;
        if matches!(
            name.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "upgrade"
                | "te"
                | "proxy-authorization"
                | "keep-alive"
                | "trailer"
        ) {
            return Err(crate::ToolError::invalid(
                tool,
                format!("header {name:?} cannot be set"),
            ));
        }
        let v = HeaderValue::from_str(v).map_err(|_| {
            crate::ToolError::invalid(tool, format!("invalid value for header {name:?}"))
        })?;
        headers.append(name, v);
    }
    Ok(headers)
}
