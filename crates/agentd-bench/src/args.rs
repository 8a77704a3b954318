//! The command line of `agentd-bench`: modes, transports, stores and the
//! knobs of a measured configuration.

use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum Mode {
    Seq,
    Conc,
    Pause,
    Startup,
    /// List-query latencies on a prefilled store (`--prefill`).
    List,
    /// Memory of runs in flight: `--concurrency` runs waiting on a slow
    /// model at once, in this process.
    Inflight,
    /// Usage-report latencies on a prefilled store (`--prefill`), each
    /// grouping over the whole store and over one day.
    Usage,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum Transport {
    Inproc,
    Http,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub(crate) enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[arg(long, value_enum, default_value = "seq")]
    pub(crate) mode: Mode,
    #[arg(long, value_enum, default_value = "inproc")]
    pub(crate) transport: Transport,
    #[arg(long, value_enum, default_value = "sqlite")]
    pub(crate) store: StoreKind,
    /// Measured runs (default: seq 2,000; conc 5,000; pause 10,000).
    #[arg(long)]
    pub(crate) runs: Option<usize>,
    #[arg(long, default_value_t = 50)]
    pub(crate) warmup: usize,
    /// Runs in flight in conc mode.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Directory for the database and config (default: a temp dir).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// The agentd binary for HTTP and startup modes (default: next to this one).
    #[arg(long)]
    pub(crate) agentd: Option<PathBuf>,
    /// PostgreSQL server for `--store postgres`; each bench run gets a fresh
    /// schema on it, dropped at the end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub(crate) pg_url: String,
    /// conc mode on PostgreSQL: run this many `agentd worker` processes on
    /// the shared store while this process only feeds the queue (0: the
    /// engine runs in this process, as for SQLite).
    #[arg(long, default_value_t = 0)]
    pub(crate) processes: usize,
    /// Fleet mode: the worker processes' `queue.poll_interval` (how long an
    /// idle worker sleeps before looking at the queue again when nothing
    /// wakes it).
    #[arg(long, default_value = "5ms")]
    pub(crate) fleet_poll_interval: String,
    /// Before measuring, fill the store with this many finished W1 runs
    /// (copies of one real run, older than the measured ones).
    #[arg(long, default_value_t = 0)]
    pub(crate) prefill: u64,
    /// list mode: calls of each list query.
    #[arg(long, default_value_t = 300)]
    pub(crate) list_iters: usize,
    /// usage mode: calls of each usage report.
    #[arg(long, default_value_t = 5)]
    pub(crate) usage_iters: usize,
    /// Turn every `[rate_limit]` limit on, high enough never to trigger
    /// (seq and conc modes): what checking them costs.
    #[arg(long)]
    pub(crate) rate_limits: bool,
    /// With `--rate-limits`: keep the request limits on this Redis
    /// (`backend = "redis"`) instead of in the process.
    #[arg(long, requires = "rate_limits")]
    pub(crate) rate_limit_redis: Option<String>,
    /// HTTP transport: serve with `auth.mode = "api_key"` and send a key
    /// minted by `agentd keys create` with every request: what
    /// authenticating costs.
    #[arg(long)]
    pub(crate) api_key: bool,
    /// Turn the guardrails on (seq and conc modes): the injection
    /// heuristics on input and tool results, and PII redaction of the
    /// journal and the model's requests: what checking every step costs.
    #[arg(long)]
    pub(crate) guardrails: bool,
    /// In process: install a no-op metrics recorder before agentd starts,
    /// so no metric is recorded (agentd's Prometheus recorder then cannot
    /// install): the baseline of the metrics' overhead.
    #[arg(long)]
    pub(crate) no_metrics: bool,
}
