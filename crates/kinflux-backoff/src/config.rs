//! The policy: how the waits grow, and when to give up.

use std::time::Duration;

/// How long to wait between attempts, and when to give up.
///
/// The wait before retry `n` (from 0) is a random duration in
/// `0..=min(max, initial * multiplier^n)` ("full jitter", as in the AWS architecture
/// blog's *Exponential Backoff and Jitter*): retrying clients spread out instead of
/// hitting a recovering server in waves.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The first ceiling of the wait.
    pub initial: Duration,
    /// The largest ceiling of the wait.
    pub max: Duration,
    /// How much the ceiling grows per retry; values below 1 count as 1.
    pub multiplier: f64,
    /// Give up once this many attempts failed (the first attempt counts); `None` retries
    /// forever.
    pub max_attempts: Option<u32>,
    /// Give up when the next wait would end later than this after the start (the creation
    /// of the [`Backoff`](crate::Backoff) or its last success); `None` for never.
    pub max_elapsed: Option<Duration>,
}

impl BackoffConfig {
    /// Ceilings from `initial` to `max`, doubling per retry, retrying forever.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        BackoffConfig {
            initial,
            max,
            multiplier: 2.0,
            max_attempts: None,
            max_elapsed: None,
        }
    }

    /// The same, with the ceiling growing by `multiplier` per retry.
    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The same, giving up after `attempts` failed attempts (`None`: never).
    pub const fn with_max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The same, giving up once `elapsed` went by (`None`: never).
    pub const fn with_max_elapsed(mut self, elapsed: Option<Duration>) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The ceiling of the wait before retry `retry` (from 0):
    /// `min(max, initial * multiplier^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        if secs.is_finite() && secs < self.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max
        }
    }

    /// A wait for retry `retry`, drawn uniformly from `0..=ceiling(retry)`.
    pub(crate) fn jittered(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let nanos = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=nanos))
    }
}

impl Default for BackoffConfig {
    /// 100 ms up to 30 s, doubling, forever.
    fn default() -> Self {
        BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_by_the_multiplier_up_to_the_cap() {
        let c = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(30));
        assert_eq!(c.ceiling(0), Duration::from_millis(100));
        assert_eq!(c.ceiling(1), Duration::from_millis(200));
        assert_eq!(c.ceiling(3), Duration::from_millis(800));
        assert_eq!(c.ceiling(9), Duration::from_secs(30));
        assert_eq!(c.ceiling(u32::MAX), Duration::from_secs(30));
        let triple = c.with_multiplier(3.0);
        assert_eq!(triple.ceiling(2), Duration::from_millis(900));
        // A multiplier below 1 does not shrink the waits.
        assert_eq!(
            c.with_multiplier(0.5).ceiling(5),
            Duration::from_millis(100)
        );
        assert_eq!(
            c.with_multiplier(f64::NAN).ceiling(5),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn jitter_stays_within_zero_and_the_ceiling_and_spreads_over_it() {
        let c = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut rng = fastrand::Rng::with_seed(1);
        for retry in 0..40 {
            let ceiling = c.ceiling(retry);
            let draws: Vec<Duration> = (0..200).map(|_| c.jittered(retry, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "retry {retry}");
            // Full jitter: the draws cover the lower and the upper quarter of the range.
            assert!(draws.iter().any(|d| *d < ceiling / 4), "retry {retry}");
            assert!(draws.iter().any(|d| *d > ceiling * 3 / 4), "retry {retry}");
        }
        let zero = BackoffConfig::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.jittered(3, &mut rng), Duration::ZERO);
    }
}
