//! Timestamps written as text or numbers: `unix`, `unix_ms`, `unix_us`, `unix_ns` (as
//! Telegraf's `json_time_format` / `timestamp_format` take them), a Go reference layout
//! (`2006-01-02T15:04:05Z07:00`, as Telegraf takes them), or a strftime format (any
//! format containing `%`). A time without an offset is read in the configured time zone
//! (an IANA name, `Local`, or UTC by default).

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use kinflux_series::{Precision, Timestamp};

mod go_layout;

use go_layout::Layout;

/// How a timestamp is written in the data.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    kind: Kind,
    zone: TimeZone,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A number (or numeric string) of this many nanoseconds per unit.
    Unix(i64),
    /// A Go reference layout.
    Go(Layout),
    /// A strftime format.
    Strftime(String),
}

/// The nanoseconds per unit of a `unix*` format name.
fn unix_factor(format: &str) -> Option<i64> {
    match format {
        "unix" => Some(1_000_000_000),
        "unix_ms" => Some(1_000_000),
        "unix_us" => Some(1_000),
        "unix_ns" => Some(1),
        _ => None,
    }
}

/// The Go layouts Telegraf knows by name.
fn named_layout(format: &str) -> Option<&'static str> {
    Some(match format.to_ascii_lowercase().as_str() {
        "ansic" => "Mon Jan _2 15:04:05 2006",
        "unixdate" => "Mon Jan _2 15:04:05 MST 2006",
        "rubydate" => "Mon Jan 02 15:04:05 -0700 2006",
        "rfc822" => "02 Jan 06 15:04 MST",
        "rfc822z" => "02 Jan 06 15:04 -0700",
        "rfc850" => "Monday, 02-Jan-06 15:04:05 MST",
        "rfc1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "rfc1123z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        "rfc3339" => "2006-01-02T15:04:05Z07:00",
        "rfc3339nano" => "2006-01-02T15:04:05.999999999Z07:00",
        "stamp" => "Jan _2 15:04:05",
        "stampmilli" => "Jan _2 15:04:05.000",
        "stampmicro" => "Jan _2 15:04:05.000000",
        "stampnano" => "Jan _2 15:04:05.000000000",
        _ => return None,
    })
}

impl TimeFormat {
    /// The format `format` in time zone `timezone` (an IANA name or `Local`; UTC when
    /// `None`). Fails on an unknown zone or an empty format.
    pub fn new(format: &str, timezone: Option<&str>) -> Result<Self, String> {
        let zone = match timezone {
            None | Some("") | Some("UTC") => TimeZone::UTC,
            Some("Local") => TimeZone::system(),
            Some(name) => {
                TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))?
            }
        };
        let kind = if let Some(factor) = unix_factor(format) {
            Kind::Unix(factor)
        } else if format.contains('%') {
            Kind::Strftime(format.to_owned())
        } else if format.is_empty() {
            return Err("a time format is empty".into());
        } else {
            Kind::Go(Layout::parse(named_layout(format).unwrap_or(format)))
        };
        Ok(TimeFormat { kind, zone })
    }

    /// The format of numbers in `unit`, as the mapping's `unit` key gives it.
    pub fn unit(unit: Precision) -> Self {
        let factor = match unit {
            Precision::Seconds => 1_000_000_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Microseconds => 1_000,
            _ => 1,
        };
        TimeFormat {
            kind: Kind::Unix(factor),
            zone: TimeZone::UTC,
        }
    }

    /// True for the `unix*` formats, which also take numbers.
    pub fn is_unix(&self) -> bool {
        matches!(self.kind, Kind::Unix(_))
    }

    /// The time of a JSON number (only the `unix*` formats take numbers).
    pub fn parse_number(&self, n: &serde_json::Number) -> Result<Timestamp, String> {
        let Kind::Unix(factor) = self.kind else {
            return Err(format!("the number {n} is not a time in a text layout"));
        };
        if let Some(i) = n.as_i64() {
            return i
                .checked_mul(factor)
                .map(Timestamp::from_nanos)
                .ok_or_else(|| format!("time {n} is out of range"));
        }
        // A decimal: exact as written, as Telegraf parses it (a fraction, not a float).
        unix_text(&n.to_string(), factor)
    }

    /// The time of a string.
    pub fn parse_str(&self, s: &str) -> Result<Timestamp, String> {
        match &self.kind {
            Kind::Unix(factor) => unix_text(s, *factor),
            Kind::Go(layout) => {
                let parsed = layout.parse_text(s)?;
                self.instant(parsed.datetime, parsed.offset)
            }
            Kind::Strftime(format) => {
                let tm = jiff::fmt::strtime::parse(format, s)
                    .map_err(|e| format!("time {s:?} does not match {format:?}: {e}"))?;
                let datetime = tm
                    .to_datetime()
                    .map_err(|e| format!("time {s:?} is incomplete: {e}"))?;
                self.instant(datetime, tm.offset())
            }
        }
    }

    /// The instant of a civil time, at `offset` when the text had one, else in the zone.
    fn instant(&self, datetime: DateTime, offset: Option<Offset>) -> Result<Timestamp, String> {
        let ts = match offset {
            Some(offset) => offset.to_timestamp(datetime),
            None => datetime.to_zoned(self.zone.clone()).map(|z| z.timestamp()),
        }
        .map_err(|e| format!("time {datetime} is out of range: {e}"))?;
        i64::try_from(ts.as_nanosecond())
            .map(Timestamp::from_nanos)
            .map_err(|_| format!("time {datetime} is out of range"))
    }
}

/// A unix time as text, as Telegraf reads it: spaces dropped, a `,` or `.` the decimal
/// point (a second one is an error, as in Telegraf), the fraction truncated to
/// nanoseconds. An exponent (`1.7e9`) is read as a float.
fn unix_text(text: &str, factor: i64) -> Result<Timestamp, String> {
    let bad = || format!("time {text:?} is not a number");
    let range = || format!("time {text:?} is out of range");
    let mut whole = String::with_capacity(text.len());
    let mut fraction = String::new();
    let mut in_fraction = false;
    for c in text.trim().chars() {
        match c {
            ' ' => {}
            '.' | ',' if !in_fraction => in_fraction = true,
            '.' | ',' => return Err(bad()),
            _ if in_fraction => fraction.push(c),
            _ => whole.push(c),
        }
    }
    if whole.contains(['e', 'E']) || fraction.contains(['e', 'E']) {
        let value: f64 = text.trim().parse().map_err(|_| bad())?;
        let nanos = value * factor as f64;
        if !nanos.is_finite() || nanos.abs() >= i64::MAX as f64 {
            return Err(range());
        }
        return Ok(Timestamp::from_nanos(nanos.trunc() as i64));
    }
    let negative = whole.starts_with('-');
    let digits = whole.trim_start_matches(['-', '+']);
    if (digits.is_empty() && fraction.is_empty())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| range())?
    };
    let mut nanos = int.checked_mul(i128::from(factor)).ok_or_else(range)?;
    // The fraction times the factor, truncated: digits beyond 19 cannot matter.
    let fraction = &fraction[..fraction.len().min(19)];
    if !fraction.is_empty() {
        let f: i128 = fraction.parse().map_err(|_| bad())?;
        nanos += f * i128::from(factor) / 10i128.pow(fraction.len() as u32);
    }
    if negative {
        nanos = -nanos;
    }
    i64::try_from(nanos)
        .map(Timestamp::from_nanos)
        .map_err(|_| range())
}

/// The civil date of day `yday` (1-based) of `year`.
fn day_of_year(year: i16, yday: i16) -> Result<Date, String> {
    Date::new(year, 1, 1)
        .and_then(|d| d.with().day_of_year(yday).build())
        .map_err(|e| format!("day {yday} of {year}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(format: &str, zone: Option<&str>, text: &str) -> Result<i64, String> {
        TimeFormat::new(format, zone)?
            .parse_str(text)
            .map(|t| t.as_nanos())
    }

    #[test]
    fn unix_formats_read_numbers_and_text_exactly() {
        assert_eq!(
            at("unix", None, "1700000000"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            at("unix", None, "1700000000.5"),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(
            at("unix", None, "1700000000,25"),
            Ok(1_700_000_000_250_000_000)
        );
        assert!(at("unix", None, "1,700,000,000").is_err());
        assert_eq!(
            at("unix_ms", None, "1700000000123"),
            Ok(1_700_000_000_123_000_000)
        );
        assert_eq!(at("unix_us", None, "-1"), Ok(-1_000));
        assert_eq!(at("unix_ns", None, "17"), Ok(17));
        assert_eq!(at("unix", None, "1.7e9"), Ok(1_700_000_000_000_000_000));
        assert!(at("unix", None, "soon").is_err());
        assert!(at("unix", None, "99999999999999999999").is_err());
        let f = TimeFormat::new("unix_ms", None).unwrap();
        let n: serde_json::Number = serde_json::from_str("1700000000123.5").unwrap();
        assert_eq!(
            f.parse_number(&n).unwrap().as_nanos(),
            1_700_000_000_123_500_000
        );
    }

    #[test]
    fn go_layouts_and_strftime_read_times_in_their_zone() {
        let utc = 1_700_000_000_000_000_000i64; // 2023-11-14T22:13:20Z
        assert_eq!(
            at("2006-01-02T15:04:05Z07:00", None, "2023-11-14T22:13:20Z"),
            Ok(utc)
        );
        assert_eq!(at("rfc3339", None, "2023-11-14T23:13:20+01:00"), Ok(utc));
        assert_eq!(
            at("2006-01-02 15:04:05.000", None, "2023-11-14 22:13:20.250"),
            Ok(utc + 250_000_000)
        );
        // Go reads a fraction after the seconds even when the layout has none.
        assert_eq!(
            at("2006-01-02 15:04:05", None, "2023-11-14 22:13:20.5"),
            Ok(utc + 500_000_000)
        );
        assert_eq!(
            at(
                "2006-01-02 15:04:05",
                Some("Europe/Berlin"),
                "2023-11-14 23:13:20"
            ),
            Ok(utc)
        );
        assert_eq!(
            at("02/01/2006 3:04:05 PM", None, "14/11/2023 10:13:20 PM"),
            Ok(utc)
        );
        assert_eq!(
            at(
                "Jan _2 2006 15:04:05 -0700",
                None,
                "Nov 14 2023 17:13:20 -0500"
            ),
            Ok(utc)
        );
        assert_eq!(
            at(
                "Monday, 02-Jan-06 15:04:05 MST",
                None,
                "Tuesday, 14-Nov-23 22:13:20 UTC"
            ),
            Ok(utc)
        );
        assert_eq!(at("2006.002 15:04:05", None, "2023.318 22:13:20"), Ok(utc));
        assert_eq!(
            at(
                "%Y-%m-%d %H:%M:%S",
                Some("America/New_York"),
                "2023-11-14 17:13:20"
            ),
            Ok(utc)
        );
        assert_eq!(
            at("%Y-%m-%dT%H:%M:%S%z", None, "2023-11-14T22:13:20+0000"),
            Ok(utc)
        );
        assert!(at("2006-01-02", None, "2023-13-01").is_err());
        assert!(at("2006-01-02", None, "2023-11-14 extra").is_err());
        assert!(TimeFormat::new("2006", Some("Mars/Olympus")).is_err());
    }

    proptest::proptest! {
        /// Any instant, written as RFC 3339 with nanoseconds in any whole-minute offset,
        /// reads back as itself through the Go layout, and its unix texts read back exactly.
        #[test]
        fn written_times_read_back(nanos in -2_000_000_000_000_000_000i64..4_000_000_000_000_000_000, offset_min in -720i32..840) {
            let ts = jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap();
            let offset = Offset::from_seconds(offset_min * 60).unwrap();
            let text = ts.to_zoned(TimeZone::fixed(offset)).strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string();
            let f = TimeFormat::new("2006-01-02T15:04:05.999999999Z07:00", None).unwrap();
            proptest::prop_assert_eq!(f.parse_str(&text).map(|t| t.as_nanos()), Ok(nanos), "{}", text);
            let secs = format!("{}.{:09}", nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000));
            if nanos >= 0 {
                proptest::prop_assert_eq!(at("unix", None, &secs), Ok(nanos));
            }
            proptest::prop_assert_eq!(at("unix_ns", None, &nanos.to_string()), Ok(nanos));
        }
    }
}
