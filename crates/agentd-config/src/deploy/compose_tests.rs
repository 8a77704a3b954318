#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::yaml::to_yaml;
use super::*;
use serde_json::{Value, json};
use std::process::Command;

fn config(toml: &str) -> Config {
    Config::from_toml_str(toml).unwrap()
}

const REDIS: &str = r#"
[rate_limit]
per_principal_rpm = 600
backend = "redis"
redis_url = "redis://127.0.0.1:6379"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
"#;

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(include_str!("../../testdata/compose-spec.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn compose_documents_satisfy_the_compose_schema() {
    for c in [Config::embedded(), config(REDIS)] {
        let doc = compose::document(&c, &DeployOptions::default());
        assert_eq!(schema_errors(&doc), Vec::<String>::new());
    }
    // The schema is strict enough to catch a misspelled key.
    let mut doc = compose::document(&Config::embedded(), &DeployOptions::default());
    doc["services"]["api"]["helthcheck"] = json!({});
    assert!(!schema_errors(&doc).is_empty());
}

#[test]
fn compose_runs_api_workers_and_stores_with_health_gates() {
    let options = DeployOptions {
        workers: 5,
        ..DeployOptions::default()
    };
    let doc = compose::document(&config(REDIS), &options);
    let services = doc["services"].as_object().unwrap();
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, ["api", "postgres", "redis", "worker"]);
    for (name, service) in services {
        assert!(service["healthcheck"]["test"].is_array(), "{name}");
        assert_eq!(service["restart"], "unless-stopped", "{name}");
        for (dep, cond) in service["depends_on"].as_object().into_iter().flatten() {
            assert_eq!(cond["condition"], "service_healthy", "{name} -> {dep}");
        }
    }
    assert_eq!(doc["services"]["worker"]["deploy"]["replicas"], 5);
    assert_eq!(doc["services"]["worker"]["command"], json!(["worker"]));
    assert!(doc["services"]["worker"]["depends_on"]["api"].is_object());
    assert!(doc["services"]["api"]["depends_on"]["redis"].is_object());
    assert_eq!(doc["services"]["api"]["stop_grace_period"], "45s");
    let volumes: Vec<&String> = doc["volumes"].as_object().unwrap().keys().collect();
    assert_eq!(volumes, ["postgres-data", "redis-data"]);
    let env = &doc["services"]["api"]["environment"];
    assert_eq!(
        env["OPENAI_API_KEY"],
        "${OPENAI_API_KEY:?set OPENAI_API_KEY}"
    );
    assert_eq!(env["AGENTD_RATE_LIMIT__REDIS_URL"], "redis://redis:6379");

    // Without Redis rate limits there is no Redis.
    let doc = compose::document(&Config::embedded(), &DeployOptions::default());
    assert!(doc["services"].get("redis").is_none());
    assert_eq!(doc["services"]["worker"]["deploy"]["replicas"], 2);
}

#[test]
fn yaml_writer_quotes_every_string_and_nests_by_indentation() {
    let v = json!({
        "a": {"list": ["x", 1, true, null, {"k": "v", "m": [2]}], "empty": {}, "none": []},
        "yes": "no",
        "odd key": "0755",
    });
    let expected = "\
a:
  empty: {}
  list:
    - \"x\"
    - 1
    - true
    - null
    - k: \"v\"
      m:
        - 2
  none: []
\"odd key\": \"0755\"
\"yes\": \"no\"
";
    assert_eq!(to_yaml(&v), expected);
    assert_eq!(to_yaml(&json!("a\nb")), "\"a\\nb\"\n");
    // Multi-line text is a literal block when it reads back unchanged.
    let texts =
        json!({"t": "x = 1\n\n[s]\ny = \"z\"\n", "u": "a\nb", "v": " a\nb\n", "w": "a\n\n"});
    assert_eq!(
        to_yaml(&texts),
        "t: |\n  x = 1\n\n  [s]\n  y = \"z\"\nu: \"a\\nb\"\nv: \" a\\nb\\n\"\nw: \"a\\n\\n\"\n"
    );
}

/// The written YAML reads back as the documents it was made from, per PyYAML (in
/// CI's pip install line; skipped locally when missing).
#[test]
fn written_yaml_reads_back_as_the_documents() {
    let ok = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3 with PyYAML"
        );
        eprintln!("skipped: python3 with PyYAML is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = config(REDIS);
    let options = DeployOptions::default();
    let read_back = |target, name: &str| {
        write_files(dir.path(), &render(&c, target, &options).unwrap()).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            ])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let compose = read_back(DeployTarget::Compose, "compose.yaml");
    assert_eq!(compose, json!([compose::document(&c, &options)]));
    let k8s = read_back(DeployTarget::K8s, "agentd.yaml");
    assert_eq!(k8s, Value::Array(k8s::documents(&c, &options).unwrap()));
}
