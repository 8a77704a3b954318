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

#[tokio::test]
async fn valid_tokens_act_as_their_tenant_whatever_the_identity_headers_say() {
    // Arrange: one key of each type; tenants acme (EC), globex (EdDSA),
    // initech (RSA)
    let idp = Idp::start(&[&EC, &ED, &RSA]).await;
    let app = spawn_jwt_app(&idp, "").await;
    let cases = [(&*EC, "acme"), (&*ED, "globex"), (&*RSA, "initech")];

    for (key, tenant) in cases {
        let token = key.sign(&claims(tenant, json!({})));

        // Act: create a run while the headers claim tenant "intruder"
        let (status, run) = create_run(&app, &token).await;

        // Assert: the run belongs to the token's tenant, and is listed there
        assert_eq!(status, StatusCode::ACCEPTED, "{:?}: {run}", key.alg);
        assert_eq!(run["tenant"], tenant, "{:?}", key.alg);
        let mine = list_runs(&app, &token, "intruder").await;
        let ids: Vec<_> = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["id"])
            .collect();
        assert_eq!(ids, [&run["id"]], "{:?}", key.alg);
    }
    // Another tenant's token neither sees nor reaches acme's run
    let acme = EC.sign(&claims("acme", json!({})));
    let acme_run = list_runs(&app, &acme, "acme").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex = ED.sign(&claims("globex", json!({})));
    let res = app
        .get(&format!("/v1/runs/{acme_run}"))
        .bearer_auth(&globex)
        .header("x-tenant-id", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // No run was created in the tenant the headers named
    let intruder = EC.sign(&claims("intruder", json!({})));
    assert_eq!(
        list_runs(&app, &intruder, "intruder").await["items"],
        json!([])
    );

    // Roles come from the token, never from X-Roles: requeueing needs
    // admin (403 without; with it, this unknown run is 404)
    let viewer = EC.sign(&claims("acme", json!({ "roles": ["viewer"] })));
    let res = app
        .post(REQUEUE)
        .bearer_auth(&viewer)
        .header("x-roles", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.post(REQUEUE).bearer_auth(&acme).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // The keys were fetched once, at start-up
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn claims_are_read_where_the_config_says_keycloak_style() {
    // Arrange: Keycloak puts realm roles in realm_access.roles; the tenant
    // is a custom claim and the principal the username
    let idp = Idp::start(&[&EC]).await;
    let app = spawn_jwt_app(
        &idp,
        "tenant_claim = \"org_id\"\nprincipal_claim = \"preferred_username\"\n\
         roles_claim = \"realm_access.roles\"",
    )
    .await;
    let token = |roles: Value| {
        EC.sign(&claims(
            "unused",
            json!({ "tenant": null, "roles": ["admin"], "org_id": "acme",
                    "preferred_username": "bob", "realm_access": { "roles": roles } }),
        ))
    };

    // Act + Assert: admin through the nested claim (the top-level `roles`
    // claim is not the configured one)
    let res = app
        .post(REQUEUE)
        .bearer_auth(token(json!(["admin", "offline_access"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .post(REQUEUE)
        .bearer_auth(token(json!(["offline_access"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, run) = create_run(&app, &token(json!([]))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["tenant"], "acme");
    // The default `tenant` claim is not read under this config
    let res = app
        .get("/v1/runs")
        .bearer_auth(EC.sign(&claims("acme", json!({ "preferred_username": "bob" }))))
        .send()
        .await
        .unwrap();
    assert_refused(res, "bad_claims", "no org_id").await;
}

#[tokio::test]
async fn refused_tokens_are_401_with_a_stable_reason_and_a_bearer_challenge() {
    // Arrange
    let idp = Idp::start(&[&EC, &ED, &RSA]).await;
    let app = spawn_jwt_app(&idp, "").await;
    let good = claims("acme", json!({}));
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let tampered = {
        let token = EC.sign(&good);
        let (rest, sig) = token.rsplit_once('.').unwrap();
        let mut sig: Vec<char> = sig.chars().collect();
        sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
        format!("{rest}.{}", sig.into_iter().collect::<String>())
    };
    let forged_payload = {
        let token = RSA.sign(&good);
        let parts: Vec<&str> = token.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&claims("victim", json!({}))),
            parts[2]
        )
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": "ec-1" })),
        b64(&good)
    );
    // Algorithm confusion: HMAC keyed with the RSA public key a client can
    // download, naming the RSA key's kid
    let hs256_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let secret = EncodingKey::from_secret(RSA.public_pem.as_bytes());
        jsonwebtoken::encode(&header, &good, &secret).unwrap()
    };
    let stranger = Key::generate("ec-1", Algorithm::ES256); // right kid, wrong key
    let unknown_kid = Key::generate("ec-unknown", Algorithm::ES256);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization", None, "missing_credential"),
        (
            "not a JWT",
            Some("Bearer not-a-jwt".into()),
            "malformed_credential",
        ),
        (
            "Basic scheme",
            Some("Basic YWxpY2U6cHc=".into()),
            "malformed_credential",
        ),
        (
            "expired",
            Some(EC.sign(&claims(
                "acme",
                json!({ "exp": now() - 120, "nbf": now() - 600 }),
            ))),
            "expired",
        ),
        (
            "not yet valid",
            Some(ED.sign(&claims(
                "acme",
                json!({ "nbf": now() + 600, "exp": now() + 900 }),
            ))),
            "not_yet_valid",
        ),
        (
            "wrong issuer",
            Some(RSA.sign(&claims("acme", json!({ "iss": "https://evil.example/" })))),
            "wrong_issuer_or_audience",
        ),
        (
            "wrong audience",
            Some(EC.sign(&claims("acme", json!({ "aud": "someone-else" })))),
            "wrong_issuer_or_audience",
        ),
        (
            "no exp",
            Some(EC.sign(&claims("acme", json!({ "exp": null })))),
            "bad_claims",
        ),
        (
            "missing tenant",
            Some(EC.sign(&claims("acme", json!({ "tenant": null })))),
            "bad_claims",
        ),
        (
            "tenant not an id",
            Some(EC.sign(&claims("a/b", json!({})))),
            "bad_claims",
        ),
        ("tampered signature", Some(tampered), "invalid_credential"),
        ("forged payload", Some(forged_payload), "invalid_credential"),
        ("alg none", Some(alg_none), "invalid_credential"),
        (
            "HS256 with the public key",
            Some(hs256_public_key),
            "invalid_credential",
        ),
        (
            "known kid, other key",
            Some(stranger.sign(&good)),
            "invalid_credential",
        ),
        (
            "unknown kid",
            Some(unknown_kid.sign(&good)),
            "invalid_credential",
        ),
    ];

    for (case, token, reason) in cases {
        // Act: every protected route refuses the same way
        let mut req = app
            .get("/v1/runs")
            .header("x-tenant-id", "acme")
            .header("x-roles", "admin");
        if let Some(token) = &token {
            let value = if token.starts_with("Bearer ") || token.starts_with("Basic ") {
                token.clone()
            } else {
                format!("Bearer {token}")
            };
            req = req.header("authorization", value);
        }

        // Assert
        assert_refused(req.send().await.unwrap(), reason, case).await;
    }
    // The valid token still works after all that
    let res = app
        .get("/v1/runs")
        .bearer_auth(EC.sign(&good))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_new_kid_is_fetched_once_and_refreshes_are_limited_to_one_per_30s() {
    // Arrange: the IdP starts with one key; agentd loads it at start-up
    let idp = Idp::start(&[&EC]).await;
    let app = spawn_jwt_app(&idp, "").await;
    assert_eq!(idp.fetches(), 1);

    // Act: the IdP rotates to the Ed25519 key; 8 requests with the new kid
    // arrive at once
    idp.publish(&[&EC, &ED]);
    let rotated = ED.sign(&claims("acme", json!({})));
    let requests = (0..8).map(|_| app.get("/v1/runs").bearer_auth(&rotated).send());
    let answers = futures_join_all(requests).await;

    // Assert: all accepted, after one shared fetch
    for res in answers {
        assert_eq!(res.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(idp.fetches(), 2);

    // Act: the IdP rotates again within 30 s
    idp.publish(&[&EC, &ED, &RSA]);
    let too_soon = RSA.sign(&claims("acme", json!({})));
    for _ in 0..5 {
        let res = app
            .get("/v1/runs")
            .bearer_auth(&too_soon)
            .send()
            .await
            .unwrap();
        // Assert: refused without asking the IdP again
        assert_refused(res, "invalid_credential", "kid within 30 s").await;
    }
    assert_eq!(idp.fetches(), 2);
    // Known keys are unaffected
    let res = app
        .get("/v1/runs")
        .bearer_auth(EC.sign(&claims("acme", json!({}))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(idp.fetches(), 2);
}

/// Awaits all futures concurrently (no `futures` dependency needed).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_idp_down_at_start_up_does_not_stop_agentd() {
    // Arrange: the IdP is down while agentd starts
    let idp = Idp::start(&[&EC]).await;
    idp.down.store(true, Ordering::SeqCst);
    let app = spawn_jwt_app(&idp, "").await;
    assert_eq!(idp.fetches(), 1);
    let token = EC.sign(&claims("acme", json!({})));

    // Act + Assert: it answers health checks, and the first request
    // fetches the keys once the IdP is back
    let res = app.get("/health").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    idp.down.store(false, Ordering::SeqCst);
    let res = app
        .get("/v1/runs")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(idp.fetches(), 2);

    // Arrange: another agentd whose IdP stays down
    let idp = Idp::start(&[&EC]).await;
    idp.down.store(true, Ordering::SeqCst);
    let app = spawn_jwt_app(&idp, "").await;

    // Act + Assert: keys_unavailable, and the IdP is asked once per 30 s
    for _ in 0..3 {
        let res = app
            .get("/v1/runs")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_refused(res, "keys_unavailable", "IdP down").await;
    }
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn a_jwks_file_is_read_at_start_and_a_bad_one_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let build = |path: &std::path::Path| {
        let toml = jwt_config(&format!("jwks_file = {:?}", path.display().to_string()), "");
        let mut config = Config::from_toml_str(&toml).unwrap();
        config.store.url = format!("sqlite://{}/t.db", dir.path().display());
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            Application::build(&config, Some(listener)).await
        }
    };

    // A missing file, a file that is not a JWKS, a JWKS with only a secret
    let missing = dir.path().join("missing.json");
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "<html>").unwrap();
    let secret_only = dir.path().join("secret.json");
    std::fs::write(
        &secret_only,
        r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#,
    )
    .unwrap();
    for (path, why) in [
        (&missing, "cannot read"),
        (&not_json, "not a JWKS"),
        (&secret_only, "no usable signing key"),
    ] {
        let Err(err) = build(path).await else {
            panic!("{} was accepted", path.display())
        };
        let message = err.to_string();
        assert!(message.contains("key `auth.jwt.jwks_file`"), "{message}");
        assert!(message.contains(why), "{message}");
        assert!(
            matches!(err, agentd_server::AppError::Server(_)),
            "a config error (exit 2): {err:?}"
        );
    }

    // A good file: tokens of its keys are accepted
    let good = dir.path().join("jwks.json");
    std::fs::write(&good, json!({ "keys": [EC.jwk, ED.jwk] }).to_string()).unwrap();
    let app = build(&good).await.unwrap();
    let router = app.router().unwrap();
    let req = axum::http::Request::get("/v1/runs")
        .header(
            "authorization",
            format!("Bearer {}", ED.sign(&claims("acme", json!({})))),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The PyJWT minting script's output, or `None` when python3 or PyJWT is
/// missing (a failure under CI, where `.ci/run` installs them).
fn pyjwt_tokens(tenant: &str) -> Option<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/pyjwt_mint.py");
    let available = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but python3 cannot import PyJWT (pip install \"pyjwt[crypto]==2.10.1\")"
        );
        eprintln!(
            "SKIPPED: python3 with PyJWT is not available (pip install \"pyjwt[crypto]==2.10.1\")"
        );
        return None;
    }
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([ISSUER, AUDIENCE, tenant])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyjwt_mint.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test]
async fn tokens_minted_by_pyjwt_are_verified_like_any_identity_providers() {
    let Some(minted) = pyjwt_tokens("pyco") else {
        return;
    };
    // Arrange: serve the JWKS PyJWT's keys were exported to
    let idp = Idp::start(&[]).await;
    *idp.jwks.lock().unwrap() = minted["jwks"].clone();
    let app = spawn_jwt_app(&idp, "").await;
    let token = |name: &str| minted["tokens"][name].as_str().unwrap().to_owned();

    // Act + Assert: RS256, ES256 and EdDSA tokens are accepted as tenant
    // pyco, whatever X-Tenant-Id says
    for name in ["valid_rs256", "valid_es256", "valid_eddsa"] {
        let (status, run) = create_run(&app, &token(name)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {run}");
        assert_eq!(run["tenant"], "pyco", "{name}");
    }
    assert_eq!(
        list_runs(&app, &token("valid_es256"), "intruder").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for (name, reason) in [
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("wrong_audience", "wrong_issuer_or_audience"),
        ("wrong_issuer", "wrong_issuer_or_audience"),
        ("no_tenant", "bad_claims"),
        ("alg_none", "invalid_credential"),
        ("hs256_public_key", "invalid_credential"),
    ] {
        let res = app
            .get("/v1/runs")
            .bearer_auth(token(name))
            .send()
            .await
            .unwrap();
        assert_refused(res, reason, name).await;
    }
    assert_eq!(
        idp.fetches(),
        1,
        "every kid was in the JWKS loaded at start"
    );
}
