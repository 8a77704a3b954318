//! What the HTTP providers share: settings from config, the API key, the
//! reqwest client with its timeouts, classification of HTTP and transport
//! failures into [`ProviderError`]s, and the server-sent-event reader.

use crate::{BuildError, ProviderError};
use agentd_config::ProviderConfig;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// An API key. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A header value marked sensitive, so reqwest never prints it.
    pub(crate) fn header(&self, prefix: &str) -> Result<HeaderValue, String> {
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", self.expose()))
            .map_err(|_| "the API key contains characters not allowed in a header".to_owned())?;
        v.set_sensitive(true);
        Ok(v)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Everything an HTTP provider needs, resolved from `[providers.<name>]`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The configured provider name.
    pub name: String,
    /// Endpoint root, without a trailing `/`.
    pub base_url: String,
    /// The model name sent to the API (and the `[pricing]` key).
    pub model: String,
    /// `None` sends no credential (a local OpenAI-compatible server).
    pub api_key: Option<ApiKey>,
    /// The variable the key came from, named in authentication errors.
    pub api_key_env: Option<String>,
    /// Overall deadline of one call; also the idle gap allowed between
    /// bytes of a response.
    pub timeout: Duration,
    /// `max_tokens` sent with each request (Anthropic needs one).
    pub max_tokens: Option<u32>,
}

/// Longest time allowed to open a TCP+TLS connection.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of an error body kept in a message.
const MAX_ERROR_CHARS: usize = 600;

impl HttpSettings {
    /// Resolves a provider's settings, reading the key through `env`.
    pub(crate) fn from_config(
        name: &str,
        cfg: &ProviderConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, BuildError> {
        let kind = cfg.kind.as_str();
        let model = cfg
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| BuildError::MissingModel {
                provider: name.to_owned(),
                kind,
            })?;
        let base_url = match &cfg.base_url {
            Some(url) => url.clone(),
            None => cfg.kind.default_base_url().to_owned(),
        };
        let parsed = url::Url::parse(&base_url).map_err(|e| BuildError::BadBaseUrl {
            provider: name.to_owned(),
            url: base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(BuildError::BadBaseUrl {
                provider: name.to_owned(),
                url: base_url,
                reason: "the scheme must be http or https".to_owned(),
            });
        }
        let api_key = match &cfg.api_key_env {
            None => None,
            Some(var) => match env(var) {
                Some(key) if !key.trim().is_empty() => Some(ApiKey::new(key.trim())),
                _ => {
                    return Err(BuildError::MissingApiKey {
                        provider: name.to_owned(),
                        var: var.clone(),
                    });
                }
            },
        };
        Ok(Self {
            name: name.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            model,
            api_key,
            api_key_env: cfg.api_key_env.clone(),
            timeout: crate::call_timeout(cfg),
            max_tokens: cfg.max_tokens,
        })
    }

    /// A reqwest client with connect and idle-gap timeouts. The overall
    /// deadline is enforced around each call, not with
    /// `ClientBuilder::timeout`, which would also cut a healthy stream.
    pub(crate) fn client(&self) -> Result<reqwest::Client, BuildError> {
        reqwest::Client::builder()
            .connect_timeout(self.timeout.min(MAX_CONNECT_TIMEOUT))
            .read_timeout(self.timeout)
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError::Client {
                provider: self.name.clone(),
                message: e.to_string(),
            })
    }

    /// Replaces the key (and anything shaped like one) in text that came
    /// from the provider: OpenAI echoes a masked key in 401 messages.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = match &self.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "[redacted]"),
            _ => text.to_owned(),
        };
        let looks_like_key = |w: &str| {
            w.trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
                .starts_with("sk-")
        };
        if out.split(' ').any(looks_like_key) {
            out = out
                .split(' ')
                .map(|w| if looks_like_key(w) { "[redacted]" } else { w })
                .collect::<Vec<_>>()
                .join(" ");
        }
        truncate(&out, MAX_ERROR_CHARS)
    }

    /// A transport-level failure (no HTTP status).
    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        let provider = self.name.clone();
        if e.is_timeout() {
            return ProviderError::Timeout { provider };
        }
        // Without the URL: a base_url may carry userinfo.
        let mut message = error_chain(e);
        if e.is_connect() {
            message = format!("cannot connect to {}: {message}", self.host());
        }
        ProviderError::Connection {
            provider,
            message: self.scrub(&message),
        }
    }

    fn host(&self) -> String {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| format!("{h}{}", u.port().map_or(String::new(), |p| format!(":{p}"))))
            })
            .unwrap_or_else(|| "the provider".to_owned())
    }

    /// The message of an authentication failure: which provider, which
    /// variable to check; never the key.
    fn auth_message(&self, status: u16, detail: &str) -> String {
        let check = match &self.api_key_env {
            Some(var) => format!("check the API key in environment variable {var}"),
            None => "no API key is configured (set `api_key_env`)".to_owned(),
        };
        let what = if status == 403 {
            "permission denied"
        } else {
            "authentication failed"
        };
        format!("{what} (HTTP {status}): {check}; the provider said: {detail}")
    }

    /// Classifies a non-2xx response.
    pub(crate) async fn status_error(&self, resp: reqwest::Response) -> ProviderError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), SystemTime::now());
        let body = resp.text().await.unwrap_or_default();
        self.classify(status, retry_after, &body)
    }

    /// Classifies an HTTP status with its body (also used for error events
    /// inside a stream, with the status their type maps to).
    pub(crate) fn classify(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        body: &str,
    ) -> ProviderError {
        let provider = self.name.clone();
        let detail = ErrorBody::parse(body);
        let message = self.scrub(&detail.to_string());
        let is_quota = detail.code_or_type_is("insufficient_quota");
        match status {
            401 | 403 => ProviderError::Auth {
                provider,
                message: self.auth_message(status, &message),
            },
            402 => ProviderError::Quota { provider, message },
            429 if is_quota => ProviderError::Quota { provider, message },
            429 => ProviderError::RateLimited {
                provider,
                retry_after,
            },
            408 => ProviderError::Timeout { provider },
            400 | 413 | 422 if detail.is_context_length() => {
                ProviderError::ContextLength { provider, message }
            }
            500..=599 => ProviderError::Server {
                provider,
                message: format!("HTTP {status}: {message}"),
                retry_after,
            },
            _ => ProviderError::BadRequest {
                provider,
                message: format!("HTTP {status}: {message}"),
            },
        }
    }

    pub(crate) fn invalid(&self, message: impl fmt::Display) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.name.clone(),
            message: self.scrub(&message.to_string()),
        }
    }

    /// Runs `call` under the overall deadline.
    pub(crate) async fn with_deadline<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Timeout {
                    provider: self.name.clone(),
                })
            })
    }

    /// Sends a request; a non-2xx answer becomes its classified error.
    pub(crate) async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        // The provider-call span's trace context, when traced.
        let mut trace = HeaderMap::new();
        agentd_telemetry::inject(&mut trace);
        let req = if trace.is_empty() {
            req
        } else {
            req.headers(trace)
        };
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.status_error(resp).await)
        }
    }

    /// Reads a 2xx JSON body.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ProviderError> {
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.invalid(format!(
                "{e} in {}",
                truncate(&String::from_utf8_lossy(&bytes), 200)
            ))
        })
    }

    /// The server-sent events of a 2xx streaming response.
    pub(crate) fn events(
        &self,
        resp: reqwest::Response,
    ) -> impl Stream<Item = Result<Event, ProviderError>> + '_ {
        resp.bytes_stream().eventsource().map(move |r| {
            r.map_err(|e| match e {
                EventStreamError::Transport(e) => self.transport_error(&e),
                other => self.invalid(other),
            })
        })
    }
}

/// `e` and its sources, one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// The wait a provider asks for: `retry-after-ms` (OpenAI), then
/// `Retry-After` as seconds (possibly fractional) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The parts of a provider's error body agentd looks at. OpenAI:
/// `{"error": {"message", "type", "code"}}`; Anthropic: `{"type": "error",
/// "error": {"type", "message"}}`; vLLM: `{"message", "type", "code"}`;
/// Ollama: `{"error": "text"}`; anything else: the raw text.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    message: String,
    kind: Option<String>,
    code: Option<String>,
}

impl ErrorBody {
    pub(crate) fn parse(body: &str) -> Self {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            return Self {
                message: body.trim().to_owned(),
                ..Self::default()
            };
        };
        let inner = match v.get("error") {
            Some(e) if e.is_object() => e,
            Some(serde_json::Value::String(s)) => {
                return Self {
                    message: s.clone(),
                    ..Self::default()
                };
            }
            _ => &v,
        };
        let text = |k: &str| match inner.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Self {
            message: text("message")
                .or_else(|| text("detail"))
                .unwrap_or_else(|| body.trim().to_owned()),
            kind: text("type"),
            code: text("code"),
        }
    }

    fn code_or_type_is(&self, name: &str) -> bool {
        self.code.as_deref() == Some(name) || self.kind.as_deref() == Some(name)
    }

    /// OpenAI `context_length_exceeded`, Anthropic "prompt is too long",
    /// vLLM "maximum context length", Ollama/LiteLLM variants.
    fn is_context_length(&self) -> bool {
        if self.code_or_type_is("context_length_exceeded") {
            return true;
        }
        let m = self.message.to_ascii_lowercase();
        [
            "context length",
            "context_length",
            "context window",
            "prompt is too long",
            "too many tokens",
        ]
        .iter()
        .any(|p| m.contains(p))
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.code) {
            (Some(k), _) => write!(f, "{k}: {}", self.message),
            (None, Some(c)) => write!(f, "{c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Token usage estimated as characters / 4 when a server reports none (as
/// the mock does), so budgets still apply.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars / 4) as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        // 2015-10-21T07:28:00Z is 10 s after `now`.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn scrub_removes_keys() {
        let s = HttpSettings {
            name: "p".into(),
            base_url: "http://x".into(),
            model: "m".into(),
            api_key: Some(ApiKey::new("sk-secret-123")),
            api_key_env: Some("K".into()),
            timeout: Duration::from_secs(1),
            max_tokens: None,
        };
        let out = s.scrub("Incorrect API key provided: sk-secr*****-123. Also sk-secret-123 (a task-based risk-free text)");
        assert!(out.contains("task-based risk-free"), "{out}");
        assert!(!out.contains("secret"), "{out}");
        assert!(!out.contains(" sk-"), "{out}");
        assert_eq!(format!("{:?}", ApiKey::new("sk-x")), "ApiKey([redacted])");
    }
}
