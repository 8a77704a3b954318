//! Shared helpers: a tool context, a scripted DNS resolver, local servers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentd_config::Config;
use agentd_core::{RunId, TenantId};
use agentd_tools::{BuildOptions, DnsResolver, Registry, ToolContext};

pub fn ctx() -> ToolContext {
    ToolContext {
        tenant: TenantId::parse("acme").unwrap(),
        run_id: RunId::new(),
        step_index: 7,
    }
}

/// Answers from a table; a name with several answers gives them in turn
/// (the last one repeating), like a rebinding DNS server. Counts lookups.
#[derive(Default)]
pub struct FakeDns {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    pub lookups: AtomicUsize,
}

impl FakeDns {
    pub fn new(entries: &[(&str, &[&str])]) -> Arc<FakeDns> {
        let dns = FakeDns::default();
        for (name, ips) in entries {
            dns.add(name, &[ips]);
        }
        Arc::new(dns)
    }

    /// `name` answers `sequence[0]`, then `sequence[1]`, ...
    pub fn add(&self, name: &str, sequence: &[&[&str]]) {
        let seq = sequence
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers.lock().unwrap().insert(name.to_owned(), seq);
    }

    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl DnsResolver for FakeDns {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        match answers.get_mut(host) {
            Some(seq) if seq.len() > 1 => Ok(seq.remove(0)),
            Some(seq) => Ok(seq[0].clone()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no such host {host}"),
            )),
        }
    }
}

pub fn config(toml: &str) -> Config {
    Config::from_toml_str(toml).unwrap()
}

pub async fn registry_with(toml: &str, dns: Arc<FakeDns>, secrets: &[(&str, &str)]) -> Registry {
    let secrets: HashMap<String, String> = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let options = BuildOptions {
        env: Arc::new(move |name| secrets.get(name).cloned()),
        resolver: dns,
        ..BuildOptions::default()
    };
    Registry::from_config_with(&config(toml), options)
        .await
        .unwrap()
}

/// A server that answers every request with "secret" and counts them: the
/// target an SSRF must never reach.
pub struct Target {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Target {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

pub async fn spawn_target(listener: tokio::net::TcpListener) -> Target {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "secret"
        }
    });
    let addr = serve(listener, router).await;
    Target { addr, hits }
}

/// Listeners on 127.0.0.1 and 127.0.0.2 with the same port.
pub async fn twin_listeners() -> (tokio::net::TcpListener, tokio::net::TcpListener) {
    for _ in 0..20 {
        let second = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = second.local_addr().unwrap().port();
        if let Ok(first) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// Traces this thread's spans with OpenTelemetry (no exporter) until the
/// guard drops.
pub fn traced() -> tracing::subscriber::DefaultGuard {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    )
}

/// The W3C `traceparent` a call made inside `span` sends.
pub fn traceparent_of(span: &tracing::Span) -> String {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
}
