//! Added latency per model call of the resilience stack (retry → breaker →
//! timeout → fallback chain) over a provider that answers at once, with the
//! breaker closed and open. Every case runs inside the same `block_on`, so
//! `bare` is the baseline to subtract.
//!
//! `cargo bench -p agentd-llm --bench decorators`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agentd_core::{Message, Role, Usage};
use agentd_llm::{
    BreakerRegistry, BreakerSettings, Completion, CompletionRequest, Provider, ProviderChain,
    ProviderError, RetryPolicy,
};
use divan::Bencher;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    divan::main();
}

/// Answers immediately with a fixed completion.
struct Instant {
    name: String,
    reply: Completion,
}

impl Instant {
    fn arc(name: &str) -> Arc<dyn Provider> {
        Arc::new(Self {
            name: name.to_owned(),
            reply: Completion {
                message: Message::text(Role::Assistant, "ok"),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 1,
                },
                model: "bench".to_owned(),
            },
        })
    }
}

#[async_trait::async_trait]
impl Provider for Instant {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, _req: &CompletionRequest) -> Result<Completion, ProviderError> {
        Ok(self.reply.clone())
    }
}

fn req() -> CompletionRequest {
    CompletionRequest {
        system: Some("You are a bench.".to_owned()),
        messages: vec![Message::text(Role::User, "hi")].into(),
        tools: vec![],
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(60);
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial: Duration::from_millis(500),
    max: Duration::from_secs(30),
};
const BREAKER: BreakerSettings = BreakerSettings {
    failures: 5,
    reset: Duration::from_secs(3600),
};

/// The provider called directly: the baseline.
#[divan::bench]
fn bare(b: Bencher) {
    let rt = rt();
    let p = Instant::arc("up");
    let req = req();
    b.bench_local(|| rt.block_on(p.complete(&req)).unwrap());
}

/// Chain of one provider with retry and timeout, no breaker.
#[divan::bench]
fn chain_without_breaker(b: Bencher) {
    let rt = rt();
    let chain = ProviderChain::new(
        vec![(Instant::arc("up"), TIMEOUT)],
        RETRY,
        None,
        &BreakerRegistry::new(),
    );
    let req = req();
    b.bench_local(|| rt.block_on(chain.complete(&req, None)).result.unwrap());
}

/// Retry → breaker (closed) → timeout → provider.
#[divan::bench]
fn chain_breaker_closed(b: Bencher) {
    let rt = rt();
    let chain = ProviderChain::new(
        vec![(Instant::arc("up"), TIMEOUT)],
        RETRY,
        Some(BREAKER),
        &BreakerRegistry::new(),
    );
    let req = req();
    b.bench_local(|| rt.block_on(chain.complete(&req, None)).result.unwrap());
}

fn open(registry: &BreakerRegistry, name: &str) {
    let breaker = registry.get_or_create(name, BREAKER);
    for _ in 0..BREAKER.failures {
        breaker
            .try_acquire()
            .unwrap()
            .record::<()>(&Err(ProviderError::Server {
                provider: name.to_owned(),
                message: "down".to_owned(),
                retry_after: None,
            }));
    }
}

/// The only provider's circuit is open: the call fails fast.
#[divan::bench]
fn chain_breaker_open_fails_fast(b: Bencher) {
    let rt = rt();
    let registry = BreakerRegistry::new();
    open(&registry, "down");
    let chain = ProviderChain::new(
        vec![(Instant::arc("down"), TIMEOUT)],
        RETRY,
        Some(BREAKER),
        &registry,
    );
    let req = req();
    b.bench_local(|| rt.block_on(chain.complete(&req, None)).result.unwrap_err());
}

/// The first provider's circuit is open: it is skipped and the second
/// (closed) answers.
#[divan::bench]
fn chain_breaker_open_then_fallback(b: Bencher) {
    let rt = rt();
    let registry = BreakerRegistry::new();
    open(&registry, "down");
    let chain = ProviderChain::new(
        vec![
            (Instant::arc("down"), TIMEOUT),
            (Instant::arc("up"), TIMEOUT),
        ],
        RETRY,
        Some(BREAKER),
        &registry,
    );
    let req = req();
    b.bench_local(|| rt.block_on(chain.complete(&req, None)).result.unwrap());
}
