//! How a PostgreSQL store URL is read: agentd's own `schema=` and
//! `max_connections=` parameters, and the password kept out of errors.

use super::*;

/// Connections a store opens at most unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A `postgres://` URL as sqlx understands it (without agentd's own
    /// `schema=` and `max_connections=` parameters).
    pub url: String,
    /// The schema agentd's tables live in, created if missing and put on
    /// every connection's `search_path`. `None`: the server's default
    /// (`public`).
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
}

impl PgOptions {
    /// Parses a store URL. Besides sqlx's parameters it understands
    /// `schema=NAME` (lower-case letters, digits and `_`) and
    /// `max_connections=N`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact(url),
            reason,
        };
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut schema = None;
        let mut max_connections = DEFAULT_MAX_CONNECTIONS;
        let mut rest = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("schema", s)) => {
                    check_schema(s).map_err(bad)?;
                    schema = Some(s.to_string());
                }
                Some(("max_connections", n)) => {
                    max_connections = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        bad(format!("max_connections={n} is not a positive number"))
                    })?;
                }
                _ if pair.is_empty() => {}
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(Self {
            url,
            schema,
            max_connections,
        })
    }
}

/// `url` with its password, if any, masked: it ends up in error messages.
pub(super) fn redact(url: &str) -> String {
    agentd_core::redact_url(url)
}

/// Schema names are put into DDL, so only plain identifiers are accepted.
pub(super) fn check_schema(s: &str) -> std::result::Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema {s:?} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_carry_schema_and_pool_size() {
        let o = PgOptions::parse("postgres://u@h:5432/db").unwrap();
        assert_eq!(o.url, "postgres://u@h:5432/db");
        assert_eq!(
            (o.schema, o.max_connections),
            (None, DEFAULT_MAX_CONNECTIONS)
        );

        let o = PgOptions::parse(
            "postgresql://u@h/db?sslmode=disable&schema=bench_1&max_connections=4&application_name=x",
        )
        .unwrap();
        assert_eq!(
            o.url,
            "postgresql://u@h/db?sslmode=disable&application_name=x"
        );
        assert_eq!(o.schema.as_deref(), Some("bench_1"));
        assert_eq!(o.max_connections, 4);

        for bad in [
            "postgres://h/db?schema=",
            "postgres://h/db?schema=Public",
            "postgres://h/db?schema=a-b",
            "postgres://h/db?schema=a%3Bdrop",
            "postgres://h/db?max_connections=0",
            "postgres://h/db?max_connections=lots",
        ] {
            assert!(
                matches!(PgOptions::parse(bad), Err(StoreError::BadUrl { .. })),
                "{bad}"
            );
        }
        let Err(StoreError::BadUrl { url, .. }) =
            PgOptions::parse("postgres://agentd:s3cret@db:5432/x?schema=Nope")
        else {
            panic!("a bad schema is a bad url");
        };
        assert_eq!(url, "postgres://agentd:***@db:5432/x?schema=Nope");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a:b@c"), "postgres://h/db?x=a:b@c");
        assert!(check_schema(&"a".repeat(63)).is_ok());
        assert!(check_schema(&"a".repeat(64)).is_err());
    }
}
