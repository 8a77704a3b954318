//! The limiter without HTTP: GCRA arithmetic and folding on a fake clock,
//! and the Redis backend against the real server (keys under a prefix of
//! each test's own, so tests running in parallel do not meet).

use super::*;
use agentd_core::{PrincipalId, TenantId};
use governor::clock::FakeRelativeClock;
use std::time::Instant;

fn who(tenant: &str, principal: &str) -> Identity {
    Identity {
        tenant: TenantId::parse(tenant).unwrap(),
        principal: PrincipalId::parse(principal).unwrap(),
        roles: vec![],
    }
}

fn limits(principal: Option<u32>, tenant: Option<u32>) -> Limits {
    Limits {
        per_principal_rpm: principal,
        per_tenant_rpm: tenant,
    }
}

fn verdict(scope: Scope, allowed: bool, remaining: u32, retry_secs: u64) -> Verdict {
    Verdict {
        scope,
        allowed,
        limit: 10,
        remaining,
        reset: Duration::from_millis(1500),
        retry_after: Duration::from_secs(retry_secs),
    }
}

#[test]
fn the_binding_limit_is_the_refusing_one_or_the_one_with_least_left() {
    let p = |allowed, remaining, retry| verdict(Scope::Principal, allowed, remaining, retry);
    let t = |allowed, remaining, retry| verdict(Scope::Tenant, allowed, remaining, retry);

    assert_eq!(
        Decision::fold([p(true, 4, 0), t(true, 2, 0)])
            .unwrap()
            .scope,
        Scope::Tenant
    );
    assert_eq!(
        Decision::fold([p(true, 1, 0), t(true, 2, 0)])
            .unwrap()
            .scope,
        Scope::Principal
    );
    let refused = Decision::fold([p(true, 0, 0), t(false, 0, 3)]).unwrap();
    assert_eq!((refused.allowed, refused.scope), (false, Scope::Tenant));
    assert_eq!(refused.retry_after, Some(Duration::from_secs(3)));
    // Both refuse: the later retry binds.
    let both = Decision::fold([p(false, 0, 7), t(false, 0, 3)]).unwrap();
    assert_eq!(
        (both.scope, both.retry_after),
        (Scope::Principal, Some(Duration::from_secs(7)))
    );
    assert_eq!(Decision::fold([]), None);

    let mut headers = HeaderMap::new();
    refused.write_headers(&mut headers);
    assert_eq!(headers["ratelimit-limit"], "10");
    assert_eq!(headers["ratelimit-remaining"], "0");
    // Seconds, rounded up: a client waiting that long is never early.
    assert_eq!(headers["ratelimit-reset"], "2");
    assert_eq!(headers["retry-after"], "3");
    let mut headers = HeaderMap::new();
    Decision::fold([p(true, 4, 0)])
        .unwrap()
        .write_headers(&mut headers);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
    assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
}

#[test]
fn local_gcra_admits_a_burst_then_one_request_per_interval() {
    // 3 per minute: a burst of 3, then one every 20 s.
    let clock = FakeRelativeClock::default();
    let local = Local::with_clock(limits(Some(3), None), clock.clone());
    let alice = who("acme", "alice");

    let burst: Vec<_> = (0..3).map(|_| local.check(&alice)).collect();
    let refused = local.check(&alice);
    clock.advance(Duration::from_secs(19));
    let early = local.check(&alice);
    clock.advance(Duration::from_secs(1));
    let on_time = local.check(&alice);

    assert!(burst.iter().all(|d| d.allowed && d.limit == 3));
    let remaining: Vec<_> = burst.iter().map(|d| d.remaining).collect();
    assert_eq!(remaining, [2, 1, 0]);
    assert_eq!(burst[0].reset, Duration::from_secs(20));
    assert_eq!(burst[2].reset, Duration::from_secs(60));
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(20)));
    assert_eq!(refused.reset, Duration::from_secs(60));
    assert_eq!(early.retry_after, Some(Duration::from_secs(1)));
    assert!(on_time.allowed);
    assert_eq!(on_time.remaining, 0);
    // Another principal has its own cell.
    assert!(local.check(&who("acme", "bob")).allowed);
}

#[test]
fn local_tenant_limit_spans_principals_and_tenants_are_apart() {
    let clock = FakeRelativeClock::default();
    let local = Local::with_clock(limits(Some(100), Some(3)), clock.clone());

    let a = local.check(&who("acme", "alice"));
    local.check(&who("acme", "alice"));
    let b = local.check(&who("acme", "bob"));
    let carol = local.check(&who("acme", "carol"));
    let other = local.check(&who("globex", "carol"));

    // The tenant's limit binds (fewer left), and refuses the fourth.
    assert_eq!((a.scope, a.limit, a.remaining), (Scope::Tenant, 3, 2));
    assert_eq!((b.allowed, b.remaining), (true, 0));
    assert_eq!((carol.allowed, carol.scope), (false, Scope::Tenant));
    assert_eq!(carol.retry_after, Some(Duration::from_secs(20)));
    assert!(other.allowed);
}

#[test]
fn local_keys_back_to_full_are_forgotten() {
    let clock = FakeRelativeClock::default();
    let local = Local::with_clock(limits(Some(6), Some(60)), clock.clone());
    for p in ["a", "b", "c"] {
        local.check(&who("acme", p));
    }
    assert_eq!(local.keys(), 4);

    local.retain_recent();
    assert_eq!(local.keys(), 4, "state still in use is kept");
    // Full again after one interval (10 s); governor forgets a key one
    // interval after that.
    clock.advance(Duration::from_secs(19));
    local.retain_recent();
    assert_eq!(local.keys(), 3, "only the tenant's key (1 s interval) went");
    clock.advance(Duration::from_secs(2));
    local.retain_recent();

    assert_eq!(local.keys(), 0);
}

/// A prefix no other test (or run) shares.
fn prefix() -> String {
    format!(
        "{KEY_PREFIX_TEST}{}:",
        agentd_test_support::unique_name("t")
    )
}

const KEY_PREFIX_TEST: &str = "agentd:ratelimit:test:";

fn redis_limiter(url: &str, prefix: &str, limits: Limits) -> RedisLimiter {
    RedisLimiter::new(url, prefix, limits).unwrap()
}

#[tokio::test]
async fn redis_limit_is_one_limit_for_two_processes_and_atomic() {
    let Some(url) = agentd_test_support::redis_url() else {
        return;
    };
    // Arrange: two limiters (two processes) on one Redis, 5 per minute.
    let prefix = prefix();
    let l = limits(Some(5), Some(1000));
    let (a, b) = (
        redis_limiter(&url, &prefix, l),
        redis_limiter(&url, &prefix, l),
    );
    let alice = who("acme", "alice");

    // Act: 20 requests at once, half through each.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        let alice = alice.clone();
        tasks.push(tokio::spawn(
            async move { limiter.check(&alice).await.unwrap() },
        ));
    }
    let mut decisions = Vec::new();
    for t in tasks {
        decisions.push(t.await.unwrap());
    }
    let bob = a.check(&who("acme", "bob")).await.unwrap();

    // Assert: exactly the burst got through; the rest wait ~12 s.
    let allowed: Vec<_> = decisions.iter().filter(|d| d.allowed).collect();
    assert_eq!(allowed.len(), 5);
    let mut remaining: Vec<_> = allowed.iter().map(|d| d.remaining).collect();
    remaining.sort();
    assert_eq!(remaining, [0, 1, 2, 3, 4]);
    for refused in decisions.iter().filter(|d| !d.allowed) {
        assert_eq!(refused.scope, Scope::Principal);
        let after = refused.retry_after.unwrap();
        assert!(
            after > Duration::from_secs(11) && after <= Duration::from_secs(12),
            "{after:?}"
        );
    }
    assert!(bob.allowed, "another principal has its own limit");
    // The tenant's counter took the 6 allowed requests only: a refused
    // request takes no cell of any limit.
    assert_eq!(bob.remaining, 4, "{bob:?}");
    // Keys expire once they are back to full.
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(format!("{prefix}{{acme}}:p:alice"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 59_000 && ttl <= 60_000, "{ttl}");
}

#[tokio::test]
async fn an_unreachable_or_hung_redis_falls_back_to_local_limits() {
    // A closed port, and a server that accepts but never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("redis://{}", hung.local_addr().unwrap());
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    for url in ["redis://127.0.0.1:1", hung_url.as_str()] {
        let l = limits(Some(2), None);
        let limiter = RateLimiter::new(Local::new(l), Some(redis_limiter(url, &prefix(), l)));
        let alice = who("acme", "alice");

        let started = Instant::now();
        let decisions = [
            limiter.check(&alice).await,
            limiter.check(&alice).await,
            limiter.check(&alice).await,
        ];
        let took = started.elapsed();

        // The local limiter decided: 2 per minute.
        assert_eq!(decisions.map(|d| d.allowed), [true, true, false], "{url}");
        assert_eq!(limiter.redis_fallbacks_total(), 3, "{url}");
        assert_eq!(limiter.limited_total(), 1);
        // One bounded wait for Redis, then none during the cooldown.
        assert!(took < redis::TIMEOUT * 3, "{url}: {took:?}");
    }
}

/// Forwards connections to `target` until dropped: a Redis that can be
/// taken away and brought back on the same address.
struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(listen: std::net::SocketAddr, target: String) -> (Self, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        (Self { task }, addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Dropping the JoinSet with the task aborts every connection.
        self.task.abort();
    }
}

#[tokio::test]
async fn the_redis_limiter_is_used_again_once_redis_is_back() {
    let Some(url) = agentd_test_support::redis_url() else {
        return;
    };
    let target = url.trim_start_matches("redis://").to_string();
    let (proxy, addr) = Proxy::start("127.0.0.1:0".parse().unwrap(), target.clone()).await;
    let l = limits(Some(100), None);
    let prefix = prefix();
    let limiter = RateLimiter::new(
        Local::new(l),
        Some(redis_limiter(&format!("redis://{addr}"), &prefix, l)),
    );
    let alice = who("acme", "alice");
    assert!(limiter.check(&alice).await.allowed);
    assert_eq!(limiter.redis_fallbacks_total(), 0);

    // Redis goes away: requests are still answered, locally.
    drop(proxy);
    tokio::task::yield_now().await;
    assert!(limiter.check(&alice).await.allowed);
    assert!(limiter.check(&alice).await.allowed);
    let during = limiter.redis_fallbacks_total();
    assert_eq!(during, 2);

    // Back on the same address: after the cooldown Redis decides again.
    let (_proxy, _) = Proxy::start(addr, target).await;
    tokio::time::sleep(REDIS_COOLDOWN + Duration::from_millis(100)).await;
    let mut back = false;
    for _ in 0..20 {
        let before = limiter.redis_fallbacks_total();
        assert!(limiter.check(&alice).await.allowed);
        if limiter.redis_fallbacks_total() == before {
            back = true;
            break;
        }
        tokio::time::sleep(REDIS_COOLDOWN + Duration::from_millis(100)).await;
    }
    assert!(back, "the Redis limiter was never used again");
}
