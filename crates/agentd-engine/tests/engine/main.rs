//! Integration tests of the run engine, driven through its library API on a
//! temporary SQLite store and the scripted mock provider (no HTTP).

mod approval;
mod budget;
mod cancel;
mod config;
mod fixture;
mod fork;
mod guardrails;
mod heartbeat;
mod helpers;
mod human;
mod limits;
mod memory;
mod policy;
mod providers;
mod recovery;
mod registry;
mod retention;
mod retry;
mod rollout;
mod run;
mod schedules;
mod tenancy;
mod tools;
