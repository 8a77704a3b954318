//! What the harness drives: the engine in this process, or `agentd serve`
//! over HTTP on loopback.

use agentd_config::Config;
use agentd_core::{Identity, PrincipalId, RunId, TenantId};
use agentd_engine::{Engine, Submit};
use agentd_server::Application;
use agentd_store::Store;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How a run ended, as the harness checks it.
#[derive(Debug)]
pub struct Ended {
    pub id: String,
    pub status: String,
    pub output: Option<Value>,
}

const WAIT: Duration = Duration::from_secs(120);

/// A system under test.
pub enum Target {
    InProc(InProc),
    Http(Http),
}

impl Target {
    /// Starts a run and waits until it pauses or ends.
    pub async fn run(&self, agent: &str, input: &str) -> anyhow::Result<Ended> {
        match self {
            Self::InProc(t) => t.run(agent, input).await,
            Self::Http(t) => t.run(agent, input).await,
        }
    }

    /// Answers a paused run and waits until it pauses again or ends.
    pub async fn resume(&self, id: &str, answer: &str) -> anyhow::Result<Ended> {
        match self {
            Self::InProc(t) => t.resume(id, answer).await,
            Self::Http(t) => t.resume(id, answer).await,
        }
    }

    /// The process that runs agentd.
    pub fn pid(&self) -> u32 {
        match self {
            Self::InProc(_) => std::process::id(),
            Self::Http(t) => t.pid(),
        }
    }

    /// Commits so far, if the target reports them.
    pub async fn commits(&self) -> Option<u64> {
        match self {
            Self::InProc(t) => Some(t.store.commits()),
            Self::Http(t) => t.commits().await.ok(),
        }
    }
}

/// agentd in this process, started through [`Application`] without a
/// listener: the engine, its worker pool (after recovery) and retention.
pub struct InProc {
    engine: Engine,
    pub store: Arc<dyn Store>,
    who: Identity,
    stop: CancellationToken,
    app: tokio::task::JoinHandle<Result<(), agentd_server::AppError>>,
}

impl InProc {
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let app = Application::build(config, None).await?;
        let engine = app.engine().clone();
        let store = engine.store().clone();
        let stop = CancellationToken::new();
        let app = tokio::spawn(app.run_until_stopped(stop.clone()));
        Ok(Self {
            engine,
            store,
            who: Identity {
                tenant: TenantId::parse("bench")?,
                principal: PrincipalId::parse("bench")?,
                roles: vec![],
            },
            stop,
            app,
        })
    }

    async fn run(&self, agent: &str, input: &str) -> anyhow::Result<Ended> {
        let run = self
            .engine
            .submit_wait(
                &self.who,
                agent,
                Submit {
                    input: Value::String(input.to_string()),
                    ..Submit::default()
                },
                WAIT,
            )
            .await?;
        Ok(Ended {
            id: run.id.to_string(),
            status: run.status.as_str().to_string(),
            output: run.output,
        })
    }

    async fn resume(&self, id: &str, answer: &str) -> anyhow::Result<Ended> {
        let id = RunId::parse(id)?;
        let t = self
            .engine
            .resume_wait(&self.who, id, &Value::String(answer.to_string()), WAIT)
            .await?;
        let agentd_store::Transition::Done(run, _) = t else {
            bail!("run {id} could not be resumed: {t:?}");
        };
        Ok(Ended {
            id: run.id.to_string(),
            status: run.status.as_str().to_string(),
            output: run.output,
        })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.app.await;
    }
}

/// Mints an admin API key with `bin keys create` on the store `config`
/// names, for the bench's requests.
pub fn mint_key(bin: &Path, config: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["--json", "keys", "create", "--config"])
        .arg(config)
        .args([
            "--tenant",
            "bench",
            "--principal",
            "bench",
            "--role",
            "admin",
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "agentd keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("agentd keys create --json")?;
    v["key"]
        .as_str()
        .map(str::to_string)
        .context("no key in the output of agentd keys create --json")
}

/// `agentd serve` as a child process, driven over HTTP.
pub struct Http {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Http {
    /// Starts `bin serve --config config` and waits for `/health`; every
    /// request carries `key` as its bearer credential, if given.
    pub async fn start(
        bin: &Path,
        config: &Path,
        port: u16,
        key: Option<&str>,
    ) -> anyhow::Result<(Self, Duration)> {
        let t0 = Instant::now();
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .env("AGENTD_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        let this = Self {
            child,
            base,
            client,
        };
        let deadline = t0 + Duration::from_secs(30);
        loop {
            if let Ok(r) = this
                .client
                .get(format!("{}/health", this.base))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok((this, t0.elapsed()));
            }
            if Instant::now() > deadline {
                bail!("agentd did not answer /health within 30s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn ended(v: &Value) -> anyhow::Result<Ended> {
        Ok(Ended {
            id: v["id"]
                .as_str()
                .context("no run id in response")?
                .to_string(),
            status: v["status"].as_str().unwrap_or_default().to_string(),
            output: v.get("output").cloned().filter(|o| !o.is_null()),
        })
    }

    async fn run(&self, agent: &str, input: &str) -> anyhow::Result<Ended> {
        let resp = self
            .client
            .post(format!("{}/v1/agents/{agent}/runs", self.base))
            .json(&json!({ "input": input, "wait": true }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("POST runs: {status}: {body}");
        }
        Self::ended(&body)
    }

    async fn resume(&self, id: &str, answer: &str) -> anyhow::Result<Ended> {
        let resp = self
            .client
            .post(format!("{}/v1/runs/{id}/resume", self.base))
            .json(&json!({ "answer": answer, "wait": true }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("POST resume: {status}: {body}");
        }
        Self::ended(&body)
    }

    async fn commits(&self) -> anyhow::Result<u64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|l| l.strip_prefix("agentd_store_commits_total "))
            .and_then(|v| v.trim().parse().ok())
            .context("no agentd_store_commits_total in /metrics")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        // An error path left the server running: do not leak it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The agentd binary next to this one.
pub fn sibling_agentd() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("agentd")))
        .unwrap_or_else(|| PathBuf::from("agentd"))
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
