//! End-to-end tests of the `agentd` binary: the CLI contract and crash
//! recovery with a real SIGKILL, HTTPS and its SIGHUP reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod approval;
mod audit;
mod backup;
mod chaos;
mod check;
mod commands;
mod crash;
mod deploy;
mod fork;
mod jwt;
mod keys;
mod mcp;
mod pii;
mod registry;
mod reload;
mod responses;
mod runbook;
mod schedules;
mod store;
mod storecopy;
mod support;
mod tls;
mod traces;
mod usage;
mod webhooks;
