//! `/metrics`: the process-wide Prometheus recorder behind the `metrics`
//! facade, the HTTP middleware that counts and times every request, and the
//! values read at scrape time (the store's commits, the worker slots and the
//! `process_*` figures from `/proc/self`).
//!
//! The recorder is global to the process, installed once by the first
//! [`crate::AppState`] built: every Application of a process (the API tests
//! start many) shares its counters.

use crate::probe::Probe;
use agentd_core::metric;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Buckets of HTTP request durations, seconds: most answers take
/// milliseconds; `wait` requests block for up to a minute or more.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of run and step durations, seconds: a mock step takes
/// milliseconds, a model call seconds, a run with tools minutes.
const RUN_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

/// Buckets of provider calls and time to first token, seconds: a first
/// token comes in a fraction of a second, a long answer in minutes.
const PROVIDER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// Buckets of store commits, seconds: an fsync takes well under a
/// millisecond on NVMe and tens of milliseconds on network disks.
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Buckets of writes per group commit (the writers take at most 256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How often histogram samples are folded into their buckets between
/// scrapes, so an unscraped process does not accumulate them.
pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The `route` label of a request no route matched: never the raw path,
/// which is client data of unbounded variety.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The process's Prometheus handle, installing the global recorder on
/// first use. If another recorder was installed first (an embedding
/// process), `/metrics` shows only what is set at scrape time.
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = builder().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "histogram buckets rejected; using summaries");
            PrometheusBuilder::new()
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics is partial");
        }
        describe();
        handle
    })
}

/// Seconds buckets for every histogram, so they are exported as
/// Prometheus histograms (aggregatable across replicas), not summaries.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    let full = |name: &str| Matcher::Full(name.to_string());
    PrometheusBuilder::new()
        .set_buckets_for_metric(full(metric::HTTP_REQUEST_DURATION), HTTP_BUCKETS)?
        .set_buckets_for_metric(full(metric::RUN_DURATION), RUN_BUCKETS)?
        .set_buckets_for_metric(full(metric::STEP_DURATION), RUN_BUCKETS)?
        .set_buckets_for_metric(full(metric::RUN_QUEUE_WAIT), RUN_BUCKETS)?
        .set_buckets_for_metric(full(metric::PROVIDER_CALL_DURATION), PROVIDER_BUCKETS)?
        .set_buckets_for_metric(full(metric::PROVIDER_TIME_TO_FIRST_TOKEN), PROVIDER_BUCKETS)?
        .set_buckets_for_metric(full(metric::STORE_COMMIT_DURATION), COMMIT_BUCKETS)?
        .set_buckets_for_metric(full(metric::STORE_BATCH_SIZE), BATCH_BUCKETS)
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(metric::HTTP_REQUESTS, "HTTP requests answered.");
    describe_histogram!(
        metric::HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request to its response's headers."
    );
    describe_counter!(metric::RUNS_CREATED, "Runs created by this process.");
    describe_counter!(
        metric::RUNS_FINISHED,
        "Runs this process brought to a terminal status."
    );
    describe_histogram!(
        metric::RUN_DURATION,
        Unit::Seconds,
        "Time from a run's creation to its terminal status."
    );
    describe_histogram!(
        metric::STEP_DURATION,
        Unit::Seconds,
        "Time one step took to execute."
    );
    describe_gauge!(metric::WORKER_SLOTS, "Worker slots of this process.");
    describe_histogram!(
        metric::RUN_QUEUE_WAIT,
        Unit::Seconds,
        "Time from a run's creation to its first claim by a worker."
    );
    describe_gauge!(
        metric::RUNS,
        "Runs queued or running in the whole store, refreshed at most every 10s."
    );
    describe_counter!(
        metric::RUN_ATTEMPTS,
        "Run attempts started by this process's workers."
    );
    describe_counter!(
        metric::RUN_RETRIES,
        "Attempts that failed retryably and requeued their run."
    );
    describe_counter!(metric::DEAD_LETTERS, "Runs moved to the dead-letter list.");
    describe_counter!(
        metric::BUDGET_ALERTS,
        "Budget thresholds announced, once each across the fleet."
    );
    describe_counter!(
        metric::GUARDRAIL_VERDICTS,
        "Texts a guardrail tripped on, by guard, source and action taken."
    );
    describe_histogram!(
        metric::PROVIDER_CALL_DURATION,
        Unit::Seconds,
        "One call to a model provider, retries counted separately."
    );
    describe_histogram!(
        metric::PROVIDER_TIME_TO_FIRST_TOKEN,
        Unit::Seconds,
        "Time from a streamed provider call's start to its first text."
    );
    describe_counter!(
        metric::PROVIDER_ERRORS,
        "Failed provider calls by error class."
    );
    describe_gauge!(
        metric::PROVIDER_CIRCUIT_STATE,
        "Provider circuit breaker state: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(metric::TOKENS, "Model tokens by type (input, output).");
    describe_gauge!(
        metric::COST_USD,
        "USD of model calls since the process started (only increases)."
    );
    describe_counter!(
        metric::BUDGET_RESERVATIONS,
        "Model calls that reserved tenant budget."
    );
    describe_counter!(
        metric::BUDGET_REJECTIONS,
        "Model calls refused because the tenant's budget was spent."
    );
    describe_gauge!(
        metric::BUDGET_SPENT_USD,
        "USD the tenant spent in the current budget period."
    );
    describe_gauge!(metric::BUDGET_LIMIT_USD, "The tenant's budget per period.");
    describe_counter!(
        metric::LEASES_RECLAIMED,
        "Runs claimed after their previous lease expired."
    );
    describe_counter!(
        metric::HEARTBEATS_LOST,
        "Lease heartbeats that failed, dropping the run."
    );
    describe_histogram!(
        metric::STORE_COMMIT_DURATION,
        Unit::Seconds,
        "One group commit of the store's writer."
    );
    describe_histogram!(
        metric::STORE_BATCH_SIZE,
        "Writes carried by one group commit."
    );
    describe_counter!(
        metric::STORE_COMMITS,
        "Write transactions committed to the store by this process."
    );
    describe_counter!(
        metric::RATE_LIMITED,
        "Requests refused with 429 by a request rate limit."
    );
    describe_counter!(
        metric::RATE_LIMIT_REDIS_FALLBACKS,
        "Requests the local limiter decided because the Redis limiter was unavailable."
    );
    describe_gauge!(
        metric::PROCESS_RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory size."
    );
    describe_counter!(
        metric::PROCESS_CPU_SECONDS,
        "User and system CPU time spent in seconds."
    );
    describe_gauge!(metric::PROCESS_OPEN_FDS, "Open file descriptors.");
}

/// Folds histogram samples into buckets every [`UPKEEP_EVERY`] until
/// `stop` fires.
pub(crate) async fn run_upkeep(stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => prometheus().run_upkeep(),
            _ = stop.cancelled() => return,
        }
    }
}

/// Middleware: the access log line and the HTTP metrics of every request,
/// by method, route template and status. Added inside the router, where
/// the matched route is known.
pub(crate) async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    // Set by the request-id layer outside the router, so always present.
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::Span::current();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    // i64: tracing-opentelemetry exports unsigned values as strings.
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    // The access log: one line per request, the route template rather
    // than the path (no ids or client data in it).
    tracing::info!(
        target: "agentd::access",
        method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    metrics::histogram!(metric::HTTP_REQUEST_DURATION, "method" => method, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!(metric::HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
    res
}

/// The `method` label: a standard method's name, `other` for an extension
/// method, whose name the client chooses (a label must stay bounded).
pub(crate) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| *name)
}

/// `GET /metrics`: Prometheus text exposition of every metric of the
/// process, with the values kept elsewhere refreshed first.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "probes",
    responses((status = 200, description = "Prometheus text format 0.0.4.",
        content_type = "text/plain", body = String)),
)]
pub(crate) async fn render(State(app): State<Probe>) -> ([(HeaderName, &'static str); 1], String) {
    // The store keeps its own count; a counter only moves up, so the
    // largest count of the process's stores is shown (one in production).
    metrics::counter!(metric::STORE_COMMITS).absolute(app.engine.reads().commits());
    app.engine.refresh_gauges().await;
    process::record();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}

/// The `process_*` metrics, read from `/proc/self` at scrape time (Linux;
/// elsewhere they are absent).
mod process {
    use agentd_core::metric;

    /// `AT_CLKTCK` of the auxiliary vector: the kernel's `USER_HZ`, the
    /// unit of `/proc/<pid>/stat` times (what `sysconf(_SC_CLK_TCK)`
    /// returns, read without `unsafe`).
    const AT_CLKTCK: u64 = 17;

    /// `USER_HZ` when the auxiliary vector cannot be read: 100 on every
    /// Linux architecture agentd builds for.
    const DEFAULT_TICKS_PER_SECOND: u64 = 100;

    /// Clock ticks per second, read once from `/proc/self/auxv`.
    fn ticks_per_second() -> u64 {
        static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        *TICKS.get_or_init(|| {
            std::fs::read("/proc/self/auxv")
                .ok()
                .and_then(|a| clock_ticks(&a))
                .unwrap_or(DEFAULT_TICKS_PER_SECOND)
        })
    }

    /// The `AT_CLKTCK` value of an auxiliary vector (native-endian
    /// `(type, value)` pairs of machine words, ended by type 0).
    pub(super) fn clock_ticks(auxv: &[u8]) -> Option<u64> {
        const WORD: usize = std::mem::size_of::<usize>();
        let word = |b: &[u8]| -> Option<u64> {
            let bytes: [u8; WORD] = b.try_into().ok()?;
            Some(usize::from_ne_bytes(bytes) as u64)
        };
        auxv.chunks_exact(2 * WORD)
            .map_while(|pair| Some((word(&pair[..WORD])?, word(&pair[WORD..])?)))
            .take_while(|(ty, _)| *ty != 0)
            .find(|(ty, _)| *ty == AT_CLKTCK)
            .map(|(_, v)| v)
            .filter(|v| *v > 0)
    }

    /// Sets the process gauges and counter from `/proc/self`.
    pub(super) fn record() {
        if let Some(rss) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| rss_bytes(&s))
        {
            metrics::gauge!(metric::PROCESS_RESIDENT_MEMORY).set(rss as f64);
        }
        if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_ticks(&s))
        {
            // Fractional seconds: a counter holds whole numbers, so this
            // one is set as a gauge would be (it only grows).
            metrics::gauge!(metric::PROCESS_CPU_SECONDS)
                .set(ticks as f64 / ticks_per_second() as f64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // One of them is the directory being read.
            let open = fds.count().saturating_sub(1);
            metrics::gauge!(metric::PROCESS_OPEN_FDS).set(open as f64);
        }
    }

    /// The `VmRSS` line of `/proc/self/status`, in bytes.
    pub(super) fn rss_bytes(status: &str) -> Option<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
        let mut parts = line.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => Some(n * 1024),
            _ => None,
        }
    }

    /// `utime + stime` of `/proc/self/stat`, in clock ticks. The fields
    /// are counted after the command name, which is in parentheses and may
    /// itself hold spaces and parentheses.
    pub(super) fn cpu_ticks(stat: &str) -> Option<u64> {
        let after = &stat[stat.rfind(')')? + 1..];
        let mut fields = after.split_whitespace();
        // Fields 3.. of proc(5): state is the first here; utime is 14th
        // overall, the 12th after the name, stime right after it.
        let utime: u64 = fields.nth(11)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(utime + stime)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rss_is_read_from_vmrss_in_bytes() {
            let status = "Name:\tagentd\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
            assert_eq!(rss_bytes(status), Some(1234 * 1024));
            assert_eq!(rss_bytes("Name:\tkthread\n"), None);
            assert_eq!(rss_bytes("VmRSS:\tlots kB\n"), None);
        }

        #[test]
        fn cpu_ticks_add_utime_and_stime_after_an_awkward_name() {
            // pid (comm) state ppid pgrp session tty tpgid flags minflt
            // cminflt majflt cmajflt utime stime cutime ...
            let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 8 0";
            assert_eq!(cpu_ticks(stat), Some(325));
            assert_eq!(cpu_ticks("42 (x) S 1"), None);
            assert_eq!(cpu_ticks("garbage"), None);
        }

        #[test]
        fn clock_ticks_come_from_at_clktck() {
            let pairs: &[(usize, usize)] = &[(6, 4096), (17, 250), (0, 0), (17, 99)];
            let auxv: Vec<u8> = pairs
                .iter()
                .flat_map(|(t, v)| [t.to_ne_bytes(), v.to_ne_bytes()].concat())
                .collect();
            assert_eq!(clock_ticks(&auxv), Some(250));
            // Past the end marker and in truncated input, nothing is read.
            assert_eq!(
                clock_ticks(&auxv[2 * std::mem::size_of::<usize>() * 2..]),
                None
            );
            assert_eq!(clock_ticks(&auxv[..5]), None);
        }

        #[test]
        fn this_process_reads_on_linux() {
            if !cfg!(target_os = "linux") {
                return;
            }
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            assert!(rss_bytes(&status).unwrap() > 0);
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
            assert!(cpu_ticks(&stat).is_some());
            assert_eq!(
                ticks_per_second(),
                100,
                "USER_HZ is 100 on x86-64 and arm64"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let custom = Method::from_bytes(b"PURGE-EVERYTHING-42").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

    #[test]
    fn durations_are_histograms_with_seconds_buckets() {
        assert!(builder().is_ok());
        for buckets in [
            HTTP_BUCKETS,
            RUN_BUCKETS,
            PROVIDER_BUCKETS,
            COMMIT_BUCKETS,
            BATCH_BUCKETS,
        ] {
            assert!(buckets.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
