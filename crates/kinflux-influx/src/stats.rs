//! Counters the pipeline can read while the writer runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::RetryCause;

/// Upper bounds (inclusive, milliseconds) of the latency buckets; one more bucket holds
/// everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

/// Live counters of one writer and its clones (atomics; cheap to update, read with
/// [`WriterStats::snapshot`]).
#[derive(Debug, Default)]
pub struct WriterStats {
    requests: AtomicU64,
    bytes_uncompressed: AtomicU64,
    bytes_sent: AtomicU64,
    lines_written: AtomicU64,
    lines_rejected: AtomicU64,
    retries_connection: AtomicU64,
    retries_timeout: AtomicU64,
    retries_throttled: AtomicU64,
    retries_server_error: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// HTTP write requests sent.
    pub requests: u64,
    /// Body bytes before compression.
    pub bytes_uncompressed: u64,
    /// Body bytes sent (after gzip when enabled).
    pub bytes_sent: u64,
    /// Lines InfluxDB stored.
    pub lines_written: u64,
    /// Lines InfluxDB refused.
    pub lines_rejected: u64,
    /// Retries after connection errors.
    pub retries_connection: u64,
    /// Retries after timeouts.
    pub retries_timeout: u64,
    /// Retries after 429.
    pub retries_throttled: u64,
    /// Retries after 500, 502, 503, 504.
    pub retries_server_error: u64,
    /// Request counts per latency bucket: `latency[i]` counts requests of at most
    /// [`LATENCY_BUCKETS_MS`]`[i]` ms; the last entry counts the slower ones.
    pub latency: Vec<u64>,
}

impl StatsSnapshot {
    /// All retries, whatever the cause.
    pub fn retries(&self) -> u64 {
        self.retries_connection
            + self.retries_timeout
            + self.retries_throttled
            + self.retries_server_error
    }
}

impl WriterStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            bytes_uncompressed: self.bytes_uncompressed.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            lines_written: self.lines_written.load(Relaxed),
            lines_rejected: self.lines_rejected.load(Relaxed),
            retries_connection: self.retries_connection.load(Relaxed),
            retries_timeout: self.retries_timeout.load(Relaxed),
            retries_throttled: self.retries_throttled.load(Relaxed),
            retries_server_error: self.retries_server_error.load(Relaxed),
            latency: self.latency.iter().map(|c| c.load(Relaxed)).collect(),
        }
    }

    pub(crate) fn request(&self, uncompressed: usize, sent: usize) {
        self.requests.fetch_add(1, Relaxed);
        self.bytes_uncompressed
            .fetch_add(uncompressed as u64, Relaxed);
        self.bytes_sent.fetch_add(sent as u64, Relaxed);
    }

    pub(crate) fn latency(&self, elapsed: Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency[bucket].fetch_add(1, Relaxed);
    }

    pub(crate) fn lines(&self, written: usize, rejected: usize) {
        self.lines_written.fetch_add(written as u64, Relaxed);
        self.lines_rejected.fetch_add(rejected as u64, Relaxed);
    }

    pub(crate) fn retry(&self, cause: RetryCause) {
        let counter = match cause {
            RetryCause::Connection => &self.retries_connection,
            RetryCause::Timeout => &self.retries_timeout,
            RetryCause::Throttled => &self.retries_throttled,
            RetryCause::ServerError(_) => &self.retries_server_error,
        };
        counter.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_its_bucket() {
        let stats = WriterStats::default();
        stats.latency(Duration::from_micros(500));
        stats.latency(Duration::from_millis(7));
        stats.latency(Duration::from_secs(60));
        let snap = stats.snapshot();
        assert_eq!(snap.latency[0], 1);
        assert_eq!(snap.latency[3], 1);
        assert_eq!(snap.latency[LATENCY_BUCKETS_MS.len()], 1);
        assert_eq!(snap.latency.iter().sum::<u64>(), 3);
    }

    #[test]
    fn retries_are_counted_by_cause() {
        let stats = WriterStats::default();
        stats.retry(RetryCause::Throttled);
        stats.retry(RetryCause::ServerError(503));
        stats.retry(RetryCause::ServerError(500));
        let snap = stats.snapshot();
        assert_eq!(snap.retries_throttled, 1);
        assert_eq!(snap.retries_server_error, 2);
        assert_eq!(snap.retries(), 3);
    }
}
