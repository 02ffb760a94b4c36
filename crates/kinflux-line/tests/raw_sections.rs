//! `Lines::raw_sections`: where a point's series key and field section are in the input,
//! so that a forwarder can copy them instead of encoding the point again.

use kinflux_line::{
    ParseOptions, RawSections, encode_fields, encode_point, encode_series_key, parse,
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
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<bool>().prop_map(FieldValue::Boolean),
        name().prop_map(FieldValue::String),
    ]
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
