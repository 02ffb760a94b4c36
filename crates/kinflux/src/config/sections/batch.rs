//! `[batch]`: when a batch is flushed.

use std::time::Duration;

use serde::Deserialize;

use super::{duration, yes};

/// `[batch]`: when a batch is flushed to InfluxDB.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Most points (after merging) in one write.
    #[serde(default = "default_max_points")]
    pub max_points: usize,
    /// Most bytes of line protocol in one write.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest time a point waits before its batch is written.
    #[serde(default = "default_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// Sort each batch by series key.
    #[serde(default = "yes")]
    pub sort_by_series: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_points: default_max_points(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            sort_by_series: true,
        }
    }
}

fn default_max_points() -> usize {
    5_000
}
fn default_max_bytes() -> usize {
    4 << 20
}
fn default_max_age() -> Duration {
    Duration::from_secs(1)
}
