//! agentd-guard's integration tests: the detectors measured on labelled
//! data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod injection_set;
