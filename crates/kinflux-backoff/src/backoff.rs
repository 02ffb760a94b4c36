//! The state of one retry loop: its waits, its limits, its log.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::BackoffConfig;
use crate::log::{self, RetryLog};

/// Why a [`Backoff`] will not wait for another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stop {
    /// A limit of the [`BackoffConfig`] is reached.
    #[error("gave up after {attempts} attempts in {elapsed:?}")]
    GaveUp {
        /// Attempts made, the failed one included.
        attempts: u32,
        /// Time since the start (creation or last success).
        elapsed: Duration,
    },
    /// The cancellation token fired.
    #[error("cancelled while waiting to retry")]
    Cancelled,
}

/// The waits of one retry loop: full-jitter exponential backoff, its limits, and its
/// rate-limited log (see the [crate docs](crate)).
///
/// Call [`succeeded`](Self::succeeded) after each success, and one of
/// [`next_delay`](Self::next_delay), [`sleep`](Self::sleep) or [`wait`](Self::wait)
/// after each failure that is worth another attempt.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    what: Cow<'static, str>,
    log: RetryLog,
    rng: fastrand::Rng,
    /// Retries since the start.
    retries: u32,
    /// Creation or the last success.
    since: Instant,
    retry_after: Option<Duration>,
}

impl Backoff {
    /// A backoff for retrying `what` (a few words for the log: "InfluxDB write",
    /// "fetch of metrics/3"), with a log of its own.
    pub fn new(config: BackoffConfig, what: impl Into<Cow<'static, str>>) -> Self {
        Self::with_log(config, what, RetryLog::new())
    }

    /// A backoff that shares `log` with other loops retrying against the same thing.
    pub fn with_log(
        config: BackoffConfig,
        what: impl Into<Cow<'static, str>>,
        log: RetryLog,
    ) -> Self {
        Backoff {
            config,
            what: what.into(),
            log,
            rng: fastrand::Rng::new(),
            retries: 0,
            since: Instant::now(),
            retry_after: None,
        }
    }

    /// The policy in use.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Retries since the start (creation or the last success).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Time since the start (creation or the last success).
    pub fn elapsed(&self) -> Duration {
        self.since.elapsed()
    }

    /// Makes the next wait exactly `wait` instead of a jittered one, when the server
    /// said how long to wait (HTTP `Retry-After`, see
    /// [`parse_retry_after`](crate::parse_retry_after)). `None` changes nothing.
    pub fn retry_after(&mut self, wait: Option<Duration>) -> &mut Self {
        if wait.is_some() {
            self.retry_after = wait;
        }
        self
    }

    /// Records a failed attempt (`why` says what went wrong) and returns how long to wait
    /// before the next one, or [`Stop::GaveUp`] when a limit is reached. Logs the retry.
    pub fn next_delay(&mut self, why: impl fmt::Display) -> Result<Duration, Stop> {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.since);
        let attempts = self.retries.saturating_add(1);
        let delay = match self.retry_after.take() {
            Some(wait) => wait,
            None => self.config.jittered(self.retries, &mut self.rng),
        };
        let out_of_attempts = self.config.max_attempts.is_some_and(|max| attempts >= max);
        let out_of_time = self
            .config
            .max_elapsed
            .is_some_and(|max| elapsed.saturating_add(delay) > max);
        if out_of_attempts || out_of_time {
            return Err(Stop::GaveUp { attempts, elapsed });
        }
        let report = self.log.retry(now, self.retries == 0);
        self.retries = attempts;
        log::emit_retry(report, &self.what, &why, delay);
        Ok(delay)
    }

    /// [`next_delay`](Self::next_delay), then sleeps that long. Cancel-safe: dropping the
    /// future (losing a `tokio::select!`) only cuts the sleep short.
    pub async fn sleep(&mut self, why: impl fmt::Display) -> Result<(), Stop> {
        let delay = self.next_delay(why)?;
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// [`next_delay`](Self::next_delay), then sleeps that long unless `cancel` fires first
    /// ([`Stop::Cancelled`], also when it fired before).
    pub async fn wait(
        &mut self,
        why: impl fmt::Display,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let delay = self.next_delay(why)?;
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Stop::Cancelled),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// An attempt succeeded: the waits start small again, the limits count from now, and
    /// the end of a streak of retries (this loop's, or one it shares) is logged at info.
    pub fn succeeded(&mut self) {
        let now = Instant::now();
        if let Some(recovered) = self.log.succeeded(now, self.retries > 0) {
            log::emit_recovered(&self.what, recovered);
        }
        self.retries = 0;
        self.since = now;
        self.retry_after = None;
    }
}

impl Drop for Backoff {
    fn drop(&mut self) {
        if self.retries > 0 {
            self.log.left();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn limits_stop_the_retries() {
        let config = BackoffConfig::new(10 * MS, 100 * MS).with_max_attempts(Some(3));
        let mut b = Backoff::new(config, "test");
        b.sleep("no").await.unwrap();
        b.sleep("no").await.unwrap();
        assert!(matches!(
            b.next_delay("no"),
            Err(Stop::GaveUp { attempts: 3, .. })
        ));
        // A success starts the count again.
        b.succeeded();
        assert_eq!(b.retries(), 0);
        b.sleep("no").await.unwrap();

        let config = BackoffConfig::new(1000 * MS, 1000 * MS).with_max_elapsed(Some(2500 * MS));
        let mut b = Backoff::new(config, "test");
        let mut waited = Duration::ZERO;
        while let Ok(d) = b.next_delay("no") {
            tokio::time::sleep(d).await;
            waited += d;
        }
        assert!(waited <= 2500 * MS, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_replaces_one_wait_and_cancel_ends_it() {
        let config = BackoffConfig::new(10 * MS, 100 * MS);
        let mut b = Backoff::new(config, "test");
        let seven = Duration::from_secs(7);
        assert_eq!(b.retry_after(Some(seven)).next_delay("429").unwrap(), seven);
        assert!(b.retry_after(None).next_delay("429").unwrap() <= 20 * MS);

        let cancel = CancellationToken::new();
        let started = Instant::now();
        let waiting = b.retry_after(Some(seven)).wait("503", &cancel);
        let canceller = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        };
        let (result, ()) = tokio::join!(waiting, canceller);
        assert_eq!(result, Err(Stop::Cancelled));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(b.wait("503", &cancel).await, Err(Stop::Cancelled));
    }
}
