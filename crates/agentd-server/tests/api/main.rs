//! Integration tests of the HTTP API: the real server on 127.0.0.1:0 over a
//! fresh SQLite store (one test on a PostgreSQL schema; HTTPS in `tls`), with workers
//! running the mock provider, all started through `Application`.

// Tests opt back in to the workspace-denied lints: a failed unwrap is a
// failed test. (clippy's allow-*-in-tests does not reach helper modules.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod busy;
mod console;
mod console_session;
mod cross_process;
mod dead_letters;
mod deploy;
mod errors;
mod events;
mod fork;
mod health;
mod helpers;
mod jwt;
mod keys;
mod lifecycle;
mod mcp;
mod metric_families;
mod metrics;
mod openai;
mod openapi;
mod postgres;
mod rate_limit;
mod responses;
mod rollouts;
mod runs;
mod schedules;
mod tenancy;
mod tls;
mod usage;
