//! Keeping secrets out of logs and messages.

/// `url` with the password of its userinfo replaced by `***`
/// (`postgres://agentd:***@db/x`), for logs and errors; other URLs are
/// returned as they are.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://agentd:s3cr@t@db:5432/x?schema=a"),
            "postgres://agentd:***@db:5432/x?schema=a"
        );
        assert_eq!(
            redact_url("redis://:hunter2@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(
            redact_url("postgres://agentd@db/x"),
            "postgres://agentd@db/x"
        );
        assert_eq!(redact_url("sqlite://agentd.db"), "sqlite://agentd.db");
    }
}
