//! The grammar of one line, as nom parsers over the line's text.
//!
//! ```text
//! line        = series ' ' ws* fields ( ' ' ws* timestamp? )? ' '*
//! series      = measurement ( ',' tag )*
//! measurement = name<stops: ',' ' '>            -- first byte not ','
//! tag         = name<stops: ',' '=' ' '> '=' name<stops: ',' '=' ' '>
//! fields      = field ( ',' field )*
//! field       = name<stops: ',' '=' ' '> '=' value
//! value       = float | integer 'i' | unsigned 'u' | '"' string '"' | boolean
//! timestamp   = '-'? digit+
//! ws          = ' ' | '\t' | '\0'
//! ```
//!
//! Structure is nom; the bytes inside a token are scanned by hand (see [`crate::scan`]),
//! because per-byte combinators cost more than the whole budget of a line.

use std::borrow::Cow;

use kinflux_series::{FieldValueRef, Precision, SeriesError, TIME_KEY, Timestamp};
use nom::character::complete::char;
use nom::error::{ErrorKind, ParseError};
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::LineErrorKind;
use crate::scan::{self, FIELD_KEY, MEASUREMENT, NameRules, TAG};

/// Where and why a line failed: the unparsed rest of the line, and the reason.
#[derive(Debug)]
pub(crate) struct Fail<'a> {
    pub(crate) at: &'a str,
    pub(crate) kind: LineErrorKind,
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        // Only nom's own `char(',')` makes these, and `many_into` takes them as the end of
        // a list, so this reason is never reported.
        Fail {
            at: input,
            kind: LineErrorKind::MissingFields,
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail<'a>>;

/// A field as parsed: its key and value.
pub(crate) type ParsedField<'a> = (Cow<'a, str>, FieldValueRef<'a>);
/// A tag as parsed.
pub(crate) type ParsedTag<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The parts of one line, before the point is assembled and validated.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    pub(crate) measurement: Cow<'a, str>,
    pub(crate) tags: Vec<ParsedTag<'a>>,
    pub(crate) fields: Vec<ParsedField<'a>>,
    pub(crate) timestamp: Option<Timestamp>,
    /// Length of the series key's text at the start of the line.
    pub(crate) series_len: usize,
    /// Where the field section's text is in the line (after the series key and its
    /// whitespace, before the timestamp's space).
    pub(crate) fields_text: std::ops::Range<usize>,
    /// Where the timestamp's text is in the line, when it is written as the encoder
    /// writes it (no leading zeros, no `-0`).
    pub(crate) time_text: Option<std::ops::Range<usize>>,
    /// Whether a field named `time` was dropped, so the field text is not the fields.
    pub(crate) dropped_time_field: bool,
}

impl Parts<'_> {
    /// Whether any name holds a newline (possible only when a quote outside a field value
    /// was taken for a string while splitting lines).
    pub(crate) fn has_newline_in_name(&self) -> bool {
        self.measurement.contains('\n')
            || self
                .tags
                .iter()
                .any(|(k, v)| k.contains('\n') || v.contains('\n'))
            || self.fields.iter().any(|(k, _)| k.contains('\n'))
    }
}

/// InfluxDB keeps the two lowest `i64` values as sentinels and refuses them as times.
pub(crate) const MIN_NANOS: i64 = i64::MIN + 2;
/// InfluxDB refuses `i64::MAX` as a time.
pub(crate) const MAX_NANOS: i64 = i64::MAX - 1;
/// InfluxDB's limit on the series key plus a field key (and 4 separator bytes).
pub(crate) const MAX_KEY_LENGTH: usize = 65535;

#[inline]
fn fail<T>(at: &str, kind: LineErrorKind) -> Res<'_, T> {
    Err(nom::Err::Failure(Fail { at, kind }))
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\0')
}

/// Skips spaces, tabs and NULs, as InfluxDB does between sections.
#[inline]
pub(crate) fn skip_ws(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_ws(b)).count();
    &s[n..]
}

/// One name, ending before the first unescaped stop byte of its position.
/// Fails with `empty` when it is empty.
// Inlined so its result stays in registers: returned through memory, the caller's wide
// reads of the narrow stores stall.
#[inline(always)]
fn name<'a>(
    input: &'a str,
    rules: NameRules,
    empty: LineErrorKind,
) -> Res<'a, (Cow<'a, str>, usize)> {
    let end = scan::scan_name(input.as_bytes(), rules);
    if end.end == 0 {
        return fail(input, empty);
    }
    let raw = &input[..end.end];
    if rules.pairs() && end.escaped && raw.as_bytes()[raw.len() - 1] == b'\\' {
        // A field key `a\\=b`: InfluxDB's field scanner pairs the backslashes, its key
        // reader takes the `=` as escaped and reads on into the next field.
        return fail(&input[end.end - 1..], LineErrorKind::TrailingBackslash);
    }
    Ok((
        &input[end.end..],
        (scan::unescape_name(raw, end.escaped, rules), end.end),
    ))
}

/// `measurement = name<stops: ',' ' '>`
fn measurement(input: &str) -> Res<'_, Cow<'_, str>> {
    if input.as_bytes().first() == Some(&b',') {
        return fail(input, LineErrorKind::MissingMeasurement);
    }
    let (rest, (m, raw_len)) = name(input, MEASUREMENT, LineErrorKind::MissingMeasurement)?;
    if rest.is_empty() {
        return fail(rest, LineErrorKind::MissingFields);
    }
    if let Cow::Owned(_) = m {
        // `m\\,x`: the comma is escaped, but InfluxDB cannot read back what it stores.
        let raw = &input.as_bytes()[..raw_len];
        if let Some(at) = raw
            .windows(3)
            .position(|w| w[0] == b'\\' && w[1] == b'\\' && matches!(w[2], b',' | b' '))
        {
            return fail(&input[at..], LineErrorKind::UnreadableMeasurement);
        }
    }
    Ok((rest, m))
}

/// `tag = ',' key '=' value`
#[inline(always)]
fn tag(input: &str) -> Res<'_, ParsedTag<'_>> {
    let Some(after_comma) = input.strip_prefix(',') else {
        return Err(nom::Err::Error(Fail {
            at: input,
            kind: LineErrorKind::MissingFields,
        }));
    };
    let (rest, (key, _)) = name(after_comma, TAG, LineErrorKind::MissingTagKey)?;
    let Some(value_start) = rest.strip_prefix('=') else {
        return fail(rest, LineErrorKind::ExpectedTagEquals);
    };
    if key == TIME_KEY {
        return fail(after_comma, SeriesError::ReservedKey { kind: "tag" }.into());
    }
    let (rest, (value, _)) = name(value_start, TAG, LineErrorKind::MissingTagValue)?;
    match rest.as_bytes().first() {
        Some(b'=') => fail(rest, LineErrorKind::EqualsInTagValue),
        None => fail(rest, LineErrorKind::MissingFields),
        Some(_) => Ok((rest, (key, value))),
    }
}

/// `field = key '=' value`, checking InfluxDB's key length limit against `series_len`.
#[inline(always)]
fn field<'a>(input: &'a str, series_len: usize, saw_time: &mut bool) -> Res<'a, ParsedField<'a>> {
    let (rest, (key, raw_len)) = name(input, FIELD_KEY, LineErrorKind::MissingFieldKey)?;
    let Some(value_start) = rest.strip_prefix('=') else {
        return fail(rest, LineErrorKind::ExpectedFieldEquals);
    };
    *saw_time |= key == TIME_KEY;
    if series_len + 4 + raw_len > MAX_KEY_LENGTH {
        return fail(input, LineErrorKind::KeyTooLong);
    }
    let (rest, value) = field_value(value_start)?;
    match rest.as_bytes().first() {
        None | Some(b',' | b' ') => Ok((rest, (key, value))),
        Some(_) => fail(rest, LineErrorKind::ExpectedFieldSeparator),
    }
}

/// `value = number | '"' string '"' | boolean`, chosen by its first byte.
#[inline(always)]
pub(crate) fn field_value(input: &str) -> Res<'_, FieldValueRef<'_>> {
    match input.as_bytes().first() {
        None | Some(b',' | b' ') => fail(input, LineErrorKind::MissingFieldValue),
        Some(b'0'..=b'9' | b'-' | b'.') => number(input),
        Some(b'"') => string(input),
        Some(b't' | b'T' | b'f' | b'F') => boolean(input),
        Some(_) => fail(input, LineErrorKind::InvalidBoolean),
    }
}

/// The bytes of an unquoted value: up to the next `,` or space.
#[inline]
fn bare_token(input: &str) -> (&str, &str) {
    input.split_at(scan::find_first(input.as_bytes(), [b',', b' ']))
}

/// `float | '-'? digit+ 'i' | digit+ 'u'`, with InfluxDB's spellings of floats
/// (`1.`, `.5`, `-1e3`, `1E+2`; no leading `+`, no `inf` or `NaN`).
fn number(input: &str) -> Res<'_, FieldValueRef<'_>> {
    let (token, rest) = bare_token(input);
    let bytes = token.as_bytes();
    let value = match bytes[bytes.len() - 1] {
        b'i' => match parse_i64(&bytes[..bytes.len() - 1]) {
            Int::Value(v) => FieldValueRef::Integer(v),
            Int::Invalid => return fail(input, LineErrorKind::InvalidNumber),
            Int::OutOfRange => return fail(input, LineErrorKind::IntegerOutOfRange),
        },
        b'u' => {
            let digits = &token[..token.len() - 1];
            if digits.starts_with('-') && is_integer(&digits.as_bytes()[1..], false) {
                return fail(input, LineErrorKind::UnsignedOutOfRange);
            }
            if !is_integer(digits.as_bytes(), false) {
                return fail(input, LineErrorKind::InvalidNumber);
            }
            match digits.parse::<u64>() {
                Ok(v) => FieldValueRef::UInteger(v),
                Err(_) => return fail(input, LineErrorKind::UnsignedOutOfRange),
            }
        }
        _ => {
            if let Some(v) = short_decimal(bytes) {
                return Ok((rest, FieldValueRef::Float(v)));
            }
            if !is_float_spelling(bytes) {
                return fail(input, LineErrorKind::InvalidNumber);
            }
            match token.parse::<f64>() {
                Ok(v) if v.is_finite() => FieldValueRef::Float(v),
                _ => return fail(input, LineErrorKind::InvalidFloat),
            }
        }
    };
    Ok((rest, value))
}

/// Powers of ten that are exact in an `f64`.
const EXACT_POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The usual float of telemetry, `-?digits[.digits]` with at most 15 digits, read
/// without the general parser (which was a tenth of the parse): the digits form an
/// integer below 2^53 and the fraction a power of ten up to 1e15, both exact, so one
/// division rounds correctly (Clinger's fast path). `None` sends anything else to the
/// general parser.
#[inline]
fn short_decimal(bytes: &[u8]) -> Option<f64> {
    let (negative, text) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction_digits = None;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                if let Some(f) = &mut fraction_digits {
                    *f += 1;
                }
            }
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0usize),
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let magnitude = mantissa as f64 / EXACT_POWERS_OF_TEN[fraction_digits.unwrap_or(0)];
    Some(if negative { -magnitude } else { magnitude })
}

/// Up to 19 ASCII digits as a number (they cannot overflow a `u64`); `None` if any byte
/// is not a digit. Whole groups of eight are read with a few multiplications each
/// (SWAR, after Lemire's "fast parsing of 8 digits").
#[inline]
pub(crate) fn parse_u64_short(digits: &[u8]) -> Option<u64> {
    debug_assert!(digits.len() <= 19);
    let head = digits.len() % 8;
    let mut acc: u64 = 0;
    for &b in &digits[..head] {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc * 10 + u64::from(d);
    }
    for chunk in digits[head..].chunks_exact(8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks are 8 bytes"));
        acc = acc * 100_000_000 + eight_digits(word)?;
    }
    Some(acc)
}

/// Eight ASCII digits, the first in the lowest byte, as their value.
#[inline]
fn eight_digits(word: u64) -> Option<u64> {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // Every byte is 0x30..=0x39: its high nibble is 3, and adding 6 keeps it 3.
    let carried = word.wrapping_add(0x0606_0606_0606_0606);
    if (word & HIGH_NIBBLES) | ((carried & HIGH_NIBBLES) >> 4) != 0x3333_3333_3333_3333 {
        return None;
    }
    let mut v = word - 0x3030_3030_3030_3030;
    // Pairs, then quads, then the eight: each step merges neighbours.
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let pairs = v & 0x0000_00FF_0000_00FF;
    let upper = (v >> 16) & 0x0000_00FF_0000_00FF;
    Some(
        (pairs
            .wrapping_mul(100 + (1_000_000 << 32))
            .wrapping_add(upper.wrapping_mul(1 + (10_000 << 32))))
            >> 32,
    )
}

/// The outcome of reading an integer.
enum Int<T> {
    Value(T),
    Invalid,
    OutOfRange,
}

/// `'-'? digit+` as an `i64`, in one pass. Negative values accumulate downwards so that
/// `i64::MIN` fits.
#[inline]
fn parse_i64(bytes: &[u8]) -> Int<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return Int::Invalid;
    }
    // Up to 19 digits fit in a `u64`: read them eight at a time, then check the range.
    // Nanosecond timestamps have 19 digits, and a checked multiply per digit was a
    // tenth of the parser's time.
    if digits.len() <= 19 {
        let Some(magnitude) = parse_u64_short(digits) else {
            return Int::Invalid;
        };
        return match (negative, i64::try_from(magnitude)) {
            (false, Ok(v)) => Int::Value(v),
            (true, Ok(v)) => Int::Value(-v),
            (true, Err(_)) if magnitude == i64::MIN.unsigned_abs() => Int::Value(i64::MIN),
            _ => Int::OutOfRange,
        };
    }
    let mut acc: i64 = 0;
    let mut overflow = false;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Int::Invalid;
        }
        let next = acc.checked_mul(10).and_then(|a| {
            if negative {
                a.checked_sub(i64::from(d))
            } else {
                a.checked_add(i64::from(d))
            }
        });
        match next {
            Some(n) => acc = n,
            // Keep checking the rest: a bad character outranks the overflow.
            None => overflow = true,
        }
    }
    if overflow {
        Int::OutOfRange
    } else {
        Int::Value(acc)
    }
}

/// `'-'? digit+` (the sign only when `signed`).
#[inline]
fn is_integer(bytes: &[u8], signed: bool) -> bool {
    let digits = match bytes {
        [b'-', rest @ ..] if signed => rest,
        _ => bytes,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The characters InfluxDB's number scanner lets through to its float parser: digits,
/// one `.`, `e`/`E` after the first byte, `-` first or after `e`, `+` after `e`.
fn is_float_spelling(bytes: &[u8]) -> bool {
    let mut dot = false;
    let mut digit = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => digit = true,
            b'.' if !dot => dot = true,
            b'e' | b'E' if i > 0 => {}
            b'-' if i == 0 => {}
            b'+' | b'-' if matches!(bytes[i - 1], b'e' | b'E') => {}
            _ => return false,
        }
    }
    digit
}

/// `'"' ( [^"\\] | '\' any )* '"'`: `\"` and `\\` are unescaped, other pairs kept.
fn string(input: &str) -> Res<'_, FieldValueRef<'_>> {
    let body = &input[1..];
    let bytes = body.as_bytes();
    let mut i = 0;
    loop {
        match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
            None => return fail(input, LineErrorKind::UnterminatedString),
            Some(off) if bytes[i + off] == b'\\' => i += off + 2,
            Some(off) => {
                let end = i + off;
                let value = scan::unescape_string(&body[..end]);
                return Ok((&body[end + 1..], FieldValueRef::String(value)));
            }
        }
        if i >= bytes.len() {
            return fail(input, LineErrorKind::UnterminatedString);
        }
    }
}

/// `t T true True TRUE f F false False FALSE`
fn boolean(input: &str) -> Res<'_, FieldValueRef<'_>> {
    let (token, rest) = bare_token(input);
    let value = match token {
        "t" | "T" | "true" | "True" | "TRUE" => true,
        "f" | "F" | "false" | "False" | "FALSE" => false,
        _ => return fail(input, LineErrorKind::InvalidBoolean),
    };
    Ok((rest, FieldValueRef::Boolean(value)))
}

/// `timestamp = '-'? digit+`, then only spaces; `None` when there is none.
fn timestamp(input: &str, precision: Precision) -> Res<'_, Option<(Timestamp, &str)>> {
    let input = skip_ws(input);
    if input.is_empty() {
        return Ok((input, None));
    }
    let (token, rest) =
        input.split_at(input.bytes().position(|b| b == b' ').unwrap_or(input.len()));
    let Int::Value(value) = parse_i64(token.as_bytes()) else {
        return fail(input, LineErrorKind::InvalidTimestamp);
    };
    let Some(ts) = storable_time(value, precision) else {
        return fail(input, LineErrorKind::TimestampOutOfRange);
    };
    if let Some(extra) = rest.bytes().position(|b| b != b' ') {
        return fail(&rest[extra..], LineErrorKind::TrailingCharacters);
    }
    Ok(("", Some((ts, token))))
}

/// The time of a line whose fields end at `rest` (a suffix of `line`), and where its text
/// is in `line` when it is written as the encoder writes it (no leading zeros, no `-0`).
#[inline]
pub(crate) fn time_section<'a>(
    line: &'a str,
    rest: &'a str,
    precision: Precision,
) -> Res<'a, (Option<Timestamp>, Option<std::ops::Range<usize>>)> {
    // The timestamp's token starts after the whitespace that follows the fields.
    let time_start = line.len() - skip_ws(rest).len();
    let (rest, time) = timestamp(rest, precision)?;
    let text = time
        .filter(|(_, token)| is_canonical_integer(token))
        .map(|(_, token)| time_start..time_start + token.len());
    Ok((rest, (time.map(|(ts, _)| ts), text)))
}

/// `value` in `precision` as a time, if InfluxDB can store it.
#[inline]
pub(crate) fn storable_time(value: i64, precision: Precision) -> Option<Timestamp> {
    Timestamp::from_precision(value, precision)
        .ok()
        .filter(|ts| (MIN_NANOS..=MAX_NANOS).contains(&ts.as_nanos()))
}

/// Whether an integer token that parsed is written as the encoder writes its value.
fn is_canonical_integer(token: &str) -> bool {
    let digits = token.strip_prefix('-').unwrap_or(token);
    match digits.as_bytes() {
        [b'0'] => digits.len() == token.len(),
        [first, ..] => *first != b'0',
        [] => false,
    }
}

/// `p*`, appending to `into`: like nom's `many0`, but filling a vector the caller
/// provides (fresh, or reused from the previous line).
#[inline]
fn many_into<'a, T>(
    mut p: impl Parser<&'a str, Output = T, Error = Fail<'a>>,
    mut into: Vec<T>,
    mut input: &'a str,
) -> Res<'a, Vec<T>> {
    loop {
        match p.parse(input) {
            Ok((rest, item)) => {
                into.push(item);
                input = rest;
            }
            Err(nom::Err::Error(_)) => return Ok((input, into)),
            Err(e) => return Err(e),
        }
    }
}

/// Parses one line (without its terminator and leading whitespace) into its parts, filling
/// the given (empty) vectors, so a caller can hand in fresh ones or reuse old ones.
pub(crate) fn line<'a>(
    input: &'a str,
    precision: Precision,
    tags: Vec<ParsedTag<'a>>,
    fields: Vec<ParsedField<'a>>,
) -> Result<Parts<'a>, Fail<'a>> {
    let inner = |input| -> Res<'_, Parts<'_>> {
        let (rest, measurement) = measurement(input)?;
        let (rest, tags) = many_into(tag, tags, rest)?;
        // `rest` starts at the space that ends the series key.
        let series_len = input.len() - rest.len();
        let fields_start = skip_ws(&rest[1..]);
        if fields_start.is_empty() {
            return fail(fields_start, LineErrorKind::MissingFields);
        }
        let mut dropped_time_field = false;
        let (rest, first) = field(fields_start, series_len, &mut dropped_time_field)?;
        let mut fields = fields;
        fields.push(first);
        let next_field = preceded(char(','), |i| field(i, series_len, &mut dropped_time_field));
        let (rest, mut fields) = many_into(next_field, fields, rest)?;
        // InfluxDB 2.x (and 1.x before 1.8) drops a field named `time` and stores the
        // rest; a point left without fields is refused.
        if dropped_time_field {
            fields.retain(|(k, _)| k != TIME_KEY);
            if fields.is_empty() {
                return fail(
                    fields_start,
                    SeriesError::ReservedKey { kind: "field" }.into(),
                );
            }
        }
        let fields_text = input.len() - fields_start.len()..input.len() - rest.len();
        let (rest, (timestamp, time_text)) = time_section(input, rest, precision)?;
        Ok((
            rest,
            Parts {
                measurement,
                tags,
                fields,
                timestamp,
                series_len,
                fields_text,
                time_text,
                dropped_time_field,
            },
        ))
    };
    match inner(input) {
        Ok((_, parts)) => Ok(parts),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
        Err(nom::Err::Incomplete(_)) => Err(Fail {
            at: "",
            kind: LineErrorKind::MissingFields,
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `parse_i64` must answer: the standard library's reading, except that a bad
    /// character outranks an overflow (the standard parser stops at the overflow).
    fn reference(text: &str) -> &'static str {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return "invalid";
        }
        match text.parse::<i64>() {
            Ok(_) => "value",
            Err(e) if matches!(e.kind(), PosOverflow | NegOverflow) => "out of range",
            Err(_) => "invalid",
        }
    }

    fn check(text: &str) {
        match parse_i64(text.as_bytes()) {
            Int::Value(v) => assert_eq!(Ok(v), text.parse::<i64>(), "{text:?}"),
            Int::Invalid => assert_eq!(reference(text), "invalid", "{text:?}"),
            Int::OutOfRange => assert_eq!(reference(text), "out of range", "{text:?}"),
        }
    }

    #[test]
    fn integers_at_the_edges() {
        for text in [
            "0",
            "-0",
            "7",
            "-",
            "",
            "12345678",
            "123456789",
            "1700000000000000000",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "10000000000000000000",
            "00000000000000000000001",
            "-00000000000000000000009223372036854775808",
            "1234567a",
            "123456789012345678/",
            "12345678:2345678",
            "٣",
            "1 2",
        ] {
            check(text);
        }
    }

    #[test]
    fn short_decimals_at_the_edges() {
        for text in [
            "0",
            "-0",
            "1.",
            ".5",
            "-.5",
            "-1.",
            "0.1",
            "123456789012345",
            "12345678901234.5",
            "0.000000000000001",
            "999999999999999",
            "-999999999999.999",
            "9007199254740991",
            "1234567890123456",
            ".",
            "-",
            "-.",
            "",
            "1.2.3",
            "1e3",
            "1-2",
            "--1",
            "+1",
            "0x10",
        ] {
            let fast = short_decimal(text.as_bytes());
            if let Some(v) = fast {
                let std: f64 = text.parse().unwrap();
                assert_eq!(v.to_bits(), std.to_bits(), "{text:?}");
                assert!(is_float_spelling(text.as_bytes()), "{text:?}");
            }
        }
        assert_eq!(short_decimal(b"0.1"), Some(0.1));
        assert_eq!(short_decimal(b"-2.50"), Some(-2.5));
        assert_eq!(short_decimal(b"1e3"), None);
        assert_eq!(
            short_decimal(b"1234567890123456"),
            None,
            "16 digits go the long way"
        );
    }

    proptest! {
        #[test]
        fn short_decimals_read_as_the_standard_library_reads_them(
            text in "-?[0-9]{0,9}(\\.[0-9]{0,9})?",
        ) {
            match short_decimal(text.as_bytes()) {
                Some(v) => {
                    let std: f64 = text.parse().unwrap();
                    prop_assert_eq!(v.to_bits(), std.to_bits(), "{:?}", text);
                    prop_assert!(is_float_spelling(text.as_bytes()));
                }
                None => prop_assert!(
                    text.trim_start_matches('-').trim_start_matches('.').is_empty()
                        || text.trim_start_matches('-') == "."
                        || text.bytes().filter(u8::is_ascii_digit).count() > 15,
                    "{:?} should take the fast path", text
                ),
            }
        }

        #[test]
        fn integers_read_as_the_standard_library_reads_them(
            text in "-?[0-9]{0,24}",
            bad in proptest::option::of((0usize..25, prop::sample::select(
                vec!['/', ':', 'a', ' ', '.', '-', '\u{0}', '\u{ff}']
            ))),
        ) {
            let mut text = text;
            if let Some((at, c)) = bad {
                let at = at.min(text.len());
                text.insert(at, c);
            }
            check(&text);
        }
    }
}
