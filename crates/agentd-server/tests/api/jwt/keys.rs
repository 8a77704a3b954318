//! Where the keys come from: the JWKS fetched (and refreshed within
//! limits), an identity provider down at start-up, a JWKS file, and tokens
//! minted by PyJWT.

use super::*;

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
