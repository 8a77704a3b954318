//! `http_get {url}` and `http_request {method, url, headers?, body?}`: HTTP
//! through the SSRF guard, with response size and time limits.
//!
//! A refused URL is an argument error (the model is told and can pick
//! another); a network failure or timeout is a result with an `error` field,
//! since the model may retry or give up; neither fails the run.

use agentd_core::ToolSpec;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use crate::http::{GuardedClient, HttpError, Request, parse_headers};
use crate::{Tool, ToolContext, ToolError, ToolOutput};

fn outcome(
    tool: &str,
    url: &str,
    result: Result<crate::http::Response, HttpError>,
) -> Result<ToolOutput, ToolError> {
    match result {
        Ok(resp) => Ok(ToolOutput::Value(resp.to_value())),
        Err(HttpError::Refused(e)) => Err(ToolError::invalid(tool, e.to_string())),
        Err(e) => Ok(ToolOutput::Value(
            json!({ "url": url, "error": e.to_string() }),
        )),
    }
}

/// `http_get {url}`.
pub(crate) struct HttpGet {
    spec: ToolSpec,
    client: GuardedClient,
}

impl HttpGet {
    pub(crate) fn new(client: GuardedClient) -> HttpGet {
        HttpGet {
            spec: ToolSpec {
                name: "http_get".into(),
                description: "Fetches a public http(s) URL with GET and returns the status, \
                              content type and body (cut at a size limit)."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "url": { "type": "string", "description": "An http:// or https:// URL." }
                    },
                    "required": ["url"],
                    "additionalProperties": false
                }),
            },
            client,
        }
    }
}

#[async_trait::async_trait]
impl Tool for HttpGet {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let tool = self.spec.name.as_str();
        let raw = args
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::invalid(tool, "expected a string field \"url\""))?;
        let url = self
            .client
            .guard()
            .check_url_str(raw)
            .map_err(|e| ToolError::invalid(tool, e.to_string()))?;
        let req = Request {
            method: Method::GET,
            url,
            headers: Default::default(),
            body: None,
        };
        outcome(tool, raw, self.client.send(req, true).await)
    }
}

/// `http_request {method, url, headers?, body?}`.
pub(crate) struct HttpRequest {
    spec: ToolSpec,
    client: GuardedClient,
}

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

impl HttpRequest {
    pub(crate) fn new(client: GuardedClient) -> HttpRequest {
        HttpRequest {
            spec: ToolSpec {
                name: "http_request".into(),
                description: "Sends an HTTP request to a public http(s) URL and returns the \
                              status, content type and body (cut at a size limit). A JSON \
                              `body` that is not a string is sent as application/json."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "method": { "type": "string", "enum": METHODS },
                        "url": { "type": "string", "description": "An http:// or https:// URL." },
                        "headers": {
                            "type": "object",
                            "additionalProperties": { "type": "string" }
                        },
                        "body": { "type": ["string", "object", "array"] }
                    },
                    "required": ["method", "url"],
                    "additionalProperties": false
                }),
            },
            client,
        }
    }
}

#[async_trait::async_trait]
impl Tool for HttpRequest {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let tool = self.spec.name.as_str();
        let method = args
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .filter(|m| METHODS.contains(&m.as_str()))
            .ok_or_else(|| {
                ToolError::invalid(
                    tool,
                    format!("\"method\" must be one of {}", METHODS.join(", ")),
                )
            })?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ToolError::invalid(tool, "invalid method"))?;
        let raw = args
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::invalid(tool, "expected a string field \"url\""))?;
        let url = self
            .client
            .guard()
            .check_url_str(raw)
            .map_err(|e| ToolError::invalid(tool, e.to_string()))?;
        let mut headers = parse_headers(tool, args.get("headers"))?;
        let body = match args.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone().into_bytes()),
            Some(other) => {
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Some(other.to_string().into_bytes())
            }
        };
        // A step re-executed after a crash sends the same key, so a server
        // that honours it does not repeat the side effect.
        if matches!(method, Method::POST | Method::PATCH)
            && !headers.contains_key("idempotency-key")
            && let Ok(key) = HeaderValue::from_str(&ctx.idempotency_key())
        {
            headers.insert("idempotency-key", key);
        }
        let req = Request {
            method,
            url,
            headers,
            body,
        };
        outcome(tool, raw, self.client.send(req, true).await)
    }
}
