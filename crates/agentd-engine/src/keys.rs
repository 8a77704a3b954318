//! Managing API keys: minting, listing and revoking, with the rules of who
//! may do what in one place, for the HTTP API and the CLI alike.
//!
//! Rules:
//! - Managing keys needs role `admin`, or being an operator (role
//!   `operator`, or a principal named in `auth.operators`).
//! - A caller manages its own tenant's keys. Naming another tenant is for
//!   operators only; for anyone else it is `Forbidden`, and another
//!   tenant's key answers like a missing one.
//! - Only an operator may mint a key that would make its holder an
//!   operator (role `operator`, or an operator's principal): an admin of
//!   one tenant cannot mint its way into the others.
//! - The local CLI ([`Manager::Local`]) owns the store: every tenant.

use crate::{ADMIN_ROLE, Engine, EngineError, Result};
use agentd_config::Config;
use agentd_core::{ApiKeyToken, Identity, KeyId, Millis, PrincipalId, TenantId};
use agentd_store::{ApiKey, NewApiKey, Page, Store};
use std::sync::Arc;
use std::time::Duration;

/// Role that may manage API keys of every tenant.
pub const OPERATOR_ROLE: &str = "operator";

/// Longest key name.
const MAX_NAME_CHARS: usize = 200;
/// Longest role name.
const MAX_ROLE_CHARS: usize = 64;
/// Most roles on one key.
const MAX_ROLES: usize = 32;

/// Who may act across tenants: role `operator`, or a principal named in
/// `auth.operators`.
#[derive(Debug, Clone, Default)]
pub struct Operators(Arc<[String]>);

impl Operators {
    /// The operators `auth.operators` names.
    pub fn from_config(config: &Config) -> Self {
        Self(config.auth.operators.iter().cloned().collect())
    }

    /// Whether `who` is an operator.
    pub fn includes(&self, who: &Identity) -> bool {
        who.has_role(OPERATOR_ROLE) || self.names(&who.principal)
    }

    /// Whether `principal` is named in `auth.operators`.
    fn names(&self, principal: &PrincipalId) -> bool {
        self.0.iter().any(|p| p.as_str() == principal.as_str())
    }
}

/// Who manages keys.
#[derive(Debug, Clone, Copy)]
pub enum Manager<'a> {
    /// An authenticated API caller.
    Caller(&'a Identity),
    /// The local CLI, acting on the store it was configured with: every
    /// tenant.
    Local,
}

impl Manager<'_> {
    /// Who the audit log records as having acted.
    fn actor(&self) -> &str {
        match self {
            Manager::Caller(who) => who.principal.as_str(),
            Manager::Local => LOCAL_ACTOR,
        }
    }
}

/// The actor the audit log records for the local CLI's key changes.
pub const LOCAL_ACTOR: &str = "cli";

/// A key to mint.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// The key's tenant; `None` is the caller's own (required for
    /// [`Manager::Local`]).
    pub tenant: Option<TenantId>,
    pub principal: PrincipalId,
    pub roles: Vec<String>,
    pub name: Option<String>,
    /// `None`: the key does not expire.
    pub expires_in: Option<Duration>,
}

/// A minted key: as stored, and the token to hand to its owner, once.
#[derive(Debug)]
pub struct Minted {
    pub key: ApiKey,
    pub token: ApiKeyToken,
}

/// Key management over a store. Borrowed, so building one per request
/// costs nothing.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    store: &'a dyn Store,
    operators: &'a Operators,
}

impl Engine {
    /// Key management over this engine's store.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(self.inner.store.as_ref(), &self.inner.operators)
    }

    /// Who may act across tenants.
    pub fn operators(&self) -> &Operators {
        &self.inner.operators
    }
}

impl<'a> Keys<'a> {
    /// Key management over `store` (the CLI builds no engine).
    pub fn new(store: &'a dyn Store, operators: &'a Operators) -> Self {
        Self { store, operators }
    }

    /// Mints a key; the token in the answer is the only copy of its secret.
    pub async fn mint(&self, by: Manager<'_>, req: MintRequest) -> Result<Minted> {
        let tenant = target(self.operators, by, req.tenant)?;
        let roles = check_roles(req.roles)?;
        check_grant(self.operators, by, &roles, &req.principal)?;
        let name = req.name.map(check_name).transpose()?;
        let expires_at = req.expires_in.map(expiry).transpose()?;
        let token = ApiKeyToken::generate()?;
        let key = self
            .store
            .create_key(
                &tenant,
                &NewApiKey {
                    id: token.id().clone(),
                    principal: req.principal,
                    roles,
                    name,
                    secret_hash: token.secret_hash(),
                    expires_at,
                },
                by.actor(),
            )
            .await?;
        tracing::info!(key_id = %key.id, tenant = %key.tenant, principal = %key.principal, "API key minted");
        Ok(Minted { key, token })
    }

    /// Keys, newest first: of the caller's tenant or the one named (see the
    /// rules); [`Manager::Local`] without a tenant lists every tenant's.
    pub async fn list(
        &self,
        by: Manager<'_>,
        tenant: Option<TenantId>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ApiKey>> {
        let scope = scope(self.operators, by, tenant)?;
        Ok(self.store.list_keys(scope.as_ref(), limit, cursor).await?)
    }

    /// Revokes a key in scope (as for [`Keys::list`]); `None` if there is
    /// no such key there.
    pub async fn revoke(
        &self,
        by: Manager<'_>,
        tenant: Option<TenantId>,
        id: &KeyId,
    ) -> Result<Option<ApiKey>> {
        let scope = scope(self.operators, by, tenant)?;
        let revoked = self
            .store
            .revoke_key(scope.as_ref(), id, by.actor())
            .await?;
        if let Some(key) = &revoked {
            tracing::info!(key_id = %key.id, tenant = %key.tenant, "API key revoked");
        }
        Ok(revoked)
    }
}

/// The tenant whose keys a request acts on; `None` is every tenant's
/// (the local CLI only).
fn scope(
    operators: &Operators,
    by: Manager<'_>,
    tenant: Option<TenantId>,
) -> Result<Option<TenantId>> {
    match by {
        Manager::Local => Ok(tenant),
        Manager::Caller(_) => target(operators, by, tenant).map(Some),
    }
}

/// The one tenant a request acts on, if `by` may act on it.
fn target(operators: &Operators, by: Manager<'_>, tenant: Option<TenantId>) -> Result<TenantId> {
    let who = match by {
        Manager::Local => {
            return tenant.ok_or_else(|| EngineError::Invalid("a tenant is required".into()));
        }
        Manager::Caller(who) => who,
    };
    let operator = operators.includes(who);
    if !operator && !who.has_role(ADMIN_ROLE) {
        return Err(EngineError::Forbidden(format!(
            "managing API keys needs role {ADMIN_ROLE:?}"
        )));
    }
    match tenant {
        Some(t) if t != who.tenant && !operator => Err(EngineError::Forbidden(
            "only an operator may manage another tenant's keys".into(),
        )),
        Some(t) => Ok(t),
        None => Ok(who.tenant.clone()),
    }
}

/// Refuses a key with operator rights minted by a non-operator.
fn check_grant(
    operators: &Operators,
    by: Manager<'_>,
    roles: &[String],
    principal: &PrincipalId,
) -> Result<()> {
    let Manager::Caller(who) = by else {
        return Ok(());
    };
    let grants_operator = roles.iter().any(|r| r == OPERATOR_ROLE) || operators.names(principal);
    if grants_operator && !operators.includes(who) {
        return Err(EngineError::Forbidden(
            "only an operator may mint a key with operator rights".into(),
        ));
    }
    Ok(())
}

/// Roles as given, checked and without repeats: a role is matched by name
/// in policies and travels comma-separated in some places, so it must be a
/// plain token.
fn check_roles(roles: Vec<String>) -> Result<Vec<String>> {
    if roles.len() > MAX_ROLES {
        return Err(EngineError::Invalid(format!(
            "roles: at most {MAX_ROLES} roles"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        let ok = !role.is_empty()
            && role.chars().count() <= MAX_ROLE_CHARS
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !ok {
            return Err(EngineError::Invalid(format!(
                "roles: {role:?} is not a role (1 to {MAX_ROLE_CHARS} letters, digits, '-', '_', \
                 '.' or ':')"
            )));
        }
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(out)
}

fn check_name(name: String) -> Result<String> {
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "name: at most {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(name)
}

/// When a key minted now for `d` expires.
fn expiry(d: Duration) -> Result<Millis> {
    let ms = Millis::try_from(d.as_millis()).ok().filter(|ms| *ms > 0);
    ms.and_then(|ms| agentd_core::now_millis().checked_add(ms))
        .ok_or_else(|| EngineError::Invalid("expires_in: must be a positive duration".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(tenant: &str, principal: &str, roles: &[&str]) -> Identity {
        Identity {
            tenant: TenantId::parse(tenant).unwrap(),
            principal: PrincipalId::parse(principal).unwrap(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn forbidden<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(EngineError::Forbidden(_)))
    }

    #[test]
    fn admins_manage_their_own_tenant_and_operators_any() {
        let ops = Operators(vec!["root".to_string()].into());
        let admin = who("a", "alice", &["admin"]);
        let reader = who("a", "rob", &["reader"]);
        let operator = who("a", "olga", &["operator"]);
        let named = who("a", "root", &[]);

        assert_eq!(target(&ops, Manager::Caller(&admin), None).unwrap(), t("a"));
        assert_eq!(
            target(&ops, Manager::Caller(&admin), Some(t("a"))).unwrap(),
            t("a")
        );
        assert!(forbidden(target(
            &ops,
            Manager::Caller(&admin),
            Some(t("b"))
        )));
        assert!(forbidden(target(&ops, Manager::Caller(&reader), None)));
        for op in [&operator, &named] {
            assert_eq!(
                target(&ops, Manager::Caller(op), Some(t("b"))).unwrap(),
                t("b")
            );
            assert_eq!(
                scope(&ops, Manager::Caller(op), None).unwrap(),
                Some(t("a"))
            );
        }
        assert_eq!(scope(&ops, Manager::Local, None).unwrap(), None);
        assert!(matches!(
            target(&ops, Manager::Local, None),
            Err(EngineError::Invalid(_))
        ));
    }

    #[test]
    fn only_operators_mint_operator_rights() {
        let ops = Operators(vec!["root".to_string()].into());
        let admin = who("a", "alice", &["admin"]);
        let operator = who("a", "olga", &["operator"]);
        let p = |s: &str| PrincipalId::parse(s).unwrap();
        let op_role = ["operator".to_string()];

        assert!(check_grant(&ops, Manager::Caller(&admin), &[], &p("bot")).is_ok());
        assert!(forbidden(check_grant(
            &ops,
            Manager::Caller(&admin),
            &op_role,
            &p("bot")
        )));
        assert!(forbidden(check_grant(
            &ops,
            Manager::Caller(&admin),
            &[],
            &p("root")
        )));
        assert!(check_grant(&ops, Manager::Caller(&operator), &op_role, &p("root")).is_ok());
        assert!(check_grant(&ops, Manager::Local, &op_role, &p("root")).is_ok());
    }

    #[test]
    fn roles_names_and_expiries_are_checked() {
        let roles = check_roles(vec!["admin".into(), "x:y".into(), "admin".into()]).unwrap();
        assert_eq!(roles, ["admin", "x:y"]);
        for bad in ["", "a,b", "a b", &"r".repeat(65)] {
            assert!(
                matches!(
                    check_roles(vec![bad.to_string()]),
                    Err(EngineError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(check_name("ci deploy".into()).is_ok());
        assert!(check_name("a\nb".into()).is_err());
        assert!(expiry(Duration::ZERO).is_err());
        assert!(expiry(Duration::MAX).is_err());
        let at = expiry(Duration::from_secs(60)).unwrap();
        assert!((at - agentd_core::now_millis() - 60_000).abs() < 5_000);
    }
}
