//! Identifiers parsed at the edge: a value of these types is always valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may contain only letters, digits, '-', '_', '.', ':' and '@'; found {found:?}")]
    BadChar { kind: &'static str, found: char },
    #[error("not a valid run id (expected a UUID): {0}")]
    BadUuid(String),
}

/// What [`check_token`] accepts, as a regular expression (for the API's
/// schema; the length bound is stated separately).
const TOKEN_PATTERN: &str = "^[A-Za-z0-9._:@-]+$";

fn check_token(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.chars().count() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(IdError::BadChar { kind, found: c });
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the identifier.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_token($kind, &s, $max)?;
                Ok(Self(s))
            }
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // The schema states the rule `parse` checks, so generated clients
        // and fuzzers send ids the server accepts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .pattern(Some(TOKEN_PATTERN))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_id!(
    /// The tenant that owns a piece of state. Every store call takes one.
    TenantId, "tenant id", 128
);
token_id!(
    /// Who acted: a user, a service or an API key.
    PrincipalId, "principal id", 256
);
token_id!(
    /// Links runs whose messages form one agent memory.
    ConversationId, "conversation id", 256
);

/// A run's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub uuid::Uuid);

impl utoipa::PartialSchema for RunId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Uuid,
            )))
            .into()
    }
}

impl utoipa::ToSchema for RunId {}

impl RunId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
    /// Parses the textual UUID form.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| IdError::BadUuid(s.chars().take(64).collect()))
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who is calling: taken from the credential, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub roles: Vec<String>,
}

impl Identity {
    /// True if the identity carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_validated() {
        assert!(TenantId::parse("acme-1").is_ok());
        assert_eq!(
            TenantId::parse(""),
            Err(IdError::Empty { kind: "tenant id" })
        );
        assert!(matches!(
            TenantId::parse("a b"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(TenantId::parse("x".repeat(129)).is_err());
        let t: Result<TenantId, _> = serde_json::from_str("\"bad/tenant\"");
        assert!(t.is_err());
    }

    #[test]
    fn run_ids_round_trip_and_sort_by_time() {
        let a = RunId::new();
        let b = RunId::new();
        assert!(a < b);
        assert_eq!(RunId::parse(&a.to_string()), Ok(a));
        assert!(RunId::parse("nope").is_err());
    }
}
