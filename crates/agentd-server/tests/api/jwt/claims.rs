//! Which tokens act as whom: valid ones as their tenant, claims read where
//! the config says, refused ones with a stable reason.

use super::*;

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

/// The console signs in with a pasted token, checked as a bearer token
/// is; the session cookie then acts as that token's identity.
#[tokio::test]
async fn a_pasted_token_signs_in_to_the_console() {
    // Arrange
    let idp = Idp::start(&[&EC]).await;
    let app = spawn_jwt_app(&idp, "").await;
    let token = EC.sign(&claims("acme", json!({})));
    let expired = EC.sign(&claims("acme", json!({ "exp": now() - 600 })));
    let sign_in = async |credential: &str| {
        app.post("/console/api/session")
            .json(&json!({ "credential": credential }))
            .send()
            .await
            .unwrap()
    };

    let (_, run) = create_run(&app, &token).await;

    // Act
    let res = sign_in(&token).await;
    let (cookie, csrf) = crate::helpers::session_cookies(res.headers());
    let (status, me) = json(res).await;
    let listed: Value = app
        .get("/v1/runs")
        .header("cookie", &cookie)
        .header("x-tenant-id", "intruder")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (
            &me["tenant"],
            &me["principal"],
            &me["auth_mode"],
            &me["admin"]
        ),
        (&json!("acme"), &json!("alice"), &json!("jwt"), &json!(true))
    );
    assert!(!csrf.is_empty(), "{cookie}");
    // The cookie acts as the token's tenant, whatever the headers say.
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&run["id"]], "{listed}");
    assert_refused(sign_in(&expired).await, "expired", "an expired token").await;
}
