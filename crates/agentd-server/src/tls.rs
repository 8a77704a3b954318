//! HTTPS: the certificate and key of `server.tls_cert` / `server.tls_key`
//! loaded into a rustls [`ServerConfig`] (aws-lc-rs, TLS 1.2 and 1.3, ALPN
//! `h2` and `http/1.1`), a [`TlsReloader`] that swaps it for one read from
//! disk again (SIGHUP), and [`TlsListener`], which hands `axum::serve`
//! connections whose handshake is done, so HTTPS shares the plain path's
//! serve loop and therefore its graceful shutdown.
//!
//! A reload replaces the whole `ServerConfig`, not only the certificate:
//! connections already open keep theirs, and since the session cache goes
//! with the old config, no later handshake can resume into the old
//! certificate either.

use axum::serve::Listener;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete its handshake; a connection that
/// never finishes one must not hold a socket forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which of the two files a [`TlsError`] is about, named as its config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `server.tls_cert`: the PEM certificate chain, leaf first.
    Cert,
    /// `server.tls_key`: the PEM private key of the leaf.
    Key,
}

impl TlsFile {
    /// The config key the file is set by.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Cert => "server.tls_cert",
            TlsFile::Key => "server.tls_key",
        }
    }
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What is wrong with a certificate or key file.
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    #[error("cannot read the file: {0}")]
    Read(#[source] io::Error),
    #[error("is not valid PEM: {0}")]
    NotPem(#[source] pem::Error),
    #[error("holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks, leaf first)")]
    NoCertificate,
    #[error("holds no private key (expected a PEM PKCS#8, PKCS#1 or SEC1 private key)")]
    NoKey,
    #[error("is not a usable X.509 certificate: {0}")]
    BadCertificate(#[source] rustls::Error),
    #[error("is not a usable private key: {0}")]
    BadKey(#[source] rustls::Error),
    #[error("is not the private key of the certificate in {}", .0.display())]
    KeyMismatch(PathBuf),
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// A certificate or key that cannot be served: the config key it came from,
/// the file, and what is wrong. A config error at start-up; on a reload, the
/// previous certificate stays in service.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct TlsError {
    file: TlsFile,
    path: PathBuf,
    #[source]
    problem: TlsProblem,
}

impl TlsError {
    fn new(file: TlsFile, path: &Path, problem: TlsProblem) -> Self {
        Self {
            file,
            path: path.to_path_buf(),
            problem,
        }
    }

    /// Which file (and so which config key) is at fault.
    pub fn file(&self) -> TlsFile {
        self.file
    }

    /// The config key at fault: `server.tls_cert` or `server.tls_key`.
    pub fn key(&self) -> &'static str {
        self.file.key()
    }

    /// The path of the file at fault, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &TlsProblem {
        &self.problem
    }
}

/// The rustls configuration served, and how to read it again from disk.
/// Cloning gives another handle on the same configuration.
#[derive(Clone)]
pub struct TlsReloader {
    inner: Arc<Inner>,
}

struct Inner {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert", &self.inner.cert)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads `cert` and `key` with the aws-lc-rs provider, passed explicitly
    /// so this works whether or not a process-wide default is installed.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file, and so the key, that cannot be used.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = server_config(&provider, cert, key)?;
        Ok(Self {
            inner: Arc::new(Inner {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                provider,
                current: RwLock::new(config),
            }),
        })
    }

    /// Reads the certificate and key from disk again; new handshakes get
    /// them, connections already open keep theirs. On failure the previous
    /// certificate stays in service. Logs the outcome either way.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file that cannot be used.
    pub fn reload(&self) -> Result<(), TlsError> {
        let inner = &self.inner;
        match server_config(&inner.provider, &inner.cert, &inner.key) {
            Ok(config) => {
                *inner
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = config;
                tracing::info!(
                    cert = %inner.cert.display(),
                    key = %inner.key.display(),
                    "TLS certificate reloaded; new connections get it"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    key = e.key(),
                    file = %e.path().display(),
                    error = %e.problem(),
                    "TLS reload failed; still serving the previous certificate"
                );
                Err(e)
            }
        }
    }

    /// The configuration new handshakes use.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Reads and checks the pair, then builds the configuration served.
fn server_config(
    provider: &Arc<CryptoProvider>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certified = Arc::new(certified_key(provider, cert_path, key_path)?);
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::new(TlsFile::Cert, cert_path, TlsProblem::Config(e)))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCert(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The chain and key, parsed and checked to belong together, each failure
/// blamed on the file that causes it.
fn certified_key(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let cert_err = |p| TlsError::new(TlsFile::Cert, cert_path, p);
    let key_err = |p| TlsError::new(TlsFile::Key, key_path, p);

    let pem = std::fs::read(cert_path).map_err(|e| cert_err(TlsProblem::Read(e)))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(TlsProblem::NotPem(e)))?;
    if chain.is_empty() {
        return Err(cert_err(TlsProblem::NoCertificate));
    }

    let pem = std::fs::read(key_path).map_err(|e| key_err(TlsProblem::Read(e)))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => key_err(TlsProblem::NoKey),
        other => key_err(TlsProblem::NotPem(other)),
    })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(TlsProblem::BadKey(e)))?;

    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        // A key type whose public half rustls cannot derive: nothing to
        // compare, and the handshake is the judge.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(key_err(TlsProblem::KeyMismatch(cert_path.to_path_buf())))
        }
        Err(e) => Err(cert_err(TlsProblem::BadCertificate(e))),
    }
}

/// Serves one certificate to every client hello (no SNI selection).
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl ResolvesServerCert for SingleCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A TCP listener whose connections come out TLS-terminated, for
/// `axum::serve`. Handshakes run concurrently, so a slow client does not hold
/// up the others; each uses the configuration current when it was accepted.
/// Dropping the listener (axum does on shutdown) abandons the handshakes
/// still in progress, as a plain listener stops accepting.
pub struct TlsListener {
    tcp: TcpListener,
    tls: TlsReloader,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    /// Terminates TLS on `tcp` with the configuration `tls` holds.
    pub fn new(tcp: TcpListener, tls: TlsReloader) -> Self {
        Self {
            tcp,
            tls,
            handshakes: JoinSet::new(),
        }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // Both branches are cancel-safe: axum drops this future when the
        // shutdown signal wins its select.
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, addr)) => {
                        let acceptor = TlsAcceptor::from(self.tls.server_config());
                        self.handshakes.spawn(handshake(acceptor, tcp, addr));
                    }
                    Err(e) => accept_failed(e).await,
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The server side of a handshake; `None` (logged at debug: clients that
/// hang up or speak plain HTTP are routine) when it fails or times out.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some((stream, addr)),
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            None
        }
    }
}

/// What axum's own TCP listener does on an accept error: connection-level
/// errors are the client's and are skipped; anything else (out of file
/// descriptors) is logged and retried after a pause instead of spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests;
