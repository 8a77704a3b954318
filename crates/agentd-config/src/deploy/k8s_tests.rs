#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::{Value, json};
use std::process::Command;

const POSTGRES: &str = r#"
[store]
url = "postgres://agentd:hunter2@db.internal/agentd"
encryption_key_env = "AGENTD_KEY"

[queue]
shutdown_grace = "60s"

[rate_limit]
per_principal_rpm = 600
backend = "redis"
redis_url = "redis://:redispass@redis.internal:6379"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
"#;

fn docs(toml: &str) -> Vec<Value> {
    let c = Config::from_toml_str(toml).unwrap();
    k8s::documents(&c, &DeployOptions::default()).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name}"))
}

#[test]
fn deployments_are_probed_hardened_and_outlast_the_grace() {
    let docs = docs(POSTGRES);
    for name in ["agentd-api", "agentd-worker"] {
        let d = kind(&docs, "Deployment", name);
        let spec = &d["spec"];
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let pod = &spec["template"]["spec"];
        // 60s grace + 0s drain + margin.
        assert_eq!(pod["terminationGracePeriodSeconds"], 75);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
        assert!(c["startupProbe"].is_object());
        assert!(c["resources"]["requests"]["memory"].is_string());
        let refs: Vec<&str> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["valueFrom"]["secretKeyRef"]["key"].as_str())
            .collect();
        assert_eq!(
            refs,
            [
                "AGENTD_STORE__URL",
                "AGENTD_RATE_LIMIT__REDIS_URL",
                "AGENTD_KEY",
                "OPENAI_API_KEY"
            ]
        );
    }
    for (k, n) in [
        ("ServiceAccount", "agentd"),
        ("ConfigMap", "agentd-config"),
        ("Service", "agentd-api"),
        ("HorizontalPodAutoscaler", "agentd-worker"),
        ("PodDisruptionBudget", "agentd-api"),
        ("PodDisruptionBudget", "agentd-worker"),
        ("NetworkPolicy", "agentd"),
    ] {
        kind(&docs, k, n);
    }
}

#[test]
fn the_config_map_holds_the_config_without_passwords() {
    let docs = docs(POSTGRES);
    let toml = kind(&docs, "ConfigMap", "agentd-config")["data"]["agentd.toml"]
        .as_str()
        .unwrap();
    assert!(
        !toml.contains("hunter2") && !toml.contains("redispass"),
        "{toml}"
    );
    // What is left still loads as a config.
    let back = Config::from_toml_str(toml).unwrap();
    assert_eq!(back.queue.shutdown_grace.get().as_secs(), 60);
    assert_eq!(back.store.encryption_key_env.as_deref(), Some("AGENTD_KEY"));
}

#[test]
fn pods_roll_when_the_config_changes() {
    let checksum = |toml: &str| {
        let docs = docs(toml);
        let sums: Vec<String> = ["agentd-api", "agentd-worker"]
            .iter()
            .map(|d| {
                kind(&docs, "Deployment", d)["spec"]["template"]["metadata"]["annotations"]
                    ["agentd.dev/config-sha256"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(sums[0], sums[1]);
        assert_eq!(sums[0].len(), 64);
        sums[0].clone()
    };
    let before = checksum(POSTGRES);
    assert_eq!(checksum(POSTGRES), before);
    let changed = POSTGRES.replace("shutdown_grace = \"60s\"", "shutdown_grace = \"61s\"");
    assert_ne!(changed, POSTGRES);
    assert_ne!(checksum(&changed), before);
}

/// `kubernetes-validate --strict` on the written manifest (pinned in CI's
/// pip line; skipped locally when missing).
#[test]
fn kubernetes_validate_accepts_the_manifest() {
    if Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs kubernetes-validate (pip install kubernetes-validate)"
        );
        eprintln!("skipped: kubernetes-validate is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for toml in [
        POSTGRES,
        "[server]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
    ] {
        let c = Config::from_toml_str(toml).unwrap();
        let files = render(&c, DeployTarget::K8s, &DeployOptions::default()).unwrap();
        write_files(dir.path(), &files).unwrap();
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--no-warn"])
            .arg(dir.path().join("agentd.yaml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every object was checked, none skipped as unknown.
        assert_eq!(
            stdout.matches(" passed for resource ").count(),
            9,
            "{stdout}"
        );
    }
}
