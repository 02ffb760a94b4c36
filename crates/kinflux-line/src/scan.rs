//! Byte scanning on the hot path: where a line ends, where a name ends, and unescaping.
//!
//! Backslashes follow InfluxDB's parsers (1.x and 2.x alike). In a measurement, tag key
//! or tag value a delimiter ends the name only when the byte before it is not a
//! backslash, even an escaped one: `\\ east` is one tag value. In the field section
//! InfluxDB's scanner pairs each backslash with the byte after it instead, so a field key
//! ends at a delimiter after an even run of backslashes (and such a key is refused, since
//! InfluxDB's key reader disagrees with its scanner there). Unescaping goes left to right:
//! a backslash before a byte listed for the position is dropped, any other backslash is
//! kept and the byte after it is looked at afresh, so `\\,` reads as `\,` and `a\\b`
//! stays as written.

use std::borrow::Cow;

/// Which bytes end a name, per position, and which escapes are removed there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameRules {
    /// Bit in [`CLASS`] of the bytes that end the name.
    stop: u8,
    /// Bit in [`CLASS`] of the bytes whose backslash escape is removed.
    unescape: u8,
    /// Whether a backslash pairs with the next byte while scanning (the field section),
    /// rather than escaping whatever byte follows a backslash (the series key).
    pairs: bool,
}

const BACKSLASH: u8 = 1;
/// `,` and space: end a measurement.
const STOP_MEASUREMENT: u8 = 2;
/// `,`, `=` and space: end tag keys, tag values and field keys.
const STOP_KEY: u8 = 4;
/// `,`, space, `=`, `"`: InfluxDB unescapes these in measurements and field keys.
const UNESCAPE_WIDE: u8 = 8;
/// `,`, space, `=`: InfluxDB unescapes these in tag keys and values.
const UNESCAPE_TAG: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'\\' as usize] = BACKSLASH;
    t[b',' as usize] = STOP_MEASUREMENT | STOP_KEY | UNESCAPE_WIDE | UNESCAPE_TAG;
    t[b' ' as usize] = STOP_MEASUREMENT | STOP_KEY | UNESCAPE_WIDE | UNESCAPE_TAG;
    t[b'=' as usize] = STOP_KEY | UNESCAPE_WIDE | UNESCAPE_TAG;
    t[b'"' as usize] = UNESCAPE_WIDE;
    t
};

pub(crate) const MEASUREMENT: NameRules = NameRules {
    stop: STOP_MEASUREMENT,
    unescape: UNESCAPE_WIDE,
    pairs: false,
};
pub(crate) const TAG: NameRules = NameRules {
    stop: STOP_KEY,
    unescape: UNESCAPE_TAG,
    pairs: false,
};
pub(crate) const FIELD_KEY: NameRules = NameRules {
    stop: STOP_KEY,
    unescape: UNESCAPE_WIDE,
    pairs: true,
};

impl NameRules {
    /// Whether `b` is removed from a `\b` pair at this position when unescaping.
    #[inline]
    pub(crate) fn unescapes(self, b: u8) -> bool {
        CLASS[b as usize] & self.unescape != 0
    }

    /// Whether `b` must be escaped at this position when encoding.
    #[inline]
    pub(crate) fn stops_at(self, b: u8) -> bool {
        CLASS[b as usize] & self.stop != 0
    }

    /// Whether backslashes pair while scanning (see [`NameRules::pairs`]).
    #[inline]
    pub(crate) fn pairs(self) -> bool {
        self.pairs
    }
}

/// A name found by [`scan_name`]: where it ends, and whether it holds any backslash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameEnd {
    /// Index of the first byte after the name (a stop byte, or the end of input).
    pub(crate) end: usize,
    /// Whether the name contains a backslash (so it may need unescaping).
    pub(crate) escaped: bool,
}

/// Scans a name from the start of `s` up to the first unescaped stop byte: one that no
/// backslash precedes, or, where backslashes pair, one after an even run of them.
#[inline]
pub(crate) fn scan_name(s: &[u8], rules: NameRules) -> NameEnd {
    let mut escaped = false;
    let mut i = 0;
    loop {
        i += if rules.stop == STOP_MEASUREMENT {
            find_first(&s[i..], [b',', b' ', b'\\'])
        } else {
            find_first(&s[i..], [b',', b'=', b' ', b'\\'])
        };
        if i >= s.len() || s[i] != b'\\' {
            return NameEnd { end: i, escaped };
        }
        escaped = true;
        if rules.pairs {
            i = (i + 2).min(s.len());
        } else {
            // Every byte after a backslash is escaped, a backslash included: skip the run
            // and the byte after it.
            let run = s[i..].iter().take_while(|&&b| b == b'\\').count();
            i = (i + run + 1).min(s.len());
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first byte of `s` that is one of `targets`, or `s.len()`.
///
/// Looks at eight bytes per step (SWAR): names and values are short, so this beats both a
/// byte loop and a SIMD search that needs a setup per call.
#[inline(always)]
pub(crate) fn find_first<const N: usize>(s: &[u8], targets: [u8; N]) -> usize {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks are 8 bytes"));
        // A zero byte in `word ^ t` is a match; the lowest flagged byte is exact.
        let hits = hits(word, targets);
        if hits != 0 {
            return base + (hits.trailing_zeros() / 8) as usize;
        }
        base += 8;
    }
    let rest = chunks.remainder();
    // The bytes past the last whole word in one word first (the last eight bytes, or a
    // short input packed): names are mostly shorter than eight, and most hold no target.
    let tail = match s.len() {
        0..=8 => pack_short(rest),
        len => u64::from_le_bytes(s[len - 8..].try_into().expect("eight bytes")),
    };
    if rest.is_empty() || !has_any(tail, targets) {
        return s.len();
    }
    for (i, b) in rest.iter().enumerate() {
        if targets.contains(b) {
            return base + i;
        }
    }
    s.len()
}

/// Whether a byte of `word` is one of `targets` (exact: no false hits).
#[inline(always)]
fn has_any<const N: usize>(word: u64, targets: [u8; N]) -> bool {
    hits(word, targets) != 0
}

/// The high bit of each byte of `word` that is one of `targets`; exact up to the lowest
/// (a borrow can flag bytes above it).
#[inline(always)]
fn hits<const N: usize>(word: u64, targets: [u8; N]) -> u64 {
    let mut hits = 0;
    for t in targets {
        let x = word ^ (ONES * u64::from(t));
        hits |= x.wrapping_sub(ONES) & !x & HIGHS;
    }
    hits
}

/// Up to 8 bytes in one word: every byte of `short` is in it (some twice), the rest zero
/// (a zero target then only costs the byte loop).
#[inline(always)]
fn pack_short(short: &[u8]) -> u64 {
    let len = short.len();
    let four = |at: usize| {
        u64::from(u32::from_le_bytes(
            short[at..at + 4].try_into().expect("four bytes"),
        ))
    };
    match len {
        0 => 0,
        1..=3 => {
            u64::from(short[0]) | u64::from(short[len / 2]) << 8 | u64::from(short[len - 1]) << 16
        }
        4..=7 => four(0) | four(len - 4) << 32,
        _ => u64::from_le_bytes(short[..8].try_into().expect("eight bytes")),
    }
}

/// Unescapes a scanned name: borrowed when nothing is removed.
#[inline(always)]
pub(crate) fn unescape_name(name: &str, escaped: bool, rules: NameRules) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(name);
    }
    unescape_escaped_name(name, rules)
}

#[cold]
#[inline(never)]
fn unescape_escaped_name(name: &str, rules: NameRules) -> Cow<'_, str> {
    unescape_pairs(name, |b| rules.unescapes(b))
}

/// Unescapes a string field's contents: `\"` and `\\` lose their backslash; `\n`, `\t`
/// and any other pair stay as written, as in InfluxDB.
pub(crate) fn unescape_string(s: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\\', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    unescape_pairs(s, |b| b == b'"' || b == b'\\')
}

/// Drops each backslash that comes before a `removed` byte, left to right as InfluxDB's
/// `escape.Unescape` does: a kept backslash does not swallow the byte after it.
fn unescape_pairs(s: &str, removed: impl Fn(u8) -> bool) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let next = bytes[i + 1];
        if removed(next) {
            // Allocate only once an escape really changes the name.
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            // Both cut points sit on ASCII bytes, so they are char boundaries.
            o.push_str(&s[copied..i]);
            copied = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Whether InfluxDB's line splitter, having read the encoded series key `key`, would be
/// in the state it starts the field section in: no string open, as many `=` as `,`
/// counted. It pairs backslashes, so after an even run before an escaped space it thinks
/// the fields have begun and counts what follows.
pub(crate) fn series_key_ends_cleanly(key: &[u8]) -> bool {
    let (mut fields, mut quoted) = (false, false);
    let (mut equals, mut commas) = (0usize, 0usize);
    let mut i = 0;
    while i < key.len() {
        let b = key[i];
        if b == b'\\' {
            i += 2;
            continue;
        }
        fields |= b == b' ';
        if fields {
            match b {
                b'=' if !quoted => equals += 1,
                b',' if !quoted => commas += 1,
                b'"' if equals > commas => quoted = !quoted,
                _ => {}
            }
        }
        i += 1;
    }
    !quoted && equals == commas
}

/// Finds the end of the line starting at `start`: the index of its terminating `\n`
/// (or `buf.len()`), and how many `\n` it contains inside quoted string fields.
///
/// A newline ends the line unless it is inside a string field. Quotes are tracked the
/// way InfluxDB's `scanLine` does: only after the first unescaped space, and only when a
/// field's `=` has been seen since the last comma. Unlike InfluxDB, a backslash never
/// joins a newline to the line.
#[inline]
pub(crate) fn line_end(buf: &[u8], start: usize) -> (usize, usize) {
    let rest = &buf[start..];
    let nl = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    if memchr::memchr(b'"', &rest[..nl]).is_none() {
        return (start + nl, 0);
    }
    let (end, inner_newlines) = quoted_line_end(buf, start);
    if end == buf.len() && end > start && buf[end - 1] == b'\n' {
        // A string left open runs to the end of the input: InfluxDB then drops the
        // input's final newline from the line.
        return (end - 1, inner_newlines.saturating_sub(1));
    }
    (end, inner_newlines)
}

/// The line end when the line holds a quote: InfluxDB's `scanLine` state machine, jumping
/// from one byte that matters to the next.
fn quoted_line_end(buf: &[u8], start: usize) -> (usize, usize) {
    let len = buf.len();
    // A backslash pairs with the next byte, except a newline outside a string.
    let after_pair = |i: usize| {
        if buf.get(i + 1) == Some(&b'\n') {
            i + 1
        } else {
            (i + 2).min(len)
        }
    };
    let mut i = start;
    // The series key: quotes mean nothing until the first unescaped space.
    loop {
        i += find_first(&buf[i..], [b'\\', b' ', b'\n']);
        if i >= len {
            return (len, 0);
        }
        match buf[i] {
            b'\\' => i = after_pair(i),
            b'\n' => return (i, 0),
            _ => break,
        }
    }
    let (mut equals, mut commas, mut inner_newlines) = (0usize, 0usize, 0usize);
    i += 1;
    loop {
        i += find_first(&buf[i..], [b'\\', b'=', b',', b'"', b'\n']);
        if i >= len {
            return (len, inner_newlines);
        }
        match buf[i] {
            b'\\' => i = after_pair(i),
            b'=' => {
                equals += 1;
                i += 1;
            }
            b',' => {
                commas += 1;
                i += 1;
            }
            b'\n' => return (i, inner_newlines),
            _ => {
                i += 1;
                if equals <= commas {
                    // A quote in a field key opens no string.
                    continue;
                }
                // Inside a string: only the closing quote matters.
                loop {
                    i += find_first(&buf[i..], [b'\\', b'"', b'\n']);
                    if i >= len {
                        return (len, inner_newlines);
                    }
                    match buf[i] {
                        b'\\' => {
                            if buf.get(i + 1) == Some(&b'\n') {
                                inner_newlines += 1;
                            }
                            i = (i + 2).min(len);
                        }
                        b'\n' => {
                            inner_newlines += 1;
                            i += 1;
                        }
                        _ => {
                            i += 1;
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backslash_escapes_the_next_byte_even_when_escaped_itself() {
        let s = r"a\ b\,c\=d\\ e\x f";
        let end = scan_name(s.as_bytes(), TAG);
        assert_eq!(&s[..end.end], r"a\ b\,c\=d\\ e\x");
        assert_eq!(
            unescape_name(&s[..end.end], end.escaped, TAG),
            r"a b,c=d\ e\x"
        );
        // `\\,` in a tag value: the comma is escaped, the first backslash is kept.
        let s = r"\\,\,x y";
        let end = scan_name(s.as_bytes(), TAG);
        assert_eq!(end.end, 6);
        assert_eq!(unescape_name(&s[..6], true, TAG), r"\,,x");
        assert_eq!(unescape_name(r#"a\"b\=c"#, true, MEASUREMENT), r#"a"b=c"#);
        assert_eq!(unescape_name(r#"a\\"b"#, true, MEASUREMENT), r#"a\"b"#);
        assert_eq!(unescape_name(r#"a\"b"#, true, TAG), r#"a\"b"#);
    }

    #[test]
    fn field_keys_pair_backslashes_while_scanning() {
        let s = r"a\\=b";
        assert_eq!(scan_name(s.as_bytes(), FIELD_KEY).end, 3);
        assert_eq!(scan_name(s.as_bytes(), TAG).end, 5);
        let s = r"a\\\=b=1";
        assert_eq!(scan_name(s.as_bytes(), FIELD_KEY).end, 6);
        assert_eq!(unescape_name(&s[..6], true, FIELD_KEY), r"a\\=b");
    }

    #[test]
    fn find_first_finds_the_earliest_target_in_any_position() {
        for len in 0..20 {
            for pos in 0..=len {
                let mut s = vec![b'a'; len];
                if pos < len {
                    s[pos] = b'=';
                    // A later different target must not win.
                    if pos + 1 < len {
                        s[pos + 1] = b',';
                    }
                }
                assert_eq!(find_first(&s, [b',', b'=']), pos, "len {len} pos {pos}");
            }
        }
        assert_eq!(find_first(&[0x80, 0xff, 0x00, 0x01, b' '], [b' ']), 4);
    }

    proptest::proptest! {
        /// Whole words, the tail's one-word test and its byte loop agree with a plain
        /// search, for inputs of any length mixing targets, bytes near them (`+`, `<`,
        /// `\x0b`, `]`), UTF-8 and zeros.
        #[test]
        fn find_first_agrees_with_a_byte_search(
            s in proptest::collection::vec(
                proptest::sample::select(b"ab,= \\\n\"+-<>\x0b\x0c[]\x00\xc3\xa9\xdd\xbc".to_vec()),
                0..40,
            ),
        ) {
            let targets = [b'\\', b'\n', b',', b'=', b' '];
            let plain = s.iter().position(|b| targets.contains(b)).unwrap_or(s.len());
            proptest::prop_assert_eq!(find_first(&s, targets), plain);
        }
    }

    #[test]
    fn escape_free_names_stay_borrowed() {
        assert!(matches!(
            unescape_name(r"a\xb", true, TAG),
            Cow::Borrowed(r"a\xb")
        ));
        assert!(matches!(unescape_string("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape_string(r#"say \"hi\" \\ \n"#), r#"say "hi" \ \n"#);
        assert_eq!(unescape_string(r#"\\\"\t\"#), r#"\"\t\"#);
    }

    #[test]
    fn newlines_inside_string_fields_do_not_end_the_line() {
        let buf = b"m v=\"a\nb\" 1\nm v=2\n";
        assert_eq!(line_end(buf, 0), (11, 1));
        assert_eq!(line_end(buf, 12), (17, 0));
        // A quote in a tag value opens no string.
        let buf = b"m,t=\"x v=1\nm v=2";
        assert_eq!(line_end(buf, 0), (10, 0));
        // An escaped quote inside a string does not close it.
        let buf = b"m v=\"a\\\"\n\" 1\nx";
        assert_eq!(line_end(buf, 0), (12, 1));
    }
}
