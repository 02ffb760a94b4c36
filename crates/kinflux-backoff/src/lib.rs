#![doc = include_str!("../README.md")]

mod backoff;
mod config;
mod log;
mod retry_after;

pub use backoff::{Backoff, Stop};
pub use config::BackoffConfig;
pub use log::{RetryLog, WARN_INTERVAL};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
