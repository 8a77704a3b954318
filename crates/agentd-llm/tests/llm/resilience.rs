//! Retry, timeout, circuit breaker and fallback, under paused time.

use crate::fake::{Fake, Step, server_error};
use crate::{Tokens, hello};
use agentd_llm::{
    BreakerObserver, BreakerRegistry, BreakerSettings, BreakerState, BreakerTransition,
    ChainOutcome, Provider, ProviderChain, ProviderError, RetryPolicy,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const SEC: Duration = Duration::from_secs(1);

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial: SEC,
        max: Duration::from_secs(10),
    }
}

fn chain(
    fakes: &[&Arc<Fake>],
    retry: RetryPolicy,
    breaker: Option<BreakerSettings>,
    registry: &BreakerRegistry,
) -> ProviderChain {
    let providers = fakes
        .iter()
        .map(|f| ((*f).clone() as Arc<dyn Provider>, Duration::from_secs(60)))
        .collect();
    ProviderChain::new(providers, retry, breaker, registry)
}

fn text(o: &ChainOutcome) -> &str {
    &o.result.as_ref().unwrap().message.content
}

#[tokio::test(start_paused = true)]
async fn retries_with_exponential_backoff_and_jitter() {
    let a = Arc::new(Fake::new(
        "a",
        vec![
            Step::Fail(server_error("a")),
            Step::Fail(ProviderError::Timeout {
                provider: "a".into(),
            }),
            Step::Fail(ProviderError::Connection {
                provider: "a".into(),
                message: "reset".into(),
            }),
            Step::Reply("ok"),
        ],
    ));
    let c = chain(&[&a], policy(4), None, &BreakerRegistry::new());

    let out = c.complete(&hello(), None).await;

    assert_eq!(text(&out), "ok");
    assert_eq!((out.provider.as_str(), out.attempts), ("a", 4));
    // Backoff 1s, 2s, 4s, each jittered into [d/2, d].
    let gaps = a.gaps();
    for (gap, d) in gaps.iter().zip([1, 2, 4]) {
        let d = Duration::from_secs(d);
        assert!(*gap >= d / 2 && *gap <= d, "{gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_and_falls_back() {
    let a = Arc::new(Fake::new("a", vec![Step::Fail(server_error("a"))]));
    let b = Arc::new(Fake::new("b", vec![Step::Reply("from b")]));
    let c = chain(&[&a, &b], policy(3), None, &BreakerRegistry::new());

    let out = c.complete(&hello(), None).await;

    assert_eq!((out.provider.as_str(), text(&out)), ("b", "from b"));
    assert_eq!((a.calls(), b.calls(), out.attempts), (3, 1, 4));
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after_but_not_beyond_the_cap() {
    let limited = |secs| {
        Step::Fail(ProviderError::RateLimited {
            provider: "a".into(),
            retry_after: Some(Duration::from_secs(secs)),
        })
    };
    let a = Arc::new(Fake::new("a", vec![limited(7), Step::Reply("ok")]));
    let c = chain(&[&a], policy(3), None, &BreakerRegistry::new());
    let out = c.complete(&hello(), None).await;
    assert_eq!(text(&out), "ok");
    assert!(a.gaps()[0] >= Duration::from_secs(7), "{:?}", a.gaps());

    // Asked to wait longer than `max` (10s): no retry, next provider now.
    let a = Arc::new(Fake::new("a", vec![limited(120), Step::Reply("late")]));
    let b = Arc::new(Fake::new("b", vec![Step::Reply("from b")]));
    let c = chain(&[&a, &b], policy(3), None, &BreakerRegistry::new());
    let t0 = Instant::now();
    let out = c.complete(&hello(), None).await;
    assert_eq!((out.provider.as_str(), a.calls()), ("b", 1));
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_go_straight_to_the_next_provider() {
    for e in [
        ProviderError::BadRequest {
            provider: "a".into(),
            message: "bad".into(),
        },
        ProviderError::ContextLength {
            provider: "a".into(),
            message: "long".into(),
        },
        ProviderError::Auth {
            provider: "a".into(),
            message: "401".into(),
        },
        ProviderError::Quota {
            provider: "a".into(),
            message: "empty".into(),
        },
    ] {
        let a = Arc::new(Fake::new("a", vec![Step::Fail(e.clone())]));
        let c = chain(&[&a], policy(5), None, &BreakerRegistry::new());
        let out = c.complete(&hello(), None).await;
        assert_eq!(out.result.unwrap_err(), e);
        assert_eq!((a.calls(), out.attempts), (1, 1), "{e:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_never_retried_or_replaced_after_tokens_were_forwarded() {
    let a = Arc::new(Fake::new(
        "a",
        vec![
            Step::StreamThenFail("Hel", server_error("a")),
            Step::Reply("Hello"),
        ],
    ));
    let b = Arc::new(Fake::new("b", vec![Step::Reply("from b")]));
    let c = chain(&[&a, &b], policy(3), None, &BreakerRegistry::new());
    let tokens = Tokens::default();

    let out = c.complete(&hello(), Some(&tokens.sink())).await;

    assert!(
        matches!(out.result, Err(ProviderError::Server { .. })),
        "{out:?}"
    );
    assert!(out.tokens_forwarded);
    assert_eq!(
        (out.provider.as_str(), out.attempts, a.calls(), b.calls()),
        ("a", 1, 1, 0)
    );
    assert_eq!(tokens.all(), ["Hel"]);

    // The same failure before any token is retried, and the retry streams.
    let a = Arc::new(Fake::new(
        "a",
        vec![Step::Fail(server_error("a")), Step::Reply("Hello")],
    ));
    let c = chain(&[&a], policy(3), None, &BreakerRegistry::new());
    let tokens = Tokens::default();
    let out = c.complete(&hello(), Some(&tokens.sink())).await;
    assert_eq!((text(&out), out.attempts), ("Hello", 2));
    assert_eq!(tokens.all(), ["Hello"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_times_out_and_is_retried() {
    let a = Arc::new(Fake::new(
        "a",
        vec![
            Step::Slow(Duration::from_secs(300), "too late"),
            Step::Slow(Duration::from_secs(2), "in time"),
        ],
    ));
    let providers = vec![(a.clone() as Arc<dyn Provider>, Duration::from_secs(5))];
    let c = ProviderChain::new(providers, policy(2), None, &BreakerRegistry::new());
    let t0 = Instant::now();

    let out = c.complete(&hello(), None).await;

    assert_eq!((text(&out), out.attempts), ("in time", 2));
    // 5s timeout + backoff in [0.5s, 1s] + 2s.
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(7500) && took <= Duration::from_secs(8),
        "{took:?}"
    );

    let c = ProviderChain::new(
        vec![(a.clone() as Arc<dyn Provider>, Duration::from_secs(1))],
        RetryPolicy::NONE,
        None,
        &BreakerRegistry::new(),
    );
    let out = c.complete(&hello(), None).await;
    assert_eq!(
        out.result.unwrap_err(),
        ProviderError::Timeout {
            provider: "a".into()
        }
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, BreakerState, BreakerState)>>);

impl BreakerObserver for Recorder {
    fn on_transition(&self, t: &BreakerTransition) {
        self.0
            .lock()
            .unwrap()
            .push((t.provider.clone(), t.from, t.to));
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_skips_probes_and_closes() {
    use BreakerState::*;
    let recorder = Arc::new(Recorder::default());
    let registry = BreakerRegistry::with_observers(vec![recorder.clone()]);
    let a = Arc::new(Fake::new(
        "a",
        vec![
            Step::Fail(server_error("a")),
            Step::Fail(server_error("a")),
            Step::Fail(server_error("a")), // the first probe fails
            Step::Reply("a is back"),
        ],
    ));
    let b = Arc::new(Fake::new("b", vec![Step::Reply("from b")]));
    let settings = BreakerSettings {
        failures: 2,
        reset: Duration::from_secs(30),
    };
    let c = chain(&[&a, &b], RetryPolicy::NONE, Some(settings), &registry);
    let states = || registry.breaker_states();

    // Two failures: open.
    for _ in 0..2 {
        assert_eq!(c.complete(&hello(), None).await.provider, "b");
    }
    assert_eq!(states(), [("a".to_owned(), Open), ("b".to_owned(), Closed)]);
    // Open: `a` is skipped without a call.
    let out = c.complete(&hello(), None).await;
    assert_eq!(
        (out.provider.as_str(), out.attempts, a.calls()),
        ("b", 1, 2)
    );
    // Another agent's chain over the same provider shares the breaker.
    let other = chain(&[&a], RetryPolicy::NONE, Some(settings), &registry);
    let out = other.complete(&hello(), None).await;
    assert_eq!(
        out.result.unwrap_err(),
        ProviderError::CircuitOpen {
            provider: "a".into()
        }
    );
    assert_eq!((out.attempts, a.calls()), (0, 2));

    // After `reset`: half-open; the probe fails and it opens again.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(states()[0].1, HalfOpen);
    assert_eq!(c.complete(&hello(), None).await.provider, "b");
    assert_eq!((states()[0].1, a.calls()), (Open, 3));
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(states()[0].1, Open, "a new full reset period");
    tokio::time::advance(SEC).await;
    // The next probe succeeds: closed.
    let out = c.complete(&hello(), None).await;
    assert_eq!((out.provider.as_str(), text(&out)), ("a", "a is back"));
    assert_eq!(states()[0].1, Closed);

    let a = |from, to| ("a".to_owned(), from, to);
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            a(Closed, Open),
            a(Open, HalfOpen),
            a(HalfOpen, Open),
            a(Open, HalfOpen),
            a(HalfOpen, Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_count_towards_the_breaker_and_stop_when_it_opens() {
    let a = Arc::new(Fake::new("a", vec![Step::Fail(server_error("a"))]));
    let registry = BreakerRegistry::new();
    let settings = BreakerSettings {
        failures: 2,
        reset: Duration::from_secs(30),
    };
    let c = chain(&[&a], policy(5), Some(settings), &registry);

    let out = c.complete(&hello(), None).await;

    // Two failed calls open the circuit; the third attempt is not made, and
    // the error reported is the real one, not "circuit open".
    assert_eq!((a.calls(), out.attempts), (2, 2));
    assert!(
        matches!(out.result, Err(ProviderError::Server { .. })),
        "{out:?}"
    );
    assert_eq!(registry.breaker_states()[0].1, BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn caller_errors_do_not_open_the_breaker() {
    let bad = ProviderError::BadRequest {
        provider: "a".into(),
        message: "bad".into(),
    };
    let a = Arc::new(Fake::new("a", vec![Step::Fail(bad)]));
    let registry = BreakerRegistry::new();
    let c = chain(
        &[&a],
        RetryPolicy::NONE,
        Some(BreakerSettings {
            failures: 1,
            reset: SEC,
        }),
        &registry,
    );
    for _ in 0..3 {
        c.complete(&hello(), None).await;
    }
    assert_eq!(
        (a.calls(), registry.breaker_states()[0].1),
        (3, BreakerState::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_one_probe_through_and_a_dropped_probe_frees_it() {
    let registry = BreakerRegistry::new();
    let b = registry.get_or_create(
        "p",
        BreakerSettings {
            failures: 1,
            reset: SEC,
        },
    );
    b.try_acquire()
        .unwrap()
        .record::<()>(&Err(server_error("p")));
    assert!(!b.is_call_permitted());
    tokio::time::advance(SEC).await;

    let probe = b.try_acquire().unwrap();
    assert!(probe.is_probe());
    assert_eq!(
        b.try_acquire().unwrap_err(),
        ProviderError::CircuitOpen {
            provider: "p".into()
        }
    );
    drop(probe); // cancelled call: no verdict
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.try_acquire().unwrap().record::<()>(&Ok(()));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn snapshots_restore_the_state_elsewhere() {
    let here = BreakerRegistry::new();
    let settings = BreakerSettings {
        failures: 1,
        reset: Duration::from_secs(30),
    };
    let b = here.get_or_create("p", settings);
    b.try_acquire()
        .unwrap()
        .record::<()>(&Err(server_error("p")));
    tokio::time::advance(Duration::from_secs(10)).await;
    let snap = b.snapshot();
    assert_eq!(snap.state, BreakerState::Open);
    assert_eq!(snap.open_remaining, Some(Duration::from_secs(20)));

    let there = BreakerRegistry::new().get_or_create("p", settings);
    there.restore(&snap);
    assert!(!there.is_call_permitted());
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(there.state(), BreakerState::HalfOpen);
}
