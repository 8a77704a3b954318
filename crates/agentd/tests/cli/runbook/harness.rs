//! What the runbook's recipes run against: a workspace with a config, a
//! served agentd to start and stop (the `systemctl` lines), and `sh` to
//! run the runbook's own lines with the agentd under test first on the
//! `PATH`.

use crate::support::{BIN, Workspace, free_port, http_ok, text};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A workspace, its config, and the process serving it.
pub struct Env {
    pub ws: Workspace,
    pub config: PathBuf,
    pub port: u16,
    /// Extra environment for every command (`API`, keys, store URL).
    pub vars: Vec<(String, String)>,
    server: Option<Child>,
    serve_args: Vec<String>,
}

impl Env {
    /// `body` is the config after `[store]` (the workspace's SQLite file)
    /// and a `[server] listen` on a free port; `serve_args` start the
    /// server (`serve`, `serve --no-workers`).
    pub fn new(body: &str, serve_args: &[&str]) -> Self {
        let ws = Workspace::new();
        let port = free_port();
        let config = ws.write_config(&format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{body}"
        ));
        std::fs::create_dir_all(ws.path().join("backups")).unwrap();
        Self {
            ws,
            config,
            port,
            vars: vec![("API".into(), format!("http://127.0.0.1:{port}"))],
            server: None,
            serve_args: serve_args.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
    }

    /// A command with the agentd under test on the `PATH` and this
    /// workspace's config.
    fn command(&self, program: &str) -> Command {
        let bin_dir = Path::new(BIN).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(program);
        c.current_dir(self.ws.path())
            .env("PATH", path)
            .env("AGENTD_CONFIG", &self.config)
            .env("AGENTD_LOG", "warn")
            .env_remove("AGENTD_LOG_FORMAT")
            .env_remove("AGENTD_TENANT")
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs `script` with `sh -c` (`-e`: the first failing line fails it).
    pub fn sh(&self, script: &str) -> Output {
        self.command("sh").args(["-ec", script]).output().unwrap()
    }

    /// Runs `script` and expects exit 0; its stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{script}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `agentd ARGS` directly (arrangement, not the runbook's lines).
    pub fn agentd(&self, args: &[&str]) -> Output {
        self.command(BIN).args(args).output().unwrap()
    }

    /// `agentd ARGS --json`, expected to succeed, parsed.
    pub fn agentd_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.command(BIN).args(args).arg("--json").output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "agentd {args:?}: {e}\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })
    }

    /// `systemctl start agentd`: serves until `/health` answers.
    pub fn start(&mut self) {
        assert!(self.server.is_none(), "already serving");
        let log = std::fs::File::create(self.ws.path().join("serve.log")).unwrap();
        let child = self
            .command(BIN)
            .args(&self.serve_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http_ok(&format!("http://127.0.0.1:{}/health", self.port)) {
            assert!(
                Instant::now() < deadline,
                "agentd did not serve: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `systemctl stop agentd`: SIGTERM, then wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            sigterm(&mut child);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.ws.path().join("serve.log")).unwrap_or_default()
    }

    /// Runs a marked block's lines in order, `subst` applied to each:
    /// `systemctl stop|start agentd` stop and start the server, lines in
    /// `skip` (deployment tooling this machine lacks) are left out, the
    /// rest go to one `sh` so variables set by one line reach the next.
    pub fn run_block(&mut self, lines: &[String], subst: &[(&str, &str)], skip: &[&str]) -> String {
        let mut stdout = String::new();
        let mut script = Vec::new();
        for line in lines {
            let line = subst
                .iter()
                .fold(line.clone(), |l, (from, to)| l.replace(from, to));
            if skip.iter().any(|s| line.starts_with(s)) {
                continue;
            }
            let command = line.split(" #").next().unwrap_or_default().trim();
            match command {
                "systemctl stop agentd" | "systemctl start agentd" => {
                    if !script.is_empty() {
                        stdout.push_str(&self.sh_ok(&script.join("\n")));
                        script.clear();
                    }
                    if command.ends_with("stop agentd") {
                        self.stop();
                    } else {
                        self.start();
                    }
                }
                _ => script.push(line),
            }
        }
        if !script.is_empty() {
            stdout.push_str(&self.sh_ok(&script.join("\n")));
        }
        stdout
    }

    pub fn path(&self) -> &Path {
        self.ws.path()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM and wait (a graceful stop).
pub fn sigterm(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "agentd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
