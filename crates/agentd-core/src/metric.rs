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
/// Histogram `{agent}`: from a run's creation to its first claim by a
/// worker (retries, resumes and reclaims are not counted again).
pub const RUN_QUEUE_WAIT: &str = "agentd_run_queue_wait_seconds";
/// Gauge `{status}`: runs `queued` or `running` in the whole store (every
/// tenant), counted at scrape time at most every
/// [`STORE_GAUGES_EVERY_SECS`] seconds. Terminal statuses are counters
/// ([`RUNS_FINISHED`]); paused runs are not counted (no index makes that
/// count cheap).
pub const RUNS: &str = "agentd_runs";
/// Counter `{agent}`: attempts of runs started by this process's workers
/// (a first claim, a retry, a resume or a reclaim each start one).
pub const RUN_ATTEMPTS: &str = "agentd_run_attempts_total";
/// Counter `{agent}`: attempts that failed with a retryable error and sent
/// their run back to the queue.
pub const RUN_RETRIES: &str = "agentd_run_retries_total";
/// Counter `{agent}`: runs moved to the dead-letter list.
pub const DEAD_LETTERS: &str = "agentd_dead_letters_total";
/// Counter `{agent}`: canaries rolled back automatically
/// (`[rollout."AGENT"].auto_rollback`).
pub const ROLLBACKS: &str = "agentd_rollout_rollbacks_total";
/// Counter `{agent, guard, source, action}`: texts a guardrail tripped on
/// (`guard` `injection` or `pii`; `source` `input` or `tool_result`;
/// `action` `blocked`, `flagged` or `quoted`).
pub const GUARDRAIL_VERDICTS: &str = "agentd_guardrail_verdicts_total";

/// Histogram `{provider}`: one call to a model provider (each retry is a
/// call), until its whole answer or its error.
pub const PROVIDER_CALL_DURATION: &str = "agentd_provider_call_duration_seconds";
/// Histogram `{provider}`: from the start of a streamed call to its first
/// text delta.
pub const PROVIDER_TIME_TO_FIRST_TOKEN: &str = "agentd_provider_time_to_first_token_seconds";
/// Counter `{provider, class}`: failed provider calls by error class
/// (`rate_limited`, `timeout`, `server`, `connection`, `bad_request`,
/// `context_length`, `auth`, `quota`, `invalid_response`; see
/// `ProviderError::kind`).
pub const PROVIDER_ERRORS: &str = "agentd_provider_errors_total";
/// Gauge `{provider}`: the circuit breaker's state in this process:
/// 0 closed, 1 half-open, 2 open (only providers of agents with a
/// `circuit_breaker`).
pub const PROVIDER_CIRCUIT_STATE: &str = "agentd_provider_circuit_state";

/// Counter `{agent, provider, type}`: tokens of model calls this process
/// recorded; `type` is `input` or `output`.
pub const TOKENS: &str = "agentd_tokens_total";
/// Gauge `{agent, tenant}`, only ever increased: USD of model calls this
/// process recorded since it started, priced from `[pricing]` (a gauge
/// because the exporter's counters hold whole numbers; read it with
/// `increase()` like a counter). `tenant` is the tenant only if the config
/// names it in `[tenants."ID"]`, else `other`.
pub const COST_USD: &str = "agentd_cost_usd";
/// Counter `{tenant}`: model calls that reserved budget before running
/// (only tenants with a `budget_usd`, so the label is bounded by config).
pub const BUDGET_RESERVATIONS: &str = "agentd_budget_reservations_total";
/// Counter `{tenant}`: model calls refused because the tenant's budget for
/// the period was spent (the run fails with `budget_exceeded`).
pub const BUDGET_REJECTIONS: &str = "agentd_budget_rejections_total";
/// Counter `{scope}`: budget thresholds announced (`scope` `run` or
/// `tenant`), once each across the fleet.
pub const BUDGET_ALERTS: &str = "agentd_budget_alerts_total";
/// Gauge `{tenant}`: USD a tenant with a `budget_usd` spent in the current
/// period, read from the store at scrape time (at most every
/// [`STORE_GAUGES_EVERY_SECS`] seconds).
pub const BUDGET_SPENT_USD: &str = "agentd_budget_spent_usd";
/// Gauge `{tenant}`: the tenant's `budget_usd` per period, from the config.
pub const BUDGET_LIMIT_USD: &str = "agentd_budget_limit_usd";

/// Counter: runs this process claimed whose previous lease had expired
/// (their worker died or stalled): taken over.
pub const LEASES_RECLAIMED: &str = "agentd_leases_reclaimed_total";
/// Counter: heartbeats of a long step that failed, so the worker dropped
/// the run (cancelled, or its lease was taken over).
pub const HEARTBEATS_LOST: &str = "agentd_heartbeats_lost_total";

/// Counter: write transactions committed to the store by this process.
pub const STORE_COMMITS: &str = "agentd_store_commits_total";
/// Histogram `{backend}`: one group commit of the store's writer, from its
/// `BEGIN` to its durable `COMMIT` (`sqlite` or `postgres`).
pub const STORE_COMMIT_DURATION: &str = "agentd_store_commit_duration_seconds";
/// Histogram `{backend}`: writes (steps, creations, finishes...) carried by
/// one group commit.
pub const STORE_BATCH_SIZE: &str = "agentd_store_commit_batch_size";

/// Counter: requests refused with 429 by a request rate limit.
pub const RATE_LIMITED: &str = "agentd_rate_limited_requests_total";
/// Counter: requests the local limiter decided because the Redis limiter
/// was unreachable, failed or too slow.
pub const RATE_LIMIT_REDIS_FALLBACKS: &str = "agentd_rate_limit_redis_fallbacks_total";

/// Gauge: resident set size of this process, bytes.
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Counter: user and system CPU time of this process, seconds.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Gauge: file descriptors this process has open.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

/// How often the gauges read from the store ([`RUNS`],
/// [`BUDGET_SPENT_USD`]) are refreshed at most: scrapes in between show
/// the last values, so many scrapers cost one query.
pub const STORE_GAUGES_EVERY_SECS: u64 = 10;

/// The `tenant` label of a tenant the config does not name.
pub const OTHER_TENANT: &str = "other";

/// Every metric name above, for tests that check dashboards and alert rules
/// name only metrics that exist.
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    RUNS_CREATED,
    RUNS_FINISHED,
    RUN_DURATION,
    STEP_DURATION,
    WORKER_SLOTS,
    RUN_QUEUE_WAIT,
    RUNS,
    RUN_ATTEMPTS,
    RUN_RETRIES,
    DEAD_LETTERS,
    ROLLBACKS,
    GUARDRAIL_VERDICTS,
    PROVIDER_CALL_DURATION,
    PROVIDER_TIME_TO_FIRST_TOKEN,
    PROVIDER_ERRORS,
    PROVIDER_CIRCUIT_STATE,
    TOKENS,
    COST_USD,
    BUDGET_RESERVATIONS,
    BUDGET_REJECTIONS,
    BUDGET_ALERTS,
    BUDGET_SPENT_USD,
    BUDGET_LIMIT_USD,
    LEASES_RECLAIMED,
    HEARTBEATS_LOST,
    STORE_COMMITS,
    STORE_COMMIT_DURATION,
    STORE_BATCH_SIZE,
    RATE_LIMITED,
    RATE_LIMIT_REDIS_FALLBACKS,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_CPU_SECONDS,
    PROCESS_OPEN_FDS,
];

/// The `status` label of [`RUNS_FINISHED`] and [`RUN_DURATION`].
pub const STATUS: &str = "status";
/// The `agent` label.
pub const AGENT: &str = "agent";
/// The `provider` label: a `[providers.NAME]` name.
pub const PROVIDER: &str = "provider";
/// The `tenant` label: a tenant named in the config, or [`OTHER_TENANT`].
pub const TENANT: &str = "tenant";
