//! Byte scanning on the hot path: where a line ends, where a name ends, and unescaping.
//!
//! Backslashes follow InfluxDB's scanner: while looking for the end of a name, a
//! backslash pairs with the byte after it, so that byte never ends the name. When the
//! name is unescaped, only the pairs listed for its position lose their backslash; any
//! other pair (`\\`, `\a`) is kept as written.

use std::borrow::Cow;

/// Which bytes end a name, per position, and which escapes are removed there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameRules {
    /// Bit in [`CLASS`] of the bytes that end the name.
    stop: u8,
    /// Bit in [`CLASS`] of the bytes whose backslash escape is removed.
    unescape: u8,
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
};
pub(crate) const TAG: NameRules = NameRules {
    stop: STOP_KEY,
    unescape: UNESCAPE_TAG,
};
pub(crate) const FIELD_KEY: NameRules = NameRules {
    stop: STOP_KEY,
    unescape: UNESCAPE_WIDE,
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
}

/// A name found by [`scan_name`]: where it ends, and whether it holds any backslash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameEnd {
    /// Index of the first byte after the name (a stop byte, or the end of input).
    pub(crate) end: usize,
    /// Whether the name contains a backslash (so it may need unescaping).
    pub(crate) escaped: bool,
}

/// Scans a name from the start of `s` up to the first unescaped stop byte.
#[inline]
pub(crate) fn scan_name(s: &[u8], rules: NameRules) -> NameEnd {
    let mask = rules.stop | BACKSLASH;
    let mut escaped = false;
    let mut i = 0;
    while i < s.len() {
        let class = CLASS[s[i] as usize];
        if class & mask != 0 {
            if class & BACKSLASH == 0 {
                break;
            }
            escaped = true;
            i += 2;
            continue;
        }
        i += 1;
    }
    NameEnd {
        end: i.min(s.len()),
        escaped,
    }
}

/// Unescapes a scanned name: borrowed when nothing is removed.
pub(crate) fn unescape_name(name: &str, escaped: bool, rules: NameRules) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(name);
    }
    unescape_pairs(name, |b| rules.unescapes(b))
}

/// Unescapes a string field's contents: `\"` and `\\` lose their backslash.
pub(crate) fn unescape_string(s: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\\', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    unescape_pairs(s, |b| b == b'"' || b == b'\\')
}

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
        }
        i += 2;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
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
    quoted_line_end(buf, start)
}

#[cold]
fn quoted_line_end(buf: &[u8], start: usize) -> (usize, usize) {
    let mut quoted = false;
    let mut fields = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    let mut inner_newlines = 0;
    let mut i = start;
    while i < buf.len() {
        let b = buf[i];
        if b == b'\\' && buf.get(i + 1).is_some_and(|&n| n != b'\n' || quoted) {
            if buf[i + 1] == b'\n' {
                inner_newlines += 1;
            }
            i += 2;
            continue;
        }
        if b == b' ' {
            fields = true;
        }
        if fields && !quoted && b == b'=' {
            equals += 1;
        } else if fields && !quoted && b == b',' {
            commas += 1;
        } else if fields && b == b'"' && equals > commas {
            quoted = !quoted;
        } else if b == b'\n' {
            if !quoted {
                return (i, inner_newlines);
            }
            inner_newlines += 1;
        }
        i += 1;
    }
    (buf.len(), inner_newlines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_pairs_hide_stop_bytes_but_only_listed_escapes_are_removed() {
        let s = r"a\ b\,c\=d\\e\x f";
        let end = scan_name(s.as_bytes(), TAG);
        assert_eq!(&s[..end.end], r"a\ b\,c\=d\\e\x");
        assert_eq!(
            unescape_name(&s[..end.end], end.escaped, TAG),
            r"a b,c=d\\e\x"
        );
        assert_eq!(unescape_name(r#"a\"b\=c"#, true, MEASUREMENT), r#"a"b=c"#);
        assert_eq!(unescape_name(r#"a\"b"#, true, TAG), r#"a\"b"#);
    }

    #[test]
    fn escape_free_names_stay_borrowed() {
        assert!(matches!(
            unescape_name(r"a\xb", true, TAG),
            Cow::Borrowed(r"a\xb")
        ));
        assert!(matches!(unescape_string("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape_string(r#"say \"hi\" \\ \n"#), r#"say "hi" \ \n"#);
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
