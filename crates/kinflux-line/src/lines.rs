//! Splitting a buffer into lines, lazily, and turning each into a point or an error.

use std::ops::Range;

use kinflux_series::{PointRef, Precision, Timestamp};

use crate::grammar;
use crate::{LineError, LineErrorKind};

/// How to read a buffer of line protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// The unit of the timestamps in the buffer (nanoseconds by default).
    pub precision: Precision,
    /// The time given to lines without a timestamp; `None` leaves them without one.
    pub default_time: Option<Timestamp>,
}

/// Parses `input` lazily, one line per call to `next`: each item is a point that borrows
/// from `input`, or the error of one bad line. Parsing goes on after a bad line.
///
/// Blank lines and `#` comments yield nothing. Lines end at `\n` (a `\r` before it is
/// dropped) except inside string fields. [`Lines::line`] and [`Lines::line_range`] tell
/// where the item just returned came from.
pub fn parse(input: &[u8], options: ParseOptions) -> Lines<'_> {
    Lines {
        input,
        pos: 0,
        next_line: 1,
        options,
        current_line: 0,
        current_range: 0..0,
    }
}

/// The iterator returned by [`parse`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    next_line: usize,
    options: ParseOptions,
    current_line: usize,
    current_range: Range<usize>,
}

impl<'a> Lines<'a> {
    /// The 1-based line number where the last returned item's line starts (0 before the
    /// first item).
    pub fn line(&self) -> usize {
        self.current_line
    }

    /// The bytes of the last returned item's line in the input, without its terminator.
    pub fn line_range(&self) -> Range<usize> {
        self.current_range.clone()
    }

    /// Advances to the next line that is not blank or a comment: its number, byte range
    /// (without terminator), and the offset of its first non-whitespace byte.
    #[inline]
    fn next_content_line(&mut self) -> Option<(usize, Range<usize>, usize, bool)> {
        while self.pos < self.input.len() {
            let start = self.pos;
            let number = self.next_line;
            let (end, inner_newlines) = crate::scan::line_end(self.input, start);
            self.pos = end + 1;
            self.next_line += 1 + inner_newlines;
            let mut line_end = end;
            if line_end > start && self.input[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let line = &self.input[start..line_end];
            let lead = line
                .iter()
                .position(|&b| !matches!(b, b' ' | b'\t' | b'\0'));
            match lead {
                None => continue,
                Some(l) if line[l] == b'#' => continue,
                Some(l) => return Some((number, start..line_end, l, inner_newlines > 0)),
            }
        }
        None
    }

    fn error(
        &self,
        number: usize,
        range: Range<usize>,
        column: usize,
        kind: LineErrorKind,
    ) -> LineError {
        LineError {
            line: number,
            column,
            kind,
            range,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<PointRef<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (number, range, lead, multiline) = self.next_content_line()?;
        self.current_line = number;
        self.current_range = range.clone();
        let bytes = &self.input[range.clone()];
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let column = e.valid_up_to() + 1;
                return Some(Err(self.error(
                    number,
                    range,
                    column,
                    LineErrorKind::InvalidUtf8,
                )));
            }
        };
        let body = &text[lead..];
        let parts = match grammar::line(body, self.options.precision) {
            Ok(parts) => parts,
            Err(fail) => {
                let column = text.len() - fail.at.len() + 1;
                return Some(Err(self.error(number, range, column, fail.kind)));
            }
        };
        let timestamp = parts.timestamp.or(self.options.default_time);
        match PointRef::new(parts.measurement, parts.tags, parts.fields, timestamp) {
            Ok(point) if multiline && has_newline_in_name(&point) => {
                // The line scanner took a quote outside a field value for a string (as
                // InfluxDB's does), so a newline ended up inside a name.
                let column = memchr::memchr(b'\n', bytes).map_or(1, |i| i + 1);
                Some(Err(self.error(
                    number,
                    range,
                    column,
                    LineErrorKind::NewlineInName,
                )))
            }
            Ok(point) => Some(Ok(point)),
            // Only a repeated tag key gets here; it has no single position.
            Err(e) => Some(Err(self.error(number, range, lead + 1, e.into()))),
        }
    }
}

fn has_newline_in_name(p: &PointRef<'_>) -> bool {
    use kinflux_series::PointView;
    p.measurement().contains('\n')
        || p.tags().any(|(k, v)| k.contains('\n') || v.contains('\n'))
        || p.fields().any(|(k, _)| k.contains('\n'))
}

/// What [`validate`] found in a buffer: how many lines are good, and the bad ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// Lines that parse into valid points.
    pub good_lines: usize,
    /// The errors of the bad lines, in input order.
    pub bad_lines: Vec<LineError>,
}

impl Validation {
    /// Whether every line is good.
    pub fn is_ok(&self) -> bool {
        self.bad_lines.is_empty()
    }
}

/// Checks a whole buffer: counts the good lines and collects the errors of the bad ones,
/// so a pipeline can forward a clean buffer as it is and dead-letter exactly the bad
/// byte ranges.
pub fn validate(input: &[u8], options: ParseOptions) -> Validation {
    let mut v = Validation::default();
    for item in parse(input, options) {
        match item {
            Ok(_) => v.good_lines += 1,
            Err(e) => v.bad_lines.push(e),
        }
    }
    v
}
