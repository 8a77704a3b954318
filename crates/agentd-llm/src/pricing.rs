//! USD cost of token usage from the `[pricing]` table.

use agentd_config::Pricing;
use agentd_core::Usage;

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
