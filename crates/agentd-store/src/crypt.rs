//! Encryption at rest: the [`Keyring`] that seals payload columns with
//! AES-256-GCM, and the sealed value format.
//!
//! A sealed column holds `enc:1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`
//! (standard base64, a random 96-bit nonce per value). The associated data
//! names the run and the column (and a step's index), so a sealed value
//! moved to another run, column or step fails to open instead of being
//! read in the wrong place. Plain JSON never starts with `enc:`, so sealed
//! and plain values coexist: a database that turns encryption on keeps its
//! older rows readable, and a rotated keyring keeps old key ids readable.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;
use zeroize::Zeroizing;

/// What every sealed value starts with: the format marker and its version.
pub(crate) const SEALED_PREFIX: &str = "enc:1:";

/// AES-GCM nonce length in bytes.
const NONCE_LEN: usize = 12;

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;

/// Longest key id.
const MAX_KEY_ID: usize = 32;

/// What a keyring entry looks like, for error messages.
const EXPECTED: &str = "one or more comma-separated KEYID:BASE64 entries, the first used for new \
    writes (KEYID: 1-32 characters of A-Z, a-z, 0-9, _ and -; BASE64: a 32-byte key in standard \
    base64, e.g. from `openssl rand -base64 32`)";

/// AES-256-GCM keys by id: the first seals new values, all of them open
/// values sealed earlier. Parsed from `KEYID:BASE64[,KEYID:BASE64...]`, so a
/// key is rotated by putting a new entry first and keeping the old ones
/// while rows sealed with them remain. `Debug` shows key ids only; key
/// material is wiped from memory when dropped.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// A keyring that could not be read. Messages name where it came from and
/// what was expected, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The variable `store.encryption_key_env` names is not set.
    #[error("environment variable {var} is not set; set it to {EXPECTED}")]
    Missing { var: String },
    #[error("{source_name}: {problem}; expected {EXPECTED}")]
    Malformed {
        /// Where the keyring came from, e.g. `environment variable X`.
        source_name: String,
        problem: String,
    },
}

impl Keyring {
    /// Parses `KEYID:BASE64[,KEYID:BASE64...]`.
    pub fn parse(value: &str) -> Result<Self, KeyringError> {
        Self::parse_from(value, "the encryption keyring")
    }

    /// Reads the keyring from environment variable `var`
    /// (`store.encryption_key_env`).
    pub fn from_env(var: &str) -> Result<Self, KeyringError> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| KeyringError::Missing {
            var: var.to_string(),
        })?);
        Self::parse_from(&value, &format!("environment variable {var}"))
    }

    fn parse_from(value: &str, source_name: &str) -> Result<Self, KeyringError> {
        let bad = |problem: String| KeyringError::Malformed {
            source_name: source_name.to_string(),
            problem,
        };
        if value.trim().is_empty() {
            return Err(bad("it is empty".into()));
        }
        let mut keys: Vec<Key> = Vec::new();
        for (i, entry) in value.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            let Some((id, key)) = entry.split_once(':') else {
                return Err(bad(format!("entry {n} has no `:` between key id and key")));
            };
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(bad(format!("entry {n} has an invalid key id {id:?}")));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(bad(format!("key id {id} appears twice")));
            }
            let bytes = Zeroizing::new(
                BASE64
                    .decode(key.trim())
                    .map_err(|_| bad(format!("the key of {id} is not standard base64")))?,
            );
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| bad(format!("the key of {id} is {} bytes, not 32", bytes.len())))?;
            keys.push(Key {
                id: id.to_string(),
                cipher,
            });
        }
        Ok(Self { keys })
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Every key id, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Seals `plain` with the current key, bound to `aad`.
    pub(crate) fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::Encrypt)?;
        let nonce = Nonce::try_generate().map_err(|_| SealError::Random)?;
        let sealed = key
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| SealError::Encrypt)?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            key.id,
            BASE64.encode(bytes)
        ))
    }

    /// Opens the body of a sealed value (what follows `enc:1:<key id>:`)
    /// sealed with key `key_id`, bound to `aad`.
    pub(crate) fn open(&self, key_id: &str, body: &str, aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(OpenError::UnknownKey)?;
        let bytes = BASE64.decode(body).map_err(|_| OpenError::Failed)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError::Failed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| OpenError::Failed)?;
        key.cipher
            .decrypt(&nonce, Payload { msg: sealed, aad })
            .map_err(|_| OpenError::Failed)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits a sealed column value into its key id and body; `None` for a
/// plain value.
pub(crate) fn split_sealed(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(SEALED_PREFIX)?.split_once(':')
}

/// Sealing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealError {
    /// The system's random number generator failed.
    Random,
    Encrypt,
}

/// Opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The keyring holds no key with the value's key id.
    UnknownKey,
    /// Wrong key (same id, other bytes), other associated data, or corrupt
    /// data: AES-GCM authentication failed.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        BASE64.encode([byte; 32])
    }

    #[test]
    fn keyrings_parse_and_errors_name_the_problem_without_the_key() {
        let ring = Keyring::parse(&format!("new:{}, old-1:{}", key(1), key(2))).unwrap();
        assert_eq!(ring.current_key_id(), "new");
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["new", "old-1"]);
        assert_eq!(
            format!("{ring:?}"),
            r#"Keyring { key_ids: ["new", "old-1"] }"#
        );

        let secret = key(7);
        for (value, problem) in [
            (String::new(), "it is empty".to_string()),
            (secret.clone(), "entry 1 has no `:`".into()),
            (format!("a b:{secret}"), "invalid key id \"a b\"".into()),
            (format!(":{secret}"), "invalid key id \"\"".into()),
            (
                format!("a:{secret},a:{secret}"),
                "key id a appears twice".into(),
            ),
            (
                "a:not base64!".into(),
                "the key of a is not standard base64".into(),
            ),
            (
                format!("a:{}", BASE64.encode([1u8; 16])),
                "the key of a is 16 bytes, not 32".into(),
            ),
            (format!("a:{secret},"), "entry 2 has no `:`".into()),
        ] {
            let err = Keyring::parse_from(&value, "environment variable K").unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("environment variable K: "), "{text}");
            assert!(text.contains(&problem), "{text} / {problem}");
            assert!(text.contains("KEYID:BASE64"), "{text}");
            assert!(!text.contains(&secret), "the key leaked: {text}");
        }
        let missing = Keyring::from_env("AGENTD_TEST_SURELY_UNSET_KEY").unwrap_err();
        assert_eq!(
            missing,
            KeyringError::Missing {
                var: "AGENTD_TEST_SURELY_UNSET_KEY".into()
            }
        );
        assert!(missing.to_string().contains("AGENTD_TEST_SURELY_UNSET_KEY"));
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let ring = Keyring::parse(&format!("a:{}", key(1))).unwrap();
        let sealed = ring.seal(b"{\"secret\":1}", b"run-1/input").unwrap();
        assert!(sealed.starts_with("enc:1:a:"), "{sealed}");
        assert!(!sealed.contains("secret"));
        // A fresh nonce per value.
        assert_ne!(
            sealed,
            ring.seal(b"{\"secret\":1}", b"run-1/input").unwrap()
        );

        let (id, body) = split_sealed(&sealed).unwrap();
        assert_eq!(id, "a");
        assert_eq!(
            ring.open(id, body, b"run-1/input").unwrap(),
            b"{\"secret\":1}"
        );
        // Moved to another run or column: refused.
        assert_eq!(ring.open(id, body, b"run-2/input"), Err(OpenError::Failed));
        // The same id with other key bytes: refused, not garbage.
        let wrong = Keyring::parse(&format!("a:{}", key(2))).unwrap();
        assert_eq!(wrong.open(id, body, b"run-1/input"), Err(OpenError::Failed));
        // Unknown ids and mangled bodies.
        assert_eq!(
            ring.open("b", body, b"run-1/input"),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(ring.open(id, "%%%", b"run-1/input"), Err(OpenError::Failed));
        assert_eq!(
            ring.open(id, "AAAA", b"run-1/input"),
            Err(OpenError::Failed)
        );
        assert_eq!(split_sealed("{\"enc:1:a:x\":1}"), None);
    }
}
