//! Reconnection delays: exponential backoff with a cap and jitter (pure; the random source
//! is passed in).
//!
//! Exponential backoff with jitter keeps a restarting CoppeliaSim from being hammered and
//! spreads retries of several bridges (AWS Architecture Blog, "Exponential Backoff And
//! Jitter", 2015; ZeroMQ guide, Lazy Pirate pattern).

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Growth factor per failure.
    pub factor: f64,
    /// Fraction of the delay that is randomised (0 = none, 0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

/// Delay sequence for consecutive failures; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    /// The delay before the next attempt. `unit_random` is a number in [0, 1) (e.g. from
    /// `rand::random`), mapped to ±`jitter`.
    pub fn next_delay(&mut self, unit_random: f64) -> Duration {
        let exp = self.config.factor.powi(self.failures.min(30) as i32);
        self.failures = self.failures.saturating_add(1);
        let base = (self.config.initial.as_secs_f64() * exp).min(self.config.max.as_secs_f64());
        let r = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jitter = if self.config.jitter.is_finite() {
            self.config.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let secs =
            (base * (1.0 + jitter * (2.0 * r - 1.0))).clamp(0.0, self.config.max.as_secs_f64());
        // NaN only from a NaN factor in the configuration: fall back to the cap.
        Duration::try_from_secs_f64(secs).unwrap_or(self.config.max)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Call after a success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(no_jitter());
        let ms: Vec<u128> = (0..6).map(|_| b.next_delay(0.5).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!(b.next_delay(0.5).as_millis(), 100);
    }

    #[test]
    fn jitter_spreads_around_the_base() {
        let config = BackoffConfig {
            jitter: 0.2,
            ..no_jitter()
        };
        assert_eq!(Backoff::new(config).next_delay(0.0).as_millis(), 80);
        assert_eq!(Backoff::new(config).next_delay(0.5).as_millis(), 100);
        assert_eq!(Backoff::new(config).next_delay(1.0).as_millis(), 120);
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_max(randoms in proptest::collection::vec(any::<f64>(), 1..60)) {
            let mut b = Backoff::new(BackoffConfig::default());
            for r in randoms {
                prop_assert!(b.next_delay(r) <= BackoffConfig::default().max);
            }
        }
    }
}
