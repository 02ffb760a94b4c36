//! Differential test against the real InfluxDB 1.x servers (Debian's 1.6.7 from
//! `KINFLUX_INFLUX_URL`, the current 1.13.2 from `KINFLUX_INFLUX1X_URL`): each tricky line
//! is written on its own into its own database, and what InfluxDB stores (or refuses) is
//! compared with what kinflux-line parses. Every deliberate difference is listed in the
//! README and asserted here by name, so none can change silently; where 1.13 answers
//! otherwise than 1.6.7, [`CHANGED_SINCE_1_6`] says so.

use std::collections::BTreeMap;

use kinflux_line::{ParseOptions, encode_point, parse};
use kinflux_series::{FieldValueRef, Point, PointView, Precision, Timestamp};
use kinflux_testkit::{influx, unique};
use serde_json::Value;

/// A typed field value as both sides report it.
#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(String),
    Boolean(bool),
}

/// What a database holds after one line: the comparable essence of a point.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, Typed>,
    /// `None` when the line had no timestamp (InfluxDB then uses its clock).
    time: Option<i64>,
}

/// How the two sides compare on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Both accept and store the same point, or both refuse.
    Agree,
    /// We parse it, InfluxDB 1.6.7 refuses it.
    OnlyWeAccept,
    /// InfluxDB stores something, we refuse the line.
    OnlyInfluxAccepts,
}

/// What we make of a case: refused when any of its lines is bad (a case that we split
/// into two lines is one line to InfluxDB).
fn ours(line: &[u8]) -> Option<Stored> {
    ours_in(line, Precision::Nanoseconds)
}

fn ours_in(line: &[u8], precision: Precision) -> Option<Stored> {
    let options = ParseOptions {
        precision,
        default_time: None,
    };
    let items: Vec<_> = parse(line, options).collect();
    if items.iter().any(Result::is_err) {
        return None;
    }
    assert_eq!(items.len(), 1, "each accepted case is one line");
    let point = items.into_iter().next()?.ok()?;
    Some(Stored {
        measurement: point.measurement().to_owned(),
        tags: point
            .tags()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fields: point
            .fields()
            .map(|(k, v)| {
                let v = match v {
                    FieldValueRef::Float(f) => Typed::Float(f),
                    FieldValueRef::Integer(i) => Typed::Integer(i),
                    FieldValueRef::UInteger(u) => Typed::Unsigned(u),
                    FieldValueRef::String(s) => Typed::String(s.into_owned()),
                    FieldValueRef::Boolean(b) => Typed::Boolean(b),
                    other => panic!("unknown value kind {other:?}"),
                };
                (k.to_owned(), v)
            })
            .collect(),
        time: point.timestamp().map(|t| t.as_nanos()),
    })
}

fn series(v: &Value) -> Vec<Value> {
    v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// InfluxDB's answer to one line.
#[derive(Debug)]
enum Theirs {
    /// The write was refused (400).
    Refused,
    /// The write was accepted (204); `None` when nothing could be read back.
    Accepted(Option<Stored>),
}

fn theirs(base: &str, line: &[u8], has_time: bool) -> Theirs {
    theirs_in(base, line, has_time, Precision::Nanoseconds)
}

fn theirs_in(base: &str, line: &[u8], has_time: bool, precision: Precision) -> Theirs {
    let db = unique("kinflux_line_diff");
    influx::create_database(base, &db);
    let answer = influx::write(base, &db, precision.as_v1_str(), line);
    let stored = if answer.status == 204 {
        Theirs::Accepted(read_back(base, &db, has_time))
    } else {
        Theirs::Refused
    };
    assert!(
        answer.status == 204 || answer.status == 400,
        "unexpected status {}: {}",
        answer.status,
        answer.body
    );
    influx::drop_database(base, &db);
    stored
}

fn read_back(base: &str, db: &str, has_time: bool) -> Option<Stored> {
    let measurements = series(&influx::query(base, db, "SHOW MEASUREMENTS"));
    let names = measurements.first()?["values"].as_array()?.clone();
    assert_eq!(names.len(), 1, "one measurement per case: {names:?}");
    let measurement = names[0][0].as_str()?.to_owned();

    let mut types = BTreeMap::new();
    for s in series(&influx::query(base, db, "SHOW FIELD KEYS")) {
        for kv in s["values"].as_array()? {
            types.insert(kv[0].as_str()?.to_owned(), kv[1].as_str()?.to_owned());
        }
    }
    let mut tags = BTreeMap::new();
    for s in series(&influx::query(base, db, "SHOW TAG VALUES WITH KEY =~ /.*/")) {
        for kv in s["values"].as_array()? {
            tags.insert(kv[0].as_str()?.to_owned(), kv[1].as_str()?.to_owned());
        }
    }
    let rows = series(&influx::query(base, db, "SELECT * FROM /.*/"));
    let row = rows.first()?;
    let columns: Vec<&str> = row["columns"]
        .as_array()?
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let values = row["values"].as_array()?;
    assert_eq!(values.len(), 1, "one point per case: {values:?}");
    let values = values[0].as_array()?;
    let mut fields = BTreeMap::new();
    let mut time = None;
    for (c, v) in columns.iter().zip(values) {
        if *c == "time" {
            time = v.as_i64();
            continue;
        }
        let Some(ty) = types.get(*c) else { continue };
        let typed = match ty.as_str() {
            "float" => Typed::Float(v.as_f64()?),
            "integer" => Typed::Integer(v.as_i64()?),
            "unsigned" => Typed::Unsigned(v.as_u64()?),
            "string" => Typed::String(v.as_str()?.to_owned()),
            "boolean" => Typed::Boolean(v.as_bool()?),
            other => panic!("unknown field type {other}"),
        };
        fields.insert((*c).to_owned(), typed);
    }
    Some(Stored {
        measurement,
        tags,
        fields,
        time: if has_time { time } else { None },
    })
}

use Outcome::{Agree, OnlyInfluxAccepts, OnlyWeAccept};

/// The cases: a line, and how we expect the two sides to compare (with why, for the
/// differences). Lines without a timestamp get InfluxDB's clock, so time is not compared.
const CASES: &[(&[u8], Outcome, &str)] = &[
    // Plain points and every value type InfluxDB 1.6.7 has.
    (
        b"cpu,host=a,region=eu usage=12.5,cores=8i,up=true,name=\"x\" 1700000000000000000",
        Agree,
        "",
    ),
    (b"cpu usage=1", Agree, ""),
    (b"cpu v=1 0", Agree, ""),
    (b"cpu v=1 -1", Agree, ""),
    (b"cpu,b=2,a=1 v=1 1", Agree, "unsorted tags are sorted"),
    (
        b"cpu v=1,v=2 1",
        Agree,
        "a repeated field keeps the last value",
    ),
    (
        b"cpu v=1,w=2i,v=3i 1",
        OnlyWeAccept,
        "a repeated field with another type: InfluxDB refuses the write (field type conflict), we keep the last value",
    ),
    // Floats: every spelling InfluxDB accepts, and some it does not.
    (b"m v=1. 1", Agree, ""),
    (b"m v=.5 1", Agree, ""),
    (b"m v=-.5 1", Agree, ""),
    (b"m v=-1e3 1", Agree, ""),
    (b"m v=1E+2 1", Agree, ""),
    (b"m v=1e-2 1", Agree, ""),
    (b"m v=1.e5 1", Agree, ""),
    (b"m v=-0 1", Agree, ""),
    (b"m v=007 1", Agree, ""),
    (b"m v=1.7976931348623157e308 1", Agree, ""),
    (b"m v=5e-324 1", Agree, ""),
    (b"m v=1e-400 1", Agree, "underflow reads as 0 on both sides"),
    (b"m v=1e400 1", Agree, "overflow refused"),
    (b"m v=+1 1", Agree, "no leading +"),
    (b"m v=1e 1", Agree, ""),
    (b"m v=1.2.3 1", Agree, ""),
    (b"m v=. 1", Agree, ""),
    (b"m v=- 1", Agree, ""),
    (b"m v=NaN 1", Agree, ""),
    (b"m v=inf 1", Agree, ""),
    (b"m v=0x10 1", Agree, ""),
    (b"m v=1_000 1", Agree, ""),
    // Integers.
    (b"m v=9223372036854775807i 1", Agree, ""),
    (b"m v=-9223372036854775808i 1", Agree, ""),
    (b"m v=9223372036854775808i 1", Agree, ""),
    (b"m v=1.5i 1", Agree, ""),
    (b"m v=1e3i 1", Agree, ""),
    (b"m v=i 1", Agree, ""),
    (b"m v=1u 1", OnlyWeAccept, "1.6.7 has no unsigned integers"),
    (
        b"m v=18446744073709551615u 1",
        OnlyWeAccept,
        "1.6.7 has no unsigned integers",
    ),
    (b"m v=-1u 1", Agree, ""),
    // Booleans: every spelling, and near misses.
    (b"m a=t,b=T,c=true,d=True,e=TRUE 1", Agree, ""),
    (b"m a=f,b=F,c=false,d=False,e=FALSE 1", Agree, ""),
    (b"m v=tRUE 1", Agree, ""),
    (b"m v=yes 1", Agree, ""),
    // Strings.
    (b"m s=\"\" 1", Agree, ""),
    (b"m s=\"a \\\"quoted\\\" \\\\ word\" 1", Agree, ""),
    (b"m s=\"keeps \\n and \\t as written\" 1", Agree, ""),
    (b"m s=\"commas, equals= and spaces\" 1", Agree, ""),
    (b"m s=\"two\nlines\" 1", Agree, ""),
    (b"m s=\"unterminated 1", Agree, ""),
    (
        b"m s=\"a\"b 1",
        OnlyInfluxAccepts,
        "InfluxDB stores `a\"`; we refuse text after the quote",
    ),
    (b"m s=\"\xc3\xbc\xe2\x82\xac\" 1", Agree, "UTF-8"),
    (
        b"m s=\"\xff\" 1",
        OnlyInfluxAccepts,
        "we refuse invalid UTF-8",
    ),
    // Escapes in names.
    (b"c\\ p\\,u v=1 1", Agree, ""),
    (
        b"m\\=x\\\"y v=1 1",
        Agree,
        "measurements unescape = and \" too",
    ),
    (b"m,t\\ k\\=\\,=v\\ \\=\\, v=1 1", Agree, ""),
    (b"m,t=a\\\"b v=1 1", Agree, "tag values keep \\\""),
    (
        b"m k\\\"=1,k\\=2=2,k\\ 3=3 1",
        Agree,
        "field keys unescape \" too",
    ),
    (
        b"m,t=a\\\\b v=1 1",
        Agree,
        "other pairs are kept as written",
    ),
    (b"m,t=a\\x v=1 1", Agree, ""),
    (
        b"m,t=a\\\\\\,b v=1 1",
        Agree,
        "odd run before an escaped comma",
    ),
    (b"m,t=a=b v=1 1", Agree, "unescaped = in a tag value"),
    (
        b"m,t=a\\\\ v=1 1",
        Agree,
        "name ending in a backslash: InfluxDB reads the space as escaped",
    ),
    (
        b"m\\\\,t=1 v=1 1",
        OnlyInfluxAccepts,
        "name ending in a backslash: InfluxDB accepts it but stores nothing SELECT can read",
    ),
    (b"m=x v=1 1", Agree, "= is plain in a measurement"),
    (
        b"m,t=a\\\nb v=1 1",
        OnlyInfluxAccepts,
        "InfluxDB joins a backslash-newline into the tag value; a newline always ends our line outside strings",
    ),
    (
        b" m=a \"k\n=1 1",
        OnlyInfluxAccepts,
        "InfluxDB's line splitter takes the quote for a string and stores a field key holding a newline; we refuse",
    ),
    (b"m,t=\xce\xbb v=1 1", Agree, ""),
    (b"time v=1 1", Agree, "time is a fine measurement name"),
    // Structure.
    (b",t=1 v=1 1", Agree, ""),
    (b"m 1", Agree, ""),
    (b"m", Agree, ""),
    (b"m,t=1", Agree, ""),
    (b"m,=1 v=1 1", Agree, ""),
    (b"m,t= v=1 1", Agree, ""),
    (b"m,t v=1 1", Agree, ""),
    (b"m =1 1", Agree, ""),
    (b"m v= 1", Agree, ""),
    (b"m v=1, 1", Agree, ""),
    (b"m v=1,,w=2 1", Agree, ""),
    (b"m,a=1,a=2 v=1 1", Agree, "duplicate tags"),
    (b"m  \t v=1 \t 1   ", Agree, "whitespace between sections"),
    (b"  m v=1 1", Agree, "leading whitespace"),
    (b"m v=1 1\r\n", OnlyWeAccept, "we accept CRLF line ends"),
    (b"m,time=1 v=1 1", Agree, "a tag named time is refused"),
    (
        b"m time=1,v=2 1",
        OnlyInfluxAccepts,
        "InfluxDB drops a field named time, we refuse the line",
    ),
    (b"m time=1 1", Agree, "a point whose only field is time"),
    // Timestamps.
    (b"m v=1 9223372036854775806", Agree, ""),
    (b"m v=1 -9223372036854775806", Agree, ""),
    (
        b"m v=1 9223372036854775807",
        Agree,
        "i64::MAX is a sentinel",
    ),
    (b"m v=1 -9223372036854775807", Agree, ""),
    (b"m v=1 99999999999999999999", Agree, ""),
    (b"m v=1 12a", Agree, ""),
    (b"m v=1 1.5", Agree, ""),
    (b"m v=1 1 2", Agree, ""),
    (b"m v=1 -", Agree, ""),
];

/// Cases InfluxDB after 1.6 (1.13.2, measured) answers otherwise: the line, and how the
/// comparison comes out there. Every other case compares the same on every version.
const CHANGED_SINCE_1_6: &[(&[u8], Outcome, &str)] = &[(
    b"m time=1,v=2 1",
    Agree,
    "1.13 refuses a field named time (`invalid field name`), as we do",
)];

/// The expected comparison for `line` on the server that reports `version`.
fn expected_on(
    version: &str,
    line: &[u8],
    expected: Outcome,
    why: &'static str,
) -> (Outcome, &'static str) {
    if version.starts_with("1.6.") {
        return (expected, why);
    }
    CHANGED_SINCE_1_6
        .iter()
        .find(|(changed, _, _)| *changed == line)
        .map_or((expected, why), |&(_, outcome, why)| (outcome, why))
}

#[test]
fn kinflux_line_reads_tricky_lines_as_influxdb_1_6_7_does() {
    for base in influx::v1_servers() {
        compare_tricky_lines(&base);
    }
}

fn compare_tricky_lines(base: &str) {
    assert!(CASES.len() >= 60);
    let version = influx::version(base);
    let mut mismatches = Vec::new();
    for &(line, expected, why) in CASES {
        let (expected, why) = expected_on(&version, line, expected, why);
        let ours = ours(line);
        let has_time = ours.as_ref().is_some_and(|p| p.time.is_some())
            || line
                .trim_ascii_end()
                .rsplit(|&b| b == b' ')
                .next()
                .is_some_and(|t| {
                    !t.is_empty() && t.iter().all(|b| b.is_ascii_digit() || *b == b'-')
                });
        let theirs = theirs(base, line, has_time);
        let actual = match (&ours, &theirs) {
            (Some(a), Theirs::Accepted(Some(b))) if a == b => Agree,
            (None, Theirs::Refused) => Agree,
            (Some(_), Theirs::Refused) => OnlyWeAccept,
            (None, Theirs::Accepted(_)) => OnlyInfluxAccepts,
            (Some(_), Theirs::Accepted(_)) => {
                mismatches.push(format!(
                    "{:?}: stored differently\n  ours:   {ours:?}\n  theirs: {theirs:?}",
                    String::from_utf8_lossy(line)
                ));
                continue;
            }
        };
        if actual != expected {
            mismatches.push(format!(
                "{:?}: expected {expected:?} ({why}), got {actual:?}\n  ours:   {ours:?}\n  theirs: {theirs:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "InfluxDB {version}: {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn timestamps_in_each_precision_read_as_influxdb_reads_them() {
    for base in influx::v1_servers() {
        timestamps_in_each_precision(&base);
    }
}

fn timestamps_in_each_precision(base: &str) {
    let cases: &[(&[u8], Precision)] = &[
        (b"m v=1 1700000000", Precision::Seconds),
        (b"m v=1 -1", Precision::Seconds),
        (b"m v=1 1700000000123", Precision::Milliseconds),
        (b"m v=1 1700000000123456", Precision::Microseconds),
        (b"m v=1 9223372036", Precision::Seconds),
        (b"m v=1 9223372037", Precision::Seconds),
        (b"m v=1 -9223372037", Precision::Seconds),
        (b"m v=1 9223372036854775", Precision::Milliseconds),
        (b"m v=1 9223372036854776", Precision::Milliseconds),
        (b"m v=1 9223372036854775806", Precision::Microseconds),
    ];
    for &(line, precision) in cases {
        let ours = ours_in(line, precision);
        let theirs = match theirs_in(base, line, true, precision) {
            Theirs::Refused => None,
            Theirs::Accepted(stored) => {
                Some(stored.expect("an accepted timestamp case reads back"))
            }
        };
        assert_eq!(
            ours,
            theirs,
            "{} in {precision}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn points_we_encode_are_stored_exactly_as_they_were() {
    for base in influx::v1_servers() {
        points_we_encode_are_stored(&base);
    }
}

fn points_we_encode_are_stored(base: &str) {
    let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
    let points = [
        Point::builder("c p,u")
            .tag("t k=,", "v =,")
            .tag("a", "x\\y")
            .field("f =,\"", 1.5)
            .timestamp(t)
            .build(),
        Point::builder("m=\"x\"")
            .tag("q", "a\"b")
            .field("v", 1e300)
            .field("w", 5e-324)
            .field("z", -0.0)
            .timestamp(t)
            .build(),
        Point::builder("m")
            .field("s", "say \"hi\"\n\\o/ \\n, = ")
            .field("b", false)
            .field("i", i64::MIN)
            .field("j", i64::MAX)
            .timestamp(t)
            .build(),
        Point::builder("ünï,cødé")
            .tag("ключ", "值")
            .field("v", 0.1)
            .timestamp(Timestamp::from_nanos(-1))
            .build(),
        Point::builder(" lead")
            .tag("t", "a\\\\,b")
            .field("v", 2i64)
            .timestamp(t)
            .build(),
    ];
    for point in points {
        let point = point.expect("a valid point");
        for precision in [Precision::Nanoseconds, Precision::Milliseconds] {
            let mut line = Vec::new();
            encode_point(&point, precision, &mut line).expect("encodable");
            let expected = ours_in(&line, precision).expect("our own output parses");
            match theirs_in(base, &line, true, precision) {
                Theirs::Accepted(Some(stored)) => {
                    assert_eq!(stored, expected, "{}", String::from_utf8_lossy(&line))
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(&line)),
            }
        }
    }
}
