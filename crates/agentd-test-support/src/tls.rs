//! Certificates made in the test: a [`TestCa`] issuing leaf certificates
//! for `127.0.0.1` and `localhost`, written as PEM files where
//! `server.tls_cert` / `server.tls_key` can point, and HTTPS clients that
//! trust only that CA and report the certificate each response came over.
//! Client crypto uses the aws-lc-rs provider explicitly, so nothing here
//! relies on a process-wide default provider being installed.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

/// A leaf certificate and its key, as PEM, plus the certificate's DER (what
/// a client sees in the handshake).
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "agentd test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A new leaf for `127.0.0.1` and `localhost`, with its own key (so two
    /// leaves differ in every byte a client could compare).
    pub fn leaf(&self) -> Leaf {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A rustls client configuration trusting only this CA, offering `alpn`
    /// and the given protocol versions.
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                self.cert_der.clone(),
            ))
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// An HTTPS client trusting only this CA, offering TLS 1.3 and 1.2 and
    /// ALPN `h2` then `http/1.1` (so it speaks HTTP/2 to a server that
    /// offers it), reporting the TLS details of each response
    /// ([`served_certificate`]). Each client has its own connection pool.
    pub fn https_client(&self) -> reqwest::Client {
        self.https_client_builder(&[b"h2", b"http/1.1"])
            .build()
            .unwrap()
    }

    /// The same over HTTP/1.1 only (ALPN `http/1.1`, keep-alive).
    pub fn https_client_http1(&self) -> reqwest::Client {
        self.https_client_builder(&[b"http/1.1"])
            .http1_only()
            .build()
            .unwrap()
    }

    /// A builder for such a client offering `alpn`; reqwest leaves the ALPN
    /// of a preconfigured rustls client as it is.
    pub fn https_client_builder(&self, alpn: &[&[u8]]) -> reqwest::ClientBuilder {
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config(versions, alpn))
            .tls_info(true)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Leaf {
    /// Writes the certificate and key as `cert.pem` and `key.pem` in `dir`
    /// (replacing what is there); returns their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// The DER of the leaf certificate `res` came over (the client must have
/// been built with `tls_info(true)`).
pub fn served_certificate(res: &reqwest::Response) -> Vec<u8> {
    tls_info(res).peer_certificate().unwrap().to_vec()
}

/// The TLS details of the connection `res` came over.
pub fn tls_info(res: &reqwest::Response) -> &reqwest::tls::TlsInfo {
    res.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("the client reports TLS details (tls_info(true)) and the response came over TLS")
}
