//! Reconnect delays: exponential with full jitter.

use std::time::Duration;

use rand::Rng as _;

/// Delays start at `base`, double per failure up to `cap`; each actual delay
/// is uniform in `[0, ceiling]` (full jitter), so a fleet of agents
/// reconnecting after a gateway restart spreads out.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    ceiling: Duration,
}

impl Backoff {
    pub const DEFAULT_BASE: Duration = Duration::from_millis(500);
    pub const DEFAULT_CAP: Duration = Duration::from_secs(30);

    pub fn new(base: Duration, cap: Duration) -> Self {
        let base = base.max(Duration::from_millis(1));
        let cap = cap.max(base);
        Self {
            base,
            cap,
            ceiling: base,
        }
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// The next delay; raises the ceiling for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(self.cap);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// Back to `base`, after a connection that stayed up.
    pub fn reset(&mut self) {
        self.ceiling = self.base;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BASE, Self::DEFAULT_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_to_the_cap() {
        let mut b = Backoff::default();
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay();
        }
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
    }

    #[test]
    fn delays_stay_within_bounds() {
        let mut b = Backoff::default();
        for _ in 0..200 {
            let ceiling = b.ceiling();
            let delay = b.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            assert!(delay <= Backoff::DEFAULT_CAP);
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(30));
        let delays: std::collections::HashSet<_> = (0..50).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 10, "full jitter should vary: {delays:?}");
    }

    #[test]
    fn reset_returns_to_base() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.ceiling(), Backoff::DEFAULT_BASE);
        assert!(b.next_delay() <= Backoff::DEFAULT_BASE);
    }
}
