//! `[tools.NAME] kind = "webhook"`: POSTs the call's arguments as JSON to a
//! configured URL (through the SSRF guard), signed per the Standard
//! Webhooks specification ([`crate::signing`]) with `webhook-id:
//! <run_id>:<step_index>`, the same on every re-execution of the step, which
//! `Idempotency-Key` repeats for receivers that deduplicate on it.

use agentd_core::ToolSpec;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use crate::http::{GuardedClient, HttpError, Request};
use crate::signing::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret};
use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// The idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A webhook tool.
pub(crate) struct Webhook {
    spec: ToolSpec,
    url: Url,
    secret: WebhookSecret,
    client: GuardedClient,
}

impl Webhook {
    pub(crate) fn new(
        spec: ToolSpec,
        url: Url,
        secret: WebhookSecret,
        client: GuardedClient,
    ) -> Webhook {
        Webhook {
            spec,
            url,
            secret,
            client,
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

#[async_trait::async_trait]
impl Tool for Webhook {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let tool = self.spec.name.as_str();
        let body = serde_json::to_vec(args).map_err(|e| {
            ToolError::invalid(tool, format!("arguments are not serializable: {e}"))
        })?;
        let key = ctx.idempotency_key();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = self.secret.sign(&key, timestamp, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let header = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| ToolError::failed(tool, "cannot encode a request header"))
        };
        headers.insert(IDEMPOTENCY_HEADER, header(&key)?);
        headers.insert(WEBHOOK_ID, header(&key)?);
        headers.insert(WEBHOOK_TIMESTAMP, header(&timestamp.to_string())?);
        headers.insert(WEBHOOK_SIGNATURE, header(&signature)?);
        let req = Request {
            method: Method::POST,
            url: self.url.clone(),
            headers,
            body: Some(body),
        };
        // No redirects: a signed POST is delivered where it was configured.
        let resp = match self.client.send(req, false).await {
            Ok(resp) => resp,
            Err(HttpError::Refused(e)) => {
                return Err(ToolError::failed(
                    tool,
                    format!("the configured webhook URL is refused: {e}"),
                ));
            }
            Err(e) => return Err(ToolError::failed(tool, e.to_string())),
        };
        let status = resp.status.as_u16();
        let body = serde_json::from_slice::<Value>(&resp.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&resp.body).into_owned()));
        if resp.status.is_success() {
            return Ok(ToolOutput::Value(json!({ "status": status, "body": body })));
        }
        let message = format!("webhook answered {status}: {}", snippet(&resp.body));
        // A 4xx (other than timeout and rate limit) rejects these arguments:
        // the model may fix them. Anything else is the receiver's failure,
        // and a retry of the run re-sends the same idempotency key.
        if resp.status.is_client_error() && status != 408 && status != 429 {
            Err(ToolError::invalid(tool, message))
        } else {
            Err(ToolError::failed(tool, message))
        }
    }
}
