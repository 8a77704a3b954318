//! Helpers: temp workspaces, the binary, a child `agentd serve`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_agentd");

/// A Standard Webhooks secret, set as `TEST_WEBHOOK_SECRET` for every
/// command of a [`Workspace`].
pub const TEST_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A temp directory with a config file and a database in it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}/agentd.db", self.path().display())
    }

    /// Writes `agentd.toml` with `body` after a `[store]` section pointing
    /// into this workspace.
    pub fn write_config(&self, body: &str) -> PathBuf {
        let p = self.path().join("agentd.toml");
        let text = format!("[store]\nurl = \"{}\"\n\n{body}", self.db_url());
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A command for the binary, run inside the workspace with a clean
    /// agentd environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path())
            .env_remove("AGENTD_CONFIG")
            // For configs with a webhook tool (`secret_env`).
            .env("TEST_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET)
            .env("AGENTD_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `agentd --config CONFIG ARGS...`, which must exit 0; its stdout.
    pub fn ok(&self, config: &Path, args: &[&str]) -> String {
        let out = self
            .cmd()
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `agentd serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(ws: &Workspace, config: &Path, port: u16) -> Self {
        let child = ws
            .cmd()
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let server = Self { child, base };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_ok(&format!("{}/health", self.base)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agentd did not become healthy at {}", self.base);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny GET on a plain TCP socket, so polling needs no runtime: true on 200.
pub fn http_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// A running `agentd serve` whose log goes to a file.
pub struct Serve {
    pub child: Child,
    log: PathBuf,
}

impl Serve {
    pub fn start(ws: &Workspace, config: &std::path::Path) -> Self {
        let log = ws.path().join("serve.log");
        let child = ws
            .cmd()
            .env("AGENTD_LOG", "info")
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(sent.success());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use agentd_test_support::postgres_url;
