//! End-to-end tests of the `agentd` binary: the CLI contract and crash
//! recovery with a real SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod approval;
mod chaos;
mod commands;
mod crash;
mod keys;
mod store;
mod support;
