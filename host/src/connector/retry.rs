//! The one retry policy every connector uses: exponential backoff, capped,
//! with "equal jitter" (half the delay fixed, half random) so many sinks
//! restarting together do not retry in lockstep.

use std::time::Duration;

/// Delays between retries of one operation.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// xorshift state: cheap, and good enough to spread retries apart.
    jitter: u64,
}

impl Backoff {
    /// Delays that start at `initial` and double up to `max` (at least
    /// `initial`; zero is taken as one millisecond).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            jitter: 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()),
        }
    }

    /// [`Backoff::new`] from milliseconds, as connector configs spell them.
    pub fn from_millis(initial_ms: u64, max_ms: u64) -> Self {
        Self::new(
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
        )
    }

    /// The capped exponential delay before retry `attempt` (1-based), without
    /// jitter: the upper bound of [`Backoff::delay`].
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max)
    }

    /// The delay before retry `attempt` (1-based): between half of
    /// [`Backoff::ceiling`] and all of it.
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let capped = self.ceiling(attempt);
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let half = capped / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(self.jitter % spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_jitter_bounds() {
        let mut b = Backoff::from_millis(100, 1_000);
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_millis(1_000));
        assert_eq!(b.ceiling(60), Duration::from_millis(1_000));
        for attempt in 1..20 {
            let d = b.delay(attempt);
            let cap = b.ceiling(attempt);
            assert!(
                d >= cap / 2 && d <= cap,
                "attempt {attempt}: {d:?} vs {cap:?}"
            );
        }
    }

    #[test]
    fn jitter_spreads_retries_apart() {
        let mut b = Backoff::from_millis(1_000, 1_000);
        let delays: std::collections::HashSet<Duration> = (0..10).map(|_| b.delay(1)).collect();
        assert!(delays.len() > 5, "delays barely vary: {delays:?}");
    }

    #[test]
    fn a_zero_initial_delay_still_backs_off() {
        let b = Backoff::from_millis(0, 0);
        assert_eq!(b.ceiling(1), Duration::from_millis(1));
    }
}
