//! The preset against what Telegraf's avro parser makes of the same records.

use apache_avro::types::{Record, Value};
use kinflux_series::{FieldValue, PointView};

use super::*;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Reading", "namespace": "garden",
  "fields": [
    {"name": "host", "type": "string"},
    {"name": "kind", "type": "string"},
    {"name": "ts", "type": "long"},
    {"name": "temp", "type": ["null", "double"]},
    {"name": "ratio", "type": "float"},
    {"name": "pos", "type": {"type": "record", "name": "Pos", "fields": [
      {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}},
    {"name": "list", "type": {"type": "array", "items": "int"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]
}"#;

fn body(temp: Option<f64>) -> (Schema, Vec<u8>) {
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let mut r = Record::new(&schema).unwrap();
    r.put("host", "h1");
    r.put("kind", "soil");
    r.put("ts", 1_700_000_000_123i64);
    r.put(
        "temp",
        match temp {
            Some(t) => Value::Union(1, Box::new(Value::Double(t))),
            None => Value::Union(0, Box::new(Value::Null)),
        },
    );
    r.put("ratio", 0.1f32);
    r.put(
        "pos",
        Value::Record(vec![
            ("lat".into(), Value::Double(52.5)),
            ("lon".into(), Value::Double(13.4)),
        ]),
    );
    r.put("list", Value::Array(vec![Value::Int(1), Value::Int(2)]));
    r.put("at", Value::TimestampMillis(5));
    let bytes = apache_avro::to_avro_datum(&schema, r).unwrap();
    (schema, bytes)
}

fn options(toml: &str) -> TelegrafOptions {
    toml::from_str(toml).unwrap()
}

fn fields(p: &Point) -> Vec<(String, FieldValue)> {
    p.fields()
        .iter()
        .map(|f| (f.key.to_string(), f.value.clone()))
        .collect()
}

#[test]
fn flatten_mode_names_union_branches_and_keeps_every_other_field() {
    let (schema, bytes) = body(Some(21.5));
    let o = options(
        r#"
        tags = ["host"]
        timestamp = "ts"
        timestamp_format = "unix_ms"
        field_separator = "_"
        "#,
    );
    let p = &decode_telegraf(&schema, &bytes, &o, None).unwrap()[0];
    assert_eq!(p.measurement().as_str(), "garden.Reading");
    assert_eq!(PointView::tags(p).collect::<Vec<_>>(), [("host", "h1")]);
    assert_eq!(
        p.timestamp(),
        Some(Timestamp::from_nanos(1_700_000_000_123_000_000))
    );
    assert_eq!(
        fields(p),
        [
            ("kind".to_owned(), FieldValue::String("soil".into())),
            ("list_0".to_owned(), FieldValue::Integer(1)),
            ("list_1".to_owned(), FieldValue::Integer(2)),
            ("pos_lat".to_owned(), FieldValue::Float(52.5)),
            ("pos_lon".to_owned(), FieldValue::Float(13.4)),
            ("ratio".to_owned(), FieldValue::Float(f64::from(0.1f32))),
            ("temp_double".to_owned(), FieldValue::Float(21.5)),
            ("ts".to_owned(), FieldValue::Integer(1_700_000_000_123)),
        ]
    );
}

#[test]
fn nullable_mode_keeps_names_and_drops_nulls() {
    let o = options(
        r#"
        measurement_field = "kind"
        measurement = "fallback"
        fields = ["temp", "list", "missing"]
        union_mode = "nullable"
        "#,
    );
    let (schema, bytes) = body(Some(3.0));
    let p = &decode_telegraf(&schema, &bytes, &o, Some(Timestamp::from_nanos(7))).unwrap()[0];
    assert_eq!(p.measurement().as_str(), "soil");
    assert_eq!(p.timestamp(), Some(Timestamp::from_nanos(7)));
    assert_eq!(
        fields(p),
        [
            ("list0".to_owned(), FieldValue::Integer(1)),
            ("list1".to_owned(), FieldValue::Integer(2)),
            ("temp".to_owned(), FieldValue::Float(3.0)),
        ]
    );
    let (schema, bytes) = body(None);
    let o = options("fields = [\"temp\", \"at\"]\nunion_mode = \"any\"");
    let err = decode_telegraf(&schema, &bytes, &o, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "number of fields is 0; unable to create metric"
    );
}

#[test]
fn bad_timestamps_and_formats_are_refused() {
    let (schema, bytes) = body(Some(1.0));
    let o = options("timestamp = \"host\"");
    assert!(decode_telegraf(&schema, &bytes, &o, None).is_err());
    assert!(
        options("timestamp_format = \"2006-01-02\"")
            .validate()
            .is_err()
    );
    assert!(options("timestamp_format = \"unix_us\"").validate().is_ok());
    assert_eq!(
        unix_time(&Native::Str("1700000000.5".into()), 1_000_000_000),
        Some(Timestamp::from_nanos(1_700_000_000_500_000_000))
    );
    assert_eq!(
        unix_time(&Native::Float64(1.5), 1_000),
        Some(Timestamp::from_nanos(1_500))
    );
    assert_eq!(unix_time(&Native::Nil, 1), None);
}

#[test]
fn named_types_used_twice_and_union_branch_names_follow_goavro() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"R","namespace":"n","fields":[
          {"name":"a","type":{"type":"record","name":"P","fields":[{"name":"x","type":"int"}]}},
          {"name":"b","type":["null","P"]},
          {"name":"c","type":["null",{"type":"long","logicalType":"timestamp-millis"}]}]}"#,
    )
    .unwrap();
    let value = Value::Record(vec![
        ("a".into(), Value::Record(vec![("x".into(), Value::Int(1))])),
        (
            "b".into(),
            Value::Union(
                1,
                Box::new(Value::Record(vec![("x".into(), Value::Int(2))])),
            ),
        ),
        (
            "c".into(),
            Value::Union(1, Box::new(Value::TimestampMillis(5))),
        ),
    ]);
    let bytes = apache_avro::to_avro_datum(&schema, value).unwrap();
    let p =
        &decode_telegraf(&schema, &bytes, &options("field_separator = \".\""), None).unwrap()[0];
    assert_eq!(p.measurement().as_str(), "n.R");
    // The union's record branch is named by its full name; the timestamp is no field.
    assert_eq!(
        fields(p),
        [
            ("a.x".to_owned(), FieldValue::Integer(1)),
            ("b.n.P.x".to_owned(), FieldValue::Integer(2)),
        ]
    );
}
