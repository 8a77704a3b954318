//! `auth.mode = "jwt"`: the caller presents a JWT issued by an OpenID
//! Connect identity provider; its signature is checked against the
//! provider's published keys ([`jwks`]), then `iss`, `aud`, `exp` and `nbf`,
//! and the identity is read from the configured claims.
//!
//! Only the asymmetric algorithms of `auth.jwt.algorithms` are accepted, and
//! only with a key of their own family: `none` and HMAC are refused before
//! any key is looked at, so a public key can never serve as an HMAC secret.

mod jwks;

use crate::auth::{AuthFailure, Reason};
use agentd_config::{Config, JwtConfig};
use agentd_core::{Identity, PrincipalId, TenantId};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use jwks::{KeyCache, Source, Timing};
use serde_json::{Map, Value};
use std::str::FromStr;

pub use jwks::JwksError;

/// Why `auth.mode = "jwt"` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("key `auth.jwt`: is required when `auth.mode = \"jwt\"`")]
    Missing,
    #[error("key `auth.jwt.algorithms`: {0:?} is not an accepted algorithm")]
    Algorithm(String),
    /// The file is missing, unreadable, not a JWKS or without usable keys.
    #[error("key `auth.jwt.jwks_file`: {0}")]
    JwksFile(#[source] JwksError),
    #[error("key `auth.jwt.jwks_url`: cannot build an HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Verifies tokens and reads identities from their claims.
pub(crate) struct JwtVerifier {
    keys: KeyCache,
    issuer: String,
    /// `iss`, `aud`, `exp` required; `nbf` checked; leeway applied. The
    /// algorithm list is set per token to the one algorithm it uses.
    validation: Validation,
    algorithms: Vec<Algorithm>,
    claims: ClaimNames,
}

impl JwtVerifier {
    /// The verifier `config.auth.jwt` describes, with its keys loaded: a bad
    /// `jwks_file` is an error, an unreachable `jwks_url` only a warning
    /// (agentd starts; the first request fetches the keys again).
    pub(crate) async fn from_config(config: &Config) -> Result<Self, JwtSetupError> {
        let jwt = config.auth.jwt.as_ref().ok_or(JwtSetupError::Missing)?;
        let source = match (&jwt.jwks_url, &jwt.jwks_file) {
            (Some(url), _) => Source::url(url).map_err(JwtSetupError::HttpClient)?,
            (None, Some(path)) => Source::File(path.clone()),
            // Config validation requires one of them.
            (None, None) => return Err(JwtSetupError::Missing),
        };
        let is_file = matches!(source, Source::File(_));
        let verifier = Self::new(jwt, source, Timing::default())?;
        if let Err(e) = verifier.keys.load_at_start().await {
            if is_file {
                return Err(JwtSetupError::JwksFile(e));
            }
            // The cause is already logged by the cache.
            tracing::warn!(
                "auth.jwt.jwks_url is unreachable at start-up; starting anyway, \
                 tokens are refused (keys_unavailable) until it answers"
            );
        }
        Ok(verifier)
    }

    /// A verifier whose keys come from `source` (not loaded yet).
    fn new(jwt: &JwtConfig, source: Source, timing: Timing) -> Result<Self, JwtSetupError> {
        let algorithms = jwt
            .algorithms
            .iter()
            .map(|name| {
                accepted_algorithm(name).ok_or_else(|| JwtSetupError::Algorithm(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = KeyCache::new(source, algorithms.clone(), timing);
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&jwt.issuer]);
        validation.set_audience(&jwt.audience.to_vec());
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = jwt.leeway.get().as_secs();
        Ok(Self {
            keys,
            issuer: jwt.issuer.clone(),
            validation,
            algorithms,
            claims: ClaimNames {
                tenant: jwt.tenant_claim.clone(),
                principal: jwt.principal_claim.clone(),
                roles: jwt.roles_claim.clone(),
            },
        })
    }

    /// The identity a bearer token proves. The token itself is never put
    /// into a failure's detail (which is logged).
    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let header = Header::peek(token)?;
        let alg = accepted_algorithm(&header.alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| {
                AuthFailure::new(
                    Reason::InvalidCredential,
                    format!("algorithm {:?} is not accepted", header.alg),
                )
            })?;
        if let Some(crit) = &header.crit {
            // RFC 7515 §4.1.11: extensions the verifier does not
            // understand make the token invalid; agentd understands none.
            return Err(AuthFailure::new(
                Reason::InvalidCredential,
                format!("critical header extensions {crit} are not supported"),
            ));
        }
        let key = self.keys.key(header.kid.as_deref()).await?;
        if !key.algorithms.contains(&alg) {
            return Err(AuthFailure::new(
                Reason::InvalidCredential,
                format!(
                    "key {:?} does not verify {alg:?} (it verifies {:?})",
                    key.kid, key.algorithms
                ),
            ));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| refused(e.kind()))?
            .claims;
        // jsonwebtoken also accepts an array `iss` sharing one value; an
        // issuer is one string.
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthFailure::new(
                Reason::WrongIssuerOrAudience,
                "iss is not a single string equal to auth.jwt.issuer",
            ));
        }
        self.claims.identity(&claims)
    }
}

/// An algorithm agentd may ever accept: asymmetric ones only.
fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    Algorithm::from_str(name)
        .ok()
        .filter(|a| a.family() != jsonwebtoken::AlgorithmFamily::Hmac)
}

/// The refusal a failed `decode` maps to.
fn refused(kind: &ErrorKind) -> AuthFailure {
    let reason = match kind {
        ErrorKind::ExpiredSignature => Reason::Expired,
        ErrorKind::ImmatureSignature => Reason::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Reason::WrongIssuerOrAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" || c == "aud" => {
            Reason::WrongIssuerOrAudience
        }
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Reason::BadClaims,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => Reason::MalformedCredential,
        _ => Reason::InvalidCredential,
    };
    AuthFailure::new(reason, format!("token refused: {kind:?}"))
}

/// The parts of a JWS header read before any key is chosen.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

impl Header {
    /// The header of a compact JWS (`header.payload.signature`), read
    /// without trusting it: it only selects the algorithm and the key.
    fn peek(token: &str) -> Result<Self, AuthFailure> {
        let malformed = |why: &str| AuthFailure::new(Reason::MalformedCredential, why.to_owned());
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not a JWT: expected three dot-separated parts"));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| malformed("JWT header is not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| malformed("JWT header is not a JSON object with a string `alg`"))
    }
}

/// The claims that name the tenant, the principal and the roles; each a
/// claim name or a dotted path into nested objects.
struct ClaimNames {
    tenant: String,
    principal: String,
    roles: String,
}

impl ClaimNames {
    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthFailure> {
        let tenant = TenantId::parse(self.string(claims, &self.tenant)?)
            .map_err(|e| bad_claims(format!("claim {:?}: {e}", self.tenant)))?;
        let principal = PrincipalId::parse(self.string(claims, &self.principal)?)
            .map_err(|e| bad_claims(format!("claim {:?}: {e}", self.principal)))?;
        let roles = match claim(claims, &self.roles) {
            None | Some(Value::Null) => Vec::new(),
            // OAuth's `scope` style: one space-separated string.
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    bad_claims(format!(
                        "claim {:?} has a role that is not a string",
                        self.roles
                    ))
                })?
                .into_iter()
                .filter(|r| !r.trim().is_empty())
                .collect(),
            Some(other) => {
                return Err(bad_claims(format!(
                    "claim {:?} is {}, expected an array of strings or a space-separated string",
                    self.roles,
                    kind_of(other)
                )));
            }
        };
        Ok(Identity {
            tenant,
            principal,
            roles,
        })
    }

    fn string<'a>(
        &self,
        claims: &'a Map<String, Value>,
        name: &str,
    ) -> Result<&'a str, AuthFailure> {
        match claim(claims, name) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(bad_claims(format!("the token has no {name:?} claim"))),
            Some(other) => Err(bad_claims(format!(
                "claim {name:?} is {}, expected a string",
                kind_of(other)
            ))),
        }
    }
}

/// The claim at `path`. A claim whose name contains dots (Auth0's
/// namespaced `https://example.com/tenant`) is found before a nested path
/// is tried; among nested paths the longest matching name wins.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.match_indices('.')
        .rev()
        .find_map(|(i, _)| match claims.get(&path[..i]) {
            Some(Value::Object(inner)) => claim(inner, &path[i + 1..]),
            _ => None,
        })
}

fn bad_claims(detail: String) -> AuthFailure {
    AuthFailure::new(Reason::BadClaims, detail)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, encode};
    use serde_json::json;

    fn names(tenant: &str, principal: &str, roles: &str) -> ClaimNames {
        ClaimNames {
            tenant: tenant.into(),
            principal: principal.into(),
            roles: roles.into(),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claims_are_found_by_name_or_by_dotted_path() {
        let claims = obj(json!({
            "https://example.com/tenant": "acme",
            "realm_access": { "roles": ["admin", "viewer"] },
            "a": { "b.c": { "d": 1 } },
        }));
        assert_eq!(
            claim(&claims, "https://example.com/tenant"),
            Some(&json!("acme"))
        );
        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&json!(["admin", "viewer"]))
        );
        assert_eq!(claim(&claims, "a.b.c.d"), Some(&json!(1)));
        assert_eq!(claim(&claims, "realm_access.nope"), None);
        assert_eq!(claim(&claims, "https://example.com/tenant.x"), None);
    }

    #[test]
    fn the_identity_comes_from_the_configured_claims() {
        let keycloak = names("org_id", "sub", "realm_access.roles");
        let id = keycloak
            .identity(&obj(json!({
                "org_id": "acme", "sub": "f81d4fae-7dec",
                "realm_access": { "roles": ["admin", "", "viewer"] }
            })))
            .unwrap();
        assert_eq!(id.tenant.as_str(), "acme");
        assert_eq!(id.principal.as_str(), "f81d4fae-7dec");
        assert_eq!(id.roles, ["admin", "viewer"]);

        let scopes = names("tenant", "email", "scope");
        let id = scopes
            .identity(&obj(
                json!({ "tenant": "t", "email": "a@b.example", "scope": "read  write" }),
            ))
            .unwrap();
        assert_eq!(id.principal.as_str(), "a@b.example");
        assert_eq!(id.roles, ["read", "write"]);

        // Missing roles: no roles, not a failure
        let id = scopes
            .identity(&obj(json!({ "tenant": "t", "email": "e" })))
            .unwrap();
        assert!(id.roles.is_empty());
    }

    #[test]
    fn unusable_identity_claims_are_bad_claims() {
        let n = names("tenant", "sub", "roles");
        for (claims, why) in [
            (json!({ "sub": "p" }), "no \"tenant\" claim"),
            (json!({ "tenant": null, "sub": "p" }), "no \"tenant\" claim"),
            (json!({ "tenant": 7, "sub": "p" }), "is a number"),
            (json!({ "tenant": "a b", "sub": "p" }), "claim \"tenant\""),
            (json!({ "tenant": "", "sub": "p" }), "must not be empty"),
            (json!({ "tenant": "t" }), "no \"sub\" claim"),
            (json!({ "tenant": "t", "sub": ["p"] }), "is an array"),
            (
                json!({ "tenant": "t", "sub": "p", "roles": [1] }),
                "not a string",
            ),
            (
                json!({ "tenant": "t", "sub": "p", "roles": {} }),
                "is an object",
            ),
        ] {
            let err = n.identity(&obj(claims.clone())).unwrap_err();
            assert_eq!(err.reason, Reason::BadClaims, "{claims}");
            assert!(err.detail.contains(why), "{claims}: {}", err.detail);
        }
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn headers_are_read_without_trusting_them() {
        let token = format!("{}.e30.c2ln", b64(&json!({ "alg": "none", "kid": "k" })));
        let h = Header::peek(&token).unwrap();
        assert_eq!((h.alg.as_str(), h.kid.as_deref()), ("none", Some("k")));
        for bad in [
            "abc".to_owned(),
            "a.b".to_owned(),
            // A JWE (five parts) is not a JWS
            format!("{}.a.b.c.d", b64(&json!({ "alg": "RS256" }))),
            "!!!.e30.c2ln".to_owned(),
            format!("{}.e30.c2ln", b64(&json!({ "alg": 1 }))),
            format!("{}.e30.c2ln", b64(&json!(["alg"]))),
        ] {
            let err = Header::peek(&bad).err().unwrap();
            assert_eq!(err.reason, Reason::MalformedCredential, "{bad}");
        }
    }

    #[test]
    fn only_asymmetric_algorithms_are_ever_accepted() {
        assert_eq!(accepted_algorithm("ES256"), Some(Algorithm::ES256));
        assert_eq!(accepted_algorithm("EdDSA"), Some(Algorithm::EdDSA));
        for refused in ["none", "HS256", "HS384", "HS512", "es256", ""] {
            assert_eq!(accepted_algorithm(refused), None, "{refused}");
        }
    }

    /// A verifier over an in-memory JWKS holding one fresh P-256 key
    /// (`kid` "k1"), and that key for signing.
    async fn verifier() -> (JwtVerifier, EncodingKey) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let signing = EncodingKey::from_ec_der(pair.serialized_der());
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        let memory = jwks::tests::MemoryJwks::new(json!({ "keys": [jwk] }));
        let config: JwtConfig = serde_json::from_value(json!({
            "issuer": "https://idp.example/", "audience": ["agentd", "other"],
            "jwks_file": "unused", "leeway": "5s",
        }))
        .unwrap();
        let v = JwtVerifier::new(&config, Source::Memory(memory), Timing::default()).unwrap();
        v.keys.load_at_start().await.unwrap();
        (v, signing)
    }

    fn sign(key: &EncodingKey, kid: &str, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        encode(&header, &claims, key).unwrap()
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    #[tokio::test]
    async fn tokens_are_checked_for_signature_issuer_audience_and_time() {
        let (v, key) = verifier().await;
        let good = json!({
            "iss": "https://idp.example/", "aud": "other", "exp": now() + 60,
            "nbf": now() - 1, "tenant": "acme", "sub": "alice", "roles": ["admin"]
        });
        let with = |patch: Value| {
            let mut c = good.clone();
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = val.clone();
                }
            }
            c
        };

        let id = v.verify(&sign(&key, "k1", good.clone())).await.unwrap();
        assert_eq!(
            (id.tenant.as_str(), id.principal.as_str()),
            ("acme", "alice")
        );
        assert_eq!(id.roles, ["admin"]);
        // Within the 5 s leeway
        assert!(
            v.verify(&sign(&key, "k1", with(json!({ "exp": now() - 3 }))))
                .await
                .is_ok()
        );
        assert!(
            v.verify(&sign(&key, "k1", with(json!({ "nbf": now() + 3 }))))
                .await
                .is_ok()
        );

        for (patch, reason) in [
            (json!({ "exp": now() - 30 }), Reason::Expired),
            (json!({ "exp": null }), Reason::BadClaims),
            (json!({ "exp": "soon" }), Reason::BadClaims),
            (json!({ "nbf": now() + 30 }), Reason::NotYetValid),
            (
                json!({ "iss": "https://evil.example/" }),
                Reason::WrongIssuerOrAudience,
            ),
            (
                json!({ "iss": ["https://idp.example/", "x"] }),
                Reason::WrongIssuerOrAudience,
            ),
            (json!({ "iss": null }), Reason::WrongIssuerOrAudience),
            (
                json!({ "aud": "someone-else" }),
                Reason::WrongIssuerOrAudience,
            ),
            (json!({ "aud": null }), Reason::WrongIssuerOrAudience),
            (json!({ "tenant": null }), Reason::BadClaims),
        ] {
            let err = v
                .verify(&sign(&key, "k1", with(patch.clone())))
                .await
                .unwrap_err();
            assert_eq!(err.reason, reason, "{patch}: {}", err.detail);
        }
        // An audience list naming us is fine
        assert!(
            v.verify(&sign(&key, "k1", with(json!({ "aud": ["x", "agentd"] }))))
                .await
                .is_ok()
        );

        // A tampered payload no longer matches the signature
        let token = sign(&key, "k1", good.clone());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(&with(json!({ "tenant": "victim" })));
        parts[1] = &forged;
        let err = v.verify(&parts.join(".")).await.unwrap_err();
        assert_eq!(err.reason, Reason::InvalidCredential, "{}", err.detail);
        // A crit header is refused
        let crit = format!(
            "{}.{}.{}",
            b64(&json!({ "alg": "ES256", "kid": "k1", "crit": ["exp"] })),
            b64(&good),
            token.rsplit('.').next().unwrap()
        );
        let err = v.verify(&crit).await.unwrap_err();
        assert_eq!(err.reason, Reason::InvalidCredential);
        assert!(err.detail.contains("critical"), "{}", err.detail);
    }

    #[tokio::test]
    async fn none_hmac_and_mismatched_algorithms_are_refused() {
        let (v, key) = verifier().await;
        let claims = json!({
            "iss": "https://idp.example/", "aud": "agentd", "exp": now() + 60,
            "tenant": "acme", "sub": "mallory"
        });
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "kid": "k1" })),
            b64(&claims)
        );
        let mut hs = jsonwebtoken::Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let hmac = encode(&hs, &claims, &EncodingKey::from_secret(b"public key bytes")).unwrap();
        // ES384 is a family sibling, but not the key's curve nor configured
        let mut es384 = jsonwebtoken::Header::new(Algorithm::ES384);
        es384.kid = Some("k1".into());
        let es384 = format!(
            "{}.{}.{}",
            b64(&serde_json::to_value(&es384).unwrap()),
            b64(&claims),
            sign(&key, "k1", claims.clone()).rsplit('.').next().unwrap()
        );

        for token in [unsigned, hmac, es384] {
            let err = v.verify(&token).await.unwrap_err();
            assert_eq!(err.reason, Reason::InvalidCredential, "{}", err.detail);
            assert!(err.detail.contains("not accepted"), "{}", err.detail);
            assert!(
                !err.detail.contains(&token),
                "the token is never in the detail"
            );
        }
        // Unknown kid
        let err = v.verify(&sign(&key, "k2", claims)).await.unwrap_err();
        assert_eq!(err.reason, Reason::InvalidCredential);
        assert!(err.detail.contains("k2"), "{}", err.detail);
    }
}
