//! `Lines::raw_sections`: where a point's series key and field section are in the input,
//! so that a forwarder can copy them instead of encoding the point again.

mod common;

use kinflux_line::{
    Forward, ParseOptions, RawSections, encode_fields, encode_point, encode_series_key,
    encode_timestamp, parse,
};
use kinflux_series::{FieldValue, Point, PointRef, PointView, Precision, Timestamp};
use proptest::prelude::*;

/// A point's raw series key and field section, as bytes.
type Raw = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Each item's raw sections, as the bytes they point at.
fn raw_of(input: &[u8]) -> Vec<Option<Raw>> {
    let mut lines = parse(input, ParseOptions::default());
    let mut out = Vec::new();
    while let Some(item) = lines.next() {
        let raw = lines.raw_sections();
        assert_eq!(
            item.is_ok(),
            raw.is_some(),
            "raw sections exactly for points"
        );
        out.push(raw.map(|RawSections { series_key, fields }| {
            (
                series_key.map(|r| input[r].to_vec()),
                fields.map(|r| input[r].to_vec()),
            )
        }));
    }
    out
}

fn some(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

#[test]
fn plain_lines_give_their_key_and_fields_as_written() {
    let input = b"  cpu,host=a,region=eu usage=1.50,n=3i,ok=t 10\r\n# c\n\nmem v=\"a b,c\"\n";
    assert_eq!(
        raw_of(input),
        [
            Some((some("cpu,host=a,region=eu"), some("usage=1.50,n=3i,ok=t"))),
            Some((some("mem"), some("v=\"a b,c\""))),
        ]
    );
}

#[test]
fn a_key_that_encodes_differently_is_not_offered() {
    let input = b"c\\ pu,host=a v=1\ncpu,region=eu,host=a v=1\ncpu,host=a\\,b v=1\n";
    let raw = raw_of(input);
    assert_eq!(raw.len(), 3);
    for (i, r) in raw.into_iter().enumerate() {
        let (key, fields) = r.expect("a point");
        assert_eq!(key, None, "line {}", i + 1);
        assert_eq!(fields, some("v=1"));
    }
}

#[test]
fn a_repeated_field_key_withholds_the_field_section() {
    assert_eq!(raw_of(b"cpu a=1,b=2,a=3 5\n"), [Some((some("cpu"), None))]);
}

#[test]
fn bad_lines_have_no_raw_sections() {
    assert_eq!(
        raw_of(b"cpu v=oops\ncpu,t=1,t=2 v=1\ncpu v=2\n"),
        [None, None, Some((some("cpu"), some("v=2")))]
    );
}

/// A forwarded line (raw key or encoded key, raw fields, timestamp) parses back to the
/// point the parser gave.
fn forwarded_equals_parsed(input: &[u8]) {
    let mut lines = parse(input, ParseOptions::default());
    while let Some(item) = lines.next() {
        let Ok(point) = item else { continue };
        let raw = lines.raw_sections().expect("a point has raw sections");
        let mut encoded_key = Vec::new();
        encode_series_key(&point, &mut encoded_key).expect("a parsed point encodes");
        if let Some(k) = raw.series_key.clone() {
            assert_eq!(&input[k], &encoded_key[..]);
        }
        let Some(f) = raw.fields else { continue };
        let mut line = encoded_key;
        line.push(b' ');
        line.extend_from_slice(&input[f]);
        let again: Vec<PointRef<'_>> = parse(&line, ParseOptions::default())
            .collect::<Result<_, _>>()
            .expect("forwarded bytes parse");
        assert_eq!(again.len(), 1);
        let fields = |p: &PointRef<'_>| -> Vec<(String, String)> {
            p.fields()
                .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
                .collect()
        };
        assert_eq!(fields(&again[0]), fields(&point));
        assert_eq!(again[0].measurement(), point.measurement());
    }
}

#[test]
fn other_spellings_forward_to_the_same_values() {
    forwarded_equals_parsed(
        b"m,a=1 f=1.,g=.5,h=-1e3,i=1E+2,j=TRUE,k=f,l=\"q\\\"x\\\\\",n=-0i 1\nm f=7u\n",
    );
}

fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::char::range('a', 'e'),
            1 => Just(','), 1 => Just('='), 1 => Just(' '), 1 => Just('\\'), 1 => Just('"'),
        ],
        1..6,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn value() -> impl Strategy<Value = FieldValue> {
    common::field_value(name())
}

proptest! {
    #[test]
    fn encoded_points_forward_byte_for_byte(
        m in name(),
        tags in proptest::collection::vec((name(), name()), 0..4),
        fields in proptest::collection::vec((name(), value()), 1..4),
        ts in any::<i32>(),
    ) {
        let mut b = Point::builder(m);
        for (k, v) in tags {
            b = b.tag(k, v);
        }
        for (k, v) in fields {
            b = b.field(k, v);
        }
        let Ok(point) = b.timestamp(Timestamp::from_nanos(i64::from(ts))).build() else {
            return Ok(());
        };
        let mut line = Vec::new();
        if encode_point(&point, Precision::Nanoseconds, &mut line).is_err() {
            return Ok(());
        }
        forwarded_equals_parsed(&line);
        // Our own encoding is canonical: its fields always forward unchanged.
        let mut lines = parse(&line, ParseOptions::default());
        let parsed = lines.next().expect("one line").expect("our line parses");
        let raw = lines.raw_sections().expect("raw sections");
        let mut fields_encoded = Vec::new();
        encode_fields(&parsed, &mut fields_encoded).expect("encodes");
        prop_assert_eq!(&line[raw.fields.expect("no repeated key")], &fields_encoded[..]);
    }
}

/// `next_forward` agrees with `next` line by line: a raw line is exactly the point's
/// encoded series key and its whole field section (no repeated key), a point is the
/// same point, and errors are the same errors.
fn forward_agrees_with_next(input: &[u8]) {
    let options = ParseOptions {
        default_time: Some(Timestamp::from_nanos(42)),
        ..ParseOptions::default()
    };
    let mut plain = parse(input, options);
    let mut forward = parse(input, options);
    loop {
        let (a, b) = (plain.next(), forward.next_forward());
        let (Some(a), Some(b)) = (a, b) else {
            assert!(forward.next_forward().is_none() && plain.next().is_none());
            return;
        };
        match (a, b) {
            (Err(a), Err(b)) => assert_eq!(a, b),
            (Ok(point), Ok(Forward::Point(p))) => {
                assert_eq!(p, point);
                assert!(
                    plain
                        .raw_sections()
                        .and_then(|r| r.series_key.zip(r.fields))
                        .is_none(),
                    "a point comes back as one only when it cannot be forwarded raw"
                );
            }
            (
                Ok(point),
                Ok(Forward::Raw {
                    series_key,
                    fields,
                    timestamp,
                    written_time,
                }),
            ) => {
                if let Some(w) = written_time {
                    let mut encoded = Vec::new();
                    encode_timestamp(w.timestamp(), w.precision(), &mut encoded)
                        .expect("a parsed time encodes");
                    assert_eq!(w.text(), &encoded[..]);
                    assert_eq!(Some(w.timestamp()), point.timestamp());
                }
                let mut key = Vec::new();
                encode_series_key(&point, &mut key).expect("a parsed point encodes");
                assert_eq!(&input[series_key.clone()], &key[..]);
                let sections = plain.raw_sections().expect("a point has raw sections");
                assert_eq!(sections.fields, Some(fields.clone()));
                assert_eq!(sections.series_key, Some(series_key));
                assert_eq!(timestamp, point.timestamp());
            }
            (a, b) => panic!("next gave {a:?}, next_forward gave {b:?}"),
        }
    }
}

#[test]
fn only_times_written_as_the_encoder_writes_them_are_offered_as_text() {
    let input = b"m v=1 15\nm v=1 007\nm v=1 -0\nm v=1 0\nm v=1 -12\nm v=1\n";
    let mut lines = parse(input, ParseOptions::default());
    let mut texts = Vec::new();
    while let Some(line) = lines.next_forward() {
        match line.expect("valid lines") {
            Forward::Raw { written_time, .. } => texts.push(written_time.map(|w| w.text())),
            Forward::Point(p) => panic!("{p:?} should forward raw"),
        }
    }
    let expected: [Option<&[u8]>; 6] = [Some(b"15"), None, None, Some(b"0"), Some(b"-12"), None];
    assert_eq!(texts, expected);
}

#[test]
fn forwarding_gives_raw_lines_points_and_errors_as_next_does() {
    forward_agrees_with_next(
        b"cpu,host=a,region=eu usage=1.5,n=3i 10\ncpu v=oops\nc\\ pu v=1\n\
          cpu,z=1,a=2 v=1\ncpu a=1,b=2,a=3 5\ncpu,t=1,t=2 v=1\nmem v=2\n# c\n",
    );
}

proptest! {
    #[test]
    fn forwarding_agrees_with_parsing_on_any_input(
        lines in prop::collection::vec(
            prop_oneof![
                "m(,t[a-c]=[a-z\\\\ ]{1,3}){0,4} f[a-c]=[0-9]{1,3}i(,[fg][a-c]=\"[a-z ]{0,4}\"){0,3}( -?[0-9]{1,5})?",
                "[a-z =,\"\\\\]{0,14}",
            ],
            0..30,
        ),
    ) {
        forward_agrees_with_next(lines.join("\n").as_bytes());
    }
}
