//! Integration tests of agentd-tools: the registry built from config, the
//! SSRF guard against local servers, the file jail, webhooks, and MCP
//! against a real server written with the official Python SDK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod files;
mod http;
mod mcp;
mod registry;
mod ssrf;
mod webhook;
