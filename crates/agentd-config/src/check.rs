//! `agentd check`: a production-readiness score computed from the config,
//! a few facts of the process environment, and the outcomes of live probes
//! (run by the caller, so this module does no I/O and tests need no
//! network).
//!
//! Five areas, three criteria each, one point per criterion: 15 in all. A
//! failed live probe costs one more point in its area (never below 0):
//! besides the store and the providers answering, two criteria can only be
//! checked live, in the store's fleet tables: more than one worker process
//! (`reliability.workers`) and a recent backup (`data.backups`). So every
//! area stays 0–3 and the total 15, and full marks need every probe to
//! pass; with `--offline` the probes are listed as not checked and cost
//! nothing. Every lost point is a [`Finding`] naming the key (or command)
//! to change and the value to set.

use serde::Serialize;

use crate::access::AuthMode;
use crate::keypath::KeyPath;
use crate::types::{Config, ProviderKind};

/// Points per area.
pub const AREA_MAX: u32 = 3;

/// `reliability.workers`: how recently a worker process must have been
/// seen (it refreshes its registry row every third of a lease) to count.
pub const WORKERS_SEEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// `reliability.workers`: worker processes needed for the point.
pub const MIN_WORKERS: usize = 2;

/// `data.backups`: the newest recorded backup may be this old (a daily
/// schedule, with two hours of slack).
pub const BACKUP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(26 * 3600);

/// One of the five areas scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Metrics, traces, logs.
    Observability,
    /// Who may call, over what, at what rate.
    Security,
    /// Surviving provider failures and runaway spend.
    Reliability,
    /// Shutdown, retention, retries.
    Operations,
    /// Where the data lives and how it is protected.
    Data,
}

impl Area {
    /// Every area, in report order.
    pub const ALL: [Area; 5] = [
        Area::Observability,
        Area::Security,
        Area::Reliability,
        Area::Operations,
        Area::Data,
    ];

    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Observability => "observability",
            Area::Security => "security",
            Area::Reliability => "reliability",
            Area::Operations => "operations",
            Area::Data => "data",
        }
    }
}

/// Facts outside the config file that criteria depend on; the binary reads
/// them from its environment, tests set them.
#[derive(Debug, Clone, Default)]
pub struct CheckEnv {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT` is set, which
    /// turns tracing on without `telemetry.otlp_endpoint`.
    pub otel_endpoint_env: bool,
    /// Logs are forced to text (`--log-format text` or
    /// `AGENTD_LOG_FORMAT=text`); otherwise a service's stderr, not being a
    /// terminal, gets JSON lines.
    pub log_format_text: bool,
}

/// Something a live probe checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeTarget {
    /// The store `store.url` names: reachable and migrated.
    Store,
    /// The store's worker registry: [`MIN_WORKERS`] processes or more seen
    /// within [`WORKERS_SEEN_WITHIN`].
    Workers,
    /// The store's record of backups: one taken within [`BACKUP_MAX_AGE`].
    Backups,
    /// A provider: its endpoint answers. `url` is what to GET; `None` for
    /// the mock, which never calls out and always passes.
    Provider {
        /// The provider's name in `[providers]`.
        name: String,
        /// The URL to GET, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

impl ProbeTarget {
    /// The area a failure costs a point in.
    pub fn area(&self) -> Area {
        match self {
            ProbeTarget::Store | ProbeTarget::Backups => Area::Data,
            ProbeTarget::Workers | ProbeTarget::Provider { .. } => Area::Reliability,
        }
    }

    /// The key to look at when it fails; for the fleet's criteria, which
    /// no key sets, the command to run.
    pub fn key(&self) -> String {
        match self {
            ProbeTarget::Store => "store.url".to_owned(),
            ProbeTarget::Workers => "agentd worker".to_owned(),
            ProbeTarget::Backups => "agentd backup".to_owned(),
            ProbeTarget::Provider { name, .. } => {
                KeyPath::of(&["providers", name, "base_url"]).to_string()
            }
        }
    }

    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            ProbeTarget::Store => "store".to_owned(),
            ProbeTarget::Workers => "workers".to_owned(),
            ProbeTarget::Backups => "backups".to_owned(),
            ProbeTarget::Provider { name, .. } => format!("provider {name}"),
        }
    }

    /// The id of the criterion it checks.
    pub fn check(&self) -> &'static str {
        match self {
            ProbeTarget::Store => "data.store_probe",
            ProbeTarget::Workers => "reliability.workers",
            ProbeTarget::Backups => "data.backups",
            ProbeTarget::Provider { .. } => "reliability.provider_probe",
        }
    }
}

/// What to probe for `config`: the store, its worker registry and its
/// record of backups, then each provider by name. A
/// provider's URL is its model list (`GET {base_url}/models` for OpenAI,
/// `{base_url}/v1/models` for Anthropic): cheap, and answered by any
/// compatible server.
pub fn probe_targets(config: &Config) -> Vec<ProbeTarget> {
    let mut targets = vec![
        ProbeTarget::Store,
        ProbeTarget::Workers,
        ProbeTarget::Backups,
    ];
    for (name, p) in &config.providers {
        let base = p
            .base_url
            .as_deref()
            .unwrap_or(p.kind.default_base_url())
            .trim_end_matches('/');
        let url = match p.kind {
            ProviderKind::Mock => None,
            ProviderKind::OpenAi => Some(format!("{base}/models")),
            ProviderKind::Anthropic => Some(format!("{base}/v1/models")),
        };
        targets.push(ProbeTarget::Provider {
            name: name.clone(),
            url,
        });
    }
    targets
}

/// The outcome of one live probe.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// What was probed.
    pub target: ProbeTarget,
    /// Whether it passed.
    pub ok: bool,
    /// What happened, e.g. the error or the HTTP status.
    pub detail: String,
}

/// One lost point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The area the point is lost in.
    pub area: Area,
    /// Stable id of the criterion, e.g. `security.auth`.
    pub check: &'static str,
    /// The config key (or environment variable) to change.
    pub key: String,
    /// What to set it to, and why.
    pub advice: String,
}

/// The score of one area.
#[derive(Debug, Clone, Serialize)]
pub struct AreaScore {
    /// Which area.
    pub area: Area,
    /// Points kept.
    pub score: u32,
    /// Points possible.
    pub max: u32,
}

/// The whole assessment; its JSON form is what `agentd check --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Sum of the areas' scores.
    pub score: u32,
    /// 15.
    pub max: u32,
    /// Each area, in [`Area::ALL`] order.
    pub areas: Vec<AreaScore>,
    /// Every lost point, by area.
    pub findings: Vec<Finding>,
    /// The live probes run (empty with `--offline`).
    pub probes: Vec<Probe>,
    /// Whether live probes were skipped.
    pub offline: bool,
    /// With `--offline`, what the skipped probes would have checked: those
    /// criteria (the fleet's `reliability.workers` and `data.backups`
    /// among them) could not be checked and cost no point.
    pub not_checked: Vec<ProbeTarget>,
}

/// Scores `config` (see the module docs). `probes` are the live probes'
/// outcomes; `None` means they were skipped (`--offline`).
pub fn assess(config: &Config, env: &CheckEnv, probes: Option<Vec<Probe>>) -> Report {
    let mut findings = Vec::new();
    criteria(config, env, &mut findings);
    let offline = probes.is_none();
    let not_checked = if offline {
        probe_targets(config)
    } else {
        Vec::new()
    };
    let probes = probes.unwrap_or_default();
    for p in probes.iter().filter(|p| !p.ok) {
        findings.push(probe_finding(p));
    }
    let areas: Vec<AreaScore> = Area::ALL
        .iter()
        .map(|&area| {
            let lost = findings.iter().filter(|f| f.area == area).count();
            let lost = u32::try_from(lost).unwrap_or(u32::MAX);
            AreaScore {
                area,
                score: AREA_MAX.saturating_sub(lost),
                max: AREA_MAX,
            }
        })
        .collect();
    findings.sort_by_key(|f| Area::ALL.iter().position(|a| *a == f.area));
    Report {
        score: areas.iter().map(|a| a.score).sum(),
        max: AREA_MAX * u32::try_from(Area::ALL.len()).unwrap_or(0),
        areas,
        findings,
        probes,
        offline,
        not_checked,
    }
}

fn probe_finding(p: &Probe) -> Finding {
    let advice = match &p.target {
        ProbeTarget::Store => format!(
            "the store did not answer or is not migrated ({}): point `store.url` at a \
             reachable store and run `agentd migrate`",
            p.detail
        ),
        ProbeTarget::Workers => format!(
            "{}: run {MIN_WORKERS} worker processes or more on one PostgreSQL store (`agentd \
             worker`, or `agentd serve` replicas), so a process dying or being redeployed does \
             not stop every run; a SQLite store is one process's",
            p.detail
        ),
        ProbeTarget::Backups => format!(
            "{}: run `agentd backup --out FILE` on a schedule (each is recorded in the store): \
             daily from cron (`0 3 * * * agentd backup --force --out \
             /var/backups/agentd/agentd.db`), a systemd timer (`OnCalendar=daily`) or a \
             Kubernetes CronJob (`schedule: \"0 3 * * *\"`)",
            p.detail
        ),
        ProbeTarget::Provider { name, url } => format!(
            "provider {name} did not answer at {} ({}): set a reachable `base_url`",
            url.as_deref().unwrap_or("-"),
            p.detail
        ),
    };
    Finding {
        area: p.target.area(),
        check: p.target.check(),
        key: p.target.key(),
        advice,
    }
}

/// The fifteen static criteria; each failed one pushes one finding.
fn criteria(config: &Config, env: &CheckEnv, out: &mut Vec<Finding>) {
    let mut lose = |area, check, key: String, advice: &str| {
        out.push(Finding {
            area,
            check,
            key,
            advice: advice.to_owned(),
        });
    };

    // Observability.
    if config.server.metrics_listen.is_none() {
        lose(
            Area::Observability,
            "observability.metrics_listen",
            "server.metrics_listen".into(),
            "set `server.metrics_listen = \"0.0.0.0:9090\"`: workers serve no API, so only this \
             listener lets every process be scraped and probed",
        );
    }
    if config.telemetry.otlp_endpoint.is_none() && !env.otel_endpoint_env {
        lose(
            Area::Observability,
            "observability.traces",
            "telemetry.otlp_endpoint".into(),
            "set `telemetry.otlp_endpoint = \"http://COLLECTOR:4318\"` (or \
             OTEL_EXPORTER_OTLP_ENDPOINT) so runs are traced",
        );
    }
    if env.log_format_text {
        lose(
            Area::Observability,
            "observability.json_logs",
            "AGENTD_LOG_FORMAT".into(),
            "set `AGENTD_LOG_FORMAT=json` (or drop `--log-format text`) so log collectors get \
             one JSON object per line",
        );
    }

    // Security.
    if config.auth.mode == AuthMode::None {
        lose(
            Area::Security,
            "security.auth",
            "auth.mode".into(),
            "set `auth.mode = \"api_key\"` (or \"jwt\"): with \"none\" any caller picks its \
             tenant",
        );
    }
    if config.server.tls_cert.is_none() || config.server.tls_key.is_none() {
        lose(
            Area::Security,
            "security.tls",
            "server.tls_cert".into(),
            "set `server.tls_cert` and `server.tls_key` to PEM files so the API is served over \
             HTTPS",
        );
    }
    let limited = config.rate_limit.as_ref().is_some_and(|r| {
        r.per_principal_rpm.is_some()
            || r.per_tenant_rpm.is_some()
            || r.max_concurrent_runs_per_tenant.is_some()
    });
    if !limited {
        lose(
            Area::Security,
            "security.rate_limit",
            "rate_limit.per_tenant_rpm".into(),
            "set `rate_limit.per_tenant_rpm = 600` (and/or `per_principal_rpm`, \
             `max_concurrent_runs_per_tenant`) so one caller cannot flood the service",
        );
    }

    // Reliability: per agent, the first one lacking it is named.
    let agents = || config.agents.iter().enumerate();
    let agent_key = |i: usize, k: &str| KeyPath::of(&["agents"]).index(i).key(k).to_string();
    if let Some((i, _)) = agents().find(|(_, a)| a.circuit_breaker.is_none()) {
        lose(
            Area::Reliability,
            "reliability.circuit_breaker",
            agent_key(i, "circuit_breaker"),
            "set `circuit_breaker = { failures = 5, reset = \"30s\" }` on every agent so a \
             failing provider is skipped instead of waited on",
        );
    }
    if let Some((i, _)) = agents().find(|(_, a)| a.providers.len() < 2) {
        lose(
            Area::Reliability,
            "reliability.fallback",
            agent_key(i, "providers"),
            "list at least two providers (`providers = [\"main\", \"backup\"]`) on every agent \
             so an outage falls back",
        );
    }
    if let Some((i, _)) = agents().find(|(_, a)| a.budget_usd.is_none()) {
        lose(
            Area::Reliability,
            "reliability.budget",
            agent_key(i, "budget_usd"),
            "set `budget_usd = 1.0` (a per-run spend limit) on every agent so a looping run \
             stops",
        );
    }

    // Operations.
    if config.server.drain_delay.is_zero() || config.queue.shutdown_grace.is_zero() {
        let key = if config.server.drain_delay.is_zero() {
            "server.drain_delay"
        } else {
            "queue.shutdown_grace"
        };
        lose(
            Area::Operations,
            "operations.graceful_shutdown",
            key.into(),
            "set `server.drain_delay = \"5s\"` and a non-zero `queue.shutdown_grace` (default \
             \"30s\") so load balancers drain the process and steps finish on SIGTERM",
        );
    }
    if config.store.checkpoint_ttl.is_none() {
        lose(
            Area::Operations,
            "operations.retention",
            "store.checkpoint_ttl".into(),
            "set `store.checkpoint_ttl = \"30d\"` so finished runs are purged and the store \
             does not grow forever",
        );
    }
    if let Some((i, _)) = agents().find(|(_, a)| a.retry.is_none()) {
        lose(
            Area::Operations,
            "operations.retry",
            agent_key(i, "retry"),
            "set `retry = { max_attempts = 3 }` on every agent so a transient provider error \
             is retried before the next provider is tried",
        );
    }

    // Data.
    let postgres = is_postgres(&config.store.url);
    if !postgres {
        lose(
            Area::Data,
            "data.postgres",
            "store.url".into(),
            "set `store.url = \"postgres://USER@HOST/DB\"`: PostgreSQL is shared by several \
             worker processes and is backed up online with its own tools (pg_dump, PITR)",
        );
    }
    if !postgres && !sqlite_persistent(&config.store.url) {
        lose(
            Area::Data,
            "data.persistent",
            "store.url".into(),
            "point `store.url` at an absolute path on a persistent volume (e.g. \
             \"sqlite:///var/lib/agentd/agentd.db\"), not memory, /tmp or a path relative to \
             the working directory",
        );
    }
    if config.store.encryption_key_env.is_none() {
        lose(
            Area::Data,
            "data.encryption",
            "store.encryption_key_env".into(),
            "set `store.encryption_key_env = \"AGENTD_ENCRYPTION_KEY\"` (and the variable) so \
             inputs, outputs and journals are encrypted at rest",
        );
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// A `sqlite:` URL naming a file at an absolute path outside temporary
/// directories.
fn sqlite_persistent(url: &str) -> bool {
    crate::sqlite_file(url).is_some_and(|path| {
        path.is_absolute()
            && !["/tmp", "/var/tmp", "/dev/shm", "/run"]
                .iter()
                .any(|t| path.starts_with(t))
    })
}

#[cfg(test)]
mod tests;
