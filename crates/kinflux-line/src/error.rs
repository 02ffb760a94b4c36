//! Errors: why a line was refused (with its position), and why a point cannot be written.

use std::fmt;
use std::ops::Range;

use kinflux_series::SeriesError;

/// A line that could not be parsed: where, why, and which bytes to dead-letter.
///
/// Displays as `LINE:COLUMN: reason`, e.g. `3:14: expected '=' after field key`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineError {
    /// The 1-based number of the physical line (counting `\n`) on which the bad line starts.
    pub line: usize,
    /// The 1-based column, in bytes from the start of the line, where the problem was found.
    pub column: usize,
    /// What is wrong.
    pub kind: LineErrorKind,
    /// The bytes of the whole bad line in the parsed buffer, without its line terminator.
    pub range: Range<usize>,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.kind)
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LineErrorKind::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    /// The line starts with a comma instead of a measurement name.
    #[error("expected measurement name")]
    MissingMeasurement,
    /// The line ended before the field set.
    #[error("expected fields after measurement and tags")]
    MissingFields,
    /// A comma after the measurement or a tag was not followed by a tag key.
    #[error("expected tag key")]
    MissingTagKey,
    /// A tag key was not followed by `=`.
    #[error("expected '=' after tag key")]
    ExpectedTagEquals,
    /// A tag's `=` was not followed by a value.
    #[error("expected tag value after '='")]
    MissingTagValue,
    /// A tag value contained an unescaped `=`, which InfluxDB refuses.
    #[error("unescaped '=' in tag value")]
    EqualsInTagValue,
    /// A field key was empty.
    #[error("expected field key")]
    MissingFieldKey,
    /// A field key was not followed by `=`.
    #[error("expected '=' after field key")]
    ExpectedFieldEquals,
    /// A field's `=` was not followed by a value.
    #[error("expected field value after '='")]
    MissingFieldValue,
    /// A field key ends with an even run of backslashes before `=`, `,` or a space:
    /// InfluxDB's field scanner takes the delimiter as unescaped and its key reader as
    /// escaped, so it refuses the line or reads the next field into the key.
    #[error("field key ends with a backslash")]
    TrailingBackslash,
    /// A measurement has a backslash right before an escaped `,` or space (`m\\\\,x`):
    /// InfluxDB 1.x and 2.x accept the write but store a series no query reads back.
    #[error("backslash before an escaped delimiter in the measurement")]
    UnreadableMeasurement,
    /// A newline outside a string field ended up inside a name, because a quote outside
    /// a field value was taken for the start of a string when the line was split.
    #[error("newline outside a string field")]
    NewlineInName,
    /// A number was malformed.
    #[error("invalid number")]
    InvalidNumber,
    /// A float was malformed or out of the range of `f64`.
    #[error("invalid float")]
    InvalidFloat,
    /// An `i` integer did not fit an `i64`.
    #[error("integer out of range of i64")]
    IntegerOutOfRange,
    /// A `u` integer was negative or did not fit a `u64`.
    #[error("unsigned integer out of range of u64")]
    UnsignedOutOfRange,
    /// A value was not a number, a quoted string or one of the boolean spellings.
    #[error("invalid boolean")]
    InvalidBoolean,
    /// A string field's closing quote was missing.
    #[error("unterminated string field")]
    UnterminatedString,
    /// A field value was followed by something other than `,`, a space or the line end.
    #[error("expected ',' or ' ' after field value")]
    ExpectedFieldSeparator,
    /// The timestamp was not an integer.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// The timestamp, in nanoseconds, is outside the range InfluxDB stores.
    #[error("timestamp outside range {min} - {max}", min = crate::MIN_NANOS, max = crate::MAX_NANOS)]
    TimestampOutOfRange,
    /// Something other than spaces followed the timestamp.
    #[error("unexpected characters after timestamp")]
    TrailingCharacters,
    /// The series key plus a field key is longer than InfluxDB's limit of 65535 bytes.
    #[error(
        "series key plus field key longer than {} bytes",
        crate::MAX_KEY_LENGTH
    )]
    KeyTooLong,
    /// The parts parsed, but do not make a valid point (a repeated tag key, a tag or
    /// field named `time`).
    #[error(transparent)]
    Invalid(#[from] SeriesError),
}

/// Why a point cannot be written as line protocol that reads back as the same point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A name contains a byte that line protocol cannot carry there: a newline anywhere,
    /// a tab, NUL or `#` at the start of the measurement, or a tab or NUL at the start of
    /// the first field key (read as whitespace or a comment).
    #[error("{what} {name:?} contains a character line protocol cannot represent there")]
    UnrepresentableName {
        /// `"measurement"`, `"tag key"`, `"tag value"` or `"field key"`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A name ends with a backslash (it would escape the delimiter after the name), or a
    /// field key has an odd run of backslashes right before a character that must be
    /// escaped (the escaped run would look like an even one, which ends the key).
    #[error("{what} {name:?} has a backslash line protocol cannot represent there")]
    AmbiguousBackslash {
        /// `"measurement"`, `"tag key"`, `"tag value"` or `"field key"`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
    /// A series key whose escapes mislead InfluxDB's line splitter: a name backslash
    /// before an escaped delimiter makes an even run of backslashes, which the splitter
    /// (it pairs backslashes) takes for an unescaped delimiter, and what follows in the
    /// key (an `=`, a `,` or a `"`) would then move where it thinks strings open, so a
    /// newline could end up inside the line or a line could run into the next.
    #[error("series key {series_key:?} would make InfluxDB split lines in the wrong place")]
    MisleadingSeriesKey {
        /// The series key as it would have been written.
        series_key: String,
    },
    /// A name was empty, or a tag or field key was `time`.
    #[error(transparent)]
    Invalid(#[from] SeriesError),
    /// A float was NaN or infinite.
    #[error("field {key:?} is not a finite float")]
    NonFiniteFloat {
        /// The field's key.
        key: String,
    },
    /// A field value of a kind this encoder does not know how to write.
    #[error("field {key:?} has a value kind line protocol has no spelling for")]
    UnsupportedValue {
        /// The field's key.
        key: String,
    },
    /// The timestamp cannot be written in the requested precision within the range
    /// InfluxDB stores.
    #[error("timestamp {nanos} ns cannot be written in precision {precision}")]
    TimestampOutOfRange {
        /// The timestamp in nanoseconds.
        nanos: i64,
        /// The requested precision.
        precision: kinflux_series::Precision,
    },
}
