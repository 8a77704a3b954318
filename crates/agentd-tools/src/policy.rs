//! `[[policies]]`: which roles may call which tools. Fails closed: anything
//! that cannot be evaluated with certainty denies.

use std::collections::BTreeMap;

use agentd_config::PolicyConfig;

use crate::error::ToolsError;
use crate::glob::Glob;

/// The verdict on one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// The call may proceed.
    Allow,
    /// The call must not run; `reason` is safe to show the caller and to
    /// write to the audit log.
    Deny { reason: String },
}

impl PolicyDecision {
    /// True for [`PolicyDecision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, PolicyDecision::Allow)
    }
}

/// Compiled `[[policies]]`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policies {
    /// `None`: no `[[policies]]` at all, every tool the agent lists is allowed.
    /// `Some`: role name -> patterns (several entries for one role add up).
    rules: Option<BTreeMap<String, Vec<Glob>>>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies::allow_all()
    }
}

impl Policies {
    /// Compiles `[[policies]]`; an empty slice means no policy (allow all).
    ///
    /// # Errors
    /// [`ToolsError::Config`] for an empty role or pattern (the config crate
    /// rejects these too; this guards hand-built configs).
    pub fn from_config(policies: &[PolicyConfig]) -> Result<Policies, ToolsError> {
        if policies.is_empty() {
            return Ok(Policies::allow_all());
        }
        let mut rules: BTreeMap<String, Vec<Glob>> = BTreeMap::new();
        for (i, policy) in policies.iter().enumerate() {
            let role = policy.role.trim();
            if role.is_empty() {
                return Err(ToolsError::config(
                    format!("policies[{i}].role"),
                    "expected a non-empty role name",
                ));
            }
            let patterns = rules.entry(role.to_owned()).or_default();
            for (j, pattern) in policy.allow.iter().enumerate() {
                if pattern.trim().is_empty() || pattern.contains('\0') {
                    return Err(ToolsError::config(
                        format!("policies[{i}].allow[{j}]"),
                        "expected a tool name or glob",
                    ));
                }
                patterns.push(Glob::new(pattern.trim()));
            }
        }
        Ok(Policies { rules: Some(rules) })
    }

    /// No policies: every call is allowed.
    pub fn allow_all() -> Policies {
        Policies { rules: None }
    }

    /// Policies that deny everything (what to fall back to when the policy
    /// configuration itself cannot be loaded).
    pub fn deny_all() -> Policies {
        Policies {
            rules: Some(BTreeMap::new()),
        }
    }

    /// True when `[[policies]]` is configured (calls are then checked).
    pub fn is_enforced(&self) -> bool {
        self.rules.is_some()
    }

    /// May a caller with `roles` call `tool` (its full name, e.g.
    /// `mcp:files/read`)? Without policies: yes. With: only if one of the
    /// roles has a matching pattern. An empty or malformed tool name, or a
    /// caller without roles, is denied.
    pub fn allows(&self, roles: &[String], tool: &str) -> PolicyDecision {
        let Some(rules) = &self.rules else {
            return PolicyDecision::Allow;
        };
        if tool.is_empty() || tool.contains('\0') {
            return PolicyDecision::Deny {
                reason: format!("invalid tool name {tool:?}"),
            };
        }
        let allowed = roles.iter().any(|role| {
            rules
                .get(role.trim())
                .is_some_and(|patterns| patterns.iter().any(|p| p.matches(tool)))
        });
        if allowed {
            PolicyDecision::Allow
        } else if roles.is_empty() {
            PolicyDecision::Deny {
                reason: format!("tool {tool:?} denied: the caller has no roles"),
            }
        } else {
            PolicyDecision::Deny {
                reason: format!(
                    "tool {tool:?} is not allowed for role(s) {}",
                    roles.join(", ")
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(role: &str, allow: &[&str]) -> PolicyConfig {
        PolicyConfig {
            role: role.to_owned(),
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn absent_policies_allow_everything() {
        let p = Policies::from_config(&[]).unwrap();
        assert!(!p.is_enforced());
        assert!(p.allows(&[], "anything").is_allowed());
        assert!(p.allows(&roles(&["x"]), "mcp:a/b").is_allowed());
    }

    #[test]
    fn roles_map_to_globs() {
        let p = Policies::from_config(&[
            policy("user", &["echo", "http_get", "mcp:files/*"]),
            policy("admin", &["*"]),
            policy("user", &["ask_human"]),
            policy("nobody", &[]),
        ])
        .unwrap();
        assert!(p.is_enforced());
        let user = roles(&["user"]);
        for (tool, allowed) in [
            ("echo", true),
            ("http_get", true),
            ("ask_human", true),
            ("mcp:files/read", true),
            ("mcp:files/write", true),
            ("http_request", false),
            ("echo2", false),
            ("mcp:other/read", false),
            ("mcp:filesx/read", false),
        ] {
            assert_eq!(p.allows(&user, tool).is_allowed(), allowed, "{tool}");
        }
        assert!(p.allows(&roles(&["admin"]), "webhook_x").is_allowed());
        assert!(
            p.allows(&roles(&["guest", "admin"]), "write_file")
                .is_allowed()
        );
        assert!(!p.allows(&roles(&["nobody"]), "echo").is_allowed());
        assert!(!p.allows(&roles(&["guest"]), "echo").is_allowed());

        // Fail closed.
        let PolicyDecision::Deny { reason } = p.allows(&[], "echo") else {
            panic!("no roles must deny");
        };
        assert!(reason.contains("no roles"), "{reason}");
        assert!(!p.allows(&roles(&["admin"]), "").is_allowed());
        assert!(!p.allows(&roles(&["admin"]), "a\0b").is_allowed());
        let PolicyDecision::Deny { reason } = p.allows(&user, "write_file") else {
            panic!("must deny");
        };
        assert_eq!(
            reason,
            "tool \"write_file\" is not allowed for role(s) user"
        );
        assert!(
            !Policies::deny_all()
                .allows(&roles(&["admin"]), "echo")
                .is_allowed()
        );
    }

    #[test]
    fn malformed_policies_are_errors() {
        let err = Policies::from_config(&[policy(" ", &["echo"])]).unwrap_err();
        assert_eq!(
            err,
            ToolsError::config("policies[0].role", "expected a non-empty role name")
        );
        let err = Policies::from_config(&[policy("u", &["echo", ""])]).unwrap_err();
        assert!(err.to_string().contains("policies[0].allow[1]"), "{err}");
    }
}
