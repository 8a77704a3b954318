//! USD cost of token usage from the `[pricing]` table.

use agentd_config::Pricing;
use agentd_core::Usage;

/// Output tokens a model call is assumed to produce when its provider sets
/// no `max_tokens`, for cost estimates.
pub const DEFAULT_OUTPUT_ESTIMATE: u32 = 1024;

/// An upper estimate of what `req` will cost at `price`: its text at four
/// characters per token (system prompt, messages, tool-call arguments and
/// tool schemas) plus `max_output` output tokens. Budgets reserve this
/// before the call; text that tokenizes denser than four characters per
/// token (e.g. CJK) is underestimated.
pub fn estimate_usd(req: &crate::CompletionRequest, max_output: u32, price: &Pricing) -> f64 {
    let text = |s: &str| s.len();
    let mut chars = req.system.as_deref().map_or(0, text);
    for m in &req.messages {
        chars += text(&m.content);
        for c in &m.tool_calls {
            chars += text(&c.name) + c.args.to_string().len();
        }
    }
    for t in &req.tools {
        chars += text(&t.name) + text(&t.description) + t.input_schema.to_string().len();
    }
    let usage = Usage {
        input_tokens: chars.div_ceil(4) as u64,
        output_tokens: u64::from(max_output),
    };
    cost_usd(usage, price)
}

/// Cost in USD of `usage` at `price` (per million tokens).
pub fn cost_usd(usage: Usage, price: &Pricing) -> f64 {
    (usage.input_tokens as f64 * price.input_per_mtok
        + usage.output_tokens as f64 * price.output_per_mtok)
        / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_per_million_tokens() {
        let p = Pricing {
            input_per_mtok: 0.15,
            output_per_mtok: 0.60,
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
        };
        assert!((cost_usd(u, &p) - 0.45).abs() < 1e-12);
    }
}
