//! Differential test against the real InfluxDB servers: Debian's 1.6.7
//! (`KINFLUX_INFLUX_URL`), the current 1.13.2 (`KINFLUX_INFLUX1X_URL`) and 2.7.12
//! (`KINFLUX_INFLUX2_URL`, `_TOKEN`, `_ORG`; written through `/api/v2/write`, read back
//! with InfluxQL through its 1.x compatibility API). Each tricky line is written on its
//! own into its own database or bucket, and what InfluxDB stores (or refuses) is compared
//! with what kinflux-line parses. [`CASES`] holds the comparison on 2.x, which
//! kinflux-line follows; where a 1.x server answers otherwise, [`ON_1_X`] says so. Every
//! deliberate difference is listed in the README and asserted here by name, so none can
//! change silently.

use std::collections::BTreeMap;

use kinflux_line::{ParseOptions, encode_point, parse};
use kinflux_series::{FieldValueRef, Point, PointView, Precision, Timestamp};
use kinflux_testkit::influx2::Influx2;
use kinflux_testkit::{http, influx, unique};
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
    /// We parse it, InfluxDB refuses it.
    OnlyWeAccept,
    /// InfluxDB stores something, we refuse the line.
    OnlyInfluxAccepts,
    /// Both accept, but InfluxDB stores nothing a query can read back.
    InfluxLosesIt,
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
    /// The write was refused (400, or 422 from 2.x).
    Refused,
    /// The write was accepted (204); `None` when nothing could be read back.
    Accepted(Option<Stored>),
}

/// An InfluxDB server under test.
enum Server {
    /// A 1.x server: `/write` and `/query` on databases.
    V1 { url: String },
    /// A 2.x server: `/api/v2/write` into buckets, read back with InfluxQL through a DBRP
    /// mapping (InfluxQL reads times up to `i64::MAX - 1`; Flux's `range` stops short).
    V2 { influx: Influx2, org_id: String },
}

/// Every configured server: the 1.x ones, then 2.x (each under the skip-or-panic rule).
fn servers() -> Vec<Server> {
    let mut all: Vec<Server> = influx::v1_servers()
        .into_iter()
        .map(|url| Server::V1 { url })
        .collect();
    if let Some(influx) = Influx2::from_env() {
        let path = format!("/api/v2/orgs?org={}", influx.org);
        let orgs: Value =
            serde_json::from_str(&v2_call(&influx, "GET", &path, b"").body).expect("JSON orgs");
        let org_id = orgs["orgs"][0]["id"]
            .as_str()
            .expect("the org exists")
            .to_owned();
        all.push(Server::V2 { influx, org_id });
    }
    all
}

fn v2_call(influx: &Influx2, method: &str, path: &str, body: &[u8]) -> http::Answer {
    let auth = format!("Token {}", influx.token);
    http::request(
        method,
        &format!("{}{path}", influx.url),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .unwrap_or_else(|e| panic!("InfluxDB 2 at {}: {e}", influx.url))
}

/// The `id` of what a 2.x `POST` created.
fn created_id(answer: &http::Answer) -> String {
    assert!(
        (200..300).contains(&answer.status),
        "{}: {}",
        answer.status,
        answer.body
    );
    let v: Value = serde_json::from_str(&answer.body).expect("a JSON answer");
    v["id"].as_str().expect("an id").to_owned()
}

impl Server {
    fn url(&self) -> &str {
        match self {
            Server::V1 { url } => url,
            Server::V2 { influx, .. } => &influx.url,
        }
    }

    /// Writes `line` into a fresh database or bucket, reads back what was stored, and
    /// drops the database or bucket.
    fn store(&self, line: &[u8], has_time: bool, precision: Precision) -> Theirs {
        match self {
            Server::V1 { url } => {
                let db = unique("kinflux_line_diff");
                influx::create_database(url, &db);
                let answer = influx::write(url, &db, precision.as_v1_str(), line);
                let theirs = outcome(answer.status, &answer.body, || {
                    read_back(|q| influx::query(url, &db, q), has_time)
                });
                influx::drop_database(url, &db);
                theirs
            }
            Server::V2 { influx: i, org_id } => {
                let bucket = unique("kinflux_line_diff");
                let spec =
                    serde_json::json!({"name": bucket, "orgID": org_id, "retentionRules": []});
                let bucket_id = created_id(&v2_call(
                    i,
                    "POST",
                    "/api/v2/buckets",
                    spec.to_string().as_bytes(),
                ));
                let dbrp = serde_json::json!({
                    "bucketID": bucket_id, "orgID": org_id, "database": bucket,
                    "retention_policy": "autogen", "default": true,
                });
                let dbrp_id = created_id(&v2_call(
                    i,
                    "POST",
                    "/api/v2/dbrps",
                    dbrp.to_string().as_bytes(),
                ));
                let path = format!(
                    "/api/v2/write?org={}&bucket={bucket}&precision={}",
                    i.org,
                    precision.as_str()
                );
                let answer = v2_call(i, "POST", &path, line);
                let theirs = outcome(answer.status, &answer.body, || {
                    read_back(
                        |q| influx::query_as(&i.url, &bucket, q, "kinflux", &i.token),
                        has_time,
                    )
                });
                let dbrp_path = format!("/api/v2/dbrps/{dbrp_id}?orgID={org_id}");
                v2_call(i, "DELETE", &dbrp_path, b"");
                v2_call(i, "DELETE", &format!("/api/v2/buckets/{bucket_id}"), b"");
                theirs
            }
        }
    }
}

/// A write's answer: 204 stores; 400 (1.x and 2.x) and 422 (2.x, for a point left
/// without fields) refuse.
fn outcome(status: u16, body: &str, read: impl FnOnce() -> Option<Stored>) -> Theirs {
    assert!(
        matches!(status, 204 | 400 | 422),
        "unexpected status {status}: {body}"
    );
    if status == 204 {
        Theirs::Accepted(read())
    } else {
        Theirs::Refused
    }
}

/// A name as an InfluxQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn read_back(query: impl Fn(&str) -> Value, has_time: bool) -> Option<Stored> {
    let measurements = series(&query("SHOW MEASUREMENTS"));
    let names = measurements.first()?["values"].as_array()?.clone();
    assert_eq!(names.len(), 1, "one measurement per case: {names:?}");
    let measurement = names[0][0].as_str()?.to_owned();

    let mut types = BTreeMap::new();
    for s in series(&query("SHOW FIELD KEYS")) {
        for kv in s["values"].as_array()? {
            types.insert(kv[0].as_str()?.to_owned(), kv[1].as_str()?.to_owned());
        }
    }
    let mut tags = BTreeMap::new();
    for s in series(&query("SHOW TAG VALUES WITH KEY =~ /.*/")) {
        for kv in s["values"].as_array()? {
            tags.insert(kv[0].as_str()?.to_owned(), kv[1].as_str()?.to_owned());
        }
    }
    // By its exact name: 2.x's InfluxQL finds no rows through `FROM /.*/` when the name
    // holds escaped characters.
    let from = if measurement.contains('\0') {
        // InfluxQL cannot name it.
        "/.*/".to_owned()
    } else {
        quoted(&measurement)
    };
    let rows = series(&query(&format!("SELECT * FROM {from}")));
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

use Outcome::{Agree, InfluxLosesIt, OnlyInfluxAccepts, OnlyWeAccept};

/// The cases: a line, and how we expect the two sides to compare on InfluxDB 2.x (with
/// why, for the differences). Lines without a timestamp get InfluxDB's clock, so time is
/// not compared.
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
    (b"m v=1u 1", Agree, ""),
    (b"m v=18446744073709551615u 1", Agree, ""),
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
        InfluxLosesIt,
        "measurements unescape = and \" too; 2.x stores a measurement holding `\"` but no query reads it back",
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
        "the comma after `\\\\` is escaped: InfluxDB stores measurement `m\\,t=1` but no query reads it back; we refuse",
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
    // Control characters are plain bytes in names and strings (the reference library
    // refuses them in names; InfluxDB does not).
    (b"m\x02 v=1 1", Agree, ""),
    (b"m,t\x08=a v=1 1", Agree, ""),
    (b"m,t=a\x0b v=1 1", Agree, ""),
    (b"m f\x0f=1 1", Agree, ""),
    (b"m\tx v=1 1", Agree, "a tab inside a measurement"),
    (b"m,t\tk=a\tb v=1 1", Agree, ""),
    (b"m a\tb=1 1", Agree, ""),
    (b"m\x00x,t=a\x00 v=1 1", Agree, ""),
    (b"m\x7f,t=a\rb v=1 1", Agree, ""),
    (b"m\x1f,t\x01=\x1e f\x1c=1 1", Agree, ""),
    (b"m s=\"a\x01\x02\tb\" 1", Agree, ""),
    // A backslash escapes the byte after it in the series key even when it is escaped
    // itself; only a backslash before a byte listed for the position is dropped.
    (b"cpu,regions=\\\\ east v=1 1", Agree, "`\\ east`"),
    (b"m,s=\\\\,\\,x v=1 1", Agree, "`\\,,x`"),
    (b"m,t=a\\\\\\ b v=1 1", Agree, "`a\\\\ b`"),
    (b"m,t=\\ a,\\ k=\\, v=1 1", Agree, ""),
    (b"\\ m v=1 1", Agree, ""),
    (b"m \\ a=1 1", Agree, ""),
    (b"m\\, v=1 1", Agree, ""),
    (b"m\\,,t=a\\, v=1 1", Agree, ""),
    (b"m\\x v=1 1", Agree, ""),
    (b"m\\\\x v=1 1", Agree, ""),
    (b"m,t=a\\b,u=a\\\\\\b v=1 1", Agree, ""),
    (b"m,t=a\\\"x,u=a\\= v=1 1", Agree, ""),
    (b"m a\\\"x=1,b\\,c=2 1", Agree, ""),
    (b"m a\\\\\\=b=1 1", Agree, "`a\\\\=b`"),
    (b"m a\\\\b=1 1", Agree, ""),
    (
        b"m\\\\\\ x v=1 1",
        OnlyInfluxAccepts,
        "InfluxDB stores measurement `m\\\\ x` but no query reads it back; we refuse",
    ),
    (b"m\\ v=1 1", Agree, "an escaped space: no fields"),
    (b"m\\\\ v=1 1", Agree, "`\\\\ ` escapes the space too"),
    (b"m,t\\\\=a v=1 1", Agree, ""),
    (b"m,t\\= v=1 1", Agree, ""),
    (b"m,t=a\\\\,u=b v=1 1", Agree, ""),
    (b"m,t=\\\\ v=1 1", Agree, ""),
    (b"m,t=a\\,\\ v=1 1", Agree, ""),
    (b"m v\\=1 1", Agree, ""),
    (b"m v=1 1\\", Agree, ""),
    (b"m,t=a v=1\\ 1", Agree, ""),
    (
        b"m f\\\\=1 1",
        Agree,
        "a field key ending in `\\\\` before `=`",
    ),
    (b"m f\\\\,g=2 1", Agree, ""),
    (b"m a\\\\ b=1 1", Agree, ""),
    (
        b"m a\\\\=t,b=1 1",
        OnlyInfluxAccepts,
        "InfluxDB's key reader takes `\\\\=` as an escaped `=` and stores field `a\\=t,b`; we refuse a field key ending in a backslash",
    ),
    (
        b"m\\\"x v=1 1",
        InfluxLosesIt,
        "2.x stores a measurement holding `\"` but no query reads it back",
    ),
    // String fields unescape `\\"` and `\\\\` only (the reference library also reads
    // `\\t`, `\\n` and `\\r`; InfluxDB keeps them as written).
    (b"m s=\"a\\tb\\nc\\rd\\\\e\\\"f\\xg\" 1", Agree, ""),
    (b"m s=\"end\\\\\" 1", Agree, ""),
    (b"m s=\"a\\\\\\\"b\\\\\\\\\" 1", Agree, ""),
    (b"m s=\"a\\\" 1", Agree, "unbalanced quotes"),
    (b"m s=\"\\u00e9\" 1", Agree, ""),
    // `time` as a key.
    (b"m,Time=1,t=time v=1 1", Agree, ""),
    (b"m,a=1,time=2 v=1 1", Agree, ""),
    (b"m,time\\ x=1 v=1 1", Agree, ""),
    (b"m v=2,time=1 1", Agree, "a field named time is dropped"),
    (
        b"m time=\"x\",v=2 1",
        Agree,
        "a field named time is dropped",
    ),
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
        Agree,
        "a field named time is dropped, the rest stored",
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

/// Where a 1.x server compares otherwise than 2.x (measured): a version prefix (`1.`
/// for every 1.x), the line, and the comparison there.
const ON_1_X: &[(&str, &[u8], Outcome, &str)] = &[
    (
        "1.",
        b"m v=1u 1",
        OnlyWeAccept,
        "1.x has no unsigned integers (behind a build flag)",
    ),
    (
        "1.",
        b"m v=18446744073709551615u 1",
        OnlyWeAccept,
        "1.x has no unsigned integers (behind a build flag)",
    ),
    (
        "1.13.",
        b"m time=1,v=2 1",
        OnlyWeAccept,
        "1.13 refuses a field named time (`invalid field name`), 2.x and 1.6 drop it",
    ),
    (
        "1.13.",
        b"m v=2,time=1 1",
        OnlyWeAccept,
        "1.13 refuses a field named time",
    ),
    (
        "1.13.",
        b"m time=\"x\",v=2 1",
        OnlyWeAccept,
        "1.13 refuses a field named time",
    ),
    (
        "1.",
        b"m\\=x\\\"y v=1 1",
        Agree,
        "1.x reads back a measurement holding `\"`",
    ),
    (
        "1.",
        b"m\\\"x v=1 1",
        Agree,
        "1.x reads back a measurement holding `\"`",
    ),
];

/// The expected comparison for `line` on the server that reports `version`.
fn expected_on(
    version: &str,
    line: &[u8],
    expected: Outcome,
    why: &'static str,
) -> (Outcome, &'static str) {
    let version = version.trim_start_matches('v');
    ON_1_X
        .iter()
        .find(|(prefix, other, _, _)| version.starts_with(prefix) && *other == line)
        .map_or((expected, why), |&(_, _, outcome, why)| (outcome, why))
}

#[test]
fn kinflux_line_reads_tricky_lines_as_influxdb_does() {
    for server in servers() {
        compare_tricky_lines(&server);
    }
}

fn compare_tricky_lines(server: &Server) {
    assert!(CASES.len() >= 140);
    let version = influx::version(server.url());
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
        let theirs = server.store(line, has_time, Precision::Nanoseconds);
        let actual = match (&ours, &theirs) {
            (Some(a), Theirs::Accepted(Some(b))) if a == b => Agree,
            (None, Theirs::Refused) => Agree,
            (Some(_), Theirs::Refused) => OnlyWeAccept,
            (None, Theirs::Accepted(_)) => OnlyInfluxAccepts,
            (Some(_), Theirs::Accepted(None)) => InfluxLosesIt,
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
    for server in servers() {
        timestamps_in_each_precision(&server);
    }
}

fn timestamps_in_each_precision(server: &Server) {
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
        let theirs = match server.store(line, true, precision) {
            Theirs::Refused => None,
            Theirs::Accepted(stored) => {
                Some(stored.expect("an accepted timestamp case reads back"))
            }
        };
        assert_eq!(
            ours,
            theirs,
            "{} in {precision} on {}",
            String::from_utf8_lossy(line),
            server.url()
        );
    }
}

#[test]
fn points_we_encode_are_stored_exactly_as_they_were() {
    for server in servers() {
        points_we_encode_are_stored(&server);
    }
}

fn points_we_encode_are_stored(server: &Server) {
    let version = influx::version(server.url());
    let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
    // Each point, and the servers (a version prefix) that accept it but cannot read it
    // back: 2.x loses measurements holding `"`.
    let points = [
        (
            Point::builder("c p,u")
                .tag("t k=,", "v =,")
                .tag("a", "x\\y")
                .field("f =,\"", 1.5)
                .timestamp(t)
                .build(),
            None,
        ),
        (
            Point::builder("m=\"x\"")
                .tag("q", "a\"b")
                .field("v", 1e300)
                .field("w", 5e-324)
                .field("z", -0.0)
                .timestamp(t)
                .build(),
            Some("v2."),
        ),
        (
            Point::builder("m")
                .field("s", "say \"hi\"\n\\o/ \\n, = ")
                .field("b", false)
                .field("i", i64::MIN)
                .field("j", i64::MAX)
                .timestamp(t)
                .build(),
            None,
        ),
        (
            Point::builder("ünï,cødé")
                .tag("ключ", "值")
                .field("v", 0.1)
                .timestamp(Timestamp::from_nanos(-1))
                .build(),
            None,
        ),
        (
            Point::builder(" lead")
                .tag("t", "a\\\\,b")
                .field("v", 2i64)
                .timestamp(t)
                .build(),
            None,
        ),
        // A name's own backslash before a byte its position unescapes.
        (
            Point::builder("cpu")
                .tag("region", "\\ east")
                .field("a\\\\=b", 1i64)
                .timestamp(t)
                .build(),
            None,
        ),
        (
            Point::builder("cpu")
                .tag("s", "\\,,x")
                .tag("k\\=", "a\\\\ b")
                .field("k\\\"", 2i64)
                .field("s", "tab\\t nl\\n end\\")
                .timestamp(t)
                .build(),
            None,
        ),
        // Control characters.
        (
            Point::builder("m\u{2}\tx\u{7f}")
                .tag("t\u{8}", "a\u{b}\u{0}b\rc")
                .field("f\u{f}\t", 1i64)
                .field("s", "a\u{1}\u{2}\tb")
                .timestamp(t)
                .build(),
            None,
        ),
    ];
    for (point, lost_on) in points {
        let point = point.expect("a valid point");
        for precision in [Precision::Nanoseconds, Precision::Milliseconds] {
            let mut line = Vec::new();
            encode_point(&point, precision, &mut line).expect("encodable");
            let expected = ours_in(&line, precision).expect("our own output parses");
            let text = String::from_utf8_lossy(&line);
            match server.store(&line, true, precision) {
                Theirs::Accepted(Some(stored)) => assert_eq!(stored, expected, "{text}"),
                Theirs::Accepted(None) if lost_on.is_some_and(|v| version.starts_with(v)) => {}
                other => panic!("{version}: {text}: {other:?}"),
            }
        }
    }
}
