//! Signing outgoing webhooks per the Standard Webhooks specification, so a
//! receiver verifies them with any of its libraries (`standardwebhooks` in
//! Python, JavaScript, Go, ...) instead of hand-written code:
//!
//! - `webhook-id`: the message's id, the same on every retry of it;
//! - `webhook-timestamp`: Unix seconds of this attempt;
//! - `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
//!   `<id>.<timestamp>.<body>`, keyed with the secret's bytes.
//!
//! The secret is `whsec_` followed by base64 (the prefix may be left out),
//! as those libraries take it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying the message id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the signed Unix timestamp, in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying `v1,<base64 signature>`.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Prefix of a Standard Webhooks secret.
const PREFIX: &str = "whsec_";

/// A webhook signing key, decoded from its `whsec_<base64>` form.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Why a secret was refused (never says the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a Standard Webhooks secret: `whsec_` followed by base64 of 24 to 64 random bytes \
     (generate one with: echo whsec_$(openssl rand -base64 32)); {0}"
)]
pub struct BadSecret(&'static str);

impl WebhookSecret {
    /// Decodes `whsec_<base64>` (or bare base64).
    pub fn parse(raw: &str) -> Result<Self, BadSecret> {
        let b64 = raw.trim().strip_prefix(PREFIX).unwrap_or(raw.trim());
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| BadSecret("this value is not valid base64"))?;
        if bytes.len() < 16 {
            return Err(BadSecret("this value decodes to fewer than 16 bytes"));
        }
        Ok(Self(bytes))
    }

    /// `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; the error branch cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification (and of its libraries' tests).
    #[test]
    fn signs_the_specification_example() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // The prefix is optional.
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare.0, secret.0);
    }

    #[test]
    fn refuses_what_is_not_a_secret_without_echoing_it() {
        let err = WebhookSecret::parse("hunter2!").unwrap_err();
        assert!(err.to_string().contains("whsec_"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
    }
}
