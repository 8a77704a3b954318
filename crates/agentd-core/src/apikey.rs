//! API keys as text, in one place for the server and the CLI:
//! `agd_<key id>_<secret>`, both parts lowercase hex.
//!
//! - The `agd_` prefix and the fixed shape let secret scanners (GitHub's,
//!   gitleaks) match a leaked key: `agd_[0-9a-f]{16}_[0-9a-f]{64}`.
//! - The key id (64 random bits) is public: it names the key in lists, logs
//!   and `keys revoke`, and is the store's primary key.
//! - The secret is 256 bits from the operating system's RNG. Only its
//!   SHA-256 is stored ([`SecretHash`]), and it is compared in constant
//!   time. A fast hash is enough: the secret has full entropy, so there is
//!   nothing for a slow password hash to protect against.
//!
//! Hex has no `_`, so splitting a key into its parts is unambiguous. The
//! secret never leaves [`ApiKeyToken`] except through
//! [`ApiKeyToken::reveal`], and `Debug` redacts it, so logging a token by
//! accident shows only its id.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// What every key starts with.
pub const KEY_PREFIX: &str = "agd_";
/// Random bytes in a key id (16 hex characters).
const ID_BYTES: usize = 8;
/// Random bytes in a secret (64 hex characters).
const SECRET_BYTES: usize = 32;
/// The length of a well-formed key: `agd_` + id + `_` + secret.
const KEY_LEN: usize = KEY_PREFIX.len() + 2 * ID_BYTES + 1 + 2 * SECRET_BYTES;

/// Why a text is not an API key, or a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not of the key's shape; the reason never quotes it.
    #[error("not an agentd API key: {0}")]
    Malformed(&'static str),
    /// The operating system's random number generator failed.
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// The public id of an API key (16 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl utoipa::PartialSchema for KeyId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(format!("^[0-9a-f]{{{}}}$", 2 * ID_BYTES)))
            .into()
    }
}

impl utoipa::ToSchema for KeyId {}

impl KeyId {
    /// Parses a key id as printed by `keys list`.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.len() != 2 * ID_BYTES || !is_lower_hex(s) {
            return Err(KeyError::Malformed(
                "a key id is 16 lowercase hex characters",
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A whole API key: its id and its secret. Made once when a key is minted
/// (and shown to its owner then), or parsed from a request's credential.
#[derive(Clone)]
pub struct ApiKeyToken {
    id: KeyId,
    secret: [u8; SECRET_BYTES],
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ApiKeyToken {
    /// A new key: a random id and a random 256-bit secret.
    pub fn generate() -> Result<Self, KeyError> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut id).map_err(|e| KeyError::Random(e.to_string()))?;
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self {
            id: KeyId(hex::encode(id)),
            secret,
        })
    }

    /// Parses `agd_<id>_<secret>`. The error says which part is wrong,
    /// for the log; it never repeats the text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let rest = text
            .strip_prefix(KEY_PREFIX)
            .ok_or(KeyError::Malformed("it does not start with agd_"))?;
        if text.len() != KEY_LEN {
            return Err(KeyError::Malformed("it has the wrong length"));
        }
        let (id, secret) = rest
            .split_once('_')
            .ok_or(KeyError::Malformed("it has no _ between id and secret"))?;
        let id = KeyId::parse(id)?;
        if secret.len() != 2 * SECRET_BYTES || !is_lower_hex(secret) {
            return Err(KeyError::Malformed(
                "its secret is not 64 lowercase hex characters",
            ));
        }
        let mut bytes = [0u8; SECRET_BYTES];
        hex::decode_to_slice(secret, &mut bytes)
            .map_err(|_| KeyError::Malformed("its secret is not hex"))?;
        Ok(Self { id, secret: bytes })
    }

    /// The key's public id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The SHA-256 of the secret: what the store keeps.
    pub fn secret_hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.secret).into())
    }

    /// The key as its owner presents it. The one way the secret leaves
    /// this type: call it only to show a new key to the one who minted it.
    pub fn reveal(&self) -> String {
        format!("{KEY_PREFIX}{}_{}", self.id, hex::encode(self.secret))
    }
}

/// The SHA-256 of a key's secret. No `PartialEq`: the one comparison is
/// [`SecretHash::matches`], in constant time.
#[derive(Clone)]
pub struct SecretHash([u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// A hash read back from the store.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| KeyError::Malformed("a secret hash is 32 bytes"))
    }

    /// The hash's bytes, to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `token`'s secret is the one hashed here, in time that does
    /// not depend on where the hashes differ.
    pub fn matches(&self, token: &ApiKeyToken) -> bool {
        self.0.ct_eq(token.secret_hash().as_bytes()).into()
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_and_matches_only_its_own_hash() {
        let key = ApiKeyToken::generate().unwrap();
        let text = key.reveal();
        assert!(text.starts_with("agd_"));
        assert_eq!(text.len(), KEY_LEN);

        let parsed = ApiKeyToken::parse(&text).unwrap();

        assert_eq!(parsed.id(), key.id());
        assert!(key.secret_hash().matches(&parsed));
        let other = ApiKeyToken::generate().unwrap();
        assert_ne!(other.id(), key.id());
        assert!(!key.secret_hash().matches(&other));
        // Same id, another secret: refused.
        let forged = format!("agd_{}_{}", key.id(), "0".repeat(64));
        assert!(
            !key.secret_hash()
                .matches(&ApiKeyToken::parse(&forged).unwrap())
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKeyToken::generate().unwrap();
        let secret = key.reveal().rsplit('_').next().unwrap().to_string();

        let debug = format!("{key:?} {:?}", key.secret_hash());

        assert!(!debug.contains(&secret), "{debug}");
        assert!(debug.contains(key.id().as_str()));
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn malformed_keys_are_refused_without_quoting_them() {
        let good = ApiKeyToken::generate().unwrap().reveal();
        let cases = [
            String::new(),
            "agd_".to_string(),
            good.replacen("agd_", "agx_", 1),
            good.to_uppercase().replacen("AGD_", "agd_", 1),
            format!("{good}0"),
            good[..good.len() - 1].to_string(),
            good.replacen('_', "-", 2),
            format!("agd_{}_{}", "g".repeat(16), "0".repeat(64)),
            format!("agd_{}__{}", "0".repeat(15), "0".repeat(64)),
        ];
        for case in cases {
            let err = ApiKeyToken::parse(&case).unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{case}");
            if !case.is_empty() {
                assert!(!err.to_string().contains(&case), "{err}");
            }
        }
    }

    #[test]
    fn key_ids_parse_strictly_and_hashes_need_32_bytes() {
        assert!(KeyId::parse("0123456789abcdef").is_ok());
        assert!(KeyId::parse("0123456789ABCDEF").is_err());
        assert!(KeyId::parse("0123").is_err());
        assert!(SecretHash::from_bytes(&[0; 31]).is_err());
        let key = ApiKeyToken::generate().unwrap();
        let stored = SecretHash::from_bytes(key.secret_hash().as_bytes()).unwrap();
        assert!(stored.matches(&key));
    }
}
