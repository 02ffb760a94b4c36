//! Go's reference-time layouts (`Mon Jan 2 15:04:05 MST 2006`), read as Go's
//! `time.Parse` reads them: the same tokens, one- or two-digit numbers where Go takes
//! them, a fraction after the seconds even when the layout has none.
//!
//! One difference: a zone abbreviation other than `UTC`, `GMT` or `Z` gives no offset, and
//! the time is read in the configured zone (Go makes up a zero offset for abbreviations
//! it does not know, which Telegraf then corrects the same way).

use jiff::civil::DateTime;
use jiff::tz::Offset;

/// One token of a layout.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Lit(String),
    Year4,
    Year2,
    /// `01` (fixed two digits) or `1`.
    Month {
        fixed: bool,
    },
    MonthName {
        long: bool,
    },
    /// `02` (fixed), `2`, or `_2` (space padded).
    Day {
        fixed: bool,
        space: bool,
    },
    /// `002` (fixed) or `__2`.
    YearDay {
        fixed: bool,
    },
    /// `15` (24-hour) or `03`/`3` (12-hour).
    Hour {
        twelve: bool,
        fixed: bool,
    },
    Minute {
        fixed: bool,
    },
    Second {
        fixed: bool,
    },
    /// `.000` (exactly `digits`) or `.999` (any number, or none).
    Fraction {
        digits: usize,
        exact: bool,
    },
    AmPm {
        upper: bool,
    },
    Weekday {
        long: bool,
    },
    ZoneName,
    /// `Z07:00`-style (`z`: `Z` means UTC), with or without colons, minutes, seconds.
    Offset {
        z: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
}

/// A parsed layout.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    items: Vec<Item>,
}

/// What a layout read from a text.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) datetime: DateTime,
    pub(crate) offset: Option<Offset>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The offset tokens, longest first, as Go tries them.
const OFFSETS: [(&str, bool, bool, bool); 5] = [
    ("070000", false, true, true),
    ("07:00:00", true, true, true),
    ("0700", false, true, false),
    ("07:00", true, true, false),
    ("07", false, false, false),
];

impl Layout {
    /// Splits `layout` into tokens; text that is no token is literal.
    pub(crate) fn parse(layout: &str) -> Layout {
        let mut items = Vec::new();
        let mut lit = String::new();
        let mut rest = layout;
        while let Some(c) = rest.chars().next() {
            let (item, len) = match token(rest) {
                Some(found) => found,
                None => {
                    lit.push(c);
                    rest = &rest[c.len_utf8()..];
                    continue;
                }
            };
            if !lit.is_empty() {
                items.push(Item::Lit(std::mem::take(&mut lit)));
            }
            items.push(item);
            rest = &rest[len..];
        }
        if !lit.is_empty() {
            items.push(Item::Lit(lit));
        }
        Layout { items }
    }

    /// Reads `text`, which must match the whole layout.
    pub(crate) fn parse_text(&self, text: &str) -> Result<Parsed, String> {
        let mismatch = |what: &str| format!("time {text:?}: expected {what}");
        let mut v = text;
        let (mut year, mut month, mut day, mut yday) = (0i32, 1i32, 1i32, None);
        let (mut hour, mut minute, mut second, mut nanos) = (0i32, 0i32, 0i32, 0i32);
        let (mut pm, mut am, mut offset) = (false, false, None);
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Lit(lit) => {
                    v = literal(v, lit).ok_or_else(|| mismatch(&format!("{lit:?}")))?
                }
                Item::Year4 => {
                    let (n, r) = digits(v, 4, 4).ok_or_else(|| mismatch("a 4-digit year"))?;
                    (year, v) = (n, r);
                }
                Item::Year2 => {
                    let (n, r) = digits(v, 2, 2).ok_or_else(|| mismatch("a 2-digit year"))?;
                    year = if n >= 69 { 1900 + n } else { 2000 + n };
                    v = r;
                }
                Item::Month { fixed } => {
                    (month, v) = num(v, *fixed, 2).ok_or_else(|| mismatch("a month"))?
                }
                Item::MonthName { long } => {
                    let (n, r) = name(v, &MONTHS, *long).ok_or_else(|| mismatch("a month name"))?;
                    (month, v) = (n as i32 + 1, r);
                }
                Item::Day { fixed, space } => {
                    if *space {
                        v = v.strip_prefix(' ').unwrap_or(v);
                    }
                    (day, v) = num(v, *fixed, 2).ok_or_else(|| mismatch("a day"))?;
                }
                Item::YearDay { fixed } => {
                    let v2 = if *fixed { v } else { v.trim_start_matches(' ') };
                    let (n, r) = num(v2, *fixed, 3).ok_or_else(|| mismatch("a day of the year"))?;
                    (yday, v) = (Some(n), r);
                }
                Item::Hour { fixed, .. } => {
                    (hour, v) = num(v, *fixed, 2).ok_or_else(|| mismatch("an hour"))?
                }
                Item::Minute { fixed } => {
                    (minute, v) = num(v, *fixed, 2).ok_or_else(|| mismatch("minutes"))?
                }
                Item::Second { fixed } => {
                    (second, v) = num(v, *fixed, 2).ok_or_else(|| mismatch("seconds"))?;
                    // A fraction the layout does not name is still read, as Go does.
                    let next_is_fraction =
                        matches!(self.items.get(i + 1), Some(Item::Fraction { .. }));
                    if !next_is_fraction {
                        if let Some((n, r)) = fraction(v, None) {
                            (nanos, v) = (n, r);
                        }
                    }
                }
                Item::Fraction { digits: n, exact } => {
                    let want = if *exact { Some(*n) } else { None };
                    match fraction(v, want) {
                        Some((f, r)) => (nanos, v) = (f, r),
                        None if !*exact => {}
                        None => return Err(mismatch(&format!("a fraction of {n} digits"))),
                    }
                }
                Item::AmPm { upper } => {
                    let (a, p) = if *upper { ("AM", "PM") } else { ("am", "pm") };
                    if let Some(r) = v.strip_prefix(p) {
                        (pm, v) = (true, r);
                    } else if let Some(r) = v.strip_prefix(a) {
                        (am, v) = (true, r);
                    } else {
                        return Err(mismatch(&format!("{a} or {p}")));
                    }
                }
                Item::Weekday { long } => {
                    v = name(v, &DAYS, *long)
                        .ok_or_else(|| mismatch("a weekday"))?
                        .1;
                }
                Item::ZoneName => {
                    let len = v.bytes().take_while(u8::is_ascii_alphabetic).count();
                    if !(1..=5).contains(&len) {
                        return Err(mismatch("a time zone abbreviation"));
                    }
                    if matches!(&v[..len], "UTC" | "GMT" | "Z") {
                        offset = Some(Offset::UTC);
                    }
                    v = &v[len..];
                }
                Item::Offset {
                    z,
                    colon,
                    minutes,
                    seconds,
                } => {
                    if let (true, Some(r)) = (*z, v.strip_prefix('Z')) {
                        (offset, v) = (Some(Offset::UTC), r);
                        continue;
                    }
                    let (o, r) = utc_offset(v, *colon, *minutes, *seconds)
                        .ok_or_else(|| mismatch("a UTC offset"))?;
                    (offset, v) = (Some(o), r);
                }
            }
        }
        if !v.is_empty() {
            return Err(format!("time {text:?}: extra text {v:?} after the layout"));
        }
        if pm && hour < 12 {
            hour += 12;
        } else if am && hour == 12 {
            hour = 0;
        }
        let range = |what: &str, n: i32| format!("time {text:?}: {what} {n} is out of range");
        let small = |what: &str, n: i32| i8::try_from(n).map_err(|_| range(what, n));
        let year = i16::try_from(year).map_err(|_| range("year", year))?;
        let date = match yday {
            Some(yday) => {
                super::day_of_year(year, i16::try_from(yday).map_err(|_| range("day", yday))?)?
            }
            None => jiff::civil::Date::new(year, small("month", month)?, small("day", day)?)
                .map_err(|e| format!("time {text:?}: {e}"))?,
        };
        let time = jiff::civil::Time::new(
            small("hour", hour)?,
            small("minute", minute)?,
            small("second", second)?,
            nanos,
        )
        .map_err(|e| format!("time {text:?}: {e}"))?;
        Ok(Parsed {
            datetime: date.to_datetime(time),
            offset,
        })
    }
}

/// The token at the start of `s`, and its length, as Go's `nextStdChunk` finds it.
fn token(s: &str) -> Option<(Item, usize)> {
    let b = s.as_bytes();
    let starts = |p: &str| s.starts_with(p);
    Some(match b[0] {
        b'J' if starts("January") => (Item::MonthName { long: true }, 7),
        b'J' if starts("Jan") => (Item::MonthName { long: false }, 3),
        b'M' if starts("Monday") => (Item::Weekday { long: true }, 6),
        b'M' if starts("Mon") => (Item::Weekday { long: false }, 3),
        b'M' if starts("MST") => (Item::ZoneName, 3),
        b'0' if starts("002") => (Item::YearDay { fixed: true }, 3),
        b'0' if b.len() > 1 && (b'1'..=b'6').contains(&b[1]) => (
            match b[1] {
                b'1' => Item::Month { fixed: true },
                b'2' => Item::Day {
                    fixed: true,
                    space: false,
                },
                b'3' => Item::Hour {
                    twelve: true,
                    fixed: true,
                },
                b'4' => Item::Minute { fixed: true },
                b'5' => Item::Second { fixed: true },
                _ => Item::Year2,
            },
            2,
        ),
        b'1' if starts("15") => (
            Item::Hour {
                twelve: false,
                fixed: false,
            },
            2,
        ),
        b'1' => (Item::Month { fixed: false }, 1),
        b'2' if starts("2006") => (Item::Year4, 4),
        b'2' => (
            Item::Day {
                fixed: false,
                space: false,
            },
            1,
        ),
        // `_2006` is a literal underscore before the year, as in Go.
        b'_' if starts("_2") && !starts("_2006") => (
            Item::Day {
                fixed: false,
                space: true,
            },
            2,
        ),
        b'_' if starts("__2") => (Item::YearDay { fixed: false }, 3),
        b'3' => (
            Item::Hour {
                twelve: true,
                fixed: false,
            },
            1,
        ),
        b'4' => (Item::Minute { fixed: false }, 1),
        b'5' => (Item::Second { fixed: false }, 1),
        b'P' if starts("PM") => (Item::AmPm { upper: true }, 2),
        b'p' if starts("pm") => (Item::AmPm { upper: false }, 2),
        b'-' | b'Z' => {
            let z = b[0] == b'Z';
            let (p, colon, minutes, seconds) =
                OFFSETS.iter().find(|(p, ..)| s[1..].starts_with(p))?;
            (
                Item::Offset {
                    z,
                    colon: *colon,
                    minutes: *minutes,
                    seconds: *seconds,
                },
                1 + p.len(),
            )
        }
        b'.' | b',' if b.len() > 1 && (b[1] == b'0' || b[1] == b'9') => {
            let run = b[1..].iter().take_while(|&&c| c == b[1]).count();
            // Only a run of digits that ends there is a fraction.
            if b.get(1 + run).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            (
                Item::Fraction {
                    digits: run,
                    exact: b[1] == b'0',
                },
                1 + run,
            )
        }
        _ => return None,
    })
}

/// `v` after the literal `lit`; a space in the layout takes any run of spaces, as in Go.
fn literal<'v>(mut v: &'v str, lit: &str) -> Option<&'v str> {
    for c in lit.chars() {
        if c == ' ' {
            let trimmed = v.trim_start_matches(' ');
            if trimmed.len() == v.len() {
                return None;
            }
            v = trimmed;
        } else {
            v = v.strip_prefix(c)?;
        }
    }
    Some(v)
}

/// Between `min` and `max` ASCII digits.
fn digits(v: &str, min: usize, max: usize) -> Option<(i32, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

/// A number of exactly `width` digits when `fixed`, else 1 to `width`.
fn num(v: &str, fixed: bool, width: usize) -> Option<(i32, &str)> {
    digits(v, if fixed { width } else { 1 }, width)
}

/// A month or weekday name, full or its first three letters, any case.
fn name<'v>(v: &'v str, names: &[&str], long: bool) -> Option<(usize, &'v str)> {
    names.iter().enumerate().find_map(|(i, n)| {
        let n = if long { *n } else { &n[..3] };
        let head = v.get(..n.len())?;
        head.eq_ignore_ascii_case(n).then(|| (i, &v[n.len()..]))
    })
}

/// `.123` or `,123`: exactly `want` digits, or any number when `None`; as nanoseconds.
fn fraction(v: &str, want: Option<usize>) -> Option<(i32, &str)> {
    let rest = v.strip_prefix(['.', ','])?;
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || want.is_some_and(|w| w != n) {
        return None;
    }
    let kept = &rest[..n.min(9)];
    let scale = 10i32.pow(9 - kept.len() as u32);
    Some((kept.parse::<i32>().ok()? * scale, &rest[n..]))
}

/// `+hh`, `+hhmm`, `+hh:mm`, `+hh:mm:ss` as the token says.
fn utc_offset(v: &str, colon: bool, minutes: bool, seconds: bool) -> Option<(Offset, &str)> {
    let sign = match v.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, mut v) = digits(&v[1..], 2, 2)?;
    let part = |v: &mut &str| -> Option<i32> {
        if colon {
            *v = v.strip_prefix(':')?;
        }
        let (n, r) = digits(v, 2, 2)?;
        *v = r;
        Some(n)
    };
    let m = if minutes { part(&mut v)? } else { 0 };
    let s = if seconds { part(&mut v)? } else { 0 };
    let offset = Offset::from_seconds(sign * (h * 3600 + m * 60 + s)).ok()?;
    Some((offset, v))
}
