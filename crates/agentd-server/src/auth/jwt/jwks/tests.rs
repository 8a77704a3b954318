use super::*;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A JWKS served from memory: the current document (or an error), and
/// how many times it was loaded.
#[derive(Default)]
pub(crate) struct MemoryJwks {
    doc: Mutex<Option<serde_json::Value>>,
    pub(crate) loads: AtomicUsize,
}

impl MemoryJwks {
    pub(crate) fn new(doc: serde_json::Value) -> Arc<Self> {
        let m = Arc::new(Self::default());
        m.set(Some(doc));
        m
    }

    /// Replaces the document; `None` makes loads fail.
    pub(crate) fn set(&self, doc: Option<serde_json::Value>) {
        *self.doc.lock().unwrap() = doc;
    }

    pub(crate) fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    pub(crate) async fn load(&self) -> Result<Vec<u8>, JwksError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        // A fetch takes time, so concurrent requests overlap with it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match &*self.doc.lock().unwrap() {
            Some(doc) => Ok(serde_json::to_vec(doc).unwrap()),
            None => Err(JwksError::Status {
                url: "memory".into(),
                status: 503,
            }),
        }
    }
}

/// A public Ed25519 JWK (any 32 bytes parse as a key).
pub(crate) fn ed_jwk(kid: &str) -> serde_json::Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" })
}

fn ec_jwk(kid: &str, crv: &str) -> serde_json::Value {
    json!({
        "kty": "EC", "crv": crv, "kid": kid,
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
    })
}

const ALL: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

fn cache(m: &Arc<MemoryJwks>) -> KeyCache {
    KeyCache::new(Source::Memory(m.clone()), ALL.to_vec(), Timing::default())
}

fn kid(key: &VerifyingKey) -> &str {
    key.kid.as_deref().unwrap()
}

#[test]
fn only_asymmetric_signing_keys_for_an_allowed_algorithm_are_kept() {
    let doc = json!({ "keys": [
        ed_jwk("ed"),
        ec_jwk("p256", "P-256"),
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        { "kty": "OKP", "crv": "X25519", "kid": "x", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB" },
        { "kty": "RSA", "kid": "rsa", "alg": "PS256", "n": "sXch", "e": "AQAB" },
        { "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA" },
        { "kty": "weird", "kid": "w" },
        { "kid": "no-kty" }
    ]});

    let set = KeySet::parse(&serde_json::to_vec(&doc).unwrap(), ALL).unwrap();

    let kids: Vec<_> = set.keys.iter().map(|k| kid(k)).collect();
    // p384: ES384 is not among the allowed algorithms.
    assert_eq!(kids, ["ed", "p256", "rsa"]);
    let Lookup::Found(rsa) = set.find(Some("rsa")) else {
        panic!("rsa not found")
    };
    // The JWK's own alg narrows the family.
    assert_eq!(rsa.algorithms, [Algorithm::PS256]);
    let Lookup::Found(p256) = set.find(Some("p256")) else {
        panic!("p256 not found")
    };
    assert_eq!(p256.algorithms, [Algorithm::ES256]);
    assert!(matches!(set.find(Some("hmac")), Lookup::NotFound));
    assert!(matches!(set.find(None), Lookup::Ambiguous(3)));
}

#[test]
fn a_document_without_usable_keys_is_an_error() {
    let only_secret = json!({ "keys": [{ "kty": "oct", "kid": "h", "k": "c2VjcmV0" }] });
    let err = KeySet::parse(&serde_json::to_vec(&only_secret).unwrap(), ALL).unwrap_err();
    assert!(matches!(err, JwksError::NoUsableKeys(1)), "{err}");
    assert!(matches!(
        KeySet::parse(b"{\"keys\": 1}", ALL),
        Err(JwksError::Json(_))
    ));
    assert!(matches!(
        KeySet::parse(b"<html>", ALL),
        Err(JwksError::Json(_))
    ));
    // Without a kid, a single key is the key.
    let one = KeySet::parse(
        &serde_json::to_vec(&json!({ "keys": [ed_jwk("only")] })).unwrap(),
        ALL,
    )
    .unwrap();
    assert!(matches!(one.find(None), Lookup::Found(_)));
}

#[tokio::test(start_paused = true)]
async fn unknown_kids_refresh_at_most_once_per_interval() {
    // Arrange: the IdP publishes "a"; the start-up load does not count
    let m = MemoryJwks::new(json!({ "keys": [ed_jwk("a")] }));
    let keys = cache(&m);
    keys.load_at_start().await.unwrap();
    assert_eq!(m.loads(), 1);

    // Act + Assert: a rotation to "b" is seen on the first miss
    m.set(Some(json!({ "keys": [ed_jwk("a"), ed_jwk("b")] })));
    assert_eq!(kid(&keys.key(Some("b")).await.unwrap()), "b");
    assert_eq!(m.loads(), 2);

    // A second unknown kid within 30 s is refused without a fetch
    m.set(Some(
        json!({ "keys": [ed_jwk("a"), ed_jwk("b"), ed_jwk("c")] }),
    ));
    for _ in 0..5 {
        let err = keys.key(Some("c")).await.err().unwrap();
        assert_eq!(err.reason, Reason::InvalidCredential);
    }
    assert_eq!(m.loads(), 2);
    // Known keys keep working meanwhile
    assert_eq!(kid(&keys.key(Some("a")).await.unwrap()), "a");

    // 30 s later the next miss fetches again
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(kid(&keys.key(Some("c")).await.unwrap()), "c");
    assert_eq!(m.loads(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_fetch() {
    let m = MemoryJwks::new(json!({ "keys": [ed_jwk("a")] }));
    let keys = Arc::new(cache(&m));
    keys.load_at_start().await.unwrap();
    m.set(Some(json!({ "keys": [ed_jwk("a"), ed_jwk("new")] })));

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let keys = keys.clone();
            tokio::spawn(async move { keys.key(Some("new")).await.is_ok() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }

    assert_eq!(m.loads(), 2);
}

#[tokio::test(start_paused = true)]
async fn keys_are_refreshed_by_age_so_removed_keys_stop_working() {
    let m = MemoryJwks::new(json!({ "keys": [ed_jwk("old"), ed_jwk("new")] }));
    let keys = cache(&m);
    keys.load_at_start().await.unwrap();
    m.set(Some(json!({ "keys": [ed_jwk("new")] })));

    // Within max_age the cached "old" still verifies, with no fetch
    tokio::time::advance(Duration::from_secs(599)).await;
    assert!(keys.key(Some("old")).await.is_ok());
    assert_eq!(m.loads(), 1);

    // Past max_age the next request refreshes first: "old" is gone
    tokio::time::advance(Duration::from_secs(1)).await;
    let err = keys.key(Some("old")).await.err().unwrap();
    assert_eq!(err.reason, Reason::InvalidCredential);
    assert_eq!(m.loads(), 2);
    assert!(keys.key(Some("new")).await.is_ok());
    assert_eq!(m.loads(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_idp_is_keys_unavailable_and_retried_after_the_interval() {
    // Arrange: the IdP is down at start
    let m = Arc::new(MemoryJwks::default());
    let keys = cache(&m);
    assert!(keys.load_at_start().await.is_err());

    // Act + Assert: the first request tries again, and fails
    let err = keys.key(Some("a")).await.err().unwrap();
    assert_eq!(err.reason, Reason::KeysUnavailable);
    assert!(err.detail.contains("503"), "{}", err.detail);
    assert_eq!(m.loads(), 2);

    // The IdP is back, but the next try waits for the interval
    m.set(Some(json!({ "keys": [ed_jwk("a")] })));
    let err = keys.key(Some("a")).await.err().unwrap();
    assert_eq!(err.reason, Reason::KeysUnavailable);
    assert_eq!(m.loads(), 2);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(keys.key(Some("a")).await.is_ok());
    assert_eq!(m.loads(), 3);

    // A later failure keeps the cached keys working, but an unknown
    // kid is then "keys unavailable", not "invalid"
    m.set(None);
    tokio::time::advance(Duration::from_secs(600)).await;
    assert!(keys.key(Some("a")).await.is_ok());
    assert_eq!(m.loads(), 4);
    tokio::time::advance(Duration::from_secs(30)).await;
    let err = keys.key(Some("rotated")).await.err().unwrap();
    assert_eq!(err.reason, Reason::KeysUnavailable);
    assert_eq!(m.loads(), 5);
}
