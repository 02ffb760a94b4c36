//! The round-trip properties: encodable points survive encode then parse, and every
//! accepted input survives parse, encode, parse.

mod common;

use kinflux_line::{EncodeError, ParseOptions, encode_point, parse, validate};
use kinflux_series::{FieldValue, Point, PointRef, Precision, Timestamp};
use proptest::prelude::*;

/// Names drawn mostly from the characters that need care in line protocol.
fn name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::char::range('a', 'e'),
            1 => Just(','), 1 => Just('='), 1 => Just(' '), 2 => Just('\\'),
            1 => Just('"'), 1 => Just('#'), 1 => Just('\n'), 1 => Just('\t'),
            1 => Just('\r'), 1 => Just('é'), 1 => Just('\0'),
        ],
        1..8,
    )
    .prop_map(|c| c.into_iter().collect())
}

/// Names of any characters: controls, delimiters, backslash runs, any Unicode.
fn any_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::char::any(),
            3 => proptest::char::range('\u{0}', '\u{7f}'),
            2 => Just('\\'),
            2 => prop::sample::select(vec![',', '=', ' ', '"', '\n', '\r', '\t', '#']),
        ],
        1..10,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn value() -> impl Strategy<Value = FieldValue> {
    common::field_value(name())
}

fn point() -> impl Strategy<Value = Point> {
    (
        name(),
        proptest::collection::vec((name(), name()), 0..4),
        proptest::collection::vec((name(), value()), 1..4),
        proptest::option::of(any::<i64>()),
    )
        .prop_filter_map("valid point", |(m, tags, fields, ts)| {
            let mut b = Point::builder(m);
            for (k, v) in tags {
                b = b.tag(k, v);
            }
            for (k, v) in fields {
                b = b.field(k, v);
            }
            if let Some(ts) = ts {
                b = b.timestamp(Timestamp::from_nanos(ts));
            }
            b.build().ok()
        })
}

fn precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::Nanoseconds),
        Just(Precision::Microseconds),
        Just(Precision::Milliseconds),
        Just(Precision::Seconds),
    ]
}

/// `validate` must say exactly what `parse` says, without building points.
fn assert_validate_agrees(input: &[u8], options: ParseOptions) {
    let items: Vec<_> = parse(input, options).collect();
    let v = validate(input, options);
    assert_eq!(v.good_lines, items.iter().filter(|i| i.is_ok()).count());
    let errors: Vec<_> = items.into_iter().filter_map(Result::err).collect();
    assert_eq!(v.bad_lines, errors);
}

fn parse_one(bytes: &[u8], precision: Precision) -> Point {
    let options = ParseOptions {
        precision,
        default_time: None,
    };
    let mut it = parse(bytes, options);
    let p = it
        .next()
        .expect("one line")
        .unwrap_or_else(|e| panic!("{e} in {:?}", String::from_utf8_lossy(bytes)));
    assert!(
        it.next().is_none(),
        "one line only: {:?}",
        String::from_utf8_lossy(bytes)
    );
    p.into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_encodable_point_parses_back_to_itself(p in point(), precision in precision()) {
        let mut out = Vec::new();
        if encode_point(&p, precision, &mut out).is_err() {
            prop_assert!(out.is_empty(), "a failed encode leaves nothing behind");
            return Ok(());
        }
        prop_assert_eq!(out.last(), Some(&b'\n'));
        let mut expected = p.clone();
        expected.set_timestamp(p.timestamp().map(|t| {
            Timestamp::from_precision(t.to_precision(precision), precision).unwrap()
        }));
        prop_assert_eq!(parse_one(&out, precision), expected);
    }

    #[test]
    fn every_accepted_input_survives_encode_and_parse(
        input in proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('a', 'c'),
                2 => proptest::char::range('0', '9'),
                1 => Just(','), 2 => Just('='), 2 => Just(' '), 2 => Just('\\'),
                2 => Just('"'), 1 => Just('\n'), 1 => Just('.'), 1 => Just('-'),
                1 => Just('e'), 1 => Just('i'), 1 => Just('u'), 1 => Just('t'),
                1 => Just('#'), 1 => Just('\t'), 1 => Just('\r'),
            ],
            0..40,
        ).prop_map(|c| c.into_iter().collect::<String>()),
        precision in precision(),
    ) {
        let options = ParseOptions { precision, default_time: None };
        assert_validate_agrees(input.as_bytes(), options);
        for item in parse(input.as_bytes(), options) {
            let Ok(p): Result<PointRef<'_>, _> = item else { continue };
            let mut out = Vec::new();
            match encode_point(&p, precision, &mut out) {
                Ok(()) => prop_assert_eq!(parse_one(&out, precision), p.into_owned()),
                // InfluxDB may read such a line alone, but not in a batch: refused.
                Err(EncodeError::MisleadingSeriesKey { .. }) => {}
                Err(e) => panic!("accepted {input:?} but cannot encode: {e}"),
            }
        }
    }

    #[test]
    fn points_with_any_characters_parse_back_or_are_refused_for_a_reason(
        m in any_name(),
        tags in proptest::collection::vec((any_name(), any_name()), 0..4),
        fields in proptest::collection::vec((any_name(), common::field_value(any_name())), 1..4),
    ) {
        let mut b = Point::builder(m);
        for (k, v) in tags {
            b = b.tag(k, v);
        }
        for (k, v) in fields {
            b = b.field(k, v);
        }
        let Ok(p) = b.build() else { return Ok(()) };
        let mut out = Vec::new();
        match encode_point(&p, Precision::Nanoseconds, &mut out) {
            Ok(()) => prop_assert_eq!(parse_one(&out, Precision::Nanoseconds), p),
            Err(EncodeError::AmbiguousBackslash { name, .. }) => {
                prop_assert!(name.contains('\\'), "{:?}", name)
            }
            Err(EncodeError::UnrepresentableName { name, .. }) => prop_assert!(
                name.contains('\n') || name.starts_with(['\t', '\0', '#']),
                "{:?}", name
            ),
            Err(EncodeError::MisleadingSeriesKey { series_key }) => {
                prop_assert!(series_key.contains("\\\\"), "{:?}", series_key)
            }
            Err(e) => panic!("{p:?}: {e}"),
        }
    }
}

/// Raw name text as a writer might produce it: with escapes, stray backslashes and quotes.
fn raw_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::char::range('a', 'c').prop_map(String::from),
            1 => Just("\\ ".to_owned()), 1 => Just("\\,".to_owned()),
            1 => Just("\\=".to_owned()), 1 => Just("\\\\".to_owned()),
            1 => Just("\\".to_owned()), 1 => Just("\"".to_owned()),
            1 => Just("\\\"".to_owned()), 1 => Just("#".to_owned()), 1 => Just("=".to_owned()),
        ],
        1..5,
    )
    .prop_map(|parts| parts.concat())
}

fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| format!("{i}i")),
        any::<u64>().prop_map(|u| format!("{u}u")),
        Just("t".to_owned()),
        Just("FALSE".to_owned()),
        Just("1e3".to_owned()),
        Just(".5".to_owned()),
        Just("-1.".to_owned()),
        raw_name().prop_map(|s| format!("\"{s}\"")),
    ]
}

fn raw_line() -> impl Strategy<Value = String> {
    (
        raw_name(),
        proptest::collection::vec((raw_name(), raw_name()), 0..3),
        proptest::collection::vec((raw_name(), raw_value()), 1..4),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(m, tags, fields, ts)| {
            let mut line = m;
            for (k, v) in tags {
                line += &format!(",{k}={v}");
            }
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line += " ";
            line += &fields.join(",");
            if let Some(ts) = ts {
                line += &format!(" {ts}");
            }
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn structured_lines_that_parse_survive_encode_and_parse(
        lines in proptest::collection::vec(raw_line(), 1..4),
        precision in precision(),
    ) {
        let input = lines.join("\n");
        let options = ParseOptions { precision, default_time: None };
        assert_validate_agrees(input.as_bytes(), options);
        for item in parse(input.as_bytes(), options) {
            let Ok(p) = item else { continue };
            let mut out = Vec::new();
            match encode_point(&p, precision, &mut out) {
                Ok(()) => prop_assert_eq!(parse_one(&out, precision), p.into_owned()),
                // InfluxDB may read such a line alone, but not in a batch: refused.
                Err(EncodeError::MisleadingSeriesKey { .. }) => {}
                Err(e) => panic!("accepted {input:?} but cannot encode: {e}"),
            }
        }
    }
}

#[test]
fn unrepresentable_names_are_refused_not_mangled() {
    let cases = [
        Point::builder("#cpu").field("v", 1i64).build().unwrap(),
        Point::builder("\tcpu").field("v", 1i64).build().unwrap(),
        Point::builder("c\npu").field("v", 1i64).build().unwrap(),
        Point::builder("cpu")
            .tag("t", "a\\")
            .field("v", 1i64)
            .build()
            .unwrap(),
        // InfluxDB would store a series no query reads back.
        Point::builder("cpu\\,y").field("v", 1i64).build().unwrap(),
        Point::builder("cpu\\ y").field("v", 1i64).build().unwrap(),
        // An odd run before an escaped comma in a field key looks like an even one.
        Point::builder("cpu").field("k\\,", 1i64).build().unwrap(),
        // A name backslash before an escaped space, then an `=` and a quote: InfluxDB's
        // splitter would open a string in the series key.
        Point::builder("m\\ x=\"").field("v", 1i64).build().unwrap(),
        Point::builder("cpu")
            .field("v", 1i64)
            .timestamp(Timestamp::from_nanos(i64::MIN))
            .build()
            .unwrap(),
    ];
    for p in &cases {
        let mut out = b"keep".to_vec();
        assert!(
            encode_point(p, Precision::Nanoseconds, &mut out).is_err(),
            "{p:?}"
        );
        assert_eq!(out, b"keep");
    }
    // A name's own backslash before a byte the position unescapes gets one more
    // backslash, as InfluxDB reads `\\,` as `\,` (and `\\"` in a measurement as `\"`).
    for (p, line) in [
        (
            Point::builder("cpu").tag("r", "\\ east").field("v", 1i64),
            &b"cpu,r=\\\\ east v=1i\n"[..],
        ),
        (
            Point::builder("cpu").tag("t", "a\\,b").field("v", 1i64),
            b"cpu,t=a\\\\,b v=1i\n",
        ),
        (
            Point::builder("cpu\\=").field("v", 1i64),
            b"cpu\\\\= v=1i\n",
        ),
        (
            Point::builder("cpu").field("k\\\"", 1i64),
            b"cpu k\\\\\"=1i\n",
        ),
    ] {
        let p = p.build().unwrap();
        let mut out = Vec::new();
        encode_point(&p, Precision::Nanoseconds, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(line));
        assert_eq!(parse_one(&out, Precision::Nanoseconds), p);
    }
    // Even backslash runs before an escaped byte are fine.
    let p = Point::builder("cpu")
        .tag("t", "a\\\\,b")
        .field("v", 1i64)
        .build()
        .unwrap();
    let mut out = Vec::new();
    encode_point(&p, Precision::Nanoseconds, &mut out).unwrap();
    assert_eq!(out, b"cpu,t=a\\\\\\,b v=1i\n");
}

#[test]
fn floats_use_the_shortest_form_influxdb_reads() {
    let p = Point::builder("m")
        .field("a", 1e300)
        .field("b", -0.0)
        .field("c", 0.1)
        .field("d", 5e-324)
        .field("e", 2.0)
        .build()
        .unwrap();
    let mut out = Vec::new();
    encode_point(&p, Precision::Nanoseconds, &mut out).unwrap();
    assert_eq!(out, b"m a=1e+300,b=-0.0,c=0.1,d=5e-324,e=2.0\n");
    assert_eq!(parse_one(&out, Precision::Nanoseconds), p);
}

#[test]
fn encode_points_stops_at_the_first_bad_point_and_says_which() {
    let good = Point::builder("m").field("v", 1i64).build().unwrap();
    let bad = Point::builder("m")
        .tag("t", "x\\")
        .field("v", 1i64)
        .build()
        .unwrap();
    let mut out = Vec::new();
    let (index, err) =
        kinflux_line::encode_points(&[good.clone(), bad, good], Precision::Seconds, &mut out)
            .unwrap_err();
    assert_eq!(index, 1);
    assert!(matches!(
        err,
        kinflux_line::EncodeError::AmbiguousBackslash {
            what: "tag value",
            ..
        }
    ));
    assert_eq!(out, b"m v=1i\n");
}
