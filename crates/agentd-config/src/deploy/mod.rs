//! Deployment files generated from a loaded config (`agentd deploy`).
//!
//! Rendering is pure (config in, files out) so it is tested without the
//! CLI; [`write_files`] is the one place that touches the disk. Secrets are
//! never rendered: the files name the environment variables the config's
//! `*_env` keys point at, and the operator supplies their values through
//! the target's own secret mechanism (`--env-file`, an `EnvironmentFile`).

mod compose;
mod docker;
mod k8s;
mod systemd;
mod yaml;

#[cfg(test)]
mod compose_tests;
#[cfg(test)]
mod k8s_tests;
#[cfg(test)]
mod tests;

use crate::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `agentd deploy` can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployTarget {
    /// A multi-stage `Dockerfile` and its `.dockerignore`.
    Docker,
    /// `compose.yaml`: the API, worker replicas, PostgreSQL (and Redis).
    Compose,
    /// `agentd.yaml`: Kubernetes Deployments, Service, ConfigMap, HPA, PDBs,
    /// NetworkPolicy, ServiceAccount.
    K8s,
    /// A hardened `agentd.service` unit and an `agentd.env.example`.
    Systemd,
}

/// Where the generated files expect things to be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOptions {
    /// The `agentd` binary the unit runs.
    pub binary: PathBuf,
    /// The config file the unit passes to `--config`.
    pub config_path: PathBuf,
    /// Compose: how many `agentd worker` replicas.
    pub workers: u32,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            binary: PathBuf::from("/usr/local/bin/agentd"),
            config_path: PathBuf::from("/etc/agentd/agentd.toml"),
            workers: 2,
        }
    }
}

/// One generated file, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployFile {
    pub name: &'static str,
    pub contents: String,
}

/// Rendering or writing the generated files failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render the config: {0}")]
    Render(String),
}

/// The files of `target` for `config`.
///
/// # Errors
/// The config cannot be written as TOML (for the k8s ConfigMap).
pub fn render(
    config: &Config,
    target: DeployTarget,
    options: &DeployOptions,
) -> Result<Vec<DeployFile>, DeployError> {
    Ok(match target {
        DeployTarget::Docker => docker::render(),
        DeployTarget::Compose => compose::render(config, options),
        DeployTarget::K8s => k8s::render(config, options)?,
        DeployTarget::Systemd => systemd::render(config, options),
    })
}

/// Creates `dir` if needed and writes every file into it.
///
/// # Errors
/// The directory cannot be created or a file cannot be written; the error
/// names the path.
pub fn write_files(dir: &Path, files: &[DeployFile]) -> Result<(), DeployError> {
    std::fs::create_dir_all(dir).map_err(|source| DeployError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for file in files {
        let path = dir.join(file.name);
        std::fs::write(&path, &file.contents)
            .map_err(|source| DeployError::Write { path, source })?;
    }
    Ok(())
}

/// The environment variables that hold the config's secrets, sorted and
/// without duplicates: what every target must pass in from outside.
pub fn secret_env_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .store
        .encryption_key_env
        .iter()
        .chain(
            config
                .providers
                .values()
                .filter_map(|p| p.api_key_env.as_ref()),
        )
        .chain(config.tools.values().filter_map(|t| t.secret_env.as_ref()))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// How long a supervisor must wait after SIGTERM before killing: the drain
/// delay, then the shutdown grace for steps in flight, plus a margin for
/// handing leases back and closing the store.
pub fn stop_timeout(config: &Config) -> Duration {
    const MARGIN: Duration = Duration::from_secs(15);
    config.server.drain_delay.get() + config.queue.shutdown_grace.get() + MARGIN
}

/// The directory of a file-backed SQLite store, if the config names one
/// (`None` for PostgreSQL and in-memory SQLite). A relative path is
/// relative to the process's working directory.
pub fn sqlite_dir(config: &Config) -> Option<PathBuf> {
    let path = crate::sqlite_file(&config.store.url)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    Some(if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_path_buf()
    })
}

/// The URL a process on this host reaches a listener on: a wildcard bind
/// address (`0.0.0.0`, `[::]`) is probed on loopback. For `agentd
/// healthcheck`, which runs beside the server (in its container or unit).
pub fn loopback_base_url(listen: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "80"));
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    format!("{scheme}://{host}:{port}")
}
