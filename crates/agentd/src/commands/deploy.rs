//! `agentd deploy`: renders the target's files (agentd-config's `deploy`)
//! and writes them into `--out`.

use super::failure::Failure;
use super::{exit, print_json};
use crate::cli::{DeployArgs, DeployTargetArg};
use agentd_config::Config;
use agentd_config::deploy::{self, DeployOptions, DeployTarget};

/// Runs `agentd deploy`.
pub(super) fn deploy(config: &Config, args: &DeployArgs, json: bool) -> Result<u8, Failure> {
    let target = match args.target {
        DeployTargetArg::Docker => DeployTarget::Docker,
        DeployTargetArg::Compose => DeployTarget::Compose,
        DeployTargetArg::K8s => DeployTarget::K8s,
        DeployTargetArg::Systemd => DeployTarget::Systemd,
    };
    let options = DeployOptions {
        binary: args.bin.clone(),
        config_path: args.config_path.clone(),
        workers: args.workers,
    };
    let files =
        deploy::render(config, target, &options).map_err(|e| Failure::failed(e.to_string()))?;
    // An output directory we cannot write is a usage error: the operator
    // named it.
    deploy::write_files(&args.out, &files).map_err(|e| Failure::usage(format!("--out: {e}")))?;
    let written: Vec<String> = files
        .iter()
        .map(|f| args.out.join(f.name).display().to_string())
        .collect();
    if json {
        print_json(&serde_json::json!({ "files": written }));
    } else {
        for path in &written {
            println!("{path}");
        }
    }
    Ok(exit::OK)
}
