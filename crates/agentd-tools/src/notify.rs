//! Completion webhooks: the signed POST of a run to its `callback_url` or
//! its agent's `on_finish` (see `[webhooks]`). An `on_finish` naming a
//! webhook tool is sent with that tool's URL, secret, `allow` and limits;
//! any other URL with `[webhooks] secret_env`, `allow` and `timeout`.
//! Every URL goes through the SSRF guard; redirects are not followed.

use std::collections::HashMap;

use agentd_config::{Config, ToolKind};
use agentd_core::Callback;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::error::ToolsError;
use crate::http::{GuardedClient, HttpError, Limits, Request};
use crate::registry::BuildOptions;
use crate::signing::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret};

/// Header naming the event a delivery announces (`run.succeeded`, ...).
pub const EVENT_HEADER: &str = "agentd-event";

/// Largest answer body read from a receiver (it is not kept).
const MAX_ANSWER_BYTES: u64 = 65_536;

/// A client and the secret its deliveries are signed with.
#[derive(Clone)]
struct Sender {
    client: GuardedClient,
    secret: WebhookSecret,
}

/// Sends completion webhooks.
#[derive(Clone, Default)]
pub struct Notifier {
    /// `[webhooks]`, when `secret_env` is set.
    default: Option<Sender>,
    /// Each webhook tool's URL and sender, by tool name.
    tools: HashMap<String, (String, Sender)>,
}

/// Reads `var` (named by config key `key`) as a `whsec_` secret.
fn secret(key: &str, var: &str, options: &BuildOptions) -> Result<WebhookSecret, ToolsError> {
    let raw = (options.env)(var)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ToolsError::config(
                key.to_owned(),
                format!("environment variable {var} (the webhook signing secret) is not set"),
            )
        })?;
    WebhookSecret::parse(&raw)
        .map_err(|e| ToolsError::config(key.to_owned(), format!("variable {var}: {e}")))
}

impl Notifier {
    /// The senders `config` asks for; a missing or malformed secret is an
    /// error naming its key.
    pub fn from_config_with(config: &Config, options: &BuildOptions) -> Result<Self, ToolsError> {
        let w = &config.webhooks;
        let default = match w.secret_env.as_deref() {
            None => None,
            Some(var) => Some(Sender {
                client: GuardedClient::new(
                    "webhooks",
                    &w.allow,
                    Limits {
                        timeout: w.timeout.get(),
                        max_bytes: MAX_ANSWER_BYTES,
                    },
                    options.resolver.clone(),
                )?,
                secret: secret("webhooks.secret_env", var, options)?,
            }),
        };
        let mut tools = HashMap::new();
        for (name, cfg) in &config.tools {
            if cfg.kind != Some(ToolKind::Webhook) {
                continue;
            }
            // The tool registry reports a webhook tool without these.
            let (Some(url), Some(var)) = (&cfg.url, &cfg.secret_env) else {
                continue;
            };
            let sender = Sender {
                client: GuardedClient::new(
                    &format!("tools.{name}"),
                    &cfg.allow,
                    Limits::from_config(Some(cfg)),
                    options.resolver.clone(),
                )?,
                secret: secret(&format!("tools.{name}.secret_env"), var, options)?,
            };
            tools.insert(name.clone(), (url.clone(), sender));
        }
        Ok(Notifier { default, tools })
    }

    /// [`Notifier::from_config_with`] with the process environment and the
    /// system resolver.
    pub fn from_config(config: &Config) -> Result<Self, ToolsError> {
        Self::from_config_with(config, &BuildOptions::default())
    }

    /// The webhook an agent's `on_finish` names: a webhook tool (its URL),
    /// else the URL itself.
    pub fn on_finish(&self, target: &str) -> Callback {
        match self.tools.get(target) {
            Some((url, _)) => Callback {
                url: url.clone(),
                tool: Some(target.to_owned()),
            },
            None => Callback {
                url: target.to_owned(),
                tool: None,
            },
        }
    }

    /// Checks a `callback_url` a caller names: it needs `[webhooks]
    /// secret_env`, and the guard must accept it. The message says why not.
    pub fn check_callback(&self, url: &str) -> Result<(), String> {
        let sender = self.default.as_ref().ok_or(
            "callback_url needs `[webhooks] secret_env` in the server's config (the secret that \
             signs deliveries)",
        )?;
        sender
            .client
            .guard()
            .check_url_str(url)
            .map(|_| ())
            .map_err(|e| format!("callback_url is refused: {e}"))
    }

    /// POSTs `body` (a run, as JSON) to `callback`, signed with message id
    /// `id`: the receiver's status code, or why there was none.
    pub async fn deliver(
        &self,
        callback: &Callback,
        id: &str,
        event: &str,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let sender = match &callback.tool {
            Some(tool) => self
                .tools
                .get(tool)
                .map(|(_, s)| s)
                .ok_or_else(|| format!("webhook tool `{tool}` is no longer configured"))?,
            None => self
                .default
                .as_ref()
                .ok_or("`[webhooks] secret_env` is no longer configured")?,
        };
        let url = sender
            .client
            .guard()
            .check_url_str(&callback.url)
            .map_err(|e| format!("the URL is refused: {e}"))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = sender.secret.sign(id, timestamp, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let header =
            |v: &str| HeaderValue::from_str(v).map_err(|_| format!("cannot send header {v:?}"));
        headers.insert(WEBHOOK_ID, header(id)?);
        headers.insert(WEBHOOK_TIMESTAMP, header(&timestamp.to_string())?);
        headers.insert(WEBHOOK_SIGNATURE, header(&signature)?);
        headers.insert(EVENT_HEADER, header(event)?);
        let req = Request {
            method: Method::POST,
            url,
            headers,
            body: Some(body),
        };
        match sender.client.send(req, false).await {
            Ok(resp) => Ok(resp.status.as_u16()),
            Err(HttpError::Refused(e)) => Err(format!("the URL is refused: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("default", &self.default.is_some())
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}
