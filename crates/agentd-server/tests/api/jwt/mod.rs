//! `auth.mode = "jwt"` against an identity provider played by this test
//! process: a JWKS served by axum on 127.0.0.1:0 with keys generated here
//! (P-256, Ed25519, RSA-2048), tokens minted with jsonwebtoken, and once
//! with Python's PyJWT (the reference implementation) too.

use crate::helpers::{CONFIG, json};
use agentd_config::Config;
use agentd_server::Application;
use agentd_test_support::app::TestApp;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

const ISSUER: &str = "https://idp.example/realms/agentd";
const AUDIENCE: &str = "agentd-api";
/// A route only role `admin` may use (an unknown run: 404 for an admin).
const REQUEUE: &str = "/v1/dead-letters/0193a1b2-0000-7000-8000-000000000000/requeue";

/// A signing key of the test IdP.
struct Key {
    kid: String,
    alg: Algorithm,
    signing: EncodingKey,
    /// The public JWK, as the IdP publishes it.
    jwk: Value,
    /// The public key as PEM text, what an attacker can download.
    public_pem: String,
}

impl Key {
    fn generate(kid: &str, alg: Algorithm) -> Key {
        let (rcgen_alg, family) = match alg {
            Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "ec"),
            Algorithm::EdDSA => (&rcgen::PKCS_ED25519, "ed"),
            Algorithm::RS256 => (&rcgen::PKCS_RSA_SHA256, "rsa"),
            other => panic!("no test key for {other:?}"),
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let pem = pair.serialize_pem();
        let (signing, mut jwk) = match family {
            "ec" => {
                let k = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
                let jwk = serde_json::to_value(Jwk::from_encoding_key(&k, alg).unwrap()).unwrap();
                (k, jwk)
            }
            "rsa" => {
                let k = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                let jwk = serde_json::to_value(Jwk::from_encoding_key(&k, alg).unwrap()).unwrap();
                (k, jwk)
            }
            _ => {
                let k = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
                let x =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key_raw());
                (k, json!({ "kty": "OKP", "crv": "Ed25519", "x": x }))
            }
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Key {
            kid: kid.to_owned(),
            alg,
            signing,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    /// A token signed by this key with `claims`.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).unwrap()
    }
}

/// The keys every test shares (RSA generation takes a moment).
static EC: LazyLock<Key> = LazyLock::new(|| Key::generate("ec-1", Algorithm::ES256));
static ED: LazyLock<Key> = LazyLock::new(|| Key::generate("ed-1", Algorithm::EdDSA));
static RSA: LazyLock<Key> = LazyLock::new(|| Key::generate("rsa-1", Algorithm::RS256));

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Claims of a valid token for `tenant`, with `patch` applied (a `null`
/// removes the claim).
fn claims(tenant: &str, patch: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": "alice",
        "tenant": tenant, "roles": ["admin"], "iat": now(), "nbf": now() - 5, "exp": now() + 300,
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// The identity provider: serves a JWKS that tests change, counting the
/// fetches, and answers 503 while `down`.
struct Idp {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Idp {
    async fn start(keys: &[&Key]) -> Idp {
        let jwks = Arc::new(Mutex::new(Value::Null));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (doc, count, is_down) = (jwks.clone(), fetches.clone(), down.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, count, is_down) = (doc.clone(), count.clone(), is_down.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    if is_down.load(Ordering::SeqCst) {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(axum::Json(doc.lock().unwrap().clone()))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let idp = Idp {
            url,
            jwks,
            fetches,
            down,
        };
        idp.publish(keys);
        idp
    }

    fn publish(&self, keys: &[&Key]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The suite's config in `auth.mode = "jwt"` against `jwks` (a `jwks_url
/// = ...` or `jwks_file = ...` line), plus `extra` lines of `[auth.jwt]`.
fn jwt_config(jwks: &str, extra: &str) -> String {
    format!(
        "{CONFIG}\n[auth]\nmode = \"jwt\"\n[auth.jwt]\nissuer = \"{ISSUER}\"\n\
         audience = [\"{AUDIENCE}\", \"other-api\"]\n{jwks}\n{extra}\n"
    )
}

async fn spawn_jwt_app(idp: &Idp, extra: &str) -> TestApp {
    let toml = jwt_config(&format!("jwks_url = \"{}\"", idp.url), extra);
    agentd_test_support::app::spawn_app(&toml).await
}

/// Starts a run of `demo` with `token` and identity headers that try to
/// move the caller into tenant "intruder".
async fn create_run(app: &TestApp, token: &str) -> (StatusCode, Value) {
    json(
        app.post("/v1/agents/demo/runs")
            .bearer_auth(token)
            .header("x-tenant-id", "intruder")
            .header("x-principal-id", "root")
            .header("x-roles", "admin,operator")
            .json(&json!({ "input": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn list_runs(app: &TestApp, token: &str, tenant_header: &str) -> Value {
    let (status, body) = json(
        app.get("/v1/runs")
            .bearer_auth(token)
            .header("x-tenant-id", tenant_header)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Asserts a 401 with the RFC 6750 challenge and exactly the error body
/// with `reason`: no detail of why the token failed.
async fn assert_refused(res: reqwest::Response, reason: &str, case: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{case}");
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{case}: {challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": {
            "code": "unauthorized",
            "message": "missing or invalid credential",
            "reason": reason,
        }}),
        "{case}"
    );
}

mod claims;
mod keys;
