#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::Config;
use std::process::Command;

fn config(toml: &str) -> Config {
    Config::from_toml_str(toml).unwrap()
}

fn file<'a>(files: &'a [DeployFile], name: &str) -> &'a str {
    &files.iter().find(|f| f.name == name).unwrap().contents
}

const WITH_SECRETS: &str = r#"
[store]
url = "sqlite:///srv/agentd/data/agentd.db"
encryption_key_env = "AGENTD_KEY"

[queue]
shutdown_grace = "45s"

[server]
listen = "0.0.0.0:8080"
drain_delay = "5s"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[providers.other]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[tools.notify]
kind = "webhook"
url = "https://hooks.example.com/x"
secret_env = "HOOK_SECRET"
"#;

#[test]
fn repository_dockerfile_is_the_generated_one() {
    let files = render(
        &Config::embedded(),
        DeployTarget::Docker,
        &DeployOptions::default(),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for name in ["Dockerfile", ".dockerignore"] {
        let on_disk = std::fs::read_to_string(root.join(name)).unwrap();
        assert_eq!(
            on_disk,
            file(&files, name),
            "{name}: regenerate with `agentd deploy docker --out .`"
        );
    }
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_checks_itself() {
    let files = render(
        &Config::embedded(),
        DeployTarget::Docker,
        &DeployOptions::default(),
    )
    .unwrap();
    let d = file(&files, "Dockerfile");
    assert_eq!(d.matches("\nFROM ").count(), 2, "two stages");
    assert!(d.contains(" AS build\n"));
    assert!(d.contains("COPY --from=build "));
    assert!(d.contains("\nUSER 10001:10001\n"));
    assert!(d.contains("\nSTOPSIGNAL SIGTERM\n"));
    assert!(d.contains("CMD [\"agentd\", \"healthcheck\"]"));
    let instructions = d.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(
        !instructions.clone().any(|l| l.contains("curl")),
        "the healthcheck needs no curl"
    );
    assert!(instructions.clone().any(|l| l.contains("ca-certificates")));
    let ignore = file(&files, ".dockerignore");
    for line in ["target/", ".git/", "*.db", ".env", "*.pem"] {
        assert!(ignore.lines().any(|l| l == line), "{line} ignored");
    }
}

#[test]
fn secrets_are_named_never_valued() {
    let c = config(WITH_SECRETS);
    assert_eq!(
        secret_env_names(&c),
        ["AGENTD_KEY", "HOOK_SECRET", "OPENAI_API_KEY"]
    );
    let files = render(&c, DeployTarget::Systemd, &DeployOptions::default()).unwrap();
    let unit = file(&files, "agentd.service");
    assert!(unit.contains("\nEnvironmentFile=/etc/agentd/agentd.env\n"));
    assert!(unit.contains("AGENTD_KEY, HOOK_SECRET, OPENAI_API_KEY"));
    let example = file(&files, "agentd.env.example");
    let keys: Vec<&str> = example.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(keys, ["AGENTD_KEY=", "HOOK_SECRET=", "OPENAI_API_KEY="]);
}

#[test]
fn no_secrets_makes_the_environment_file_optional() {
    let files = render(
        &Config::embedded(),
        DeployTarget::Systemd,
        &DeployOptions::default(),
    )
    .unwrap();
    let unit = file(&files, "agentd.service");
    assert!(unit.contains("\nEnvironmentFile=-/etc/agentd/agentd.env\n"));
    assert!(unit.contains("\nTimeoutStopSec=45s\n"), "{unit}");
}

#[test]
fn unit_is_hardened_and_outlasts_the_shutdown_grace() {
    let c = config(WITH_SECRETS);
    let files = render(&c, DeployTarget::Systemd, &DeployOptions::default()).unwrap();
    let unit = file(&files, "agentd.service");
    for line in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "User=agentd",
        "Restart=on-failure",
        "CapabilityBoundingSet=",
        "ReadWritePaths=/srv/agentd/data",
        "ExecStart=/usr/local/bin/agentd --config /etc/agentd/agentd.toml serve",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in\n{unit}");
    }
    // 5s drain + 45s grace + margin.
    assert!(unit.contains("\nTimeoutStopSec=65s\n"));
    assert!(stop_timeout(&c) > c.queue.shutdown_grace.get());
}

#[test]
fn writable_dirs_cover_absolute_sqlite_and_tool_roots_only() {
    assert_eq!(
        sqlite_dir(&config("[store]\nurl = \"sqlite://agentd.db\"\n")),
        Some(PathBuf::from("."))
    );
    assert_eq!(
        sqlite_dir(&config("[store]\nurl = \"sqlite::memory:\"\n")),
        None
    );
    assert_eq!(
        sqlite_dir(&config("[store]\nurl = \"postgres://db/agentd\"\n")),
        None
    );
    let c = config(
        "[store]\nurl = \"sqlite:///data/a.db?mode=rwc\"\n\n\
         [tools.files]\nroot = \"/srv/files\"\n",
    );
    assert_eq!(systemd::writable_dirs(&c), ["/data", "/srv/files"]);
    let c = config("[tools.files]\nroot = \"work\"\n");
    assert!(systemd::writable_dirs(&c).is_empty());
    // Relative paths are inside the (writable) state directory.
    assert!(systemd::writable_dirs(&Config::embedded()).is_empty());
}

#[test]
fn privileged_port_keeps_only_the_bind_capability() {
    assert!(systemd::binds_privileged_port("0.0.0.0:443"));
    assert!(systemd::binds_privileged_port("[::]:80"));
    assert!(!systemd::binds_privileged_port("127.0.0.1:8080"));
    let c = config("[server]\nlisten = \"0.0.0.0:443\"\n");
    let unit = &render(&c, DeployTarget::Systemd, &DeployOptions::default()).unwrap()[0].contents;
    assert!(unit.contains("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
    assert!(unit.contains("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
}

#[test]
fn write_files_reports_the_unwritable_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let files = render(
        &Config::embedded(),
        DeployTarget::Docker,
        &DeployOptions::default(),
    )
    .unwrap();
    let err = write_files(&blocker.join("out"), &files).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    write_files(&dir.path().join("out"), &files).unwrap();
    let written = std::fs::read_to_string(dir.path().join("out/Dockerfile")).unwrap();
    assert_eq!(written, files[0].contents);
}

/// `systemd-analyze verify` on the generated unit, where the tool exists.
#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's binary exists and is executable.
    let options = DeployOptions {
        binary: std::env::current_exe().unwrap(),
        ..DeployOptions::default()
    };
    for toml in [WITH_SECRETS, "[server]\nlisten = \"0.0.0.0:443\"\n"] {
        let files = render(&config(toml), DeployTarget::Systemd, &options).unwrap();
        write_files(dir.path(), &files).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join("agentd.service"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-analyze verify: {stderr}");
        assert!(!stderr.contains("agentd.service:"), "warnings: {stderr}");
    }
}

#[test]
fn wildcard_listeners_are_probed_on_loopback() {
    assert_eq!(
        loopback_base_url("0.0.0.0:8080", false),
        "http://127.0.0.1:8080"
    );
    assert_eq!(loopback_base_url("[::]:9090", false), "http://[::1]:9090");
    assert_eq!(
        loopback_base_url("10.0.0.5:443", true),
        "https://10.0.0.5:443"
    );
    assert_eq!(loopback_base_url(":8080", false), "http://127.0.0.1:8080");
}
