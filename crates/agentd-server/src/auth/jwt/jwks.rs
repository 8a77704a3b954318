//! The signing keys of `auth.mode = "jwt"`: a JWKS document read from
//! `auth.jwt.jwks_url` or `auth.jwt.jwks_file`, reduced to the keys that may
//! verify a token here, and cached.
//!
//! The cache is refreshed when a token names an unknown `kid` (a rotation)
//! and when the keys are older than [`Timing::max_age`] (so a removed key
//! stops working), but a request never starts more than one fetch per
//! [`Timing::min_interval`]: a flood of tokens with made-up `kid`s must not
//! turn agentd into a load generator against the identity provider.
//! Concurrent misses wait for the one fetch in flight instead of starting
//! their own.

use crate::auth::{AuthFailure, Reason};
use crate::error::CauseChain;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A JWKS larger than this is refused: real ones are a few KiB.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Why a JWKS could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{0} sent more than {MAX_JWKS_BYTES} bytes")]
    TooLarge(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a JWKS document (expected {{\"keys\": [...]}}): {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "no usable signing key among its {0} keys (only RSA, EC P-256/P-384 and Ed25519 \
         public keys for one of `auth.jwt.algorithms` are used)"
    )]
    NoUsableKeys(usize),
}

/// A key tokens may be verified with.
#[derive(Debug)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    /// The configured algorithms this key may verify: those of its type
    /// (and curve) and, when the JWK declares an `alg`, only that one. A
    /// token's `alg` must be one of them, so a key is never used with an
    /// algorithm of another family (algorithm confusion).
    pub(crate) algorithms: Vec<Algorithm>,
}

/// The usable keys of one JWKS document.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

/// The key a token asks for.
pub(crate) enum Lookup {
    Found(Arc<VerifyingKey>),
    NotFound,
    /// The token names no `kid` and there is more than one key.
    Ambiguous(usize),
}

impl KeySet {
    /// The keys of a JWKS document that can verify one of `allowed`. Other
    /// keys (encryption keys, symmetric keys, unknown types and curves) are
    /// skipped, as identity providers publish those too; a document without
    /// any usable key is an error, so a broken answer never empties the cache.
    pub(crate) fn parse(doc: &[u8], allowed: &[Algorithm]) -> Result<Self, JwksError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(doc)?;
        let total = doc.keys.len();
        let keys: Vec<_> = doc
            .keys
            .into_iter()
            .enumerate()
            .filter_map(|(i, value)| match usable_key(value, allowed) {
                Ok(key) => Some(Arc::new(key)),
                Err(why) => {
                    tracing::debug!(index = i, why, "JWKS key skipped");
                    None
                }
            })
            .collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys(total));
        }
        Ok(Self { keys })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key named `kid`; without a `kid`, the only key if there is one.
    pub(crate) fn find(&self, kid: Option<&str>) -> Lookup {
        let found = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            None if self.keys.len() > 1 => return Lookup::Ambiguous(self.keys.len()),
            None => self.keys.first().cloned(),
        };
        found.map_or(Lookup::NotFound, Lookup::Found)
    }
}

/// The verifying key a JWK gives, or why it is not one.
fn usable_key(value: serde_json::Value, allowed: &[Algorithm]) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    let kid = jwk.common.key_id.clone();
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(format!("kid {kid:?}: not a signing key (use {usage:?})"));
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err(format!("kid {kid:?}: key_ops does not include verify"));
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            ref other => return Err(format!("kid {kid:?}: unsupported EC curve {other:?}")),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            ref other => return Err(format!("kid {kid:?}: unsupported OKP curve {other:?}")),
        },
        // A shared secret published next to public keys is never trusted:
        // only asymmetric signatures prove who issued a token.
        AlgorithmParameters::OctetKey(_) => {
            return Err(format!("kid {kid:?}: symmetric key (kty oct)"));
        }
        _ => return Err(format!("kid {kid:?}: unsupported key type")),
    };
    let mut algorithms: Vec<Algorithm> = allowed
        .iter()
        .copied()
        .filter(|a| family.contains(a))
        .collect();
    if let Some(declared) = jwk.common.key_algorithm {
        let declared = Algorithm::try_from(declared)
            .map_err(|_| format!("kid {kid:?}: unsupported alg {declared}"))?;
        algorithms.retain(|a| *a == declared);
    }
    if algorithms.is_empty() {
        return Err(format!(
            "kid {kid:?}: none of auth.jwt.algorithms fits this key"
        ));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("kid {kid:?}: bad key: {e}"))?;
    Ok(VerifyingKey {
        kid,
        key,
        algorithms,
    })
}

/// Where the JWKS document comes from.
pub(crate) enum Source {
    /// `auth.jwt.jwks_url`.
    Url {
        url: String,
        client: reqwest::Client,
    },
    /// `auth.jwt.jwks_file`, re-read on the same schedule as a URL so a
    /// rotated file (a mounted secret) is picked up without a restart.
    File(PathBuf),
    /// A document held in memory, counting its loads (unit tests).
    #[cfg(test)]
    Memory(Arc<tests::MemoryJwks>),
}

impl Source {
    /// The JWKS at `url`, fetched with bounded timeouts.
    pub(crate) fn url(url: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            // An https JWKS must not be redirected to plain http, where a
            // network attacker could swap the keys.
            .https_only(url.starts_with("https:"))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Source::Url {
            url: url.to_owned(),
            client,
        })
    }

    /// Names the source in logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Url { url, .. } => url.clone(),
            Source::File(path) => path.display().to_string(),
            #[cfg(test)]
            Source::Memory(_) => "memory".to_owned(),
        }
    }

    async fn load(&self) -> Result<Vec<u8>, JwksError> {
        match self {
            Source::Url { url, client } => fetch(client, url).await,
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|source| JwksError::Read {
                    path: path.clone(),
                    source,
                }),
            #[cfg(test)]
            Source::Memory(m) => m.load().await,
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwksError> {
    let http = |source| JwksError::Http {
        url: url.to_owned(),
        source,
    };
    let mut res = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    if !res.status().is_success() {
        return Err(JwksError::Status {
            url: url.to_owned(),
            status: res.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge(url.to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How often the keys may and must be refreshed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// No request starts a fetch sooner than this after the previous one.
    pub(crate) min_interval: Duration,
    /// Keys older than this are refreshed on the next request, so rotations
    /// and removals are seen without an unknown `kid`.
    pub(crate) max_age: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
        }
    }
}

/// What the cache holds and when it last tried to refresh it.
#[derive(Default)]
struct CacheState {
    keys: Arc<KeySet>,
    /// When `keys` were loaded; `None` until a load succeeds.
    loaded_at: Option<Instant>,
    /// When a request last started a fetch (the start-up load does not
    /// count, so the first unknown `kid` after start is always looked up).
    last_refresh: Option<Instant>,
    /// Why the latest load failed; `None` once one succeeds.
    last_error: Option<String>,
    /// Bumped by every load, to tell a waiter that a fetch finished while
    /// it waited (single flight).
    generation: u64,
}

impl CacheState {
    fn may_refresh(&self, now: Instant, timing: Timing) -> bool {
        self.last_refresh
            .is_none_or(|t| now.saturating_duration_since(t) >= timing.min_interval)
    }

    fn is_stale(&self, now: Instant, timing: Timing) -> bool {
        self.loaded_at
            .is_none_or(|t| now.saturating_duration_since(t) >= timing.max_age)
    }
}

/// The cached keys of one [`Source`].
pub(crate) struct KeyCache {
    source: Source,
    algorithms: Vec<Algorithm>,
    timing: Timing,
    state: std::sync::Mutex<CacheState>,
    /// Held while a fetch is in flight: at most one at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// An empty cache of `source`'s keys usable with `algorithms`.
    pub(crate) fn new(source: Source, algorithms: Vec<Algorithm>, timing: Timing) -> Self {
        Self {
            source,
            algorithms,
            timing,
            state: std::sync::Mutex::new(CacheState::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the keys at start-up. A failure is returned for the caller to
    /// judge (fatal for a file, a warning for a URL) and does not use up
    /// the refresh interval: the first request tries again.
    pub(crate) async fn load_at_start(&self) -> Result<usize, JwksError> {
        let _flight = self.refreshing.lock().await;
        self.load().await
    }

    /// The key for a token's `kid`, refreshing the cache when it is stale
    /// or does not know the `kid` (within the refresh interval).
    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, AuthFailure> {
        let now = Instant::now();
        let (stale, generation) = {
            let state = self.state();
            (
                state.is_stale(now, self.timing) && state.may_refresh(now, self.timing),
                state.generation,
            )
        };
        if stale {
            // A request with a known `kid` does not wait for a refresh
            // another request already runs; it uses the keys at hand.
            if let Ok(flight) = self.refreshing.try_lock() {
                self.refresh(generation, flight).await;
            }
        }
        let (keys, generation) = {
            let state = self.state();
            (state.keys.clone(), state.generation)
        };
        match keys.find(kid) {
            Lookup::Found(key) => return Ok(key),
            Lookup::Ambiguous(n) => {
                return Err(AuthFailure::new(
                    Reason::InvalidCredential,
                    format!("the token names no kid and the JWKS has {n} keys"),
                ));
            }
            Lookup::NotFound => {}
        }
        // An unknown `kid` may be a rotation: look again, once.
        let flight = self.refreshing.lock().await;
        self.refresh(generation, flight).await;
        let state = self.state();
        match state.keys.find(kid) {
            Lookup::Found(key) => Ok(key),
            _ => Err(self.not_found(&state, kid)),
        }
    }

    /// Why no key was found for `kid`, from what the cache knows.
    fn not_found(&self, state: &CacheState, kid: Option<&str>) -> AuthFailure {
        let kid = kid.unwrap_or("(none)");
        let source = self.source.describe();
        match &state.last_error {
            Some(error) if state.loaded_at.is_none() => AuthFailure::new(
                Reason::KeysUnavailable,
                format!("no signing keys loaded from {source} yet: {error}"),
            ),
            // The identity provider may have rotated to a key we cannot see.
            Some(error) => AuthFailure::new(
                Reason::KeysUnavailable,
                format!(
                    "kid {kid:?} is not among the cached keys and refreshing them failed: {error}"
                ),
            ),
            None if state.loaded_at.is_none() => AuthFailure::new(
                Reason::KeysUnavailable,
                format!(
                    "no signing keys loaded from {source} yet (next fetch within {:?})",
                    self.timing.min_interval
                ),
            ),
            None => AuthFailure::new(
                Reason::InvalidCredential,
                format!(
                    "kid {kid:?} is not among the {} keys of {source} (refreshed at most every {:?})",
                    state.keys.len(),
                    self.timing.min_interval
                ),
            ),
        }
    }

    /// Fetches the keys unless a fetch finished since the caller read
    /// `generation` or the refresh interval has not passed. The caller
    /// holds `_flight`, so concurrent callers wait here and then see the
    /// generation changed.
    async fn refresh(&self, generation: u64, _flight: tokio::sync::MutexGuard<'_, ()>) {
        let now = Instant::now();
        {
            let mut state = self.state();
            if state.generation != generation || !state.may_refresh(now, self.timing) {
                return;
            }
            state.last_refresh = Some(now);
        }
        // Failures are already logged and kept in `last_error`.
        let _ = self.load().await;
    }

    /// Loads the document and replaces the keys; on failure keeps them.
    async fn load(&self) -> Result<usize, JwksError> {
        let loaded = match self.source.load().await {
            Ok(doc) => KeySet::parse(&doc, &self.algorithms),
            Err(e) => Err(e),
        };
        let mut state = self.state();
        state.generation += 1;
        match loaded {
            Ok(keys) => {
                let n = keys.len();
                tracing::info!(source = %self.source.describe(), keys = n, "JWKS loaded");
                state.keys = Arc::new(keys);
                state.loaded_at = Some(Instant::now());
                state.last_error = None;
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(
                    source = %self.source.describe(),
                    error = %CauseChain(&e),
                    cached_keys = state.keys.len(),
                    "JWKS load failed; keeping the cached keys"
                );
                state.last_error = Some(CauseChain(&e).to_string());
                Err(e)
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding this lock cannot leave the state half
        // written (every update is a few assignments), so keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
pub(crate) mod tests;
