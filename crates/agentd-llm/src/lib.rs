//! Model providers behind one [`Provider`] trait: the scripted mock (the
//! boundary agentd itself mocks), OpenAI-compatible chat completions and
//! Anthropic Messages clients, the resilience decorators around them (retry,
//! timeout, circuit breaker, fallback chain) and pricing of token usage.
//!
//! The engine calls a [`ProviderChain`], built once per agent with
//! [`ProviderChain::from_config`] and one process-wide [`BreakerRegistry`]:
//!
//! ```no_run
//! # async fn demo(config: agentd_config::Config, req: agentd_llm::CompletionRequest)
//! # -> Result<(), agentd_llm::BuildError> {
//! use agentd_llm::{BreakerRegistry, ProviderChain};
//! use std::sync::Arc;
//!
//! let breakers = Arc::new(BreakerRegistry::new()); // one per process; `/ready` reads it
//! let agent = &config.agents[0];
//! let chain = ProviderChain::from_config(agent, &config.providers, &breakers)?;
//! let out = chain.complete(&req, None).await; // or Some(&|t: &str| ...) to stream
//! println!("{} answered after {} attempts", out.provider, out.attempts);
//! for (provider, state) in breakers.breaker_states() {
//!     println!("{provider}: {state}");
//! }
//! # Ok(()) }
//! ```
//!
//! Layering per provider, outermost first: [`Retry`] (backoff + jitter,
//! `Retry-After`, no retry once text was streamed) → [`WithBreaker`] (one
//! [`CircuitBreaker`] per provider name, shared through the registry) →
//! [`Metered`] (call duration, time to first token, errors by class) →
//! [`WithTimeout`] (`providers.<name>.timeout`) → the client. Every failed
//! attempt counts towards the breaker, and an open breaker stops the retries
//! so the chain moves to the next provider at once.

pub mod anthropic;
pub mod breaker;
pub mod chain;
mod error;
mod http;
mod messages;
pub mod metered;
pub mod mock;
pub mod openai;
pub mod pricing;
pub mod retry;
pub mod timeout;
mod traced;

pub use anthropic::AnthropicProvider;
pub use breaker::{
    BreakerObserver, BreakerRegistry, BreakerSettings, BreakerSnapshot, BreakerState,
    BreakerTransition, CircuitBreaker, Permit, WithBreaker,
};
pub use chain::{ChainOutcome, ProviderChain};
pub use error::{BuildError, ProviderError};
pub use http::{ApiKey, HttpSettings};
pub use messages::Messages;
pub use metered::Metered;
pub use mock::MockProvider;
pub use openai::OpenAiProvider;
pub use retry::{Retry, RetryOutcome, RetryPolicy};
pub use timeout::WithTimeout;
pub use traced::{RunTags, Traced, for_run};

use agentd_config::{ProviderConfig, ProviderKind};
use agentd_core::{Message, ToolSpec, Usage};

use std::sync::Arc;
use std::time::Duration;

/// What a provider is asked.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub system: Option<String>,
    /// The conversation so far, oldest first (no system message). Shared
    /// with the caller's copy, so building a request does not copy it.
    pub messages: Messages,
    pub tools: Vec<ToolSpec>,
}

/// What a provider answered: one assistant message.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub message: Message,
    pub usage: Usage,
    /// The model that answered: the key looked up in `[pricing]` (the
    /// configured model name, not the dated snapshot the API echoes).
    pub model: String,
}

/// Receives text deltas of a streamed completion as they arrive. Only
/// non-empty text is passed; tool-call deltas are assembled, not forwarded.
pub type OnToken<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A model endpoint.
///
/// `complete` is one non-streamed call. `complete_streaming` is the same call
/// with text forwarded to `on_token` while it is generated; it returns the
/// same assembled [`Completion`]. Its default runs `complete` and forwards the
/// whole reply text as one chunk, so every provider (the mock included) can be
/// driven through the streaming path.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The configured provider name (`[providers.<name>]`).
    fn name(&self) -> &str;

    /// One model call.
    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError>;

    /// One model call, streaming text deltas to `on_token`.
    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        let completion = self.complete(req).await?;
        if !completion.message.content.is_empty() {
            on_token(&completion.message.content);
        }
        Ok(completion)
    }
}

#[async_trait::async_trait]
impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        (**self).complete(req).await
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        (**self).complete_streaming(req, on_token).await
    }
}

/// Per-call timeout when `providers.<name>.timeout` is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The per-call timeout of a provider's config.
pub fn call_timeout(cfg: &ProviderConfig) -> Duration {
    cfg.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get())
}

/// Builds the provider `[providers.<name>]` describes, reading its API key
/// from the process environment (the variable named by `api_key_env`).
///
/// # Errors
/// A missing `model`, an unset or empty key variable, a bad `base_url`, or an
/// HTTP client that cannot be built; each names the provider.
pub fn build(name: &str, cfg: &ProviderConfig) -> Result<Arc<dyn Provider>, BuildError> {
    build_with_env(name, cfg, &|var| std::env::var(var).ok())
}

/// [`build`] with an explicit environment lookup (tests, `agentd check`).
///
/// # Errors
/// As [`build`].
pub fn build_with_env(
    name: &str,
    cfg: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Provider>, BuildError> {
    let system = cfg.kind.as_str();
    match cfg.kind {
        ProviderKind::Mock => {
            let mock = MockProvider::from_config(name, cfg);
            let model = mock.model().to_owned();
            Ok(Arc::new(Traced::new(mock, system, model)))
        }
        ProviderKind::OpenAi => {
            let settings = http::HttpSettings::from_config(name, cfg, env)?;
            let model = settings.model.clone();
            let provider = OpenAiProvider::new(settings)?;
            Ok(Arc::new(Traced::new(provider, system, model)))
        }
        ProviderKind::Anthropic => {
            let settings = http::HttpSettings::from_config(name, cfg, env)?;
            let model = settings.model.clone();
            let provider = AnthropicProvider::new(settings)?;
            Ok(Arc::new(Traced::new(provider, system, model)))
        }
    }
}
