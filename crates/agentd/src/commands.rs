//! The commands. Each returns the process exit code; errors are printed
//! once, here, with the code the contract gives them.

use crate::cli::{Cli, Command, DlqCommand, RunArgs, RunsCommand, Who};
use agentd_config::{AuthMode, Config, ConfigSource};
use agentd_core::{
    ConversationId, Identity, PrincipalId, Run, RunId, RunStatus, StepKind, TenantId, value_as_text,
};
use agentd_engine::retention::{DEFAULT_BATCH, Retention, purge_pass, run_retention};
use agentd_engine::{Engine, EngineError, RunEventKind, Submit};
use agentd_store::{RunFilter, Store, StoreError, StoreOptions, Transition};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exit codes of the contract.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const PAUSED: u8 = 3;
}

/// An error with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }
    fn failed(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILED,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadUrl { .. } => Self::usage(format!("store.url: {e}")),
            other => Self::failed(other.to_string()),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Config(_) | EngineError::UnknownAgent(_) | EngineError::BadAnswer(_) => {
                Self::usage(e.to_string())
            }
            EngineError::Forbidden(m) => Self::failed(m),
            EngineError::Store(s) => s.into(),
        }
    }
}

/// Runs the command and turns its outcome into an exit code.
pub async fn dispatch(cli: Cli) -> u8 {
    match run(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}

struct Loaded {
    config: Config,
    source: ConfigSource,
}

fn load_config(cli: &Cli) -> Result<Loaded, Failure> {
    let (config, source) =
        Config::load(cli.config.as_deref()).map_err(|e| Failure::usage(e.to_string()))?;
    if config.auth.mode != AuthMode::None {
        return Err(Failure::usage(format!(
            "{source}: key `auth.mode`: \"{}\" is not available in this version of agentd; use \"none\"",
            config.auth.mode
        )));
    }
    Ok(Loaded { config, source })
}

/// The store options the config asks for: with `store.encryption_key_env`,
/// the keyring that variable holds. The variable missing or malformed is a
/// config error (exit 2) naming it. Every command that opens the store
/// goes through here.
fn store_options(config: &Config) -> Result<StoreOptions, Failure> {
    StoreOptions::from_key_env(config.store.encryption_key_env.as_deref()).map_err(|e| {
        Failure::usage(format!(
            "{}: key `store.encryption_key_env`: {e}",
            config_source_name()
        ))
    })
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    let store = agentd_store::open_with(&config.store.url, store_options(config)?).await?;
    store.migrate().await?;
    Ok(store)
}

async fn build_engine(config: &Config) -> Result<Engine, Failure> {
    let store = open_store(config).await?;
    Engine::new(config, store).await.map_err(|e| match e {
        // Name the file the offending key came from, like config errors do.
        EngineError::Config(msg) => Failure::usage(format!("{}: {msg}", config_source_name())),
        other => other.into(),
    })
}

/// The config source of this process, for messages (set once at load).
static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn config_source_name() -> &'static str {
    SOURCE.get().map_or("configuration", String::as_str)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let Loaded { config, source } = load_config(&cli)?;
    let _ = SOURCE.set(source.to_string());
    match &cli.command {
        Command::Serve { no_workers } => serve(&config, &source, !no_workers, true).await,
        Command::Worker => serve(&config, &source, true, false).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.ping().await?;
            eprintln!("migrations applied to {}", config.store.url);
            Ok(exit::OK)
        }
        Command::Run(args) => run_once(&config, args, cli.json).await,
        Command::Test => {
            // The contract tests run on a scratch in-memory store, but the
            // keyring the config names must still be there.
            store_options(&config)?;
            contract_tests(&config, cli.json).await
        }
        Command::Runs(cmd) => runs(&config, cmd, cli.json).await,
        Command::Dlq(cmd) => dlq(&config, cmd, cli.json).await,
    }
}

/// Cancels the token on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

async fn serve(
    config: &Config,
    source: &ConfigSource,
    workers: bool,
    http: bool,
) -> Result<u8, Failure> {
    let engine = build_engine(config).await?;
    tracing::info!(config = %source, store = %config.store.url, "agentd starting");
    if config.auth.mode == AuthMode::None && http {
        tracing::warn!(
            "auth.mode = \"none\": identities come from X-Tenant-Id headers; for development only"
        );
    }
    let shutdown = shutdown_on_signal();
    let retention_task = config.store.checkpoint_ttl.map(|ttl| {
        let retention = Retention::for_ttl(ttl.get());
        tracing::info!(
            ttl = %ttl,
            every_secs = retention.every.as_secs(),
            "retention: finished runs past store.checkpoint_ttl are purged"
        );
        let store = engine.store().clone();
        tokio::spawn(run_retention(store, retention, shutdown.clone()))
    });
    let worker_task = if workers {
        let released = engine.recover().await?;
        if released > 0 {
            tracing::info!(
                runs = released,
                "resuming runs this node held before it stopped"
            );
        }
        let e = engine.clone();
        let token = shutdown.clone();
        Some(tokio::spawn(async move { e.run_workers(token).await }))
    } else {
        None
    };
    if http {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .map_err(|e| {
                Failure::failed(format!("cannot listen on {}: {e}", config.server.listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::failed(e.to_string()))?;
        tracing::info!(%addr, workers, "listening");
        let state = agentd_server::AppState::new(engine.clone(), config, env!("CARGO_PKG_VERSION"))
            .map_err(|e| Failure::usage(e.to_string()))?;
        let router = agentd_server::router(state);
        let token = shutdown.clone();
        let server = agentd_server::serve(listener, router, async move { token.cancelled().await });
        // Requests blocked in `wait` may outlive the signal: give them a
        // bounded grace, then stop anyway.
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(config.queue.shutdown_grace.get()).await;
        };
        tokio::select! {
            r = server => r.map_err(|e| Failure::failed(format!("server error: {e}")))?,
            _ = grace => tracing::warn!("in-flight requests outlived the shutdown grace"),
        }
    } else {
        tracing::info!(workers = engine.settings().workers, "worker started");
        shutdown.cancelled().await;
    }
    if let Some(task) = worker_task {
        let _ = task.await;
    }
    if let Some(task) = retention_task {
        let _ = task.await;
    }
    engine.shutdown_tools().await;
    tracing::info!("stopped");
    Ok(exit::OK)
}

async fn contract_tests(config: &Config, json: bool) -> Result<u8, Failure> {
    let report = agentd_engine::contract::run_contract_tests(config)
        .await
        .map_err(|e| match e {
            EngineError::Config(msg) => Failure::usage(msg),
            other => other.into(),
        })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for c in &report.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            println!("{mark} {}: {}", c.what, c.detail);
        }
        for c in &report.cases {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            println!("{mark} agent {} / {}", c.agent, c.case);
            for line in &c.diff {
                println!("       {line}");
            }
        }
        let failed = report.checks.iter().filter(|c| !c.ok).count()
            + report.cases.iter().filter(|c| !c.passed).count();
        eprintln!(
            "{} checks, {} cases, {failed} failed",
            report.checks.len(),
            report.cases.len()
        );
    }
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn identity(who: &Who) -> Result<Identity, Failure> {
    Ok(Identity {
        tenant: TenantId::parse(who.tenant.as_str())
            .map_err(|e| Failure::usage(format!("--tenant: {e}")))?,
        principal: PrincipalId::parse(who.principal.as_str())
            .map_err(|e| Failure::usage(format!("--principal: {e}")))?,
        roles: vec!["admin".to_string()],
    })
}

/// JSON if the text parses as JSON, otherwise the text itself.
fn json_or_text(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_string()))
}

fn parse_run_id(s: &str) -> Result<RunId, Failure> {
    RunId::parse(s).map_err(|e| Failure::usage(e.to_string()))
}

async fn run_once(config: &Config, args: &RunArgs, json: bool) -> Result<u8, Failure> {
    let who = identity(&args.who)?;
    let engine = build_engine(config).await?;
    let conversation_id = args
        .conversation
        .as_deref()
        .map(ConversationId::parse)
        .transpose()
        .map_err(|e| Failure::usage(format!("--conversation: {e}")))?;
    let submit = Submit {
        input: json_or_text(&args.input),
        conversation_id,
        metadata: None,
        idempotency_key: None,
    };
    let run = engine
        .submit(&who, &args.agent, submit)
        .await
        .map_err(|e| match e {
            EngineError::UnknownAgent(a) => {
                let known: Vec<&str> = engine_names(config);
                Failure::usage(format!(
                    "unknown agent {a:?} (configured: {})",
                    known.join(", ")
                ))
            }
            other => other.into(),
        })?;
    eprintln!("run {} ({}) queued", run.id, run.agent);
    drive_and_report(&engine, &who.tenant, run.id, json).await
}

fn engine_names(config: &Config) -> Vec<&str> {
    config.agents.iter().map(|a| a.name.as_str()).collect()
}

/// Executes the run here, printing each step as it happens, then reports.
async fn drive_and_report(
    engine: &Engine,
    tenant: &TenantId,
    id: RunId,
    json: bool,
) -> Result<u8, Failure> {
    let mut events = engine.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if ev.run_id != id {
                continue;
            }
            match ev.kind {
                RunEventKind::StepStarted { index, kind, name } => {
                    eprintln!("  [{index}] {} {name} ...", kind.as_str());
                }
                RunEventKind::StepCompleted { step } => {
                    eprintln!(
                        "  [{}] {} {} {} in {} ms: {}",
                        step.index,
                        step.kind.as_str(),
                        step.name,
                        step.status.as_str(),
                        step.duration_ms,
                        summarize_step(step.kind, &step.output, step.error.as_ref())
                    );
                }
                RunEventKind::Finished { .. } => break,
                RunEventKind::Status { .. } | RunEventKind::Token { .. } => {}
            }
        }
    });
    let shutdown = shutdown_on_signal();
    let run = engine.drive(tenant, id, &shutdown).await?;
    // The printer ends at the Finished event; give it a moment to flush.
    let _ = tokio::time::timeout(Duration::from_millis(200), printer).await;
    let run = run.ok_or_else(|| Failure::failed(format!("run {id} disappeared")))?;
    Ok(report(&run, json))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

fn summarize_step(
    kind: StepKind,
    output: &serde_json::Value,
    error: Option<&agentd_core::RunError>,
) -> String {
    if let Some(e) = error {
        return format!("{}: {}", e.code, e.message);
    }
    match kind {
        StepKind::Llm => {
            let calls = output
                .get("tool_calls")
                .and_then(|c| c.as_array())
                .map(|calls| {
                    calls
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {}",
                                c.get("name").and_then(|n| n.as_str()).unwrap_or("?"),
                                c.get("args").map(|a| a.to_string()).unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                });
            match calls {
                Some(c) if !c.is_empty() => format!("calls {}", truncate(&c, 120)),
                _ => format!(
                    "replies {:?}",
                    truncate(
                        output.get("content").and_then(|c| c.as_str()).unwrap_or(""),
                        120
                    )
                ),
            }
        }
        StepKind::Tool | StepKind::Human => truncate(&output.to_string(), 120),
    }
}

/// Prints a run's outcome: data to stdout, the rest to stderr.
fn report(run: &Run, json: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(run).unwrap_or_else(|_| "{}".into())
        );
    }
    match run.status {
        RunStatus::Succeeded => {
            if !json {
                println!(
                    "{}",
                    run.output.as_ref().map(value_as_text).unwrap_or_default()
                );
            }
            eprintln!(
                "succeeded: {} steps, {} tokens in / {} out, ${:.6}",
                run.steps, run.usage.input_tokens, run.usage.output_tokens, run.cost_usd
            );
            exit::OK
        }
        RunStatus::Paused => {
            let q = run.pause.as_ref().map_or("", |p| p.question.as_str());
            eprintln!("paused: {q}");
            eprintln!(
                "resume with: agentd runs resume {} --tenant {} --answer '...'",
                run.id, run.tenant
            );
            exit::PAUSED
        }
        status => {
            match &run.error {
                Some(e) => eprintln!("{status}: {}: {}", e.code, e.message),
                None => eprintln!("{status}"),
            }
            exit::FAILED
        }
    }
}

async fn runs(config: &Config, cmd: &RunsCommand, json: bool) -> Result<u8, Failure> {
    match cmd {
        RunsCommand::List {
            agent,
            status,
            limit,
            cursor,
            who,
        } => {
            let who = identity(who)?;
            let status = status
                .as_deref()
                .map(|s| {
                    RunStatus::parse(s).ok_or_else(|| {
                        Failure::usage(format!(
                            "--status: unknown status {s:?} (expected one of {})",
                            RunStatus::ALL.map(|s| s.as_str()).join(", ")
                        ))
                    })
                })
                .transpose()?;
            let store = open_store(config).await?;
            let filter = RunFilter {
                agent: agent.clone(),
                status,
                limit: *limit,
                cursor: cursor.clone(),
            };
            let page = store.list_runs(&who.tenant, &filter).await?;
            print_runs(page, json, false);
            Ok(exit::OK)
        }
        RunsCommand::Show { id, who } => {
            let who = identity(who)?;
            let id = parse_run_id(id)?;
            let store = open_store(config).await?;
            let run = store
                .get_run(&who.tenant, id)
                .await?
                .ok_or_else(|| Failure::failed(format!("run {id} not found")))?;
            let steps = store
                .list_steps(&who.tenant, id, None, 1000)
                .await?
                .map(|p| p.items)
                .unwrap_or_default();
            if json {
                let v = serde_json::json!({ "run": run, "steps": steps });
                println!("{v:#}");
            } else {
                println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
                for s in &steps {
                    println!(
                        "  [{}] {} {} {} {} ms: {}",
                        s.index,
                        s.kind.as_str(),
                        s.name,
                        s.status.as_str(),
                        s.duration_ms,
                        summarize_step(s.kind, &s.output, s.error.as_ref())
                    );
                }
            }
            Ok(exit::OK)
        }
        RunsCommand::Resume { id, answer, who } => {
            let who = identity(who)?;
            let id = parse_run_id(id)?;
            let engine = build_engine(config).await?;
            match engine.resume(&who, id, &json_or_text(answer)).await? {
                Transition::Done(..) => drive_and_report(&engine, &who.tenant, id, json).await,
                Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
                Transition::Conflict(s) => Err(Failure::failed(format!(
                    "run {id} is {s}; only a paused run can be resumed"
                ))),
            }
        }
        RunsCommand::Cancel { id, who } => {
            let who = identity(who)?;
            let id = parse_run_id(id)?;
            let engine = build_engine(config).await?;
            match engine.cancel(&who, id).await? {
                Transition::Done(run, _) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
                    }
                    eprintln!("run {id} cancelled");
                    Ok(exit::OK)
                }
                Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
                Transition::Conflict(s) => Err(Failure::failed(format!(
                    "run {id} is {s}; only a queued, running or paused run can be cancelled"
                ))),
            }
        }
        RunsCommand::Purge { older_than } => {
            let older_than = older_than
                .or(config.store.checkpoint_ttl.map(|d| d.get()))
                .ok_or_else(|| {
                    Failure::usage(
                        "runs purge: pass --older-than DURATION or set store.checkpoint_ttl",
                    )
                })?;
            let store = open_store(config).await?;
            let mut purge = |older_than, batch| {
                let store = store.clone();
                async move { store.purge_finished(older_than, batch).await }
            };
            let shutdown = shutdown_on_signal();
            let purged = purge_pass(&mut purge, older_than, DEFAULT_BATCH, &shutdown).await?;
            if json {
                println!("{}", serde_json::json!({ "purged": purged }));
            } else {
                println!("{purged}");
            }
            eprintln!(
                "purged {purged} finished runs last updated more than {} ago (all tenants)",
                agentd_config::Dur(older_than)
            );
            Ok(exit::OK)
        }
    }
}

/// Prints a page of runs: a table (with each run's last error when
/// `errors`), or `{items, next_cursor}` with `--json`.
fn print_runs(page: agentd_store::Page<Run>, json: bool, errors: bool) {
    if json {
        let v = serde_json::json!({ "items": page.items, "next_cursor": page.next_cursor });
        println!("{v:#}");
        return;
    }
    println!(
        "{:<36}  {:<9}  {:<16}  {:>5}  {:>7}  CREATED{}",
        "ID",
        "STATUS",
        "AGENT",
        "STEPS",
        "ATTEMPT",
        if errors {
            "                   ERROR"
        } else {
            ""
        }
    );
    for r in &page.items {
        let error = match (&r.error, errors) {
            (Some(e), true) => format!("  {}: {}", e.code, e.message),
            _ => String::new(),
        };
        println!(
            "{:<36}  {:<9}  {:<16}  {:>5}  {:>7}  {}{error}",
            r.id,
            r.status,
            r.agent,
            r.steps,
            r.attempt,
            agentd_core::rfc3339(r.created_at)
        );
    }
    if let Some(c) = page.next_cursor {
        eprintln!("more: --cursor {c}");
    }
}

async fn dlq(config: &Config, cmd: &DlqCommand, json: bool) -> Result<u8, Failure> {
    match cmd {
        DlqCommand::List { limit, cursor, who } => {
            let who = identity(who)?;
            let engine = build_engine(config).await?;
            let page = engine.dead_letters(&who, *limit, cursor.clone()).await?;
            print_runs(page, json, true);
            Ok(exit::OK)
        }
        DlqCommand::Requeue { id, who } => {
            let who = identity(who)?;
            let id = parse_run_id(id)?;
            let engine = build_engine(config).await?;
            match engine.requeue_dead(&who, id).await? {
                Transition::Done(run, _) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
                    }
                    eprintln!(
                        "run {id} queued again; a worker continues it from step {}",
                        run.steps
                    );
                    Ok(exit::OK)
                }
                Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
                Transition::Conflict(s) => Err(Failure::failed(format!(
                    "run {id} is {s}; only a dead run can be requeued"
                ))),
            }
        }
    }
}
