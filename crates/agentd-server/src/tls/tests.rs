//! Loading: a good pair serves h2 and HTTP/1.1; every way a pair can be bad
//! is blamed on the key and file at fault.

use super::*;

struct Pair {
    cert: String,
    key: String,
}

fn pair() -> Pair {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pair {
        cert: made.cert.pem(),
        key: made.signing_key.serialize_pem(),
    }
}

/// Writes `cert` and `key` (when given) into `dir`; returns both paths.
fn files(dir: &Path, cert: Option<&str>, key: Option<&str>) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    if let Some(cert) = cert {
        std::fs::write(&c, cert).unwrap();
    }
    if let Some(key) = key {
        std::fs::write(&k, key).unwrap();
    }
    (c, k)
}

#[test]
fn a_matching_pair_loads_with_h2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let good = pair();
    let (cert, key) = files(dir.path(), Some(&good.cert), Some(&good.key));

    let tls = TlsReloader::load(&cert, &key).unwrap();

    let config = tls.server_config();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn each_bad_file_is_blamed_on_its_key_and_path() {
    let good = pair();
    let other = pair();
    let truncated = good.cert.replace("-----END CERTIFICATE-----", "");
    // (case, cert file, key file (None: absent), the file blamed, the text)
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, TlsFile, &'a str);
    let cases: [Case; 7] = [
        (
            "missing cert",
            None,
            Some(&good.key),
            TlsFile::Cert,
            "cannot read",
        ),
        (
            "missing key",
            Some(&good.cert),
            None,
            TlsFile::Key,
            "cannot read",
        ),
        (
            "cert not PEM",
            Some(&truncated),
            Some(&good.key),
            TlsFile::Cert,
            "not valid PEM",
        ),
        (
            "no cert in it",
            Some(&good.key),
            Some(&good.key),
            TlsFile::Cert,
            "no certificate",
        ),
        (
            "no key in it",
            Some(&good.cert),
            Some(&good.cert),
            TlsFile::Key,
            "no private key",
        ),
        (
            "key of another cert",
            Some(&good.cert),
            Some(&other.key),
            TlsFile::Key,
            "is not the private key",
        ),
        (
            "not a certificate inside",
            Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Some(&good.key),
            TlsFile::Cert,
            "not a usable X.509 certificate",
        ),
    ];
    for (case, cert, key, file, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = files(dir.path(), cert, key);

        let err = TlsReloader::load(&cert, &key).unwrap_err();

        assert_eq!(err.file(), file, "{case}: {err}");
        let path = if file == TlsFile::Cert { &cert } else { &key };
        assert_eq!(err.path(), path, "{case}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{case}: {text}");
        assert!(text.contains(says), "{case}: {text}");
    }
}

#[test]
fn a_failed_reload_keeps_the_config_in_service() {
    let dir = tempfile::tempdir().unwrap();
    let good = pair();
    let (cert, key) = files(dir.path(), Some(&good.cert), Some(&good.key));
    let tls = TlsReloader::load(&cert, &key).unwrap();
    let before = tls.server_config();

    std::fs::write(&key, "not a key").unwrap();
    let err = tls.reload().unwrap_err();

    assert_eq!(err.key(), "server.tls_key");
    assert!(Arc::ptr_eq(&before, &tls.server_config()));

    // A good pair again: a new configuration replaces it.
    let next = pair();
    files(dir.path(), Some(&next.cert), Some(&next.key));
    tls.reload().unwrap();
    assert!(!Arc::ptr_eq(&before, &tls.server_config()));
}
