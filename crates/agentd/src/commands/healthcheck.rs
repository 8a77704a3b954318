//! `agentd healthcheck`: one GET of this node's `/health` (or `/ready`),
//! exit 0 on 2xx and 1 otherwise, so a container image needs no curl.

use super::exit;
use super::failure::Failure;
use crate::cli::HealthcheckArgs;
use agentd_config::Config;
use agentd_config::deploy::loopback_base_url;

/// Runs `agentd healthcheck`.
pub(super) async fn healthcheck(config: &Config, args: &HealthcheckArgs) -> Result<u8, Failure> {
    let base = if args.metrics {
        let listen = config.server.metrics_listen.as_deref().ok_or_else(|| {
            Failure::usage("--metrics: `server.metrics_listen` is not set in the config")
        })?;
        // The metrics listener is always plain HTTP.
        loopback_base_url(listen, false)
    } else {
        let tls = config.server.tls_cert.is_some();
        loopback_base_url(&config.server.listen, tls)
    };
    let path = if args.ready { "/ready" } else { "/health" };
    let url = format!("{base}{path}");
    // The probe reaches the server by its bind address, which the
    // certificate rarely names; what is checked is that it answers, and
    // nothing secret is sent.
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .build()
        .map_err(|e| Failure::failed(format!("cannot build the HTTP client: {e}")))?;
    match client.get(&url).send().await {
        Ok(resp) if resp.status().is_success() => Ok(exit::OK),
        Ok(resp) => Err(Failure::failed(format!("{url}: {}", resp.status()))),
        Err(e) => Err(Failure::failed(format!("{url}: {e}"))),
    }
}
