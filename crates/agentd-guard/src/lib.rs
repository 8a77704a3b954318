//! Guardrail detectors: what the engine runs on text at step boundaries.
//! Pure functions over strings, no I/O, so they are tested and benchmarked
//! alone; the engine decides what a verdict does (block, flag, quote,
//! redact) and journals it.
//!
//! - [`hygiene`]: control and invisible characters, removed before any
//!   other check.
//! - [`injection`]: prompt-injection heuristics.
//! - [`pii`]: personal data and secrets, and reversible redaction.
//! - [`schema`]: JSON Schema checks, for tool arguments and output
//!   contracts.

pub mod hygiene;
pub mod injection;
pub mod pii;
pub mod schema;
