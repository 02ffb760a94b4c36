//! Timestamps and their precision.

use std::fmt;
use std::str::FromStr;

use crate::SeriesError;

/// The unit a timestamp is written in, as in the `precision` parameter of InfluxDB's write
/// APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub enum Precision {
    /// Nanoseconds, InfluxDB's native unit and the default.
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// How many nanoseconds one unit of this precision holds.
    pub const fn nanos_per_unit(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
        }
    }

    /// The name used by the v2 and v3 write APIs and in configuration: `ns`, `us`, `ms`, `s`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }

    /// The name the v1 `/write` endpoint expects: `n`, `u`, `ms`, `s`.
    pub const fn as_v1_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "n",
            Precision::Microseconds => "u",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = SeriesError;

    /// Accepts the v2 names (`ns`, `us`, `ms`, `s`) and the v1 names (`n`, `u`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" | "n" => Ok(Precision::Nanoseconds),
            "us" | "u" | "µs" => Ok(Precision::Microseconds),
            "ms" => Ok(Precision::Milliseconds),
            "s" => Ok(Precision::Seconds),
            other => Err(SeriesError::UnknownPrecision(other.to_owned())),
        }
    }
}

impl TryFrom<String> for Precision {
    type Error = SeriesError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Precision> for String {
    fn from(p: Precision) -> String {
        p.as_str().to_owned()
    }
}

/// A point's time: nanoseconds since the Unix epoch, as InfluxDB stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// A timestamp from a value in `precision`, checked: a value whose nanosecond form does
    /// not fit an `i64` is an error, never a wrapped time.
    pub fn from_precision(value: i64, precision: Precision) -> Result<Self, SeriesError> {
        value
            .checked_mul(precision.nanos_per_unit())
            .map(Timestamp)
            .ok_or(SeriesError::TimestampOverflow { value, precision })
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// This time in `precision`, rounded down (towards negative infinity) when it is not a
    /// whole number of units.
    pub const fn to_precision(self, precision: Precision) -> i64 {
        match precision {
            // Batches are written in nanoseconds unless configured otherwise: no 64-bit
            // division per point (tens of cycles) for a divisor of one.
            Precision::Nanoseconds => self.0,
            _ => self.0.div_euclid(precision.nanos_per_unit()),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_conversion_is_checked_not_wrapped() {
        assert_eq!(
            Timestamp::from_precision(1_700_000_000, Precision::Seconds).unwrap(),
            Timestamp::from_nanos(1_700_000_000_000_000_000)
        );
        let err = Timestamp::from_precision(i64::MAX / 10, Precision::Milliseconds).unwrap_err();
        assert!(matches!(err, SeriesError::TimestampOverflow { .. }));
        assert!(Timestamp::from_precision(i64::MIN, Precision::Microseconds).is_err());
        assert!(Timestamp::from_precision(i64::MAX, Precision::Nanoseconds).is_ok());
    }

    #[test]
    fn to_precision_rounds_down() {
        let t = Timestamp::from_nanos(-1);
        assert_eq!(t.to_precision(Precision::Seconds), -1);
        assert_eq!(
            Timestamp::from_nanos(1_999).to_precision(Precision::Microseconds),
            1
        );
    }

    #[test]
    fn precision_names_parse_both_api_spellings() {
        for p in [
            Precision::Nanoseconds,
            Precision::Microseconds,
            Precision::Milliseconds,
            Precision::Seconds,
        ] {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
            assert_eq!(p.as_v1_str().parse::<Precision>().unwrap(), p);
        }
        assert_eq!(
            "h".parse::<Precision>().unwrap_err(),
            SeriesError::UnknownPrecision("h".into())
        );
    }
}
