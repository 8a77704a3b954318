//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// agentd: a production runtime for LLM agents.
#[derive(Debug, Parser)]
#[command(name = "agentd", version, about)]
pub struct Cli {
    /// Config file (default: ./agentd.toml if present, else the embedded default).
    #[arg(long, global = true, env = "AGENTD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON to stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr (default: text on a terminal, json otherwise).
    #[arg(long, global = true, env = "AGENTD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run workers in one process.
    Serve {
        /// API only: do not execute runs in this process.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run workers only (scale out against a shared store).
    Worker,
    /// Run an agent once, locally, showing its steps live.
    Run(RunArgs),
    /// Operate on runs in the configured store.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The dead-letter list: runs whose retries are exhausted.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// API keys (`auth.mode = "api_key"`): mint, list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The tenant's audit log, newest first: who did what to which run,
    /// and API key changes.
    Audit(AuditArgs),
    /// The tenant's usage report: runs, failures, tokens and cost by
    /// agent, principal, provider or day.
    Usage(UsageArgs),
    /// Versioned agents: show a rollout with each version's outcomes,
    /// promote its canary or roll it back (for every process sharing the
    /// store).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// `[[schedules]]`: agents started on a cron expression.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Serve agents as MCP tools (`run_<agent>`) over stdin and stdout,
    /// for desktop MCP clients; runs execute in this process, on the
    /// configured store. Logs go to stderr.
    Mcp(McpArgs),
    /// Apply store migrations.
    Migrate,
    /// Back up the whole store (every tenant) into FILE while agentd
    /// serves: SQLite with `VACUUM INTO`, PostgreSQL with `pg_dump -Fc`.
    Backup {
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into the configured store (stop agentd first).
    Restore {
        /// A file written by `agentd backup`.
        file: std::path::PathBuf,
        /// Replace a store that already holds agentd data.
        #[arg(long)]
        force: bool,
    },
    /// Operator operations on whole stores (every tenant).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Contract tests: check the config, every tool schema and MCP server,
    /// and run each agent's `[[agents.tests]]` cases on the mock provider.
    Test,
    /// Production-readiness score (0-15) of the config, with live probes
    /// of the store and providers, and what to change for each lost point.
    Check(CheckArgs),
    /// Generate deployment files from the config: `docker` (Dockerfile,
    /// .dockerignore), `compose` (compose.yaml), `k8s` (agentd.yaml) or
    /// `systemd` (hardened
    /// unit, environment file example). Secrets are referenced by name,
    /// never written.
    Deploy(DeployArgs),
    /// Probe this node's own HTTP listener: exit 0 when `/health` (or
    /// `/ready`) answers 2xx, 1 otherwise. The container image's
    /// HEALTHCHECK; needs no curl.
    Healthcheck(HealthcheckArgs),
}

/// `agentd mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// An agent to offer (repeatable); default: every configured agent.
    #[arg(long = "agent", value_name = "NAME")]
    pub agents: Vec<String>,
    #[command(flatten)]
    pub who: Who,
}

/// `agentd deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// What to generate.
    pub target: DeployTargetArg,
    /// Directory to write into (created if missing; files in it are
    /// replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// systemd: the installed `agentd` binary the unit runs.
    #[arg(long, default_value = "/usr/local/bin/agentd")]
    pub bin: PathBuf,
    /// systemd: the installed config file the unit passes to `--config`.
    #[arg(long, default_value = "/etc/agentd/agentd.toml")]
    pub config_path: PathBuf,
    /// compose: how many `agentd worker` replicas.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
}

/// `agentd deploy` targets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeployTargetArg {
    Docker,
    Compose,
    K8s,
    Systemd,
}

/// `agentd healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Probe `/ready` (accepting work) instead of `/health` (alive).
    #[arg(long)]
    pub ready: bool,
    /// Probe `server.metrics_listen` instead of `server.listen` (for an
    /// `agentd worker`, which serves no API).
    #[arg(long)]
    pub metrics: bool,
    /// Give up after this long ("3s", "500ms").
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `agentd check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Exit 1 when the total score is below N (a CI gate).
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,
    /// Skip the live probes of the store and providers.
    #[arg(long)]
    pub offline: bool,
}

/// `agentd run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Agent name.
    pub agent: String,
    /// Input: JSON if it parses as JSON, else plain text.
    pub input: String,
    /// Conversation to continue.
    #[arg(long)]
    pub conversation: Option<String>,
    #[command(flatten)]
    pub who: Who,
}

/// The identity a CLI command acts as.
#[derive(Debug, Clone, Args)]
pub struct Who {
    /// Tenant to act in.
    #[arg(long, default_value = "default", env = "AGENTD_TENANT")]
    pub tenant: String,
    /// Principal recorded in the audit log.
    #[arg(long, default_value = "cli")]
    pub principal: String,
}

/// `agentd rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The rollout of AGENT: stable, canary, share, and each version's
    /// finished runs since the split started.
    Status { agent: String },
    /// Make AGENT's canary the version every new run starts on.
    Promote {
        agent: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Send every new run of AGENT to its stable version.
    Rollback {
        agent: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

/// `agentd runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this conversation.
        #[arg(long)]
        conversation: Option<String>,
        /// Runs created at or after this time: RFC 3339 or a duration back
        /// from now (`1h`, `7d`).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        /// Runs created before this time (RFC 3339, or a duration back from now).
        #[arg(long, value_parser = parse_since)]
        until: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Show one run and its journal.
    Show {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Answer a paused run and continue it here.
    Resume {
        id: String,
        /// The answer: JSON if it parses as JSON, else plain text.
        #[arg(long)]
        answer: String,
        #[command(flatten)]
        who: Who,
    },
    /// Fork a run: a new run that starts with the original's steps
    /// `0..FROM_STEP` and continues here from step FROM_STEP.
    Fork {
        id: String,
        /// Steps kept from the original (index < N); execution resumes at
        /// step N. 0 re-runs from the start.
        #[arg(long)]
        from_step: u32,
        /// Replaces the original's input: JSON if it parses as JSON, else
        /// plain text.
        #[arg(long)]
        input: Option<String>,
        /// The agent version the fork runs on (default: the original's).
        #[arg(long)]
        agent_version: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Cancel a queued, running or paused run.
    Cancel {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Delete finished runs (succeeded, failed, cancelled) older than a
    /// duration, with their journals and audit records, in every tenant.
    /// Dead runs and conversation messages stay.
    Purge {
        /// e.g. "7d", "12h" (default: `store.checkpoint_ttl`).
        #[arg(long, value_parser = parse_duration)]
        older_than: Option<Duration>,
    },
}

/// `agentd audit`. The CLI reads as an admin of `--tenant`: every entry
/// of the tenant.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this run's entries.
    #[arg(long = "run", value_name = "ID")]
    pub run: Option<String>,
    /// Only entries caused by this principal (or `agent`, `policy`, a
    /// worker's node id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries of this kind (created, running, paused, resumed,
    /// cancelled, retry, dead, requeued, succeeded, failed, tool_denied,
    /// key_created, key_revoked, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries at or after this time: RFC 3339
    /// (`2026-12-01T00:00:00Z`) or a duration back from now (`1h`, `7d`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub who: Who,
}

/// `agentd usage`: the report `GET /v1/usage` gives, of `--tenant`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// What to group runs by: agent, principal, provider (a run counts
    /// under each provider it called) or day (UTC).
    #[arg(long, value_parser = parse_usage_group)]
    pub group_by: agentd_store::UsageGroup,
    /// Runs created at or after this time: RFC 3339
    /// (`2026-12-01T00:00:00Z`) or a duration back from now (`1h`, `7d`).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    /// Runs created before this time (RFC 3339, or a duration back from now).
    #[arg(long, value_parser = parse_since)]
    pub until: Option<i64>,
    #[command(flatten)]
    pub who: Who,
}

fn parse_usage_group(s: &str) -> Result<agentd_store::UsageGroup, String> {
    agentd_store::UsageGroup::parse(s).ok_or_else(|| {
        let all = agentd_store::UsageGroup::ALL.map(agentd_store::UsageGroup::as_str);
        format!("expected one of {}, got {s:?}", all.join(", "))
    })
}

/// `--since`: an RFC 3339 time, or a duration back from now, as epoch ms.
fn parse_since(s: &str) -> Result<i64, String> {
    if let Some(at) = agentd_core::parse_rfc3339(s) {
        return Ok(at);
    }
    let back = parse_duration(s).map_err(|_| {
        format!(
            "expected an RFC 3339 time (2026-12-01T00:00:00Z) or a duration (1h, 7d), got {s:?}"
        )
    })?;
    let back = i64::try_from(back.as_millis()).unwrap_or(i64::MAX);
    Ok(agentd_core::now_millis().saturating_sub(back))
}

/// A duration as the config writes them ("30s", "7d", "1h30m").
fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<agentd_config::Dur>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

/// `agentd schedules ...`.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// The tenant's schedules with their next tick, last tick and the run
    /// the last tick started.
    List {
        #[command(flatten)]
        who: Who,
    },
}

/// `agentd dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead runs, newest first, with their last error.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Queue a dead run again; a worker continues it from its journal.
    Requeue {
        id: String,
        #[command(flatten)]
        who: Who,
    },
}

/// `agentd store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything (every tenant's runs, journals, conversations,
    /// audit log, API keys, budgets, circuits, idempotency keys) from one
    /// store to another, SQLite or PostgreSQL either way, then verify the
    /// row counts. Stop agentd on both first.
    Copy {
        /// The store to read (at the current schema version).
        #[arg(long, value_name = "URL")]
        from: String,
        /// The store to write (migrated; must hold no runs or keys).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Replace a non-empty target's contents, and copy even while the
        /// source has runs leased by a worker.
        #[arg(long)]
        force: bool,
        /// Rows per batch (one transaction on the target each).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
}

/// `agentd keys ...`. The CLI acts on its configured store with an
/// operator's rights: every tenant.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint a key: printed once, only its hash is stored.
    Create {
        /// The tenant the key acts in.
        #[arg(long)]
        tenant: String,
        /// The principal the key acts as (recorded in the audit log).
        #[arg(long)]
        principal: String,
        /// A role of the key (repeat for several), e.g. `--role admin`.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// A name to recognise the key by in lists.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. "90d", "12h" (default: the key does not expire).
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
    },
    /// List keys, newest first (every tenant's unless `--tenant`); never
    /// their secrets.
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Revoke a key by its id (as `keys list` shows it): every process
    /// refuses it within seconds.
    Revoke { id: String },
}
