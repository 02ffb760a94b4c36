//! The JSON decoder's unit tests.

use super::*;
use kinflux_series::{FieldValue, PointView};

fn mapping(toml: &str) -> Mapping {
    toml::from_str(toml).unwrap()
}

#[test]
fn object_maps_to_tags_fields_and_time() {
    let auto = Typing {
        numbers: NumberMode::Auto,
        ..Typing::default()
    };
    let d = JsonDecoder::with_typing(
        mapping(
            r#"
        measurement = { constant = "garden" }
        tags = ["sensor.id", "zone"]
        timestamp = { field = "ts", unit = "ms" }
        "#,
        ),
        auto,
    )
    .unwrap();
    let p = d
        .decode(
            br#"{"sensor":{"id":"s1","kind":"soil"},"zone":3,"ts":1700000000000,"moisture":0.4,"count":7,"big":18446744073709551615,"ok":true,"note":null,"list":[1,2]}"#,
            None,
        )
        .unwrap();
    assert_eq!(p.measurement().as_str(), "garden");
    assert_eq!(
        PointView::tags(&p).collect::<Vec<_>>(),
        [("sensor_id", "s1"), ("zone", "3")]
    );
    assert_eq!(
        p.timestamp(),
        Some(Timestamp::from_nanos(1_700_000_000_000_000_000))
    );
    let f = p.fields();
    assert_eq!(
        f.get("sensor_kind"),
        Some(&FieldValue::String("soil".into()))
    );
    assert_eq!(f.get("moisture"), Some(&FieldValue::Float(0.4)));
    assert_eq!(f.get("count"), Some(&FieldValue::Integer(7)));
    assert_eq!(f.get("big"), Some(&FieldValue::UInteger(u64::MAX)));
    assert_eq!(f.get("ok"), Some(&FieldValue::Boolean(true)));
    assert_eq!(f.get("note"), None);
    assert_eq!(f.get("list_0"), None);
    assert_eq!(f.len(), 5);
}

#[test]
fn explicit_fields_expand_arrays_and_rfc3339_times_parse() {
    let d = JsonDecoder::new(mapping(
        r#"
        measurement = { field = "kind" }
        fields = ["v"]
        collections = "expand"
        timestamp = { field = "at" }
        "#,
    ))
    .unwrap();
    let p = d
        .decode(
            br#"{"kind":"m","v":[1.5,2],"at":"2023-11-14T22:13:20Z","other":1}"#,
            None,
        )
        .unwrap();
    assert_eq!(p.measurement().as_str(), "m");
    assert_eq!(p.fields().get("v_0"), Some(&FieldValue::Float(1.5)));
    assert_eq!(p.fields().get("v_1"), Some(&FieldValue::Float(2.0)));
    assert_eq!(p.fields().get("other"), None);
    assert_eq!(
        p.timestamp(),
        Some(Timestamp::from_nanos(1_700_000_000_000_000_000))
    );
}

#[test]
fn missing_paths_fail_unless_optional_and_null_time_falls_back() {
    let d = JsonDecoder::new(mapping(
        r#"
        measurement = { constant = "m" }
        tags = ["a", "b"]
        optional = ["b"]
        timestamp = { field = "t", unit = "s" }
        "#,
    ))
    .unwrap();
    let fallback = Some(Timestamp::from_nanos(5));
    let p = d.decode(br#"{"a":"x","t":null,"v":1}"#, fallback).unwrap();
    assert_eq!(p.timestamp(), fallback);
    assert_eq!(
        d.decode(br#"{"v":1,"t":1}"#, None).unwrap_err(),
        JsonError::Missing("a".into())
    );
    assert!(matches!(
        d.decode(b"[1]", None),
        Err(JsonError::NotAnObject(_))
    ));
    assert!(matches!(
        d.decode(b"{nope", None),
        Err(JsonError::Syntax(_))
    ));
    // Bytes that are not UTF-8, in a string or outside one, are named by their place.
    for bad in [
        &b"{\"a\":\"x\xff\",\"v\":1}"[..],
        b"{\"a\":\"x\",\"v\":1}\xc3",
    ] {
        let e = d.decode(bad, None).unwrap_err();
        let JsonError::Syntax(message) = &e else {
            panic!("{e:?}")
        };
        assert!(
            message.contains("not UTF-8") && message.contains("index"),
            "{e}"
        );
    }
    assert!(matches!(
        d.decode(br#"{"a":"x","t":"soon","v":1}"#, None),
        Err(JsonError::Type { .. })
    ));
    assert!(matches!(
        d.decode(br#"{"a":"x","t":1}"#, None),
        Err(JsonError::Point(_))
    ));
}

#[test]
fn record_name_is_refused_for_json() {
    let m = mapping("measurement = \"record_name\"");
    assert_eq!(
        JsonDecoder::new(m).unwrap_err(),
        JsonMappingError::RecordName
    );
}

fn typing(toml: &str) -> Typing {
    toml::from_str(toml).unwrap()
}

#[test]
fn arrays_of_objects_give_one_point_each_and_fail_whole() {
    let d = JsonDecoder::new(mapping(
        r#"
        measurement = { field = "m" }
        tags = ["host"]
        "#,
    ))
    .unwrap();
    let points = d
        .decode_all(
            br#"[{"m":"a","host":"h1","v":1},{"m":"b","host":"h2","v":2.5}]"#,
            None,
        )
        .unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1].measurement().as_str(), "b");
    assert_eq!(points[0].fields().get("v"), Some(&FieldValue::Float(1.0)));
    let err = d
        .decode_all(br#"[{"m":"a","v":1},{"m":"b","host":"h","v":2},3]"#, None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "array element 0: mapped path \"host\" is missing"
    );
    let err = d
        .decode_all(br#"[{"m":"a","host":"h","v":1},3]"#, None)
        .unwrap_err();
    assert!(matches!(err, JsonError::Element { index: 1, .. }), "{err}");
}

#[test]
fn renames_and_pinned_types_apply_to_flattened_keys() {
    let d = JsonDecoder::with_typing(
        mapping(
            r#"
            measurement = { constant = "m" }
            tags = ["tags.host"]
            timestamp = { field = "at", format = "2006-01-02 15:04:05", timezone = "Europe/Berlin" }
            "#,
        ),
        typing(
            r#"
            rename = { "tags_host" = "host", "data_c" = "count" }
            types = { count = "integer", on = "boolean", id = "string", temp = "float" }
            "#,
        ),
    )
    .unwrap();
    let p = d
        .decode(
            br#"{"tags":{"host":"h1"},"at":"2023-11-14 23:13:20","data":{"c":"7"},"on":"true","id":12,"temp":20}"#,
            None,
        )
        .unwrap();
    assert_eq!(PointView::tags(&p).collect::<Vec<_>>(), [("host", "h1")]);
    assert_eq!(p.fields().get("count"), Some(&FieldValue::Integer(7)));
    assert_eq!(p.fields().get("on"), Some(&FieldValue::Boolean(true)));
    assert_eq!(p.fields().get("id"), Some(&FieldValue::String("12".into())));
    assert_eq!(p.fields().get("temp"), Some(&FieldValue::Float(20.0)));
    assert_eq!(
        p.timestamp(),
        Some(Timestamp::from_nanos(1_700_000_000_000_000_000))
    );
    let err = d
        .decode(
            br#"{"tags":{"host":"h1"},"data":{"c":"seven"},"on":true,"id":1,"temp":1,"at":null}"#,
            None,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"count\": cannot convert \"seven\" to integer"
    );
}

#[test]
fn unix_formats_take_numbers_and_strings() {
    let d = JsonDecoder::new(mapping(
        r#"
        measurement = { constant = "m" }
        timestamp = { field = "t", format = "unix_ms" }
        "#,
    ))
    .unwrap();
    for t in ["1700000000123", "\"1700000000123\"", "1700000000123.0"] {
        let p = d
            .decode(format!(r#"{{"t":{t},"v":1}}"#).as_bytes(), None)
            .unwrap();
        assert_eq!(
            p.timestamp(),
            Some(Timestamp::from_nanos(1_700_000_000_123_000_000)),
            "{t}"
        );
    }
    let bad = JsonDecoder::new(mapping(
        r#"
        measurement = { constant = "m" }
        timestamp = { field = "t", format = "2006", timezone = "Nowhere/Land" }
        "#,
    ));
    assert!(matches!(bad, Err(JsonMappingError::Time(_))));
}
