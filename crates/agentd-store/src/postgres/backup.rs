//! Backup and restore of a PostgreSQL store with the PostgreSQL client
//! programs (operator operations over every tenant; see [`crate::backup`]).
//!
//! The backup is `pg_dump -Fc` of the store's schema (`schema=` of the URL,
//! else `public`): one repeatable-read snapshot that does not block
//! writers. The restore is `pg_restore --clean --if-exists
//! --single-transaction --no-owner` into the schema the dump was taken from.
//! The password never appears on a command line or in a message: it goes
//! to the child in `PGPASSWORD`.

use super::options::{PgOptions, redact};
use crate::backup::common::{BackupError, Done, commit_file, discard};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;

/// How the tools reach the store: a URL without password and the
/// password apart, and the schema.
struct Target {
    /// libpq URL (no password, no agentd-only parameters).
    url: String,
    password: Option<String>,
    schema: String,
    /// For messages.
    shown: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, BackupError> {
        let opts = PgOptions::parse(url)?;
        let (url, password) = split_password(&opts.url);
        Ok(Self {
            shown: redact(&opts.url),
            url,
            password,
            schema: opts.schema.unwrap_or_else(|| "public".into()),
        })
    }

    /// The tool as a command with the connection settings.
    fn command(&self, tool: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(tool);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }

    /// The command a user runs by hand when the tool is missing.
    fn recipe(&self, tool: &'static str, file: &Path) -> String {
        let file = file.display();
        let url = &self.url;
        let schema = &self.schema;
        match tool {
            "pg_dump" => format!(
                "PGPASSWORD=... pg_dump --format=custom --schema={schema} --dbname='{url}' --file='{file}'"
            ),
            _ => format!(
                "PGPASSWORD=... pg_restore --clean --if-exists --single-transaction --no-owner --dbname='{url}' '{file}'"
            ),
        }
    }
}

/// `url` without its password, and the password (percent-decoded), if any.
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some((userinfo, host)) = rest[..authority_end].rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_string(), None);
    };
    (
        format!("{scheme}://{user}@{host}{}", &rest[authority_end..]),
        Some(percent_decode(password)),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The program `name` on the `PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd`; a failure carries its stderr with the password masked.
async fn run(
    tool: &'static str,
    mut cmd: tokio::process::Command,
    target: &Target,
) -> Result<Vec<u8>, BackupError> {
    let out = cmd.output().await.map_err(|source| BackupError::Io {
        path: PathBuf::from(tool),
        source,
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if let Some(p) = target.password.as_deref().filter(|p| !p.is_empty()) {
        stderr = stderr.replace(p, "***");
    }
    Err(BackupError::ToolFailed {
        tool,
        status: out.status.to_string(),
        stderr,
    })
}

/// [`crate::backup::backup`] on PostgreSQL.
pub(crate) async fn backup(url: &str, out: &Path) -> Result<Done, BackupError> {
    let target = Target::parse(url)?;
    let Some(pg_dump) = on_path("pg_dump") else {
        return Err(BackupError::ToolMissing {
            tool: "pg_dump",
            recipe: target.recipe("pg_dump", out),
        });
    };
    let tmp = crate::backup::common::temp_beside(out);
    let mut cmd = target.command(&pg_dump);
    cmd.arg("--format=custom")
        .arg(format!("--schema={}", target.schema))
        .arg(format!("--dbname={}", target.url))
        .arg("--file")
        .arg(&tmp);
    if let Err(e) = run("pg_dump", cmd, &target).await {
        discard(&tmp);
        return Err(e);
    }
    let bytes = commit_file(&tmp, out).inspect_err(|_| discard(&tmp))?;
    Ok(Done {
        target: out.display().to_string(),
        bytes,
    })
}

/// [`crate::backup::restore`] on PostgreSQL.
pub(crate) async fn restore(url: &str, file: &Path, force: bool) -> Result<Done, BackupError> {
    let target = Target::parse(url)?;
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: file.to_path_buf(),
        reason,
    };
    // A custom-format archive starts with this magic.
    let mut head = [0u8; 5];
    let read = std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(crate::backup::common::io_at(file))?;
    if read < head.len() || &head != b"PGDMP" {
        return Err(not_a_backup("not a pg_dump custom-format archive".into()));
    }
    let Some(pg_restore) = on_path("pg_restore") else {
        return Err(BackupError::ToolMissing {
            tool: "pg_restore",
            recipe: target.recipe("pg_restore", file),
        });
    };
    // The archive must hold agentd's `runs` table in the URL's schema:
    // pg_restore recreates the schema the dump was taken from.
    let mut list = target.command(&pg_restore);
    list.arg("--list").arg(file);
    let listing = run("pg_restore", list, &target).await?;
    let runs_table = format!(" TABLE {} runs ", target.schema);
    if !String::from_utf8_lossy(&listing).contains(&runs_table) {
        return Err(not_a_backup(format!(
            "it holds no agentd `runs` table in schema {:?}: restore it into the schema it was taken from",
            target.schema
        )));
    }
    if !force && has_agentd_tables(url, &target).await? {
        return Err(BackupError::TargetNotEmpty {
            target: format!("{} (schema {})", target.shown, target.schema),
        });
    }
    let mut cmd = target.command(&pg_restore);
    cmd.args([
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--no-owner",
    ])
    .arg(format!("--dbname={}", target.url))
    .arg(file);
    run("pg_restore", cmd, &target).await?;
    let bytes = std::fs::metadata(file)
        .map_err(crate::backup::common::io_at(file))?
        .len();
    Ok(Done {
        target: format!("{} (schema {})", target.shown, target.schema),
        bytes,
    })
}

/// Whether the target schema already has agentd's `runs` table.
async fn has_agentd_tables(url: &str, target: &Target) -> Result<bool, BackupError> {
    let opts = PgOptions::parse(url)?;
    let connect = PgConnectOptions::from_str(&opts.url).map_err(|e| crate::StoreError::BadUrl {
        url: target.shown.clone(),
        reason: e.to_string(),
    })?;
    let mut conn = PgConnection::connect_with(&connect)
        .await
        .map_err(crate::StoreError::from)?;
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'runs')",
    )
    .bind(&target.schema)
    .fetch_one(&mut conn)
    .await
    .map_err(crate::StoreError::from)?;
    let _ = conn.close().await;
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_taken_out_of_the_url() {
        assert_eq!(
            split_password("postgres://agentd:s%40cr:t@db:5432/x?sslmode=disable"),
            (
                "postgres://agentd@db:5432/x?sslmode=disable".to_string(),
                Some("s@cr:t".to_string())
            )
        );
        assert_eq!(
            split_password("postgres://agentd@db/x"),
            ("postgres://agentd@db/x".to_string(), None)
        );
        let t = Target::parse("postgres://u:pw@h/db?schema=s1&max_connections=2").unwrap();
        assert_eq!(
            (t.url.as_str(), t.schema.as_str()),
            ("postgres://u@h/db", "s1")
        );
        let recipe = t.recipe("pg_dump", Path::new("/b/x.dump"));
        assert!(recipe.contains("--schema=s1"), "{recipe}");
        assert!(!recipe.contains("pw"), "{recipe}");
    }
}
