//! Retry logs that neither flood nor fall silent.
//!
//! A *streak* runs from the first retry after a success until the retrying loops succeed
//! again. Its first retry is logged at warn (what, why, the next wait); after that at most
//! one warn per [`WARN_INTERVAL`], with the number of retries since the last one; the
//! success that ends it is logged at info ("recovered after N retries in T"). Everything
//! else goes to debug.
//!
//! A loop that gives up (a limit, a cancellation) does not end the streak: the caller
//! usually tries again later with a fresh loop, and that one goes on with the streak,
//! rate limit included. With no loop failing, the next success ends the streak, and a
//! streak left idle for [`WARN_INTERVAL`] is over: the next failure starts a new one.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// At most one warn per streak in this interval, after its first.
pub const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// The log state of one streak of retries, shared by the [`Backoff`](crate::Backoff)s
/// made with [`Backoff::with_log`](crate::Backoff::with_log).
///
/// Share one between loops that retry against the same thing (the writes of one writer,
/// the fetches of one consumer): an outage then logs one warn, not one per loop, and the
/// streak lasts while any of them still fails. Cheap to clone; clones share the state.
#[derive(Debug, Clone, Default)]
pub struct RetryLog {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Whether a streak is open: lets a success skip the lock when none is.
    open: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Sharers that retried since their last success.
    failing: u32,
    streak: Option<Streak>,
}

#[derive(Debug)]
struct Streak {
    started: Instant,
    retries: u64,
    last_retry: Instant,
    last_warn: Instant,
    since_warn: u64,
}

/// How one retry is to be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The first retry of a streak: warn.
    First,
    /// A warn after [`WARN_INTERVAL`]: `retries` since the last warn, `over` that long.
    Again { retries: u64, over: Duration },
    /// Debug only: retry number `retry` of the streak.
    Quiet { retry: u64 },
}

/// The end of a streak: `retries` in all, `after` since its first retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub(crate) retries: u64,
    pub(crate) after: Duration,
}

impl RetryLog {
    /// A log with no streak yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state whole; a panic elsewhere cannot split one.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A sharer retries; `first_of_its_own` when it had not failed since its last success.
    pub(crate) fn retry(&self, now: Instant, first_of_its_own: bool) -> Report {
        let mut state = self.lock();
        let idle = state.failing == 0
            && state
                .streak
                .as_ref()
                .is_some_and(|s| now.saturating_duration_since(s.last_retry) >= WARN_INTERVAL);
        if idle {
            state.streak = None;
        }
        if first_of_its_own {
            state.failing += 1;
        }
        let Some(streak) = state.streak.as_mut() else {
            state.streak = Some(Streak {
                started: now,
                retries: 1,
                last_retry: now,
                last_warn: now,
                since_warn: 0,
            });
            self.shared.open.store(true, Ordering::Release);
            return Report::First;
        };
        streak.retries += 1;
        streak.since_warn += 1;
        streak.last_retry = now;
        let over = now.saturating_duration_since(streak.last_warn);
        if over >= WARN_INTERVAL {
            let retries = std::mem::take(&mut streak.since_warn);
            streak.last_warn = now;
            Report::Again { retries, over }
        } else {
            Report::Quiet {
                retry: streak.retries,
            }
        }
    }

    /// A sharer succeeded; `had_retried` when it had failed since its last success. Ends
    /// the streak when no sharer fails any more.
    pub(crate) fn succeeded(&self, now: Instant, had_retried: bool) -> Option<Recovered> {
        if !had_retried && !self.shared.open.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.lock();
        if had_retried {
            state.failing = state.failing.saturating_sub(1);
        }
        if state.failing > 0 {
            return None;
        }
        let streak = state.streak.take()?;
        self.shared.open.store(false, Ordering::Release);
        Some(Recovered {
            retries: streak.retries,
            after: now.saturating_duration_since(streak.started),
        })
    }

    /// A sharer that had retried stopped without success (gave up, cancelled, dropped).
    pub(crate) fn left(&self) {
        let mut state = self.lock();
        state.failing = state.failing.saturating_sub(1);
    }
}

/// Logs one retry as `report` says.
pub(crate) fn emit_retry(report: Report, what: &str, why: &dyn fmt::Display, delay: Duration) {
    let next = Human(delay);
    match report {
        Report::First => {
            tracing::warn!(what, "{what} failed, retrying in {next}: {why}");
        }
        Report::Again { retries, over } => {
            let over = Human(over);
            tracing::warn!(
                what,
                retries,
                "{what} still failing: {retries} retries in the last {over}, next in {next}: {why}"
            );
        }
        Report::Quiet { retry } => {
            tracing::debug!(
                what,
                retry,
                "{what} failed again, retrying in {next}: {why}"
            );
        }
    }
}

/// Logs the end of a streak.
pub(crate) fn emit_recovered(what: &str, recovered: Recovered) {
    let Recovered { retries, after } = recovered;
    let after = Human(after);
    tracing::info!(
        what,
        retries,
        "{what} recovered after {retries} retries in {after}"
    );
}

/// A duration as people read it in a log: `850ms`, `4.2s`, `3m 20s`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else if d < Duration::from_secs(60) {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else if d < Duration::from_secs(3600) {
            write!(f, "{}m {}s", d.as_secs() / 60, d.as_secs() % 60)
        } else {
            write!(f, "{}h {}m", d.as_secs() / 3600, d.as_secs() / 60 % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_streak_warns_first_then_once_a_minute_with_the_count_then_recovers() {
        let log = RetryLog::new();
        let t0 = Instant::now();
        assert_eq!(log.retry(t0, true), Report::First);
        assert_eq!(log.retry(t0 + 5 * S, false), Report::Quiet { retry: 2 });
        assert_eq!(log.retry(t0 + 59 * S, false), Report::Quiet { retry: 3 });
        assert_eq!(
            log.retry(t0 + 61 * S, false),
            Report::Again {
                retries: 3,
                over: 61 * S
            }
        );
        assert_eq!(log.retry(t0 + 100 * S, false), Report::Quiet { retry: 5 });
        assert_eq!(
            log.retry(t0 + 121 * S, false),
            Report::Again {
                retries: 2,
                over: 60 * S
            }
        );
        assert_eq!(
            log.succeeded(t0 + 130 * S, true),
            Some(Recovered {
                retries: 6,
                after: 130 * S
            })
        );
        // The next failure starts a new streak, warned at once.
        assert_eq!(log.retry(t0 + 131 * S, true), Report::First);
    }

    #[test]
    fn a_shared_streak_lasts_while_any_sharer_fails() {
        let log = RetryLog::new();
        let t0 = Instant::now();
        assert_eq!(log.retry(t0, true), Report::First);
        // A second loop fails too: the same streak, no second warn.
        assert_eq!(log.retry(t0 + S, true), Report::Quiet { retry: 2 });
        assert_eq!(log.succeeded(t0 + 2 * S, true), None);
        // A third that never failed succeeds meanwhile: the second still fails.
        assert_eq!(log.succeeded(t0 + 2 * S, false), None);
        assert_eq!(log.retry(t0 + 3 * S, false), Report::Quiet { retry: 3 });
        assert_eq!(
            log.succeeded(t0 + 4 * S, true),
            Some(Recovered {
                retries: 3,
                after: 4 * S
            })
        );
    }

    #[test]
    fn loops_that_give_up_and_come_back_share_one_streak_until_a_success() {
        let log = RetryLog::new();
        let t0 = Instant::now();
        // A call retries twice and gives up; the caller calls again 30 s later.
        assert_eq!(log.retry(t0, true), Report::First);
        assert_eq!(log.retry(t0 + S, false), Report::Quiet { retry: 2 });
        log.left();
        assert_eq!(log.retry(t0 + 31 * S, true), Report::Quiet { retry: 3 });
        log.left();
        assert_eq!(
            log.retry(t0 + 61 * S, true),
            Report::Again {
                retries: 3,
                over: 61 * S
            }
        );
        log.left();
        // The next call succeeds at once: that is the recovery.
        assert_eq!(
            log.succeeded(t0 + 70 * S, false),
            Some(Recovered {
                retries: 4,
                after: 70 * S
            })
        );
        assert_eq!(log.succeeded(t0 + 71 * S, false), None);
    }

    #[test]
    fn a_streak_left_idle_for_the_interval_is_over() {
        let log = RetryLog::new();
        let t0 = Instant::now();
        assert_eq!(log.retry(t0, true), Report::First);
        log.left();
        // Hours later a new outage is a new streak, not "still failing".
        assert_eq!(log.retry(t0 + 7200 * S, true), Report::First);
        // While a sharer still fails, no idle time ends the streak.
        assert_eq!(
            log.retry(t0 + 9000 * S, false),
            Report::Again {
                retries: 1,
                over: 1800 * S
            }
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(Human(Duration::from_millis(850)).to_string(), "850ms");
        assert_eq!(Human(Duration::from_millis(4_240)).to_string(), "4.2s");
        assert_eq!(Human(200 * S).to_string(), "3m 20s");
        assert_eq!(Human(3 * 3600 * S + 300 * S).to_string(), "3h 5m");
    }
}
