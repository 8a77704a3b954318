//! Exponential backoff with jitter: one formula for the retries of a model
//! call (in memory) and of a run's attempts (through the queue).

use std::time::Duration;

/// Delays that double after every failed attempt, up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
    /// Spread delays over `[d/2, d]` so runs failing together do not retry
    /// in lockstep.
    pub jitter: bool,
}

impl Backoff {
    /// The un-jittered delay after failed attempt `attempt` (1-based):
    /// `initial * 2^(attempt-1)`, capped at `max`.
    pub fn base(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay after failed attempt `attempt`; `unit` is a random number
    /// in `[0, 1]` (ignored without jitter), so the caller owns randomness
    /// and tests can pin it.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base(attempt);
        if !self.jitter {
            return base;
        }
        let half = base / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
        jitter: false,
    };

    #[test]
    fn doubles_per_attempt_up_to_the_cap() {
        let delays: Vec<u64> = (1..=8).map(|a| B.delay(a, 0.5).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(B.delay(u32::MAX, 0.0), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        let b = Backoff { jitter: true, ..B };
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(3));
        // Out-of-range randomness cannot leave the interval.
        assert_eq!(b.delay(3, 7.0), Duration::from_secs(4));
    }
}
