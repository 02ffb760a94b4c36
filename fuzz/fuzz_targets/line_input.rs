//! The input of the line-protocol targets: the first byte picks the precision, so all
//! four are exercised; the rest is the line protocol.

use kinflux_line::ParseOptions;
use kinflux_series::Precision;

/// The parse options `data` picks and the bytes to parse; `None` for empty data.
pub fn split(data: &[u8]) -> Option<(ParseOptions, &[u8])> {
    let (&selector, input) = data.split_first()?;
    let precision = match selector % 4 {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        _ => Precision::Seconds,
    };
    let options = ParseOptions {
        precision,
        default_time: None,
    };
    Some((options, input))
}
