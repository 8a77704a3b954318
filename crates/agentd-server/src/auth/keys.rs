//! `auth.mode = "api_key"`: a request presents `Authorization: Bearer
//! agd_<id>_<secret>` and acts as the tenant, principal and roles stored
//! with the key.
//!
//! Every process keeps every key (id, identity, the secret's hash, expiry,
//! revocation) in memory, so checking a known key costs no store round
//! trip. [`KeyCache::run`] keeps the copy current: every
//! [`REFRESH_EVERY`] it reads the keys created or revoked since its last
//! read, starting [`OVERLAP`] earlier than that read's time, because a
//! write in flight during a read may carry an earlier time than the read;
//! re-reading a few seconds of changes costs little and cannot lose one.
//! A key minted or revoked on any process thus takes effect everywhere
//! within about a second.
//!
//! A key this process has not seen yet (minted a moment ago elsewhere) is
//! looked up in the store, at most once per id per [`MISS_TTL`] and at most
//! [`LOOKUPS_PER_SEC`] per second in all, so a flood of made-up ids cannot
//! hammer the store. When a key is used, its time is noted in memory and
//! written in one batch every [`FLUSH_EVERY`], never per request.

use super::{AuthFailure, Reason};
use agentd_core::{ApiKeyToken, Identity, KeyId, Millis, SecretHash};
use agentd_store::{KeyCredential, Store, StoreError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// How often the cache reads the keys changed in the store.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How far before its last read's time the next read of changes starts.
const OVERLAP: Duration = Duration::from_secs(10);
/// How long an id the store did not know is not asked for again.
const MISS_TTL: Duration = Duration::from_secs(1);
/// Store lookups of ids not in memory, per second, for the whole process.
const LOOKUPS_PER_SEC: u32 = 20;
/// How often the times keys were last used are written.
const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// A key as authentication needs it.
struct Cached {
    identity: Identity,
    secret_hash: SecretHash,
    expires_at: Option<Millis>,
    revoked: bool,
}

impl From<KeyCredential> for Cached {
    fn from(c: KeyCredential) -> Self {
        Self {
            identity: Identity {
                tenant: c.key.tenant,
                principal: c.key.principal,
                roles: c.key.roles,
            },
            secret_hash: c.secret_hash,
            expires_at: c.key.expires_at,
            revoked: c.key.revoked_at.is_some(),
        }
    }
}

/// One store lookup of an id not in memory, shared by the requests that
/// present that id meanwhile.
type Lookup = Arc<OnceCell<Option<Arc<Cached>>>>;

/// Every key of the store, in memory, kept current (see the module docs).
pub(crate) struct KeyCache {
    store: Arc<dyn Store>,
    keys: RwLock<HashMap<KeyId, Arc<Cached>>>,
    /// Lookups of ids not in memory, by id, with when they started.
    lookups: Mutex<HashMap<KeyId, (Instant, Lookup)>>,
    lookup_rate: DefaultDirectRateLimiter,
    /// When keys were last used, not yet written.
    used: Mutex<HashMap<KeyId, Millis>>,
}

impl KeyCache {
    /// Loads every key of `store`.
    pub(crate) async fn load(store: Arc<dyn Store>) -> Result<(Arc<Self>, Millis), StoreError> {
        let all = store.key_changes(None).await?;
        let cache = Self {
            store,
            keys: RwLock::default(),
            lookups: Mutex::default(),
            lookup_rate: RateLimiter::direct(Quota::per_second(
                NonZeroU32::new(LOOKUPS_PER_SEC).unwrap_or(NonZeroU32::MIN),
            )),
            used: Mutex::default(),
        };
        cache.apply(all.keys);
        tracing::info!(keys = cache.len(), "API keys loaded");
        Ok((Arc::new(cache), all.read_at))
    }

    /// The identity `credential` (a bearer token) proves.
    pub(crate) async fn authenticate(&self, credential: &str) -> Result<Identity, AuthFailure> {
        let token = ApiKeyToken::parse(credential)
            .map_err(|e| AuthFailure::new(Reason::MalformedCredential, e.to_string()))?;
        let id = token.id();
        let key = match self.get(id) {
            Some(key) => key,
            None => self.look_up(id).await?,
        };
        // The secret first: whether a key is revoked or expired is told
        // only to whoever holds it.
        if !key.secret_hash.matches(&token) {
            return Err(AuthFailure::new(
                Reason::InvalidCredential,
                format!("API key {id}: wrong secret"),
            ));
        }
        if key.revoked {
            return Err(AuthFailure::new(
                Reason::Revoked,
                format!("API key {id} is revoked"),
            ));
        }
        let now = agentd_core::now_millis();
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthFailure::new(
                Reason::Expired,
                format!("API key {id} has expired"),
            ));
        }
        lock(&self.used).insert(id.clone(), now);
        Ok(key.identity.clone())
    }

    /// Keeps the cache current until `stop`, from the changes after
    /// `read_at` (the time of the read that loaded it); writes the pending
    /// last-used times once more before returning.
    pub(crate) async fn run(&self, mut read_at: Millis, stop: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flushed = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            match self.refresh(read_at).await {
                Ok(at) => read_at = at,
                // The keys in memory stay in force; the next tick retries.
                Err(e) => tracing::warn!(error = %e, "refreshing API keys failed"),
            }
            self.forget_old_lookups();
            if flushed.elapsed() >= FLUSH_EVERY {
                self.flush_used().await;
                flushed = Instant::now();
            }
        }
        self.flush_used().await;
    }

    /// Applies the changes since shortly before `read_at`; the new read's
    /// time.
    async fn refresh(&self, read_at: Millis) -> Result<Millis, StoreError> {
        let overlap = Millis::try_from(OVERLAP.as_millis()).unwrap_or(Millis::MAX);
        let changes = self
            .store
            .key_changes(Some(read_at.saturating_sub(overlap)))
            .await?;
        self.apply(changes.keys);
        Ok(changes.read_at)
    }

    fn apply(&self, keys: Vec<KeyCredential>) {
        if keys.is_empty() {
            return;
        }
        let mut map = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        for c in keys {
            map.insert(c.key.id.clone(), Arc::new(Cached::from(c)));
        }
    }

    fn get(&self, id: &KeyId) -> Option<Arc<Cached>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Looks up an id not in memory in the store, unless it was looked up
    /// within [`MISS_TTL`] (then that lookup's answer stands) or the
    /// process is over its rate of lookups.
    async fn look_up(&self, id: &KeyId) -> Result<Arc<Cached>, AuthFailure> {
        let unknown =
            || AuthFailure::new(Reason::InvalidCredential, format!("unknown API key {id}"));
        let lookup = {
            let mut lookups = lock(&self.lookups);
            match lookups.get(id) {
                Some((at, lookup)) if at.elapsed() < MISS_TTL => lookup.clone(),
                _ => {
                    if self.lookup_rate.check().is_err() {
                        return Err(AuthFailure::new(
                            Reason::InvalidCredential,
                            format!(
                                "unknown API key {id}, not looked up: over {LOOKUPS_PER_SEC} \
                                 lookups of unknown keys per second"
                            ),
                        ));
                    }
                    let lookup = Lookup::default();
                    lookups.insert(id.clone(), (Instant::now(), lookup.clone()));
                    lookup
                }
            }
        };
        let found = lookup
            .get_or_try_init(|| async {
                let found = self.store.key_credential(id).await?.map(Cached::from);
                Ok::<_, StoreError>(found.map(|k| self.insert_new(id, k)))
            })
            .await
            .map_err(|e| {
                AuthFailure::new(
                    Reason::KeysUnavailable,
                    format!("looking up API key {id} failed: {e}"),
                )
            })?;
        found.clone().ok_or_else(unknown)
    }

    /// Adds a key found by a lookup, unless a refresh brought it in
    /// meanwhile: that copy is at least as new.
    fn insert_new(&self, id: &KeyId, key: Cached) -> Arc<Cached> {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_insert_with(|| Arc::new(key))
            .clone()
    }

    fn forget_old_lookups(&self) {
        lock(&self.lookups).retain(|_, (at, _)| at.elapsed() < MISS_TTL);
    }

    /// Writes the pending last-used times in one batch. On failure they
    /// are dropped: a later use notes a later time anyway.
    async fn flush_used(&self) {
        let used: Vec<(KeyId, Millis)> = lock(&self.used).drain().collect();
        if used.is_empty() {
            return;
        }
        if let Err(e) = self.store.touch_keys(&used).await {
            tracing::warn!(error = %e, keys = used.len(), "recording API key use failed");
        }
    }
}

/// A mutex's data; a poisoned one is still consistent here (every
/// critical section is a single map operation).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_core::{PrincipalId, TenantId};
    use agentd_store::NewApiKey;

    async fn store() -> Arc<dyn Store> {
        let store = agentd_store::open("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn mint(store: &Arc<dyn Store>, expires_at: Option<Millis>) -> ApiKeyToken {
        let token = ApiKeyToken::generate().unwrap();
        store
            .create_key(
                &TenantId::parse("acme").unwrap(),
                &NewApiKey {
                    id: token.id().clone(),
                    principal: PrincipalId::parse("bot").unwrap(),
                    roles: vec!["admin".into()],
                    name: None,
                    secret_hash: token.secret_hash(),
                    expires_at,
                },
                "test",
            )
            .await
            .unwrap();
        token
    }

    fn reason(r: Result<Identity, AuthFailure>) -> Reason {
        r.unwrap_err().reason
    }

    #[tokio::test]
    async fn known_keys_authenticate_from_memory_with_the_reasons_for_refusals() {
        let store = store().await;
        let good = mint(&store, None).await;
        let expired = mint(&store, Some(agentd_core::now_millis() - 1)).await;
        let revoked = mint(&store, None).await;
        store.revoke_key(None, revoked.id(), "test").await.unwrap();
        let (cache, _) = KeyCache::load(store.clone()).await.unwrap();

        let who = cache.authenticate(&good.reveal()).await.unwrap();
        assert_eq!(
            (who.tenant.as_str(), who.principal.as_str()),
            ("acme", "bot")
        );
        assert_eq!(who.roles, ["admin"]);
        let wrong = format!("agd_{}_{}", good.id(), "0".repeat(64));
        assert_eq!(
            reason(cache.authenticate(&wrong).await),
            Reason::InvalidCredential
        );
        assert_eq!(
            reason(cache.authenticate(&expired.reveal()).await),
            Reason::Expired
        );
        assert_eq!(
            reason(cache.authenticate(&revoked.reveal()).await),
            Reason::Revoked
        );
        // A revoked key with a wrong secret learns nothing about the key.
        let wrong = format!("agd_{}_{}", revoked.id(), "0".repeat(64));
        assert_eq!(
            reason(cache.authenticate(&wrong).await),
            Reason::InvalidCredential
        );
        assert_eq!(
            reason(cache.authenticate("agd_nope").await),
            Reason::MalformedCredential
        );
    }

    #[tokio::test]
    async fn unknown_ids_are_looked_up_once_per_interval_and_uses_are_written_in_batches() {
        let store = store().await;
        let (cache, _) = KeyCache::load(store.clone()).await.unwrap();
        let stranger = ApiKeyToken::generate().unwrap();
        assert_eq!(
            reason(cache.authenticate(&stranger.reveal()).await),
            Reason::InvalidCredential
        );

        // Minted elsewhere after the load: found by one lookup.
        let fresh = mint(&store, None).await;
        assert!(cache.authenticate(&fresh.reveal()).await.is_ok());
        assert_eq!(cache.len(), 1);
        assert!(lock(&cache.lookups).contains_key(fresh.id()));

        // A flood of made-up ids stops being looked up at the rate limit.
        for _ in 0..(2 * LOOKUPS_PER_SEC) {
            let made_up = ApiKeyToken::generate().unwrap();
            let _ = cache.authenticate(&made_up.reveal()).await;
        }
        assert!(lock(&cache.lookups).len() <= LOOKUPS_PER_SEC as usize + 1);

        // The use is written by the flush, not by the request.
        let listed = |store: Arc<dyn Store>| async move {
            store.list_keys(None, 10, None).await.unwrap().items[0].last_used_at
        };
        assert_eq!(listed(store.clone()).await, None);
        cache.flush_used().await;
        assert!(listed(store.clone()).await.is_some());
    }
}
