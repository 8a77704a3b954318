//! The names of every metric agentd exports on `/metrics`, in one place
//! (Prometheus naming: `agentd_` prefix, `_total` counters, `_seconds`
//! histograms in base units). Label values are bounded: agent names come
//! from the config, never a run id or a request's input.

/// Counter `{method, route, status}`: HTTP requests answered; `route` is
/// the matched route template (`/v1/runs/{id}`), or `unmatched`.
pub const HTTP_REQUESTS: &str = "agentd_http_requests_total";
/// Histogram `{method, route}`: time until the response's headers.
pub const HTTP_REQUEST_DURATION: &str = "agentd_http_request_duration_seconds";

/// Counter `{agent}`: runs created by this process (an idempotent replay
/// creates none).
pub const RUNS_CREATED: &str = "agentd_runs_created_total";
/// Counter `{agent, status}`: runs this process brought to a terminal status
/// (`succeeded`, `failed`, `cancelled`, `dead`).
pub const RUNS_FINISHED: &str = "agentd_runs_finished_total";
/// Histogram `{agent, status}`: from a run's creation to its terminal status.
pub const RUN_DURATION: &str = "agentd_run_duration_seconds";
/// Histogram `{agent, kind}`: one step's execution (`llm`, `tool`).
pub const STEP_DURATION: &str = "agentd_step_duration_seconds";
/// Gauge `{state}`: this process's worker slots, `busy` or `free`.
pub const WORKER_SLOTS: &str = "agentd_worker_slots";

/// Counter: write transactions committed to the store by this process.
pub const STORE_COMMITS: &str = "agentd_store_commits_total";

/// Counter: requests refused with 429 by a request rate limit.
pub const RATE_LIMITED: &str = "agentd_rate_limited_requests_total";
/// Counter: requests the local limiter decided because the Redis limiter
/// was unreachable, failed or too slow.
pub const RATE_LIMIT_REDIS_FALLBACKS: &str = "agentd_rate_limit_redis_fallbacks_total";

/// Gauge: resident set size of this process, bytes.
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Counter: user and system CPU time of this process, whole seconds.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Gauge: file descriptors this process has open.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

/// The `status` label of [`RUNS_FINISHED`] and [`RUN_DURATION`].
pub const STATUS: &str = "status";
/// The `agent` label.
pub const AGENT: &str = "agent";
