//! Arrangement shared by agentd's test binaries (engine, API and CLI):
//! identities and config pieces, PostgreSQL schemas, the Redis server, webhook receivers and,
//! with the `app` feature, [`app::spawn_app`] — agentd started through
//! `Application` on `127.0.0.1:0`. A dev-dependency only, never a normal one.

// Test arrangement: failing loudly on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "app")]
pub mod app;
pub mod config;
pub mod pg;
pub mod python;
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
pub mod webhook;

pub use config::{W1_SCRIPT, identity, sqlite_url, unique_name};
pub use pg::{drop_schema, postgres_url, terminate_connections};
pub use redis::redis_url;
pub use webhook::{WebhookReceiver, standardwebhooks_verifies};
