//! Reads a JSON document into a [`Json`] tree in one pass over its bytes.
//!
//! The tree was built by serde_json through serde's visitor layers (a call per key, per
//! value and per member), a third of the bridge's instructions on JSON records of a
//! hundred bytes (callgrind). This reader builds the same tree directly. It accepts what
//! serde_json accepts (RFC 8259, nesting at most 127 deep) and gives the same values: a
//! whole number is a `u64` or, negative, an `i64` when it fits and a float otherwise; a
//! string without escapes is borrowed from the record. The tests hold it to serde_json on
//! made-up documents.

use std::borrow::Cow;

use serde_json::Number;

use super::JsonError;
use super::value::{Json, MEMBERS_CAPACITY, Object};

/// Nesting deeper than this is refused, as serde_json refuses it: the reader recurses.
const MAX_DEPTH: usize = 127;

/// Any 19 decimal digits fit a u64 (10^19 - 1 < 2^64).
const MANTISSA_DIGITS: usize = 19;

/// 10^0 to 10^22: the powers of ten that are exact doubles.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The bytes that end a run of plain string content: the closing quote, a backslash, and
/// the control characters JSON does not allow unescaped.
const ENDS_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The index of the first byte from `i` on that ends plain string content (the end of
/// `bytes` if none does), eight bytes a step: most keys and short values end in the first
/// word.
fn plain_end(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("a slice of eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // A byte below 0x20 (zero after the xors for the quote and the backslash) sets its
        // high bit here; a borrow can set bits only above the first such byte, and the
        // first is the one wanted.
        let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w;
        let hits = (below(quote, 1) | below(backslash, 1) | below(word, 0x20)) & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| !ENDS_PLAIN[usize::from(b)]) {
        i += 1;
    }
    i
}

/// The JSON value that is the whole of `text` (whitespace around it allowed).
pub(crate) fn read(text: &str) -> Result<Json<'_>, JsonError> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = reader.value()?;
    reader.skip_whitespace();
    if reader.at < reader.bytes.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(value)
}

/// Reads `text` as one object of scalar members, handing each member to `member` as it
/// is read, with no tree built (the decoder's flat path). Returns whether the whole text
/// was such an object: `false` for anything else (another value, a member whose value is
/// an object or an array, bad JSON) and when `member` returns `false`; the caller then
/// reads the text again as a tree, which names any error.
pub(crate) fn read_flat_object<'a>(
    text: &'a str,
    member: &mut dyn FnMut(Cow<'a, str>, Json<'a>) -> bool,
) -> bool {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let read = reader.flat_object(member).is_some();
    reader.skip_whitespace();
    read && reader.at == reader.bytes.len()
}

/// A place in the document being read.
struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// The next byte to read.
    at: usize,
    /// Objects and arrays open around `at`.
    depth: usize,
}

impl<'a> Reader<'a> {
    fn value(&mut self) -> Result<Json<'a>, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(_) => Err(self.error("expected value")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    /// Reads an object or array with `read`, one level deeper.
    fn nested(
        &mut self,
        read: fn(&mut Self) -> Result<Json<'a>, JsonError>,
    ) -> Result<Json<'a>, JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// At `{`.
    fn object(&mut self) -> Result<Json<'a>, JsonError> {
        self.at += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(Object::from_members(members)));
        }
        members.reserve(MEMBERS_CAPACITY);
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'"') => {}
                Some(_) => return Err(self.error("key must be a string")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let key = self.string()?;
            self.skip_whitespace();
            match self.peek() {
                Some(b':') => self.at += 1,
                Some(_) => return Err(self.error("expected `:`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
            let value = self.value()?;
            members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(Object::from_members(members)));
                }
                Some(_) => return Err(self.error("expected `,` or `}`")),
                None => return Err(self.error("EOF while parsing an object")),
            }
        }
    }

    /// An object of scalar members, each handed to `member`; `None` for anything else.
    fn flat_object(
        &mut self,
        member: &mut dyn FnMut(Cow<'a, str>, Json<'a>) -> bool,
    ) -> Option<()> {
        self.skip_whitespace();
        if self.peek() != Some(b'{') {
            return None;
        }
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return None;
            }
            let key = self.string().ok()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return None;
            }
            self.at += 1;
            self.skip_whitespace();
            if matches!(self.peek(), Some(b'{' | b'[')) {
                return None;
            }
            let value = self.value().ok()?;
            if !member(key, value) {
                return None;
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// At `[`.
    fn array(&mut self) -> Result<Json<'a>, JsonError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                Some(_) => return Err(self.error("expected `,` or `]`")),
                None => return Err(self.error("EOF while parsing a list")),
            }
        }
    }

    /// At `"`: the string, borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let start = self.at + 1;
        let end = plain_end(self.bytes, start);
        if self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            return Ok(Cow::Borrowed(self.slice(start, end)?));
        }
        // An escape, a control character or the end of the input: the owned reading
        // unescapes the first and names the others.
        self.at = start;
        self.escaped().map(Cow::Owned)
    }

    /// The string from `at` to its closing quote, unescaped.
    fn escaped(&mut self) -> Result<String, JsonError> {
        let mut owned = String::new();
        loop {
            let start = self.at;
            let end = plain_end(self.bytes, start);
            owned.push_str(self.slice(start, end)?);
            self.at = end;
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(owned);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let unescaped = self.escape()?;
                    owned.push(unescaped);
                }
                Some(_) => {
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
    }

    /// The character of the escape after a backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.at += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => {
                self.at -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    /// After `\u`: one code point, from a surrogate pair when it takes two escapes.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in hex escape")),
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut code = 0u16;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b) => char::from(b).to_digit(16),
                None => return Err(self.error("EOF while parsing a string")),
            };
            let Some(digit) = digit else {
                return Err(self.error("invalid escape"));
            };
            // Four digits of at most 15 fit in a u16.
            code = code << 4 | digit as u16;
            self.at += 1;
        }
        Ok(code)
    }

    /// At `-` or a digit.
    fn number(&mut self) -> Result<Json<'a>, JsonError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        // The digits before and after the point, as one integer: exact up to 19 digits.
        let mut mantissa: u64 = 0;
        let int_start = self.at;
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digit_run(&mut mantissa);
            }
            Some(_) => return Err(self.error("invalid number")),
            None => return Err(self.error("EOF while parsing a value")),
        }
        let int_digits = self.at - int_start;
        let mut float = false;
        let mut fraction_digits = 0;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.expect_digit()?;
            fraction_digits = self.digit_run(&mut mantissa);
            float = true;
        }
        let mut overflowed = int_digits + fraction_digits > MANTISSA_DIGITS;
        if overflowed && !float {
            // Twenty digits may still fit a u64.
            if let Ok(whole) = self.slice(int_start, self.at)?.parse::<u64>() {
                mantissa = whole;
                overflowed = false;
            }
        }
        let fraction_digits = i32::try_from(fraction_digits).unwrap_or(i32::MAX);
        let mut exponent: Option<i32> = Some(0);
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            let exponent_negative = match self.peek() {
                Some(sign @ (b'+' | b'-')) => {
                    self.at += 1;
                    sign == b'-'
                }
                _ => false,
            };
            self.expect_digit()?;
            let mut e: Option<i32> = Some(0);
            while let Some(digit @ b'0'..=b'9') = self.peek() {
                e = e.and_then(|e| e.checked_mul(10)?.checked_add(i32::from(digit - b'0')));
                self.at += 1;
            }
            exponent = e.map(|e| if exponent_negative { -e } else { e });
            float = true;
        }
        let number = if float || overflowed {
            let power = exponent.and_then(|e| e.checked_sub(fraction_digits));
            let value = match power {
                // Clinger's fast path, as serde_json takes it: both numbers are exact
                // doubles, so one division or product rounds correctly.
                Some(p @ -22..=22) if !overflowed && mantissa < 1 << 53 => {
                    let scale = POWERS_OF_TEN[p.unsigned_abs() as usize];
                    let magnitude = mantissa as f64;
                    Some(if p < 0 {
                        magnitude / scale
                    } else {
                        magnitude * scale
                    })
                    .map(|v| if negative { -v } else { v })
                }
                _ => self.slice(start, self.at)?.parse::<f64>().ok(),
            };
            match value.and_then(Number::from_f64) {
                Some(n) => n,
                None => return Err(self.error("number out of range")),
            }
        } else if !negative {
            Number::from(mantissa)
        } else {
            // As serde_json: `-0` and magnitudes beyond i64 are floats.
            match 0i64.checked_sub_unsigned(mantissa) {
                Some(n) if n < 0 => Number::from(n),
                _ => Number::from_f64(-(mantissa as f64))
                    .ok_or_else(|| self.error("number out of range"))?,
            }
        };
        Ok(Json::Number(number))
    }

    /// Reads a run of digits onto `mantissa` (wrapping: the caller counts the digits to
    /// know whether it holds them) and says how many there were.
    fn digit_run(&mut self, mantissa: &mut u64) -> usize {
        let start = self.at;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            *mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(digit - b'0'));
            self.at += 1;
        }
        self.at - start
    }

    /// At least one digit must come next.
    fn expect_digit(&self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'0'..=b'9') => Ok(()),
            Some(_) => Err(self.error("invalid number")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &[u8], value: Json<'a>) -> Result<Json<'a>, JsonError> {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(value)
        } else {
            Err(self.error("expected ident"))
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// `text[start..end]`; both ends are next to ASCII bytes the reader stopped at.
    #[inline]
    fn slice(&self, start: usize, end: usize) -> Result<&'a str, JsonError> {
        match self.text.get(start..end) {
            Some(s) => Ok(s),
            None => Err(self.error("a string is cut inside a character")),
        }
    }

    /// A syntax error at `at`, by line and column as serde_json names places.
    #[cold]
    fn error(&self, what: &str) -> JsonError {
        let before = &self.bytes[..self.at.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = self.at - line_start + 1;
        JsonError::Syntax(format!("{what} at line {line} column {column}"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// Whether `ours` holds what serde_json read into `theirs`: the same kinds, strings and
    /// members; floats within a few units of the last place (serde_json, without its
    /// `float_roundtrip` feature, may round numbers of more than 15 digits the other way).
    fn same(ours: &Json<'_>, theirs: &Value) -> bool {
        match (ours, theirs) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => {
                if a.is_f64() || b.is_f64() {
                    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                        return false;
                    };
                    a.is_f64() == b.is_f64()
                        && x.is_sign_negative() == y.is_sign_negative()
                        && (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
                } else {
                    a.as_u64() == b.as_u64() && a.as_i64() == b.as_i64()
                }
            }
            (Json::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Json::Object(a), Value::Object(b)) => {
                a.iter().count() == b.len()
                    && b.iter().all(|(k, v)| a.get(k).is_some_and(|x| same(x, v)))
            }
            _ => false,
        }
    }

    /// Reads `text` both ways: both refuse it, or both read the same value.
    fn agree(text: &str) -> Result<(), String> {
        match (read(text), serde_json::from_str::<Value>(text)) {
            (Ok(ours), Ok(theirs)) if same(&ours, &theirs) => Ok(()),
            (Err(_), Err(_)) => Ok(()),
            (ours, theirs) => Err(format!("{text:?}: ours {ours:?}, serde_json {theirs:?}")),
        }
    }

    #[test]
    fn fixed_documents_read_as_serde_json_reads_them() {
        let deep_ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        for text in [
            r#"{"host":"server-00012","region":"r0","usage":12.34,"requests":42,"ok":true,"time":1700000000123}"#,
            r#" { "a" : [ 1 , -2 , 3.5e2 , true , false , null , "x" ] , "b" : { } , "c" : [ ] } "#,
            r#"{"k":1,"k":2}"#,
            r#""\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00 é""#,
            "0",
            "-0",
            "-0.0",
            "1e400",
            "-1e400",
            "1e-400",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "1E+2",
            "1e-2",
            "0.1",
            "2.5E-3",
            // Either side of the exact fast path for floats.
            "1e22",
            "1e23",
            "-1.5e-22",
            "1.5e-23",
            "9007199254740991.0",
            "9007199254740993.0",
            "12.34",
            "-0.0",
            "0e0",
            "1e99999999999",
            "1e-99999999999",
            "0.000000000000000000000000001",
            "1234567890123456789",
            "12345678901234567890",
            "99999999999999999999",
            "-12345678901234567890",
            "1234567890.123456789",
            "12345678901234567890e-1",
            &format!("0.{}1e-2147483647", "0".repeat(40)),
            "1e-2147483648",
            &deep_ok,
            &too_deep,
            // Refused.
            "",
            " ",
            "{",
            "}",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "[1 2]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "--1",
            "0x10",
            "tru",
            "nul",
            "True",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\uD800\"",
            "\"\\uD800\\u0041\"",
            "\"\\uDC00\"",
            "\"a\tb\"",
            "\"a\u{1}b\"",
            "1 2",
            "{}x",
            "[]]",
            "NaN",
            "Infinity",
        ] {
            agree(text).unwrap();
        }
    }

    #[test]
    fn refusals_name_their_place() {
        let e = read("{\"a\":1,\n \"b\" 2}").unwrap_err();
        assert_eq!(
            e,
            JsonError::Syntax("expected `:` at line 2 column 6".into()),
            "{e}"
        );
        let e = read(&"[".repeat(200)).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    /// A JSON number's text, mostly valid, sometimes not.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "-?(0|[1-9][0-9]{0,19})",
            4 => "-?(0|[1-9][0-9]{0,7})\\.[0-9]{1,6}([eE][+-]?[0-9]{1,3})?",
            2 => "-?[1-9][0-9]{0,5}[eE][+-]?[0-9]{1,3}",
            1 => "[-+]?[0-9]{0,3}\\.?[0-9]{0,2}[eE]?[+-]?[0-9]{0,2}",
        ]
    }

    /// A JSON string's text: plain, escaped, unicode (surrogates paired or not), control
    /// characters.
    fn string() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            6 => "[a-z_ .,=é漢]{0,6}",
            2 => prop::sample::select(vec![
                "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9",
                "\\u0000", "\\uD83D\\uDE00", "\\uD800", "\\uDC00", "\\uD800\\u0041",
                "\\x", "\\u12", "\t", "\u{1}", "\u{7f}",
            ])
            .prop_map(str::to_owned),
        ];
        prop::collection::vec(piece, 0..4).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
    }

    fn whitespace() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "", "", " ", "\n", "\t ", "\r\n"]).prop_map(str::to_owned)
    }

    fn document() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            number(),
            string(),
            prop::sample::select(vec!["true", "false", "null", "nul", "tru"])
                .prop_map(str::to_owned),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec((whitespace(), inner.clone()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items.into_iter().map(|(w, v)| w + &v).collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::vec((string(), whitespace(), inner), 0..6).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, w, v)| format!("{k}{w}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn plain_end_agrees_with_a_byte_search(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x21, 0x7fu8..=0xff, any::<u8>()],
                0..40,
            ),
            from in 0usize..8,
        ) {
            let from = from.min(bytes.len());
            let expected = (from..bytes.len())
                .find(|&i| ENDS_PLAIN[usize::from(bytes[i])])
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_end(&bytes, from), expected);
        }

        #[test]
        fn documents_read_as_serde_json_reads_them(
            before in whitespace(),
            doc in document(),
            after in whitespace(),
        ) {
            let text = format!("{before}{doc}{after}");
            prop_assert!(agree(&text).is_ok(), "{}", agree(&text).unwrap_err());
        }

        /// A document with one byte cut out or put in: mostly refused, always as
        /// serde_json decides.
        #[test]
        fn damaged_documents_read_as_serde_json_reads_them(
            doc in document(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[],:\"\\ 0-.eE".to_vec()),
            cut in any::<bool>(),
        ) {
            let mut bytes = doc.into_bytes();
            let i = at.index(bytes.len() + 1);
            if cut && i < bytes.len() {
                bytes.remove(i);
            } else {
                bytes.insert(i, byte);
            }
            if let Ok(text) = String::from_utf8(bytes) {
                prop_assert!(agree(&text).is_ok(), "{}", agree(&text).unwrap_err());
            }
        }
    }
}
