//! Readers: a small pool of read-only connections used from blocking
//! threads. In WAL mode readers never wait for the writer.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

#[derive(Clone)]
pub(super) struct Readers {
    inner: Arc<Inner>,
}

struct Inner {
    open: Box<dyn Fn() -> rusqlite::Result<Connection> + Send + Sync>,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(
        open: impl Fn() -> rusqlite::Result<Connection> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: Box::new(open),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `f` on a read connection, off the async threads.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.idle.lock().ok().and_then(|mut v| v.pop());
            let conn = match pooled {
                Some(c) => c,
                None => (inner.open)()?,
            };
            let out = f(&conn);
            if let Ok(mut idle) = inner.idle.lock()
                && idle.len() < MAX_IDLE
            {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}
