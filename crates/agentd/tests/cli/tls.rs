//! `agentd serve` over HTTPS: it answers with the configured certificate;
//! SIGHUP after the files are swapped makes new connections see the new
//! one while open connections keep working; a bad swap keeps the old one
//! and logs the key at fault; an unusable file at start-up exits 2 naming
//! the key.

use crate::support::{Serve, Workspace, free_port, text};
use agentd_test_support::tls::{TestCa, served_certificate};
use std::time::{Duration, Instant};

/// HTTPS on `port` with `cert.pem` / `key.pem`, relative to the workspace
/// (the process's working directory).
fn https_config(port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"
    )
}

/// The certificate a new connection is served (`None` while nothing answers).
async fn served_to_a_new_client(ca: &TestCa, base: &str) -> Option<Vec<u8>> {
    let res = ca
        .https_client()
        .get(format!("{base}/health"))
        .send()
        .await
        .ok()?;
    (res.status() == reqwest::StatusCode::OK).then(|| served_certificate(&res))
}

/// Polls until a new connection is served `want`; fails after a bound.
async fn until_served(ca: &TestCa, base: &str, want: &[u8], serve: &Serve) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if served_to_a_new_client(ca, base).await.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never served the expected certificate; log:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_https_reloads_the_certificate_on_sighup() {
    // Arrange
    let ca = TestCa::new();
    let (old, new) = (ca.leaf(), ca.leaf());
    let ws = Workspace::new();
    old.write(ws.path());
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let config = ws.write_config(&https_config(port));
    let serve = Serve::start(&ws, &config);
    until_served(&ca, &base, &old.cert_der, &serve).await;
    let open = ca.https_client();
    let res = open.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(served_certificate(&res), old.cert_der);

    // Act: swap the files, SIGHUP
    new.write(ws.path());
    serve.signal("-HUP");

    // Assert: new connections get the new certificate; the open one still
    // works, over the old one
    until_served(&ca, &base, &new.cert_der, &serve).await;
    let res = open.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(served_certificate(&res), old.cert_der);
    assert!(
        serve.log().contains("TLS certificate reloaded"),
        "{}",
        serve.log()
    );

    // Act: a bad swap (not a certificate), SIGHUP
    std::fs::write(ws.path().join("cert.pem"), "not a certificate").unwrap();
    serve.signal("-HUP");

    // Assert: the failure is logged naming the key and the file, and the
    // process keeps serving the certificate it had
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.log().contains("TLS reload failed") {
        assert!(
            Instant::now() < deadline,
            "no failure logged:\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = serve.log();
    let failure = log
        .lines()
        .find(|l| l.contains("TLS reload failed"))
        .unwrap();
    assert!(failure.contains("server.tls_cert"), "{failure}");
    assert!(failure.contains("cert.pem"), "{failure}");
    assert_eq!(
        served_to_a_new_client(&ca, &base).await.as_deref(),
        Some(&new.cert_der[..])
    );

    // Act / Assert: SIGTERM still ends it cleanly
    serve.signal("-TERM");
    let mut serve = serve;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", serve.log());
}

#[test]
fn an_unusable_certificate_or_key_exits_2_naming_the_key_and_file() {
    let ca = TestCa::new();
    let (leaf, other) = (ca.leaf(), ca.leaf());
    // (what is wrong, cert.pem (None: absent), key.pem, the key and file named)
    let cases = [
        (
            "no cert file",
            None,
            &leaf.key_pem,
            "server.tls_cert",
            "cert.pem",
        ),
        (
            "key file holds a certificate",
            Some(&leaf.cert_pem),
            &leaf.cert_pem,
            "server.tls_key",
            "key.pem",
        ),
        (
            "key of another certificate",
            Some(&leaf.cert_pem),
            &other.key_pem,
            "server.tls_key",
            "key.pem",
        ),
    ];
    for (case, cert_pem, key_pem, key, file) in cases {
        // Arrange
        let ws = Workspace::new();
        if let Some(cert_pem) = cert_pem {
            std::fs::write(ws.path().join("cert.pem"), cert_pem).unwrap();
        }
        std::fs::write(ws.path().join("key.pem"), key_pem).unwrap();
        let config = ws.write_config(&https_config(free_port()));
        let config_arg = config.to_str().unwrap();

        // Act
        let out = ws.run(&["serve", "--config", config_arg]);

        // Assert: exit 2, formatted like every config error
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        let expected = format!("error: {config_arg}: key `{key}`: {file}");
        assert!(
            stderr.contains(&expected),
            "{case}: want {expected:?} in {stderr}"
        );
    }
}
