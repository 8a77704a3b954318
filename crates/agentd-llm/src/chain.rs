//! The fallback chain the engine calls: an agent's `providers` in order,
//! each behind retry → circuit breaker → metering → per-call timeout, skipping a
//! provider whose circuit is open; the first answer wins.

use crate::breaker::WithBreaker;
use crate::{
    BreakerRegistry, BreakerSettings, BuildError, CircuitBreaker, Completion, CompletionRequest,
    Metered, OnToken, Provider, ProviderError, Retry, RetryPolicy, WithTimeout,
};
use agentd_config::{AgentConfig, ProviderConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What one model call through the chain produced.
#[derive(Debug)]
pub struct ChainOutcome {
    /// The provider that answered, or the last one tried (or skipped).
    pub provider: String,
    /// Its answer, or the last error.
    pub result: Result<Completion, ProviderError>,
    /// Calls made over all providers, retries included (0 when every
    /// circuit was open).
    pub attempts: u32,
    /// Whether text reached `on_token`. A failure after that is final: it
    /// is neither retried nor passed to the next provider.
    pub tokens_forwarded: bool,
}

#[derive(Clone)]
struct Link {
    name: String,
    call: Retry<Arc<dyn Provider>>,
    breaker: Option<Arc<CircuitBreaker>>,
}

/// An agent's providers with their resilience decorators. Cheap to clone
/// (clones share providers and breakers).
#[derive(Clone)]
pub struct ProviderChain {
    links: Vec<Link>,
}

impl std::fmt::Debug for ProviderChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.links.iter().map(|l| &l.name))
            .finish()
    }
}

impl ProviderChain {
    /// Builds `agent`'s chain from the `[providers]` table, reading API keys
    /// from the process environment. Breakers come from `breakers` (shared
    /// per provider) when the agent has `circuit_breaker`.
    ///
    /// # Errors
    /// An unknown provider name, or a provider that cannot be built (see
    /// [`crate::build`]).
    pub fn from_config(
        agent: &AgentConfig,
        providers: &BTreeMap<String, ProviderConfig>,
        breakers: &BreakerRegistry,
    ) -> Result<Self, BuildError> {
        Self::from_config_with_env(agent, providers, breakers, &|var| std::env::var(var).ok())
    }

    /// [`ProviderChain::from_config`] with an explicit environment lookup.
    ///
    /// # Errors
    /// As [`ProviderChain::from_config`].
    pub fn from_config_with_env(
        agent: &AgentConfig,
        providers: &BTreeMap<String, ProviderConfig>,
        breakers: &BreakerRegistry,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, BuildError> {
        let mut built = Vec::with_capacity(agent.providers.len());
        for name in &agent.providers {
            let cfg = providers
                .get(name)
                .ok_or_else(|| BuildError::UnknownProvider {
                    agent: agent.name.clone(),
                    provider: name.clone(),
                })?;
            built.push((
                crate::build_with_env(name, cfg, env)?,
                crate::call_timeout(cfg),
            ));
        }
        Ok(Self::new(
            built,
            RetryPolicy::from_config(agent.retry.as_ref()),
            agent.circuit_breaker.as_ref().map(BreakerSettings::from),
            breakers,
        ))
    }

    /// A chain over already-built providers, each with its per-call timeout.
    pub fn new(
        providers: Vec<(Arc<dyn Provider>, Duration)>,
        retry: RetryPolicy,
        breaker: Option<BreakerSettings>,
        breakers: &BreakerRegistry,
    ) -> Self {
        let links = providers
            .into_iter()
            .map(|(provider, timeout)| {
                let name = provider.name().to_owned();
                let timed = Metered::new(WithTimeout::new(provider, timeout));
                let breaker = breaker.map(|s| breakers.get_or_create(&name, s));
                let guarded: Arc<dyn Provider> = match &breaker {
                    Some(b) => Arc::new(WithBreaker::new(timed, b.clone())),
                    None => Arc::new(timed),
                };
                Link {
                    name,
                    call: Retry::new(guarded, retry),
                    breaker,
                }
            })
            .collect();
        Self { links }
    }

    /// Provider names, in fallback order.
    pub fn provider_names(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(|l| l.name.as_str())
    }

    /// One model call: each provider in order until one answers. With
    /// `on_token`, the call streams and text is forwarded as it arrives.
    pub async fn complete(
        &self,
        req: &CompletionRequest,
        on_token: Option<OnToken<'_>>,
    ) -> ChainOutcome {
        let mut attempts = 0;
        let mut last: Option<(String, ProviderError)> = None;
        for (i, link) in self.links.iter().enumerate() {
            if let Some(b) = &link.breaker
                && !b.is_call_permitted()
            {
                tracing::debug!(provider = %link.name, "circuit open; skipping provider");
                if last.is_none() {
                    last = Some((
                        link.name.clone(),
                        ProviderError::CircuitOpen {
                            provider: link.name.clone(),
                        },
                    ));
                }
                continue;
            }
            let out = link.call.run(req, on_token).await;
            attempts += out.attempts;
            match out.result {
                Ok(completion) => {
                    return ChainOutcome {
                        provider: link.name.clone(),
                        result: Ok(completion),
                        attempts,
                        tokens_forwarded: out.tokens_forwarded,
                    };
                }
                Err(error) if out.tokens_forwarded => {
                    tracing::warn!(provider = %link.name, error = %error, "provider failed after streaming text; not falling back");
                    return ChainOutcome {
                        provider: link.name.clone(),
                        result: Err(error),
                        attempts,
                        tokens_forwarded: true,
                    };
                }
                Err(error) => {
                    if i + 1 < self.links.len() {
                        tracing::warn!(provider = %link.name, error = %error, "provider failed; trying the next in the chain");
                    }
                    last = Some((link.name.clone(), error));
                }
            }
        }
        let (provider, error) = last.unwrap_or_else(|| {
            (
                String::new(),
                ProviderError::BadRequest {
                    provider: String::new(),
                    message: "agent has no providers".to_owned(),
                },
            )
        });
        ChainOutcome {
            provider,
            result: Err(error),
            attempts,
            tokens_forwarded: false,
        }
    }
}
