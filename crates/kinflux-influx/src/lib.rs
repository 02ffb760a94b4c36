#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod batch;
mod compress;
mod config;
mod endpoint;
mod outcome;
#[cfg(feature = "points")]
mod points;
mod rejection;
mod scan;
mod secret;
mod settle;
mod stats;
mod transport;
mod writer;

pub use batch::LineBatch;
pub use compress::gzip_body;
pub use config::{Api, RetryPolicy, WriterConfig};
pub use outcome::{
    Attempt, PartialWrite, RejectedLine, RetryCause, UnattributedDrop, WriteError, WriteOutcome,
};
pub use secret::Secret;
pub use stats::{LATENCY_BUCKETS_MS, StatsSnapshot, WriterStats};
pub use writer::{Ping, Writer};

/// Re-exported so callers can build a shutdown signal without depending on tokio-util.
pub use tokio_util::sync::CancellationToken;
