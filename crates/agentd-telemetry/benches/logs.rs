//! The log path: one `info` event with three fields inside a run attempt
//! and a step span, written to a sink, by agentd's JSON lines and by
//! tracing-subscriber's JSON format (`flatten_event`, what agentd used
//! before: run fields nested under `span`/`spans`). Allocations per event
//! come from divan's allocation profiler.
//!
//! `cargo bench -p agentd-telemetry --bench logs`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agentd_telemetry::JsonLines;
use divan::{AllocProfiler, Bencher};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// Logs `n` events inside the spans a run's step has.
fn log_in_a_step(bencher: Bencher, subscriber: impl tracing::Subscriber + Send + Sync) {
    tracing::subscriber::with_default(subscriber, || {
        let attempt = tracing::info_span!(
            "run",
            agentd.run_id = %"0196f0c2-7d3e-7c4e-9a51-3f2b1c0d9e8a",
            agentd.tenant = %"acme",
            agentd.agent = %"support",
            request_id = "5eeb86f5-ac23-4fe4-aad6-c31595b9345b",
        );
        let _a = attempt.enter();
        let step = tracing::info_span!("step", agentd.step = 3_i64, agentd.step.kind = "llm");
        let _s = step.enter();
        bencher.bench_local(|| {
            tracing::info!(
                provider = "main",
                attempt = 2_u64,
                elapsed_ms = 12.5,
                "provider answered"
            );
        });
    });
}

#[divan::bench]
fn agentd_json_lines(bencher: Bencher) {
    let layer = JsonLines::new(std::io::sink, false).with_filter(
        JsonLines::<fn() -> std::io::Sink>::filter(EnvFilter::new("info")),
    );
    log_in_a_step(bencher, tracing_subscriber::registry().with(layer));
}

#[divan::bench]
fn fmt_json_flattened(bencher: Bencher) {
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .with_filter(EnvFilter::new("info"));
    log_in_a_step(bencher, tracing_subscriber::registry().with(layer));
}
