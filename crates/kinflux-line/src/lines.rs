//! Splitting a buffer into lines, lazily, and turning each into a point or an error.

use std::ops::Range;

use std::borrow::Cow;

use kinflux_series::{PointRef, PointView, Precision, SeriesError, Timestamp};

use crate::grammar::{self, ParsedField, ParsedTag, Parts};
use crate::quick::{self, PlainLine};
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
        text: std::str::from_utf8(input).ok(),
        pos: 0,
        next_line: 1,
        options,
        current_line: 0,
        current_range: 0..0,
        current_raw: None,
        spare: (Vec::new(), Vec::new()),
    }
}

/// The iterator returned by [`parse`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    input: &'a [u8],
    /// The whole input, when it is UTF-8: checked once, not line by line (the checks of
    /// 75-byte lines apart were 4% of the bridge's instructions on line protocol).
    text: Option<&'a str>,
    pos: usize,
    next_line: usize,
    options: ParseOptions,
    current_line: usize,
    current_range: Range<usize>,
    current_raw: Option<RawSections>,
    /// Emptied tag and field lists of the last forwarded line, for the next one.
    spare: (Vec<ParsedTag<'a>>, Vec<ParsedField<'a>>),
}

/// Where the parts of the last point returned by [`Lines`] are in the input, for callers
/// that forward line protocol without encoding it again (the bytes are valid line
/// protocol: the parser checked them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSections {
    /// The series key (`measurement,k1=v1,k2=v2`), when its bytes are exactly what
    /// [`encode_series_key`](crate::encode_series_key) writes for the point: no escapes
    /// and the tags already sorted by key. `None` otherwise.
    pub series_key: Option<Range<usize>>,
    /// The field section (`k1=v1,k2=v2`) as written, when no field key repeats in it;
    /// `None` when one does (the point keeps only the last value, the input has both).
    /// Values keep their spelling (`1.50`, `t`), which InfluxDB reads as the parser did.
    pub fields: Option<Range<usize>>,
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

    /// Where the last returned point's series key and field section are in the input;
    /// `None` before the first item and after an error.
    pub fn raw_sections(&self) -> Option<RawSections> {
        self.current_raw.clone()
    }

    /// Advances to the next line that is not blank or a comment, which becomes the line
    /// [`Lines::line`] and [`Lines::line_range`] tell of.
    #[inline]
    fn next_content_line(&mut self) -> Option<At> {
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
                Some(lead) => {
                    self.current_line = number;
                    self.current_range = start..line_end;
                    return Some(At {
                        number,
                        range: start..line_end,
                        lead,
                        multiline: inner_newlines > 0,
                    });
                }
            }
        }
        None
    }
}

/// Room for this many tags and fields is made up front: Telegraf's points carry about ten
/// of each, and growing a `Vec` three times costs more than the unused slots.
const PARTS_CAPACITY: usize = 16;

/// Where a content line is, kept to report an error found after parsing.
struct At {
    /// Its 1-based number.
    number: usize,
    /// Its bytes in the input, without terminator.
    range: Range<usize>,
    /// The offset of its first byte that is not whitespace.
    lead: usize,
    /// Whether a string field in it holds a newline.
    multiline: bool,
}

impl<'a> Lines<'a> {
    /// Parses the next content line into its parts, filling `tags` and `fields`.
    #[inline(always)]
    fn next_parts(
        &mut self,
        tags: Vec<ParsedTag<'a>>,
        fields: Vec<ParsedField<'a>>,
    ) -> Option<Result<(Parts<'a>, At), LineError>> {
        let at = self.next_content_line()?;
        let text = self.text_of(&at);
        Some(text.and_then(|text| self.parts_of(at, text, tags, fields)))
    }

    /// The text of a content line. Input that is not UTF-8 as a whole is checked a line
    /// at a time, so a bad line costs only itself.
    #[inline(always)]
    fn text_of(&self, at: &At) -> Result<&'a str, LineError> {
        // A line starts and ends next to ASCII bytes (line ends, `\r`), on char
        // boundaries; `get` keeps that an assumption that cannot panic.
        if let Some(line) = self.text.and_then(|text| text.get(at.range.clone())) {
            return Ok(line);
        }
        let input: &'a [u8] = self.input;
        std::str::from_utf8(&input[at.range.clone()]).map_err(|e| {
            let column = e.valid_up_to() + 1;
            error(
                at.number,
                at.range.clone(),
                column,
                LineErrorKind::InvalidUtf8,
            )
        })
    }

    /// Parses a content line, its `text` checked, into its parts.
    #[inline(always)]
    fn parts_of(
        &self,
        at: At,
        text: &'a str,
        tags: Vec<ParsedTag<'a>>,
        fields: Vec<ParsedField<'a>>,
    ) -> Result<(Parts<'a>, At), LineError> {
        let parts = match grammar::line(&text[at.lead..], self.options.precision, tags, fields) {
            Ok(parts) => parts,
            Err(fail) => {
                let column = text.len() - fail.at.len() + 1;
                return Err(error(at.number, at.range, column, fail.kind));
            }
        };
        if at.multiline && parts.has_newline_in_name() {
            // The line scanner took a quote outside a field value for a string (as
            // InfluxDB's does), so a newline ended up inside a name.
            let column = memchr::memchr(b'\n', text.as_bytes()).map_or(1, |i| i + 1);
            return Err(error(
                at.number,
                at.range,
                column,
                LineErrorKind::NewlineInName,
            ));
        }
        Ok((parts, at))
    }
}

fn error(number: usize, range: Range<usize>, column: usize, kind: LineErrorKind) -> LineError {
    LineError {
        line: number,
        column,
        kind,
        range,
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<PointRef<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let tags = Vec::with_capacity(PARTS_CAPACITY);
        let fields = Vec::with_capacity(PARTS_CAPACITY);
        self.current_raw = None;
        let (parts, at) = match self.next_parts(tags, fields)? {
            Ok(ok) => ok,
            Err(e) => return Some(Err(e)),
        };
        let timestamp = parts.timestamp.or(self.options.default_time);
        // Borrowed names had no backslash, so they are written back as they are.
        let key_as_written = matches!(parts.measurement, Cow::Borrowed(_))
            && parts
                .tags
                .iter()
                .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))))
            && parts.tags.is_sorted_by(|a, b| a.0 < b.0);
        let base = at.range.start + at.lead;
        let series_key = key_as_written.then_some(base..base + parts.series_len);
        let fields_text = base + parts.fields_text.start..base + parts.fields_text.end;
        let fields_in = parts.fields.len();
        let dropped_time_field = parts.dropped_time_field;
        let point = PointRef::new(parts.measurement, parts.tags, parts.fields, timestamp)
            // Only a repeated tag key gets here; it has no single position.
            .map_err(|e| error(at.number, at.range, at.lead + 1, e.into()));
        if let Ok(p) = &point {
            self.current_raw = Some(RawSections {
                series_key,
                fields: (p.fields().len() == fields_in && !dropped_time_field)
                    .then_some(fields_text),
            });
        }
        Some(point)
    }
}

/// A line's own timestamp as it was written, when that is exactly what
/// [`encode_timestamp`](crate::encode_timestamp) writes for it in the parse precision (no
/// leading zeros, no `-0`). Only the parser makes one, so a batcher writing the same
/// precision can copy the text instead of formatting the number again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenTime<'a> {
    text: &'a [u8],
    precision: Precision,
    timestamp: Timestamp,
}

impl<'a> WrittenTime<'a> {
    /// The digits as written (with a leading `-` for times before 1970).
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The precision the text is in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The time it stands for.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
}

/// A line as [`Lines::next_forward`] gives it: its bytes when they can be written on as
/// they are, or the point when it must be encoded again.
// Not `non_exhaustive`: a line either goes on as it is or needs encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Forward<'a> {
    /// A valid line whose series key is as the encoder writes it (no escapes, tags sorted)
    /// and whose fields name no key twice.
    Raw {
        /// The series key's bytes in the input.
        series_key: Range<usize>,
        /// The field section's bytes in the input.
        fields: Range<usize>,
        /// The line's time, or the default time.
        timestamp: Option<Timestamp>,
        /// The line's own time as written, when it is written as the encoder writes it.
        written_time: Option<WrittenTime<'a>>,
    },
    /// A valid line that needs encoding: escapes, unsorted tags, or a repeated field.
    Point(PointRef<'a>),
}

impl<'a> Lines<'a> {
    /// The next line for a forwarder that copies line protocol on: like [`next`], but a
    /// line that can be written on as it is comes back as byte ranges without building
    /// a point (on three-field lines, 150 ns a line instead of 171). Errors are the same.
    ///
    /// [`next`]: Iterator::next
    pub fn next_forward(&mut self) -> Option<Result<Forward<'a>, LineError>> {
        self.next_forward_with(true)
    }

    /// [`Lines::next_forward`], trying the one-pass reading of plain lines first when
    /// `quick` (tests compare the two).
    #[inline(always)]
    pub(crate) fn next_forward_with(
        &mut self,
        quick: bool,
    ) -> Option<Result<Forward<'a>, LineError>> {
        self.current_raw = None;
        let at = self.next_content_line()?;
        let text = match self.text_of(&at) {
            Ok(text) => text,
            Err(e) => return Some(Err(e)),
        };
        let base = at.range.start + at.lead;
        if quick {
            if let Some(plain) = quick::plain_line(&text[at.lead..], self.options.precision) {
                return Some(Ok(self.forward_as_written(base, plain)));
            }
        }
        let (tags, fields) = std::mem::take(&mut self.spare);
        let (tags, fields) = if tags.capacity() == 0 {
            (
                Vec::with_capacity(PARTS_CAPACITY),
                Vec::with_capacity(PARTS_CAPACITY),
            )
        } else {
            (tags, fields)
        };
        let (mut parts, at) = match self.parts_of(at, text, tags, fields) {
            Ok(ok) => ok,
            Err(e) => return Some(Err(e)),
        };
        let as_written = matches!(parts.measurement, Cow::Borrowed(_))
            && parts
                .tags
                .iter()
                .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))))
            // Strictly sorted, so no tag key repeats either.
            && parts.tags.is_sorted_by(|a, b| a.0 < b.0)
            && !parts.dropped_time_field
            && !has_repeated_key(&parts.fields);
        if !as_written {
            return Some(self.assemble(parts, at));
        }
        let line = self.forward_as_written(
            base,
            PlainLine {
                series_len: parts.series_len,
                fields: parts.fields_text.clone(),
                timestamp: parts.timestamp,
                time_text: parts.time_text.clone(),
            },
        );
        parts.tags.clear();
        parts.fields.clear();
        self.spare = (parts.tags, parts.fields);
        Some(Ok(line))
    }

    /// A line that goes on as it was written, its parts at `base` in the input.
    #[inline(always)]
    fn forward_as_written(&mut self, base: usize, plain: PlainLine) -> Forward<'a> {
        let series_key = base..base + plain.series_len;
        let fields = base + plain.fields.start..base + plain.fields.end;
        self.current_raw = Some(RawSections {
            series_key: Some(series_key.clone()),
            fields: Some(fields.clone()),
        });
        let written_time = plain
            .time_text
            .zip(plain.timestamp)
            .map(|(text, timestamp)| WrittenTime {
                text: &self.input[base + text.start..base + text.end],
                precision: self.options.precision,
                timestamp,
            });
        Forward::Raw {
            series_key,
            fields,
            timestamp: plain.timestamp.or(self.options.default_time),
            written_time,
        }
    }

    /// Builds the point of a parsed line (validating what the grammar does not).
    fn assemble(&mut self, parts: Parts<'a>, at: At) -> Result<Forward<'a>, LineError> {
        let timestamp = parts.timestamp.or(self.options.default_time);
        PointRef::new(parts.measurement, parts.tags, parts.fields, timestamp)
            .map(Forward::Point)
            // Only a repeated tag key gets here; it has no single position.
            .map_err(|e| error(at.number, at.range, at.lead + 1, e.into()))
    }
}

/// Whether a field key occurs twice (InfluxDB then keeps the last value).
fn has_repeated_key(fields: &[ParsedField<'_>]) -> bool {
    if fields.len() <= 16 {
        return fields
            .iter()
            .enumerate()
            .any(|(i, (k, _))| fields[..i].iter().any(|(seen, _)| seen == k));
    }
    let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
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
///
/// It runs the same checks as [`parse`] without building points: the vectors for tags
/// and fields are reused from line to line, so a clean buffer costs no allocation.
pub fn validate(input: &[u8], options: ParseOptions) -> Validation {
    let mut v = Validation::default();
    let mut lines = parse(input, options);
    let mut tags = Vec::with_capacity(PARTS_CAPACITY);
    let mut fields = Vec::with_capacity(PARTS_CAPACITY);
    while let Some(item) = lines.next_parts(tags, fields) {
        (tags, fields) = (Vec::new(), Vec::new());
        let (mut parts, at) = match item {
            Ok(ok) => ok,
            Err(e) => {
                v.bad_lines.push(e);
                continue;
            }
        };
        // The one check `PointRef::new` adds to the grammar's: no repeated tag key.
        parts.tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = parts.tags.windows(2).find(|w| w[0].0 == w[1].0) {
            let key = pair[0].0.to_string();
            let kind = SeriesError::DuplicateTag { key }.into();
            v.bad_lines
                .push(error(at.number, at.range, at.lead + 1, kind));
        } else {
            v.good_lines += 1;
        }
        // Reuse the allocations for the next line.
        (tags, fields) = (parts.tags, parts.fields);
        tags.clear();
        fields.clear();
    }
    v
}
