//! `[tools.NAME] kind = "webhook"`: POSTs the call's arguments as JSON to a
//! configured URL (through the SSRF guard), with `Idempotency-Key:
//! <run_id>:<step_index>` so a step repeated after a crash can be
//! deduplicated, and an HMAC-SHA256 signature so the receiver can verify it.
//!
//! Signature: `X-Agentd-Signature: sha256=<hex>` where the MAC, keyed with
//! the secret, covers `<timestamp>.<idempotency key>.<body>` and the
//! timestamp (Unix seconds) is sent as `X-Agentd-Timestamp`.

use agentd_core::ToolSpec;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sha2::Sha256;
use url::Url;

use crate::http::{GuardedClient, HttpError, Request};
use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// Header carrying `sha256=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-agentd-signature";
/// Header carrying the signed Unix timestamp, in seconds.
pub const TIMESTAMP_HEADER: &str = "x-agentd-timestamp";
/// The idempotency header.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The `X-Agentd-Signature` value for a request: `sha256=` and the hex
/// HMAC-SHA256, keyed with `secret`, of `<timestamp>.<idempotency_key>.<body>`.
/// Receivers recompute it (in constant time) to verify a request.
pub fn webhook_signature(
    secret: &[u8],
    timestamp: u64,
    idempotency_key: &str,
    body: &[u8],
) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(idempotency_key.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook tool.
pub(crate) struct Webhook {
    spec: ToolSpec,
    url: Url,
    secret: Vec<u8>,
    client: GuardedClient,
}

impl Webhook {
    pub(crate) fn new(spec: ToolSpec, url: Url, secret: Vec<u8>, client: GuardedClient) -> Webhook {
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
        let signature = webhook_signature(&self.secret, timestamp, &key, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let header = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| ToolError::failed(tool, "cannot encode a request header"))
        };
        headers.insert(IDEMPOTENCY_HEADER, header(&key)?);
        headers.insert(TIMESTAMP_HEADER, header(&timestamp.to_string())?);
        headers.insert(SIGNATURE_HEADER, header(&signature)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_key_and_body() {
        // Reference value computed independently:
        // printf '1700000000.run:3.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let sig = webhook_signature(b"s3cret", 1_700_000_000, "run:3", br#"{"a":1}"#);
        assert_eq!(
            sig,
            "sha256=70f5b9bc2aed082943e6a473e29cbc9f56ef21694adee53e237ee90e99756355"
        );
        assert_ne!(
            sig,
            webhook_signature(b"other", 1_700_000_000, "run:3", br#"{"a":1}"#)
        );
        assert_ne!(
            sig,
            webhook_signature(b"s3cret", 1_700_000_001, "run:3", br#"{"a":1}"#)
        );
        assert_ne!(
            sig,
            webhook_signature(b"s3cret", 1_700_000_000, "run:4", br#"{"a":1}"#)
        );
        assert_ne!(
            sig,
            webhook_signature(b"s3cret", 1_700_000_000, "run:3", br#"{"a":2}"#)
        );
    }
}
