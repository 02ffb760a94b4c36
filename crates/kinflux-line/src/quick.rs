//! One pass over the lines most producers write: no escapes, tags already sorted, no
//! field key twice. Such a line goes on as it was written, so nothing of it needs to be
//! kept but where its parts are and its time.
//!
//! The grammar's parsers (`crate::grammar`) build every tag and field as they go; for the
//! bridge's forwarding that was 300 ns of an 84-byte line. Here names are runs of bytes
//! that need no care, found eight bytes a step, and only values and the time go through
//! the grammar's own functions, so they read exactly as there.
//! Anything else (a backslash, a quote or control byte in a name, tags out of order, a
//! repeated or reserved key, an error) gives `None`, and the caller parses the line with
//! the full grammar, which says what it is.

use std::ops::Range;

use kinflux_series::{Precision, TIME_KEY, Timestamp};

use crate::grammar::{self, MAX_KEY_LENGTH};

/// Where the parts of a line that goes on as written are, relative to its first byte:
/// what this reading finds, and what `Lines::next_forward` keeps of the grammar's parts
/// for a line that is as written though not plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainLine {
    /// Length of the series key (`measurement,k1=v1`).
    pub(crate) series_len: usize,
    /// The field section.
    pub(crate) fields: Range<usize>,
    /// The line's own time, if it has one.
    pub(crate) timestamp: Option<Timestamp>,
    /// The time's text, when written as the encoder writes it.
    pub(crate) time_text: Option<Range<usize>>,
}

/// Bytes a name may hold without care anywhere: not a separator (`,` `=` space), not an
/// escape or quote, not a control byte. Bytes of multi-byte characters are plain: the
/// line's text is UTF-8 already.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 256 {
        t[b] = !matches!(b as u8, b',' | b'=' | b'\\' | b'"' | 0x7f);
        b += 1;
    }
    t
};

/// Fields a plain line may have: more are checked for repeats by the full parser.
const MAX_FIELDS: usize = 16;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that equals `target`; exact up to the lowest one
/// (a borrow can flag bytes above it).
#[inline(always)]
fn bytes_equal(word: u64, target: u8) -> u64 {
    let x = word ^ (ONES * u64::from(target));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The high bit of each byte of `word` that is not [`PLAIN`] (exact up to the lowest).
#[inline(always)]
fn not_plain(word: u64) -> u64 {
    // Below 0x21: space and control bytes; bytes from 0x80 keep their high bit out.
    let low = word.wrapping_sub(ONES * 0x21) & !word & HIGHS;
    low | bytes_equal(word, b',')
        | bytes_equal(word, b'=')
        | bytes_equal(word, b'\\')
        | bytes_equal(word, b'"')
        | bytes_equal(word, 0x7f)
}

/// The end of the run of plain bytes starting at `from`: eight bytes a step while eight
/// are left (names are short, and a branch per byte mispredicted at each name's end).
#[inline(always)]
fn plain_run(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("the chunk is 8 bytes"));
        let stops = not_plain(word);
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && PLAIN[bytes[i] as usize] {
        i += 1;
    }
    i
}

/// Reads `text` (a line from its first byte that is not whitespace, without its
/// terminator) if it is plain, as the full parser would read it; `None` when the full
/// parser must look.
#[inline]
pub(crate) fn plain_line(text: &str, precision: Precision) -> Option<PlainLine> {
    let bytes = text.as_bytes();

    // measurement ( ',' key '=' value )*, keys strictly increasing.
    let mut at = plain_run(bytes, 0);
    if at == 0 {
        return None;
    }
    let mut last_key: &[u8] = &[];
    while bytes.get(at) == Some(&b',') {
        let key_end = plain_run(bytes, at + 1);
        let key = &bytes[at + 1..key_end];
        if key.is_empty()
            || bytes.get(key_end) != Some(&b'=')
            || key == TIME_KEY.as_bytes()
            || key <= last_key
        {
            return None;
        }
        let value_end = plain_run(bytes, key_end + 1);
        if value_end == key_end + 1 || !matches!(bytes.get(value_end), Some(b',' | b' ')) {
            return None;
        }
        last_key = key;
        at = value_end;
    }
    if bytes.get(at) != Some(&b' ') {
        return None;
    }
    let series_len = at;

    // key '=' value ( ',' key '=' value )*, no key twice.
    let fields_start = text.len() - grammar::skip_ws(&text[series_len + 1..]).len();
    let mut keys: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut count = 0;
    at = fields_start;
    loop {
        let key_end = plain_run(bytes, at);
        let key = &bytes[at..key_end];
        if key.is_empty()
            || bytes.get(key_end) != Some(&b'=')
            || key == TIME_KEY.as_bytes()
            || series_len + 4 + key.len() > MAX_KEY_LENGTH
            || count == MAX_FIELDS
            || keys[..count].contains(&key)
        {
            return None;
        }
        keys[count] = key;
        count += 1;
        let (rest, _) = grammar::field_value(&text[key_end + 1..]).ok()?;
        at = text.len() - rest.len();
        match bytes.get(at) {
            Some(b',') => at += 1,
            None | Some(b' ') => break,
            Some(_) => return None,
        }
    }
    let fields = fields_start..at;

    let (timestamp, time_text) = match plain_time(&bytes[at..], precision) {
        Some(ts) => (Some(ts), Some(at + 1..bytes.len())),
        None => grammar::time_section(text, &text[at..], precision).ok()?.1,
    };
    Some(PlainLine {
        series_len,
        fields,
        timestamp,
        time_text,
    })
}

/// The time as producers write it: one space, then a positive number without leading
/// zeros that ends the line and InfluxDB can store. `None` for anything else, which
/// [`grammar::time_section`] then reads.
#[inline(always)]
fn plain_time(rest: &[u8], precision: Precision) -> Option<Timestamp> {
    let [b' ', digits @ ..] = rest else {
        return None;
    };
    if digits.is_empty() || digits.len() > 19 || digits[0] == b'0' {
        return None;
    }
    let value = i64::try_from(grammar::parse_u64_short(digits)?).ok()?;
    grammar::storable_time(value, precision)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use kinflux_series::Precision;

    use crate::{ParseOptions, parse};

    /// Every line of `input` read both ways: the items, and where each says it was.
    fn both_ways(input: &[u8], precision: Precision) {
        let options = ParseOptions {
            precision,
            default_time: None,
        };
        let (mut quick, mut full) = (parse(input, options), parse(input, options));
        loop {
            let (a, b) = (quick.next_forward_with(true), full.next_forward_with(false));
            assert_eq!(a, b, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(quick.raw_sections(), full.raw_sections());
            assert_eq!(
                (quick.line(), quick.line_range()),
                (full.line(), full.line_range())
            );
            if a.is_none() {
                break;
            }
        }
    }

    fn plain(line: &str) -> bool {
        super::plain_line(line, Precision::Nanoseconds).is_some()
    }

    #[test]
    fn runs_of_plain_bytes_end_where_the_table_says() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend((0..=255u8).rev());
        for from in 0..bytes.len() {
            for len in 0..24.min(bytes.len() - from) {
                let slice = &bytes[from..from + len];
                let by_table = slice.iter().position(|&b| !super::PLAIN[b as usize]);
                let want = by_table.unwrap_or(slice.len());
                assert_eq!(super::plain_run(slice, 0), want, "{slice:?}");
            }
        }
        // A stop byte after runs of every length, in every position of a word.
        for run in 0..20 {
            for stop in [b',', b'=', b' ', b'\\', b'"', 0x7f, 0, b'\n', b'\t'] {
                let mut line = vec![b'a'; run];
                line.push(stop);
                line.extend_from_slice(b"bcdefghijk");
                assert_eq!(super::plain_run(&line, 0), run, "{line:?}");
            }
        }
    }

    #[test]
    fn the_usual_lines_are_plain() {
        assert!(plain(
            "load,host=server-00042,region=r2 usage=12.34,requests=5i,ok=true 1700000000000000000"
        ));
        assert!(plain("cpu v=1"));
        assert!(plain("cpu,a=1 s=\"a \\\"quoted\\\" text\",n=-0.5 12"));
        assert!(plain("météo,lieu=Zürich t=1  -5  "));
    }

    #[test]
    fn lines_that_need_the_grammar_are_not() {
        for line in [
            "cpu,b=1,a=2 v=1",
            "cpu,a=1,a=1 v=1",
            "cpu v=1,v=2",
            "cpu,time=1 v=1",
            "cpu time=1,v=2",
            "c\\ pu v=1",
            "cpu,a=x\\ y v=1",
            "cpu v\\=1=2",
            "cpu,a=\"q\" v=1",
            "cpu\tx v=1",
            "cpu v=oops",
            "cpu v=1 12x",
            "cpu,a=b=c v=1",
            "cpu",
            "cpu,a=1",
            "cpu v=1,",
        ] {
            assert!(!plain(line), "{line}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("f{i}=1")).collect();
        assert!(!plain(&format!("cpu {}", many.join(","))));
    }

    #[test]
    fn fixed_inputs_read_the_same_both_ways() {
        for input in [
            "load,host=server-00042,region=r2 usage=12.34,requests=5i,ok=true 1700000000000000000\n",
            "cpu v=1 0017\ncpu v=1 -0\ncpu v=1 -12\ncpu v=1 9223372036854775807\n",
            "cpu v=1 12 \ncpu v=1  \t12\ncpu \t v=1\n  cpu v=1\n# c\n\ncpu v=\"a\nb\" 5\n",
            "cpu,b=1,a=2 v=1\ncpu v=1,v=2 3\ncpu,a=1 time=4,v=2 5\ncpu,a=é v=\"é\"\n",
            "cpu v=1e400\ncpu v=1u\ncpu v=-1u\ncpu v=18446744073709551616u\ncpu v=.5,w=1.\n",
        ] {
            both_ways(input.as_bytes(), Precision::Nanoseconds);
            both_ways(input.as_bytes(), Precision::Seconds);
        }
    }

    /// Picks from `usual` four times in five, else from `odd`.
    fn mostly(usual: Vec<&'static str>, odd: Vec<&'static str>) -> BoxedStrategy<String> {
        prop_oneof![4 => prop::sample::select(usual), 1 => prop::sample::select(odd)]
            .prop_map(str::to_owned)
            .boxed()
    }

    /// A name: mostly plain, sometimes one that needs care.
    fn name() -> BoxedStrategy<String> {
        mostly(
            vec!["a", "b", "ab", "m", "é", "0"],
            vec![
                "time", "x=y", "x y", "x\\ y", "x\\,y", "q\"", "t\tb", "", "a\\",
            ],
        )
    }

    fn value() -> BoxedStrategy<String> {
        mostly(
            vec![
                "1",
                "-1.5",
                "2i",
                "3u",
                "t",
                "FALSE",
                "\"s\"",
                "1e3",
                "\"a,b c=d\"",
            ],
            vec![
                "-0i",
                "-3u",
                "true",
                "tru",
                "\"x\\\"y\"",
                "\"n\nl\"",
                "\"open",
                "1E+2",
                "01",
                "nan",
                "-",
                "1.2.3",
                ".",
                "9223372036854775808i",
                "12345678901234567890",
            ],
        )
    }

    fn line() -> impl Strategy<Value = String> {
        (
            name(),
            prop::collection::vec((name(), name()), 0..4),
            mostly(vec![" "], vec!["  ", " \t", ",", ""]),
            prop::collection::vec((name(), value()), 0..5),
            mostly(
                vec!["", " 1700000000000000000", " -5"],
                vec![
                    " 0017",
                    " -0",
                    " 12 ",
                    " x",
                    "  5",
                    " 9223372036854775807",
                    " 1 2",
                    " ",
                ],
            ),
        )
            .prop_map(|(m, tags, gap, fields, time)| {
                let tags: String = tags.iter().map(|(k, v)| format!(",{k}={v}")).collect();
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{m}{tags}{gap}{}{time}", fields.join(","))
            })
    }

    proptest! {
        #[test]
        fn made_up_lines_read_the_same_both_ways(
            lines in prop::collection::vec(line(), 1..6),
            precision in prop::sample::select(vec![Precision::Nanoseconds, Precision::Seconds]),
        ) {
            both_ways(lines.join("\n").as_bytes(), precision);
        }

        #[test]
        fn made_up_bytes_read_the_same_both_ways(
            input in "[ab,= \\\\\"\t0-9.\\-iutfé\n]{0,60}",
        ) {
            both_ways(input.as_bytes(), Precision::Nanoseconds);
        }
    }
}
