//! The change feed on PostgreSQL: LISTEN/NOTIFY on one channel per schema
//! (see [`crate::feed`] for what it carries).
//!
//! Publishing: notices go through a bounded in-memory queue to one task,
//! which sends them in order, in batches of one statement each (`pg_notify`
//! over an array) on a pooled connection. A run's writer never waits for a
//! notice, and a burst of tokens costs one round trip.
//!
//! Listening: one connection per process, in a one-connection pool of its
//! own (requests cannot starve it, nor it them), LISTENing on the channel;
//! notices are fanned out in memory to every subscriber. A lost connection
//! is re-established with backoff, and subscribers get [`FeedItem::Gap`]:
//! notices sent meanwhile are gone, so they re-read the store. The other
//! processes are told too ([`Notice::Listening`]), since what they sent
//! meanwhile is lost. A ping every [`PING_EVERY`] finds a connection that
//! died without a word.
//!
//! Payloads are JSON of at most [`MAX_PAYLOAD`] bytes (PostgreSQL refuses
//! 8000 and more). A token whose notice would be longer is split at
//! character boundaries into consecutive token notices of the same step,
//! which concatenate to the text; any other notice that long (it cannot
//! be: ids and names are bounded) is dropped and logged. Each payload
//! carries the sending process's random id, so a process ignores its own
//! notices, and a sequence number, because PostgreSQL folds identical
//! notifications of one transaction into one and two equal tokens must
//! both arrive.

use super::*;
use crate::feed::{ChangeFeed, FeedItem, Notice, RunChange};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The longest payload PostgreSQL's NOTIFY accepts, in bytes.
pub(super) const MAX_PAYLOAD: usize = 7999;
/// Notices waiting to be sent; more are dropped.
const QUEUE: usize = 8192;
/// Notices sent in one statement at most.
const MAX_BATCH: usize = 256;
/// Notices a slow subscriber may fall behind before it gets a gap.
const FANOUT: usize = 4096;
/// How often the listening connection is checked while quiet.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sends a batch of payloads, in order, in one transaction.
const NOTIFY: &str = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p";

/// The channel of a schema's processes: distinct per schema, so
/// deployments sharing a database do not hear each other. Within
/// PostgreSQL's 63-byte identifiers (a long schema name is hashed).
pub(super) fn channel_name(schema: Option<&str>) -> String {
    const PREFIX: &str = "agentd_";
    match schema {
        None => "agentd".to_string(),
        Some(s) if PREFIX.len() + s.len() <= 63 => format!("{PREFIX}{s}"),
        Some(s) => {
            // FNV-1a: stable across processes and versions, unlike std's.
            let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("{PREFIX}{hash:016x}")
        }
    }
}

/// A PostgreSQL store's change feed. Its tasks start on first use: a
/// process that only publishes never opens the listening connection.
pub(super) struct PgFeed {
    channel: String,
    /// This process's id in payloads (random per store handle).
    origin: u64,
    pool: PgPool,
    listen_with: PgConnectOptions,
    publisher: OnceLock<mpsc::Sender<Notice>>,
    listener: OnceLock<Listening>,
    dropped: AtomicU64,
}

/// The listening task's outputs; dropping this stops the task.
struct Listening {
    fanout: broadcast::Sender<FeedItem>,
    connected: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
}

impl PgFeed {
    pub(super) fn new(pool: PgPool, listen_with: PgConnectOptions, schema: Option<&str>) -> Self {
        let channel = channel_name(schema);
        Self {
            listen_with: listen_with.application_name(&channel),
            channel,
            origin: uuid::Uuid::new_v4().as_u64_pair().0,
            pool,
            publisher: OnceLock::new(),
            listener: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// The LISTEN channel (also the listening connection's
    /// `application_name`).
    pub(super) fn channel(&self) -> &str {
        &self.channel
    }

    /// The publishing task's queue, started on first use; `None` outside a
    /// Tokio runtime.
    fn publisher(&self) -> Option<&mpsc::Sender<Notice>> {
        if let Some(tx) = self.publisher.get() {
            return Some(tx);
        }
        let rt = tokio::runtime::Handle::try_current().ok()?;
        Some(self.publisher.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            rt.spawn(publish(
                self.pool.clone(),
                self.channel.clone(),
                self.origin,
                rx,
            ));
            tx
        }))
    }

    /// The listening task, started on first use; `None` outside a Tokio
    /// runtime.
    fn listening(&self) -> Option<&Listening> {
        if let Some(l) = self.listener.get() {
            return Some(l);
        }
        let rt = tokio::runtime::Handle::try_current().ok()?;
        Some(self.listener.get_or_init(|| {
            let (fanout, _) = broadcast::channel(FANOUT);
            let connected = Arc::new(AtomicBool::new(false));
            let (stop, stopped) = oneshot::channel();
            let task = Listen {
                with: self.listen_with.clone(),
                channel: self.channel.clone(),
                origin: self.origin,
                fanout: fanout.clone(),
                connected: connected.clone(),
            };
            rt.spawn(task.run(stopped));
            Listening {
                fanout,
                connected,
                _stop: stop,
            }
        }))
    }
}

impl ChangeFeed for PgFeed {
    fn publish(&self, notice: Notice) {
        let Some(tx) = self.publisher() else {
            return;
        };
        if tx.try_send(notice).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8, ... drops: visible, never a flood.
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "the change feed's send queue is full; notices are dropped \
                     (readers fall back to polling the store)"
                );
            }
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedItem> {
        match self.listening() {
            Some(l) => l.fanout.subscribe(),
            // No runtime, no listener: a receiver that is closed at once.
            None => broadcast::channel(1).1,
        }
    }

    fn connected(&self) -> bool {
        self.listener
            .get()
            .is_some_and(|l| l.connected.load(Ordering::Relaxed))
    }
}

/// Sends queued notices until every sender is gone.
async fn publish(pool: PgPool, channel: String, origin: u64, mut rx: mpsc::Receiver<Notice>) {
    let mut seq = 0;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut failures = 0_u64;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let payloads = encode_batch(origin, &mut seq, batch.drain(..));
        if payloads.is_empty() {
            continue;
        }
        let sent = sqlx::query(NOTIFY)
            .bind(&channel)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            failures += 1;
            if failures.is_power_of_two() {
                tracing::warn!(error = %e, failures, "sending change-feed notices failed; they are dropped (readers fall back to polling the store)");
            }
        }
    }
}

/// The listening task's state.
struct Listen {
    with: PgConnectOptions,
    channel: String,
    origin: u64,
    fanout: broadcast::Sender<FeedItem>,
    connected: Arc<AtomicBool>,
}

impl Listen {
    /// Listens until `stop` fires (its sender is dropped), reconnecting
    /// with backoff whenever the connection is lost.
    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(self.with.clone());
        let mut backoff = Duration::from_millis(100);
        loop {
            let listening = tokio::select! {
                _ = &mut stop => return,
                l = listen(&pool, &self.channel) => l,
            };
            let mut listener = match listening {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "the change feed cannot listen; readers poll the store meanwhile");
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            self.connected.store(true, Ordering::Relaxed);
            self.listening_again(&mut listener).await;
            tracing::debug!(channel = %self.channel, "change feed listening");
            let lost = tokio::select! {
                _ = &mut stop => return,
                lost = self.receive(&mut listener) => lost,
            };
            self.connected.store(false, Ordering::Relaxed);
            tracing::warn!(error = %lost, "the change feed's connection was lost; listening again");
        }
    }

    /// Delivers notices until the connection fails; returns why.
    async fn receive(&self, listener: &mut PgListener) -> sqlx::Error {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                // Cancel-safe: sqlx consumes a message only once it is whole.
                got = listener.try_recv() => match got {
                    Ok(Some(n)) => self.deliver(n.payload()),
                    // sqlx re-established the connection and listens
                    // again; notices in between are lost.
                    Ok(None) => self.listening_again(listener).await,
                    Err(e) => return e,
                },
                _ = ping.tick() => {
                    let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                    match tokio::time::timeout(PING_TIMEOUT, ping).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return e,
                        Err(_) => {
                            return sqlx::Error::Io(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "the listening connection did not answer a ping",
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Whatever was sent while this process did not listen is lost: tells
    /// its subscribers ([`FeedItem::Gap`]) and the other processes
    /// ([`Notice::Listening`], sent on the listening connection itself).
    async fn listening_again(&self, listener: &mut PgListener) {
        let _ = self.fanout.send(FeedItem::Gap);
        let payload = to_payload(self.origin, &mut 0, Notice::Listening);
        let told = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&mut *listener)
            .await;
        if let Err(e) = told {
            tracing::debug!(error = %e, "telling the other processes this one listens again failed");
        }
    }

    /// Hands a payload of another process to the subscribers.
    fn deliver(&self, payload: &str) {
        match decode(payload) {
            Some((origin, _)) if origin == self.origin => {}
            Some((_, notice)) => {
                let _ = self.fanout.send(FeedItem::Notice(notice));
            }
            None => tracing::debug!("ignoring a change-feed notice this agentd cannot read"),
        }
    }
}

/// A listener on `channel`, on the pool's one connection.
async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    Ok(listener)
}

/// A payload: the sender, a sequence number, and the notice.
#[derive(Serialize, Deserialize)]
struct Wire {
    o: u64,
    n: u64,
    #[serde(flatten)]
    body: Body,
}

/// A notice with short keys: payloads are small, and tokens many.
#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum Body {
    #[serde(rename = "q")]
    Queued,
    #[serde(rename = "l")]
    Listening,
    #[serde(rename = "w")]
    Watch { t: TenantId, r: RunId },
    #[serde(rename = "e")]
    Run { t: TenantId, r: RunId, e: RunChange },
}

impl From<Notice> for Body {
    fn from(n: Notice) -> Self {
        match n {
            Notice::Queued => Body::Queued,
            Notice::Listening => Body::Listening,
            Notice::Watch { tenant, run } => Body::Watch { t: tenant, r: run },
            Notice::Run {
                tenant,
                run,
                change,
            } => Body::Run {
                t: tenant,
                r: run,
                e: change,
            },
        }
    }
}

impl From<Body> for Notice {
    fn from(b: Body) -> Self {
        match b {
            Body::Queued => Notice::Queued,
            Body::Listening => Notice::Listening,
            Body::Watch { t, r } => Notice::Watch { tenant: t, run: r },
            Body::Run { t, r, e } => Notice::Run {
                tenant: t,
                run: r,
                change: e,
            },
        }
    }
}

/// The payloads of a batch, in order: one `Queued` at most (one wakes
/// every idle worker), tokens split to fit.
fn encode_batch(origin: u64, seq: &mut u64, batch: impl Iterator<Item = Notice>) -> Vec<String> {
    let mut out = Vec::new();
    let mut queued = false;
    for notice in batch {
        if notice == Notice::Queued {
            if queued {
                continue;
            }
            queued = true;
        }
        encode(origin, seq, notice, &mut out);
    }
    out
}

/// Appends the payloads of `notice` to `out`.
fn encode(origin: u64, seq: &mut u64, notice: Notice, out: &mut Vec<String>) {
    let payload = to_payload(origin, seq, notice.clone());
    if payload.len() <= MAX_PAYLOAD {
        out.push(payload);
        return;
    }
    let Notice::Run {
        tenant,
        run,
        change: RunChange::Token { index, text },
    } = notice
    else {
        tracing::warn!(
            bytes = payload.len(),
            "a change-feed notice is too long for NOTIFY; dropped"
        );
        return;
    };
    // Halves, each split again until it fits.
    let Some(mid) = split_point(&text) else {
        tracing::warn!("a token's notice is too long for NOTIFY; dropped");
        return;
    };
    for part in [&text[..mid], &text[mid..]] {
        let change = RunChange::Token {
            index,
            text: part.to_string(),
        };
        let half = Notice::Run {
            tenant: tenant.clone(),
            run,
            change,
        };
        encode(origin, seq, half, out);
    }
}

/// A character boundary near the middle of `text`, strictly inside it;
/// `None` for a single character.
fn split_point(text: &str) -> Option<usize> {
    let mut mid = text.len() / 2;
    while mid > 0 && !text.is_char_boundary(mid) {
        mid -= 1;
    }
    if mid == 0 {
        mid = text.chars().next()?.len_utf8();
    }
    (mid < text.len()).then_some(mid)
}

fn to_payload(origin: u64, seq: &mut u64, notice: Notice) -> String {
    *seq += 1;
    let wire = Wire {
        o: origin,
        n: *seq,
        body: notice.into(),
    };
    // Plain data of strings, numbers and enums: serializing cannot fail.
    serde_json::to_string(&wire).unwrap_or_default()
}

/// The sender and notice of a payload; `None` if it is not one of ours.
fn decode(payload: &str) -> Option<(u64, Notice)> {
    let wire: Wire = serde_json::from_str(payload).ok()?;
    Some((wire.o, wire.body.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use agentd_core::RunStatus;

    fn token(run: RunId, text: &str) -> Notice {
        Notice::Run {
            tenant: TenantId::parse("acme").unwrap(),
            run,
            change: RunChange::Token {
                index: 2,
                text: text.to_string(),
            },
        }
    }

    #[test]
    fn notices_round_trip_with_their_sender() {
        let run = RunId::new();
        let tenant = TenantId::parse("acme").unwrap();
        let notices = [
            Notice::Queued,
            Notice::Listening,
            Notice::Watch {
                tenant: tenant.clone(),
                run,
            },
            Notice::Run {
                tenant: tenant.clone(),
                run,
                change: RunChange::Status {
                    status: RunStatus::Running,
                },
            },
            Notice::Run {
                tenant: tenant.clone(),
                run,
                change: RunChange::StepStarted {
                    index: 0,
                    kind: agentd_core::StepKind::Llm,
                    name: "mock".into(),
                },
            },
            Notice::Run {
                tenant,
                run,
                change: RunChange::Stored,
            },
            token(run, "héllo"),
        ];
        let mut seq = 0;
        let payloads = encode_batch(7, &mut seq, notices.clone().into_iter());
        let decoded: Vec<(u64, Notice)> = payloads.iter().map(|p| decode(p).unwrap()).collect();
        assert_eq!(decoded.len(), notices.len());
        for ((origin, got), want) in decoded.into_iter().zip(notices) {
            assert_eq!((origin, got), (7, want));
        }
        assert_eq!(decode("{\"o\":1}"), None);
        assert_eq!(decode("not json"), None);
    }

    #[test]
    fn a_batch_carries_one_queued_and_distinct_payloads() {
        let run = RunId::new();
        let batch = [
            Notice::Queued,
            token(run, "the"),
            Notice::Queued,
            token(run, "the"),
        ];
        let mut seq = 0;
        let payloads = encode_batch(1, &mut seq, batch.into_iter());
        assert_eq!(payloads.len(), 3);
        // Equal tokens differ by their sequence number, so PostgreSQL does
        // not fold them into one.
        assert_ne!(payloads[1], payloads[2]);
    }

    #[test]
    fn a_long_token_is_split_into_notices_that_fit_and_concatenate() {
        let run = RunId::new();
        // Multi-byte characters and characters JSON escapes, past the limit.
        let text: String = "añ\"\u{1F600}\n\u{1}".chars().cycle().take(9000).collect();
        let mut seq = 0;
        let payloads = encode_batch(1, &mut seq, std::iter::once(token(run, &text)));
        assert!(payloads.len() > 1, "{}", payloads.len());
        let mut joined = String::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let Some((_, Notice::Run { change, .. })) = decode(p) else {
                panic!("{p}");
            };
            let RunChange::Token { index, text } = change else {
                panic!("{p}");
            };
            assert_eq!(index, 2);
            joined.push_str(&text);
        }
        assert_eq!(joined, text);
        assert_eq!(split_point("\u{1F600}"), None);
        assert_eq!(split_point("a\u{1F600}"), Some(1));
    }

    #[test]
    fn channels_are_per_schema_and_fit_an_identifier() {
        assert_eq!(channel_name(None), "agentd");
        assert_eq!(channel_name(Some("app_1")), "agentd_app_1");
        let long = "s".repeat(63);
        let c = channel_name(Some(&long));
        assert!(c.len() <= 63, "{c}");
        assert_ne!(c, channel_name(Some(&"t".repeat(63))));
    }
}
