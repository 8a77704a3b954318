//! Config pieces and identities the tests share.

use agentd_core::{Identity, PrincipalId, TenantId};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// The W1 script: echo the input, then reply with the echoed text.
pub const W1_SCRIPT: &str = r#"[
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]"#;

/// An admin identity of `tenant` with principal `p`.
pub fn identity(tenant: &str) -> Result<Identity, agentd_core::IdError> {
    Ok(Identity {
        tenant: TenantId::parse(tenant)?,
        principal: PrincipalId::parse("p")?,
        roles: vec!["admin".into()],
    })
}

/// The URL of a SQLite database `t.db` in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/t.db", dir.display())
}

/// A name unique to this process and call (`prefix_PID_N`), for schemas
/// that tests running in parallel must not share.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}
