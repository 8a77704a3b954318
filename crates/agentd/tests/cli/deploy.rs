//! `agentd deploy` and `agentd healthcheck`: files written, exit codes.

use crate::support::{Server, Workspace, free_port, text};

#[test]
fn deploy_writes_the_targets_files_and_never_a_secret() {
    let ws = Workspace::new();
    let config = ws.write_config(
        "[providers.openai]\nkind = \"openai\"\nmodel = \"gpt-4o-mini\"\n\
         api_key_env = \"OPENAI_API_KEY\"\n",
    );
    let out_dir = ws.path().join("out/systemd");
    let out = ws
        .cmd()
        .env("OPENAI_API_KEY", "sk-the-secret-value")
        .arg("--config")
        .arg(&config)
        .args([
            "deploy",
            "systemd",
            "--bin",
            "/opt/agentd/bin/agentd",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("agentd.service") && listed.contains("agentd.env.example"));
    let unit = std::fs::read_to_string(out_dir.join("agentd.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/agentd/bin/agentd --config /etc/agentd/agentd.toml serve")
    );
    assert!(unit.contains("OPENAI_API_KEY"));
    // The SQLite directory of the config is writable to the service.
    let db_dir = ws.path().display().to_string();
    assert!(
        unit.contains(&format!("ReadWritePaths={db_dir}\n")),
        "{unit}"
    );
    for name in ["agentd.service", "agentd.env.example"] {
        let body = std::fs::read_to_string(out_dir.join(name)).unwrap();
        assert!(
            !body.contains("sk-the-secret-value"),
            "{name} holds the secret"
        );
    }

    let docker_dir = ws.path().join("out/docker");
    let out = ws
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["--json", "deploy", "docker", "--out"])
        .arg(&docker_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["files"].as_array().unwrap().len(), 2);
    let repo_dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Dockerfile");
    assert_eq!(
        std::fs::read(docker_dir.join("Dockerfile")).unwrap(),
        std::fs::read(repo_dockerfile).unwrap()
    );
}

#[test]
fn deploy_compose_and_k8s_write_their_manifests() {
    let ws = Workspace::new();
    let out_dir = ws.path().join("compose");
    let out = ws
        .cmd()
        .args(["deploy", "compose", "--workers", "4", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = std::fs::read_to_string(out_dir.join("compose.yaml")).unwrap();
    assert!(
        yaml.contains("\n    deploy:\n      replicas: 4\n"),
        "{yaml}"
    );
    let out = ws.run(&["deploy", "compose", "--workers", "0", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));

    let k8s_dir = ws.path().join("k8s");
    let out = ws
        .cmd()
        .args(["deploy", "k8s", "--out"])
        .arg(&k8s_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(k8s_dir.join("agentd.yaml")).unwrap();
    assert!(manifest.contains("\nkind: \"HorizontalPodAutoscaler\"\n"));
}

#[test]
fn deploy_rejects_an_unknown_target_and_an_unwritable_out() {
    let ws = Workspace::new();
    let out = ws.run(&["deploy", "nomad", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nomad"));

    let file = ws.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = ws
        .cmd()
        .args(["deploy", "docker", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: --out: cannot write "),
        "{stderr}"
    );
    assert!(stderr.contains("a-file"), "{stderr}");
}

#[test]
fn healthcheck_exits_0_on_a_healthy_node_and_1_on_a_dead_one() {
    let ws = Workspace::new();
    let port = free_port();
    let metrics_port = free_port();
    let config = ws.write_config(&format!(
        "[server]\nlisten = \"0.0.0.0:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"
    ));
    let check = |args: &[&str]| {
        let out = ws
            .cmd()
            .arg("--config")
            .arg(&config)
            .arg("healthcheck")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    // Nothing listens yet.
    let (code, stderr) = check(&["--timeout", "1s"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port}/health")),
        "{stderr}"
    );

    let server = Server::start(&ws, &config, port);
    assert_eq!(check(&[]), (Some(0), String::new()));
    assert_eq!(check(&["--ready"]).0, Some(0));
    assert_eq!(check(&["--metrics"]).0, Some(0));
    server.kill9();
    assert_eq!(check(&["--timeout", "1s"]).0, Some(1));
}

#[test]
fn healthcheck_of_metrics_without_a_metrics_listener_is_a_usage_error() {
    let ws = Workspace::new();
    let config = ws.write_config("");
    let out = ws
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["healthcheck", "--metrics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("server.metrics_listen"));
}
