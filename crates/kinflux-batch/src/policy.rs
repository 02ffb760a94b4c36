//! When a batch is flushed.

use std::time::Duration;

/// Limits that end a batch: whichever is reached first flushes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Most lines (points after merging) in one batch.
    pub max_points: usize,
    /// Most bytes of line protocol in one batch (before compression).
    pub max_bytes: usize,
    /// Longest time a point waits in an unflushed batch.
    pub max_age: Duration,
    /// Write the lines sorted by series key (then time), which InfluxDB ingests faster.
    pub sort_by_series: bool,
}

impl Default for FlushPolicy {
    /// 5,000 points, 4 MiB, 1 s, sorted: in the range InfluxDB's docs recommend for a
    /// write (5,000 to 10,000 lines) and Telegraf's default flush interval order.
    fn default() -> Self {
        FlushPolicy {
            max_points: 5_000,
            max_bytes: 4 << 20,
            max_age: Duration::from_secs(1),
            sort_by_series: true,
        }
    }
}
