//! HTTPS: served when `server.tls_cert` and `server.tls_key` are set (TLS
//! 1.2/1.3, ALPN h2 and http/1.1); a reload serves the new certificate to
//! new connections and keeps open ones; a failed reload keeps the old one.
//! Certificates come from a CA made in the test; clients trust only it.

use crate::helpers::CONFIG;
use agentd_config::Config;
use agentd_server::{AppError, Application, TlsReloader};
use agentd_test_support::tls::{Leaf, TestCa, served_certificate, tls_info};
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// agentd over HTTPS, started through `Application` like every process.
struct TlsApp {
    addr: SocketAddr,
    base: String,
    tls: TlsReloader,
    shutdown: CancellationToken,
    running: JoinHandle<Result<(), AppError>>,
    dir: tempfile::TempDir,
}

impl Drop for TlsApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn tls_config(dir: &Path, leaf: &Leaf) -> Config {
    let (cert, key) = leaf.write(dir);
    let mut config = Config::from_toml_str(CONFIG).unwrap();
    config.store.url = agentd_test_support::sqlite_url(dir);
    config.server.tls_cert = Some(cert);
    config.server.tls_key = Some(key);
    config
}

async fn spawn_tls_app(leaf: &Leaf) -> TlsApp {
    let dir = tempfile::tempdir().unwrap();
    let config = tls_config(dir.path(), leaf);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(&config, Some(listener)).await.unwrap();
    let addr = app.local_addr().unwrap();
    let tls = app.tls_reloader().expect("HTTPS is configured");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TlsApp {
        addr,
        base: format!("https://{addr}"),
        tls,
        shutdown,
        running,
        dir,
    }
}

impl TlsApp {
    /// GET `/health` with `client`: 200, and the certificate it came over.
    async fn health(&self, client: &reqwest::Client) -> (Version, Vec<u8>) {
        let res = client
            .get(format!("{}/health", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        (res.version(), served_certificate(&res))
    }
}

#[tokio::test]
async fn https_serves_the_api_over_tls_1_2_or_1_3_with_h2_and_refuses_plain_http() {
    // Arrange
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let app = spawn_tls_app(&leaf).await;
    let client = ca.https_client();

    // Act: health, then a run and the caller's runs, as tenant acme
    let health = client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    let created = client
        .post(format!("{}/v1/agents/demo/runs", app.base))
        .header("x-tenant-id", "acme")
        .json(&json!({ "input": "over tls", "wait": true }))
        .send()
        .await
        .unwrap();
    let listed = client
        .get(format!("{}/v1/runs", app.base))
        .header("x-tenant-id", "acme")
        .send()
        .await
        .unwrap();

    // Assert: HTTP/2 by ALPN, TLS 1.3 preferred, the configured certificate
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.version(), Version::HTTP_2);
    assert_eq!(served_certificate(&health), leaf.cert_der);
    assert_eq!(
        tls_info(&health).version(),
        Some(reqwest::tls::Version::TLS_1_3)
    );
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    assert_eq!(created.status(), StatusCode::OK);
    let run: Value = created.json().await.unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["tenant"], "acme");
    assert_eq!(listed.status(), StatusCode::OK);
    let runs: Value = listed.json().await.unwrap();
    assert_eq!(runs["items"][0]["id"], run["id"], "{runs}");

    // Assert: HTTP/1.1 is offered by ALPN too
    let (version, _) = app.health(&ca.https_client_http1()).await;
    assert_eq!(version, Version::HTTP_11);

    // Assert: a client that speaks only TLS 1.2 gets TLS 1.2, so the
    // versions are exactly 1.2 and 1.3 (rustls has no older one to offer)
    let tls12 = reqwest::Client::builder()
        .tls_backend_preconfigured(ca.client_config(&[&rustls::version::TLS12], &[b"http/1.1"]))
        .tls_info(true)
        .build()
        .unwrap();
    let res = tls12
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        tls_info(&res).version(),
        Some(reqwest::tls::Version::TLS_1_2)
    );

    // Assert: plain HTTP on the HTTPS port gets no answer
    let plain = reqwest::Client::new()
        .get(format!("http://{}/health", app.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_open_ones() {
    // Arrange: an HTTP/2 and an HTTP/1.1 keep-alive connection, and a
    // request in flight (a run waited on: two 300 ms model calls)
    let ca = TestCa::new();
    let (old, new) = (ca.leaf(), ca.leaf());
    let app = spawn_tls_app(&old).await;
    let (h2, h1) = (ca.https_client(), ca.https_client_http1());
    assert_eq!(
        app.health(&h2).await,
        (Version::HTTP_2, old.cert_der.clone())
    );
    assert_eq!(
        app.health(&h1).await,
        (Version::HTTP_11, old.cert_der.clone())
    );
    let in_flight = tokio::spawn(
        h2.post(format!("{}/v1/agents/slow/runs", app.base))
            .json(&json!({ "input": "across the reload", "wait": true }))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Act
    new.write(app.dir.path());
    app.tls.reload().unwrap();

    // Assert: the open connections still work, with the old certificate
    // (a new connection would have shown the new one)
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(served_certificate(&res), old.cert_der);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(
        app.health(&h2).await,
        (Version::HTTP_2, old.cert_der.clone())
    );
    assert_eq!(
        app.health(&h1).await,
        (Version::HTTP_11, old.cert_der.clone())
    );

    // Assert: new connections get the new certificate, over either protocol
    assert_eq!(app.health(&ca.https_client()).await.1, new.cert_der);
    assert_eq!(app.health(&ca.https_client_http1()).await.1, new.cert_der);
}

#[tokio::test]
async fn a_failed_reload_keeps_serving_the_old_certificate() {
    // Arrange
    let ca = TestCa::new();
    let (old, other) = (ca.leaf(), ca.leaf());
    let app = spawn_tls_app(&old).await;

    // Act: a new certificate whose key was not swapped with it
    std::fs::write(app.dir.path().join("cert.pem"), &other.cert_pem).unwrap();
    let err = app.tls.reload().unwrap_err();

    // Assert: the key is blamed, and new connections still get the old pair
    assert_eq!(err.key(), "server.tls_key");
    assert_eq!(err.path(), app.dir.path().join("key.pem"));
    assert_eq!(app.health(&ca.https_client()).await.1, old.cert_der);

    // Act: a cert file that is no certificate at all
    std::fs::write(app.dir.path().join("cert.pem"), "garbage").unwrap();
    let err = app.tls.reload().unwrap_err();

    // Assert
    assert_eq!(err.key(), "server.tls_cert");
    assert_eq!(app.health(&ca.https_client()).await.1, old.cert_der);
}

#[tokio::test]
async fn an_unusable_certificate_fails_the_build_naming_the_key() {
    // Arrange: a key file that does not exist
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = tls_config(dir.path(), &ca.leaf());
    let missing = dir.path().join("missing-key.pem");
    config.server.tls_key = Some(missing.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();

    // Act
    let built = Application::build(&config, Some(listener)).await;

    // Assert
    let Err(AppError::Tls(e)) = built else {
        panic!("expected a TLS error");
    };
    assert_eq!(e.key(), "server.tls_key");
    assert_eq!(e.path(), missing);
    let text = AppError::Tls(e).to_string();
    assert!(text.contains("server.tls_key"), "{text}");
    assert!(text.contains("missing-key.pem"), "{text}");
}

#[tokio::test]
async fn shutdown_stops_accepting_https_connections() {
    // Arrange
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let mut app = spawn_tls_app(&leaf).await;
    app.health(&ca.https_client()).await;

    // Act
    app.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut app.running).await;

    // Assert: the process stopped cleanly and the port no longer answers
    stopped.unwrap().unwrap().unwrap();
    let res = ca
        .https_client()
        .get(format!("{}/health", app.base))
        .send()
        .await;
    assert!(res.is_err(), "answered after shutdown: {res:?}");
}

#[tokio::test]
async fn a_tls_1_1_client_hello_is_refused_with_a_protocol_version_alert() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Arrange: a TLS 1.1 ClientHello by hand (rustls clients cannot send
    // one): version 3.2, no supported_versions extension, two CBC suites,
    // and the signature_algorithms extension rustls needs to get as far as
    // choosing the version
    let ca = TestCa::new();
    let app = spawn_tls_app(&ca.leaf()).await;
    let mut body = vec![0x03, 0x02];
    body.extend([0u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // cipher suites
    body.extend([0x01, 0x00]); // compression: null
    body.extend([
        0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01,
    ]);
    let mut hello = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hello.extend(body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (hello.len() >> 8) as u8,
        hello.len() as u8,
    ];
    record.extend(hello);

    // Act
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut answer = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();

    // Assert: a fatal protocol_version alert (type 21, level 2, code 70),
    // not a ServerHello (type 22)
    assert_eq!(answer[0], 0x15, "{answer:?}");
    assert_eq!(&answer[5..], &[2, 70], "{answer:?}");
}
