//! Opens a fresh store per test on either backend, and the fixtures the
//! tests share.

use agentd_core::{
    ConversationId, Message, NewRun, Pause, PrincipalId, Role, RunId, Step, StepKind, StepStatus,
    TenantId, Usage,
};
use agentd_store::{ClaimRequest, Claimed, Keyring, PgStore, SqliteStore, StepWrite, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's store and how to move its clock.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    /// SQLite: milliseconds added to the real clock.
    offset: Arc<AtomicI64>,
    dir: tempfile::TempDir,
    extra: AtomicUsize,
    /// PostgreSQL: the url and every store opened, each in its own schema.
    pg: Option<PgSchemas>,
}

/// Runs `test` on a fresh, migrated store of `backend`, then drops it.
pub async fn run<F>(backend: Backend, test: F)
where
    F: for<'a> FnOnce(&'a Ctx) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
{
    let Some(ctx) = Ctx::new(backend).await else {
        return;
    };
    ctx.store.migrate().await.expect("migrate");
    test(&ctx).await;
    ctx.finish().await;
}

fn pg_url() -> String {
    std::env::var("AGENTD_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

fn fresh_schema() -> String {
    format!("agentd_t_{}", uuid::Uuid::new_v4().simple())
}

impl Ctx {
    async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let offset = Arc::new(AtomicI64::new(0));
        let (store, pg): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => (sqlite_store(&dir.path().join("t.db"), &offset).await, None),
            Backend::Postgres => {
                let url = pg_url();
                let schema = fresh_schema();
                let opened = tokio::time::timeout(
                    Duration::from_secs(10),
                    PgStore::open_in_schema(&url, &schema),
                )
                .await;
                let store = match opened {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return unreachable(&url, &e.to_string()),
                    Err(_) => return unreachable(&url, "connecting timed out"),
                };
                let schemas = PgSchemas {
                    url,
                    stores: Mutex::new(vec![(schema, store.clone())]),
                    urls: Mutex::new(Vec::new()),
                    done: false,
                };
                (Arc::new(store), Some(schemas))
            }
        };
        Some(Self {
            store,
            backend,
            offset,
            dir,
            extra: AtomicUsize::new(0),
            pg,
        })
    }

    /// How far the store's clock is ahead of the wall clock.
    pub fn offset_ms(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// Moves time forward by `d` as the store sees it: SQLite's injected
    /// clock jumps; PostgreSQL's clock is the server's, so this sleeps.
    pub async fn advance(&self, d: Duration) {
        match self.backend {
            Backend::Sqlite => {
                self.offset
                    .fetch_add(d.as_millis() as i64, Ordering::SeqCst);
            }
            Backend::Postgres => tokio::time::sleep(d).await,
        }
    }

    /// Another handle on the test's own storage (the same SQLite file or
    /// PostgreSQL schema as `store`), sealing payloads with `keyring`.
    pub async fn reopen(&self, keyring: Option<Keyring>) -> Arc<dyn Store> {
        match &self.pg {
            None => {
                let store = open_sqlite(&self.sqlite_path(), &self.offset).await;
                Arc::new(store.with_keyring(keyring))
            }
            Some(pg) => {
                let schema = pg.stores.lock().unwrap()[0].0.clone();
                let store = PgStore::open_in_schema(&pg.url, &schema)
                    .await
                    .expect("reopen the test's schema");
                pg.stores.lock().unwrap().push((schema, store.clone()));
                Arc::new(store.with_keyring(keyring))
            }
        }
    }

    /// The PostgreSQL handle behind `store` (the same pool and change
    /// feed); `None` on SQLite.
    pub fn pg_store(&self) -> Option<PgStore> {
        let pg = self.pg.as_ref()?;
        Some(pg.stores.lock().unwrap()[0].1.clone())
    }

    /// The plans of the store's list statements on the test's own
    /// storage, by name (`EXPLAIN QUERY PLAN` / `EXPLAIN`).
    pub async fn list_query_plans(&self) -> Vec<(&'static str, String)> {
        match &self.pg {
            None => open_sqlite(&self.sqlite_path(), &self.offset)
                .await
                .list_query_plans()
                .await
                .expect("SQLite plans"),
            Some(pg) => {
                let store = pg.stores.lock().unwrap()[0].1.clone();
                store.list_query_plans().await.expect("PostgreSQL plans")
            }
        }
    }

    /// Another store of the same backend on empty, unmigrated storage.
    pub async fn empty_store(&self) -> Arc<dyn Store> {
        match &self.pg {
            None => {
                let n = self.extra.fetch_add(1, Ordering::SeqCst);
                sqlite_store(&self.dir.path().join(format!("extra-{n}.db")), &self.offset).await
            }
            Some(pg) => {
                let schema = fresh_schema();
                let store = PgStore::open_in_schema(&pg.url, &schema)
                    .await
                    .expect("open another schema");
                pg.stores.lock().unwrap().push((schema, store.clone()));
                Arc::new(store)
            }
        }
    }

    /// A store URL for `agentd_store::open` naming fresh, empty storage:
    /// a new SQLite file, or a new schema through `?schema=`.
    pub fn fresh_url(&self) -> String {
        match &self.pg {
            None => {
                let n = self.extra.fetch_add(1, Ordering::SeqCst);
                format!(
                    "sqlite://{}",
                    self.dir.path().join(format!("url-{n}.db")).display()
                )
            }
            Some(pg) => {
                let schema = fresh_schema();
                pg.urls.lock().unwrap().push(schema.clone());
                let sep = if pg.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}schema={schema}&max_connections=4", pg.url)
            }
        }
    }

    /// Runs `sql` on the test's own database behind the store's back:
    /// tests of what is stored, and of records an older agentd wrote.
    pub async fn exec(&self, sql: &str) {
        match &self.pg {
            None => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Some(pg) => {
                let pool = pg.stores.lock().unwrap()[0].1.pool().clone();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
    }

    /// The text values `sql` selects (one column; NULLs skipped), read
    /// from the test's own database behind the store's back.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match &self.pg {
            None => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| r.get::<_, Option<String>>(0))
                    .unwrap()
                    .filter_map(|v| v.unwrap())
                    .collect()
            }
            Some(pg) => {
                let pool = pg.stores.lock().unwrap()[0].1.pool().clone();
                sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }
    }

    /// `id` as a literal of the backend's run id column, for [`Ctx::exec`].
    pub fn id_sql(&self, id: RunId) -> String {
        match self.backend {
            Backend::Sqlite => format!("X'{}'", id.0.simple()),
            Backend::Postgres => format!("'{id}'"),
        }
    }

    /// The test's SQLite database file.
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("t.db")
    }

    /// Drops the test's schemas (PostgreSQL); the temp dir goes on drop.
    async fn finish(mut self) {
        if let Some(pg) = &mut self.pg {
            // Cloned, not taken: if dropping fails, `Drop` tries again.
            let mut stores = pg.stores.lock().unwrap().clone();
            let first = stores.first().map(|(_, s)| s.clone());
            // Schemas opened through a URL are dropped from the first store.
            for schema in pg.urls.lock().unwrap().iter() {
                if let Some(s) = &first {
                    stores.push((schema.clone(), s.clone()));
                }
            }
            for (schema, store) in &stores {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(store.pool())
                .await
                .expect("drop test schema");
            }
            for (_, store) in stores {
                store.close().await;
            }
            pg.done = true;
        }
    }
}

async fn sqlite_store(path: &std::path::Path, offset: &Arc<AtomicI64>) -> Arc<dyn Store> {
    Arc::new(open_sqlite(path, offset).await)
}

async fn open_sqlite(path: &std::path::Path, offset: &Arc<AtomicI64>) -> SqliteStore {
    let offset = offset.clone();
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open SQLite")
        .with_clock(Arc::new(move || {
            agentd_core::now_millis() + offset.load(Ordering::SeqCst)
        }))
}

/// PostgreSQL is not there: fail under CI, skip elsewhere.
fn unreachable(url: &str, why: &str) -> Option<Ctx> {
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL at {url} is unreachable and CI is set: {why}");
    }
    eprintln!("skipping: PostgreSQL at {url} is unreachable ({why}); set AGENTD_TEST_PG_URL");
    None
}

/// The schemas of a PostgreSQL test. If the test panicked before
/// `finish`, they are dropped from a thread of their own.
struct PgSchemas {
    url: String,
    stores: Mutex<Vec<(String, PgStore)>>,
    /// Schemas created by `agentd_store::open` from a `fresh_url`.
    urls: Mutex<Vec<String>>,
    done: bool,
}

impl Drop for PgSchemas {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let url = self.url.clone();
        let mut schemas: Vec<String> = std::mem::take(&mut *self.stores.lock().unwrap())
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        schemas.append(&mut self.urls.lock().unwrap());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
                    return;
                };
                let _ = sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut conn)
                    .await;
                for s in schemas {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {s} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

// ---- fixtures ----

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

pub fn principal(s: &str) -> PrincipalId {
    PrincipalId::parse(s).unwrap()
}

pub fn conversation(s: &str) -> ConversationId {
    ConversationId::parse(s).unwrap()
}

/// A run of `agent` with a fresh id, outside any conversation.
pub fn new_run(agent: &str) -> NewRun {
    NewRun {
        agent_version: None,
        id: RunId::new(),
        agent: agent.to_string(),
        principal: principal("alice"),
        input: serde_json::json!({ "text": format!("hello {agent}") }),
        conversation_id: None,
        metadata: None,
        roles: vec!["user".into()],
        idempotency: None,
        origin: Default::default(),
        if_busy: Default::default(),
        callbacks: Vec::new(),
    }
}

/// A run of `agent` in conversation `conv`.
pub fn conv_run(agent: &str, conv: &str) -> NewRun {
    NewRun {
        conversation_id: Some(conversation(conv)),
        ..new_run(agent)
    }
}

/// A claim by `owner` with a lease long enough never to expire in a test.
/// A run of agent `a` of tenant `t`, created and claimed by worker `w`.
pub async fn running(s: &Arc<dyn Store>, t: &TenantId) -> Claimed {
    s.create_run(t, &new_run("a"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap()
}

pub fn claim(owner: &str) -> ClaimRequest {
    ClaimRequest::new(owner, Duration::from_secs(60))
}

/// A completed step `index` of `kind`, with some usage and cost.
pub fn step(index: u32, kind: StepKind) -> StepWrite {
    StepWrite {
        step: Step {
            index,
            kind,
            name: format!("{}-{index}", kind.as_str()),
            call_id: (kind != StepKind::Llm).then(|| format!("call_{index}")),
            status: StepStatus::Completed,
            attempt: 1,
            started_at: 1_700_000_000_000 + i64::from(index),
            duration_ms: 7,
            input: serde_json::json!({ "i": index }),
            output: serde_json::json!({ "content": format!("out {index}") }),
            error: None,
            usage: (kind == StepKind::Llm).then_some(Usage {
                input_tokens: 10,
                output_tokens: 5,
            }),
        },
        usage: Usage {
            input_tokens: 10,
            output_tokens: 5,
        },
        cost_usd: 0.25,
    }
}

/// Step `index` waiting for a human.
pub fn waiting(index: u32) -> StepWrite {
    let mut w = step(index, StepKind::Human);
    w.step.status = StepStatus::Waiting;
    w.step.name = "ask_human".into();
    w.step.output = serde_json::Value::Null;
    w.step.started_at = agentd_core::now_millis();
    w.usage = Usage::default();
    w.cost_usd = 0.0;
    w
}

/// A pause on step `index` asking `question`.
pub fn pause(question: &str, index: u32) -> Pause {
    serde_json::from_value(serde_json::json!({ "question": question, "step": index })).unwrap()
}

pub fn msg(role: Role, text: &str) -> Message {
    Message::text(role, text)
}

/// A keyring of `KEYID:BASE64` entries whose keys are 32 bytes of `byte`.
pub fn keyring(entries: &[(&str, u8)]) -> Keyring {
    use base64::Engine as _;
    let text: Vec<String> = entries
        .iter()
        .map(|(id, byte)| {
            let key = base64::engine::general_purpose::STANDARD.encode([*byte; 32]);
            format!("{id}:{key}")
        })
        .collect();
    Keyring::parse(&text.join(",")).unwrap()
}
