#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

mod encode;
mod error;
mod grammar;
mod lines;
mod quick;
mod scan;

pub use encode::{encode_fields, encode_point, encode_points, encode_series_key, encode_timestamp};
pub use error::{EncodeError, LineError, LineErrorKind};
pub use lines::{
    Forward, Lines, ParseOptions, RawSections, Validation, WrittenTime, parse, validate,
};

/// The earliest time InfluxDB stores, in nanoseconds: `i64::MIN + 2` (it keeps the two
/// lowest values as sentinels).
pub const MIN_NANOS: i64 = grammar::MIN_NANOS;
/// The latest time InfluxDB stores, in nanoseconds: `i64::MAX - 1`.
pub const MAX_NANOS: i64 = grammar::MAX_NANOS;
/// InfluxDB's limit on the length of a series key plus 4 plus a field key, in bytes as
/// written.
pub const MAX_KEY_LENGTH: usize = grammar::MAX_KEY_LENGTH;
