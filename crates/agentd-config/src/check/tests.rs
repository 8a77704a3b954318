//! Each criterion on config fixtures, and probe outcomes.

use super::*;

/// Production-shaped: every criterion met.
const PRODUCTION: &str = r#"
[server]
listen = "0.0.0.0:8443"
tls_cert = "/etc/agentd/cert.pem"
tls_key = "/etc/agentd/key.pem"
drain_delay = "5s"
metrics_listen = "0.0.0.0:9090"

[store]
url = "postgres://agentd@db/agentd"
encryption_key_env = "AGENTD_ENCRYPTION_KEY"
checkpoint_ttl = "30d"

[auth]
mode = "api_key"

[rate_limit]
per_tenant_rpm = 600

[telemetry]
otlp_endpoint = "http://otel:4318"

[providers.main]
kind = "openai"
model = "gpt-4.1-mini"
api_key_env = "OPENAI_API_KEY"

[providers.backup]
kind = "anthropic"
model = "claude-sonnet-4"
api_key_env = "ANTHROPIC_API_KEY"

[[agents]]
name = "support"
providers = ["main", "backup"]
budget_usd = 1.0
retry = { max_attempts = 3 }
circuit_breaker = { failures = 5, reset = "30s" }
"#;

fn production() -> Config {
    Config::from_toml_str(PRODUCTION).unwrap()
}

/// `production()` with the TOML line `from` replaced by `to`.
fn production_with(from: &str, to: &str) -> Config {
    assert!(PRODUCTION.contains(from), "{from}");
    Config::from_toml_str(&PRODUCTION.replacen(from, to, 1)).unwrap()
}

fn checks(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.check).collect()
}

fn only_finding(config: &Config) -> Finding {
    let report = assess(config, &CheckEnv::default(), None);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.score, 14);
    report.findings[0].clone()
}

#[test]
fn production_config_scores_full_marks() {
    let report = assess(&production(), &CheckEnv::default(), None);
    assert_eq!(report.findings, vec![]);
    assert_eq!((report.score, report.max), (15, 15));
    assert!(report.areas.iter().all(|a| a.score == 3 && a.max == 3));
    assert!(report.offline);
}

#[test]
fn laptop_default_scores_low_with_named_keys() {
    let report = assess(&Config::embedded(), &CheckEnv::default(), None);
    assert_eq!(
        checks(&report),
        vec![
            "observability.metrics_listen",
            "observability.traces",
            "security.auth",
            "security.tls",
            "security.rate_limit",
            "reliability.circuit_breaker",
            "reliability.fallback",
            "reliability.budget",
            "operations.graceful_shutdown",
            "operations.retention",
            "operations.retry",
            "data.postgres",
            "data.persistent",
            "data.encryption",
        ]
    );
    assert_eq!(report.score, 1);
    let keys: Vec<&str> = report.findings.iter().map(|f| f.key.as_str()).collect();
    assert!(keys.contains(&"auth.mode"));
    assert!(keys.contains(&"agents[0].budget_usd"));
    assert!(keys.contains(&"server.drain_delay"));
    let auth = &report.findings[2];
    assert!(
        auth.advice.contains("auth.mode = \"api_key\""),
        "{}",
        auth.advice
    );
}

#[test]
fn each_criterion_costs_one_point_and_names_its_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "metrics_listen = \"0.0.0.0:9090\"",
            "",
            "observability.metrics_listen",
            "server.metrics_listen",
        ),
        (
            "otlp_endpoint = \"http://otel:4318\"",
            "",
            "observability.traces",
            "telemetry.otlp_endpoint",
        ),
        (
            "mode = \"api_key\"",
            "mode = \"none\"",
            "security.auth",
            "auth.mode",
        ),
        (
            "tls_cert = \"/etc/agentd/cert.pem\"\ntls_key = \"/etc/agentd/key.pem\"",
            "",
            "security.tls",
            "server.tls_cert",
        ),
        (
            "per_tenant_rpm = 600",
            "",
            "security.rate_limit",
            "rate_limit.per_tenant_rpm",
        ),
        (
            "circuit_breaker = { failures = 5, reset = \"30s\" }",
            "",
            "reliability.circuit_breaker",
            "agents[0].circuit_breaker",
        ),
        (
            "providers = [\"main\", \"backup\"]",
            "providers = [\"main\"]",
            "reliability.fallback",
            "agents[0].providers",
        ),
        (
            "budget_usd = 1.0",
            "",
            "reliability.budget",
            "agents[0].budget_usd",
        ),
        (
            "drain_delay = \"5s\"",
            "",
            "operations.graceful_shutdown",
            "server.drain_delay",
        ),
        (
            "checkpoint_ttl = \"30d\"",
            "",
            "operations.retention",
            "store.checkpoint_ttl",
        ),
        (
            "retry = { max_attempts = 3 }",
            "",
            "operations.retry",
            "agents[0].retry",
        ),
        (
            "encryption_key_env = \"AGENTD_ENCRYPTION_KEY\"",
            "",
            "data.encryption",
            "store.encryption_key_env",
        ),
        (
            "url = \"postgres://agentd@db/agentd\"",
            "url = \"sqlite:///var/lib/agentd/agentd.db\"",
            "data.postgres",
            "store.url",
        ),
    ];
    for (from, to, check, key) in cases {
        let f = only_finding(&production_with(from, to));
        assert_eq!((f.check, f.key.as_str()), (*check, *key), "{from}");
    }
}

#[test]
fn zero_shutdown_grace_is_named() {
    let config = production_with("[auth]", "[queue]\nshutdown_grace = \"0s\"\n\n[auth]");
    let f = only_finding(&config);
    assert_eq!(f.key, "queue.shutdown_grace");
}

#[test]
fn sqlite_location_must_be_persistent() {
    for (url, persistent) in [
        ("sqlite:///var/lib/agentd/agentd.db", true),
        ("sqlite:///srv/agentd.db?mode=rwc", true),
        ("sqlite://agentd.db", false),
        ("sqlite::memory:", false),
        ("sqlite:///tmp/agentd.db", false),
        ("sqlite:///dev/shm/agentd.db", false),
    ] {
        assert_eq!(sqlite_persistent(url), persistent, "{url}");
    }
    assert!(!sqlite_persistent("postgres://h/db"));
}

#[test]
fn environment_facts_count() {
    let config = production_with("otlp_endpoint = \"http://otel:4318\"", "");
    let env = CheckEnv {
        otel_endpoint_env: true,
        log_format_text: false,
    };
    assert_eq!(assess(&config, &env, None).score, 15);
    let env = CheckEnv {
        otel_endpoint_env: false,
        log_format_text: true,
    };
    let report = assess(&production(), &env, None);
    assert_eq!(checks(&report), vec!["observability.json_logs"]);
    assert_eq!(report.findings[0].key, "AGENTD_LOG_FORMAT");
}

#[test]
fn probe_targets_use_model_list_endpoints() {
    let mut config = production();
    config.providers.insert(
        "local".into(),
        crate::ProviderConfig {
            kind: ProviderKind::OpenAi,
            base_url: Some("http://127.0.0.1:11434/v1/".into()),
            ..Default::default()
        },
    );
    config
        .providers
        .insert("m".into(), crate::ProviderConfig::default());
    let targets = probe_targets(&config);
    let url = |name: &str| {
        targets.iter().find_map(|t| match t {
            ProbeTarget::Provider { name: n, url } if n == name => Some(url.clone()),
            _ => None,
        })
    };
    assert_eq!(
        targets[..3],
        [
            ProbeTarget::Store,
            ProbeTarget::Workers,
            ProbeTarget::Backups
        ]
    );
    assert_eq!(targets.len(), 7);
    assert_eq!(
        url("main"),
        Some(Some("https://api.openai.com/v1/models".into()))
    );
    assert_eq!(
        url("backup"),
        Some(Some("https://api.anthropic.com/v1/models".into()))
    );
    assert_eq!(
        url("local"),
        Some(Some("http://127.0.0.1:11434/v1/models".into()))
    );
    assert_eq!(url("m"), Some(None));
}

#[test]
fn failed_probes_cost_points_in_their_area() {
    let probes = vec![
        Probe {
            target: ProbeTarget::Store,
            ok: false,
            detail: "connection refused".into(),
        },
        Probe {
            target: ProbeTarget::Provider {
                name: "main".into(),
                url: Some("http://127.0.0.1:1/models".into()),
            },
            ok: false,
            detail: "timed out".into(),
        },
        Probe {
            target: ProbeTarget::Provider {
                name: "backup".into(),
                url: None,
            },
            ok: true,
            detail: "ok".into(),
        },
    ];
    let report = assess(&production(), &CheckEnv::default(), Some(probes));
    assert!(!report.offline);
    assert_eq!(report.score, 13);
    assert_eq!(
        checks(&report),
        vec!["reliability.provider_probe", "data.store_probe"]
    );
    assert_eq!(report.findings[0].key, "providers.main.base_url");
    assert_eq!(report.findings[1].key, "store.url");
    assert!(report.findings[1].advice.contains("connection refused"));
    let data = report.areas.iter().find(|a| a.area == Area::Data).unwrap();
    assert_eq!(data.score, 2);
}

#[test]
fn an_area_never_goes_below_zero() {
    let probes = vec![Probe {
        target: ProbeTarget::Store,
        ok: false,
        detail: "refused".into(),
    }];
    let report = assess(&Config::embedded(), &CheckEnv::default(), Some(probes));
    let data = report.areas.iter().find(|a| a.area == Area::Data).unwrap();
    assert_eq!(data.score, 0);
    assert_eq!(report.score, 1);
}

#[test]
fn json_shape_is_stable() {
    let report = assess(&Config::embedded(), &CheckEnv::default(), None);
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["max"], 15);
    assert_eq!(v["areas"][0]["area"], "observability");
    assert_eq!(v["findings"][0]["area"], "observability");
    assert!(v["findings"][0]["key"].is_string());
    assert!(v["findings"][0]["advice"].is_string());
    assert_eq!(v["offline"], true);
}

/// Every probe of `production()` passing, but `failing`.
fn probes_failing(failing: &[ProbeTarget]) -> Vec<Probe> {
    probe_targets(&production())
        .into_iter()
        .map(|target| Probe {
            ok: !failing.contains(&target),
            detail: if failing.contains(&target) {
                match target {
                    ProbeTarget::Workers => "1 worker process(es) seen in the last 2 min".into(),
                    _ => "no backup recorded in this store".into(),
                }
            } else {
                "ok".into()
            },
            target,
        })
        .collect()
}

#[test]
fn one_worker_and_no_recent_backup_cost_a_point_each() {
    // Every probe passing: full marks, nothing left unchecked.
    let all = assess(
        &production(),
        &CheckEnv::default(),
        Some(probes_failing(&[])),
    );
    assert_eq!(all.score, 15, "{:?}", all.findings);
    assert!(all.not_checked.is_empty());

    let report = assess(
        &production(),
        &CheckEnv::default(),
        Some(probes_failing(&[
            ProbeTarget::Workers,
            ProbeTarget::Backups,
        ])),
    );
    assert_eq!((report.score, report.max), (13, 15));
    assert_eq!(checks(&report), vec!["reliability.workers", "data.backups"]);
    let area = |a: Area| report.areas.iter().find(|s| s.area == a).unwrap().score;
    assert_eq!((area(Area::Reliability), area(Area::Data)), (2, 2));
    let workers = &report.findings[0];
    assert_eq!(workers.key, "agentd worker");
    assert!(
        workers.advice.starts_with("1 worker process(es)"),
        "{}",
        workers.advice
    );
    assert!(workers.advice.contains("PostgreSQL"), "{}", workers.advice);
    // The backup advice names the command and a schedule of each kind.
    let backups = &report.findings[1];
    assert_eq!(backups.key, "agentd backup");
    for needle in [
        "agentd backup --",
        "cron",
        "systemd timer",
        "CronJob",
        "no backup recorded",
    ] {
        assert!(
            backups.advice.contains(needle),
            "{needle}: {}",
            backups.advice
        );
    }
}

#[test]
fn offline_lists_the_fleet_criteria_as_not_checked() {
    let report = assess(&production(), &CheckEnv::default(), None);
    assert_eq!(report.score, 15);
    let ids: Vec<&str> = report.not_checked.iter().map(ProbeTarget::check).collect();
    assert_eq!(
        ids[..3],
        ["data.store_probe", "reliability.workers", "data.backups"]
    );
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(
        v["not_checked"][1],
        serde_json::json!({ "kind": "workers" })
    );
    assert_eq!(
        v["not_checked"][2],
        serde_json::json!({ "kind": "backups" })
    );
}
