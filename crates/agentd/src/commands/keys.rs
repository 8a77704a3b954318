//! `agentd keys`: mint, list and revoke API keys. The rules live in the
//! engine's key facade; the CLI acts on its configured store as
//! [`Manager::Local`], with every tenant in reach.

use super::failure::Failure;
use super::print::{expires_text, print_keys, print_page_json, roles_text};
use super::{exit, open_store, print_json};
use crate::cli::KeysCommand;
use agentd_config::{AuthMode, Config};
use agentd_core::{KeyId, PrincipalId, TenantId};
use agentd_engine::keys::{Keys, Manager, MintRequest, Operators};
use agentd_server::MintedKey;
use agentd_store::Store;
use std::sync::Arc;

/// Runs one `agentd keys` subcommand.
pub(super) async fn keys(config: &Config, cmd: &KeysCommand, json: bool) -> Result<u8, Failure> {
    match cmd {
        KeysCommand::Create {
            tenant,
            principal,
            roles,
            name,
            expires,
        } => {
            let req = MintRequest {
                tenant: Some(parse_tenant(tenant)?),
                principal: PrincipalId::parse(principal)
                    .map_err(|e| Failure::usage(format!("--principal: {e}")))?,
                roles: roles.clone(),
                name: name.clone(),
                expires_in: *expires,
            };
            create(config, req, json).await
        }
        KeysCommand::List {
            tenant,
            limit,
            cursor,
        } => {
            let tenant = tenant.as_deref().map(parse_tenant).transpose()?;
            let page = Local::open(config)
                .await?
                .keys()
                .list(Manager::Local, tenant, *limit, cursor.as_deref())
                .await?;
            if json {
                print_page_json(&page);
            } else {
                print_keys(&page);
            }
            Ok(exit::OK)
        }
        KeysCommand::Revoke { id } => {
            let id = KeyId::parse(id).map_err(|e| Failure::usage(e.to_string()))?;
            let key = Local::open(config)
                .await?
                .keys()
                .revoke(Manager::Local, None, &id)
                .await?
                .ok_or_else(|| Failure::failed(format!("API key {id} not found")))?;
            if json {
                print_json(&key);
            }
            let at = key.revoked_at.map(agentd_core::rfc3339).unwrap_or_default();
            eprintln!(
                "API key {id} (tenant {}, principal {}) revoked at {at}; serving processes \
                 refuse it within 5 seconds",
                key.tenant, key.principal
            );
            Ok(exit::OK)
        }
    }
}

async fn create(config: &Config, req: MintRequest, json: bool) -> Result<u8, Failure> {
    let minted = Local::open(config)
        .await?
        .keys()
        .mint(Manager::Local, req)
        .await?;
    let minted = MintedKey::from(minted);
    let key = &minted.key;
    if json {
        print_json(&minted);
    } else {
        // The key alone on stdout, so `KEY=$(agentd keys create ...)` works;
        // what it is on stderr.
        println!("{}", minted.token);
        eprintln!("This is the only time the key is shown; agentd stores only its hash.");
        eprintln!("  id:        {}", key.id);
        eprintln!("  tenant:    {}", key.tenant);
        eprintln!("  principal: {}", key.principal);
        eprintln!("  roles:     {}", roles_text(&key.roles));
        if let Some(name) = &key.name {
            eprintln!("  name:      {name}");
        }
        eprintln!("  expires:   {}", expires_text(key.expires_at));
    }
    if config.auth.mode != AuthMode::ApiKey {
        eprintln!(
            "note: auth.mode is \"{}\"; the server checks keys only with auth.mode = \"api_key\"",
            config.auth.mode
        );
    }
    Ok(exit::OK)
}

/// The configured store and operators, for the key facade: what the CLI
/// acts on, opened after the input is checked.
struct Local {
    store: Arc<dyn Store>,
    operators: Operators,
}

impl Local {
    async fn open(config: &Config) -> Result<Self, Failure> {
        Ok(Self {
            store: open_store(config).await?,
            operators: Operators::from_config(config),
        })
    }

    fn keys(&self) -> Keys<'_> {
        Keys::new(self.store.as_ref(), &self.operators)
    }
}

fn parse_tenant(s: &str) -> Result<TenantId, Failure> {
    TenantId::parse(s).map_err(|e| Failure::usage(format!("--tenant: {e}")))
}
