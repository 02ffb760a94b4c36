//! The JSON shape of a point is part of our interface: `lp_lint --json` prints it.
#![cfg(feature = "serde")]

use kinflux_series::{Point, SeriesError, Timestamp};

#[test]
fn point_serializes_to_the_documented_json_shape() {
    let p = Point::builder("cpu")
        .tag("host", "a")
        .field("v", 1.5)
        .field("n", -2i64)
        .field("u", 3u64)
        .field("s", "x")
        .field("b", true)
        .timestamp(Timestamp::from_nanos(1_700_000_000_000_000_000))
        .build()
        .unwrap();
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        json,
        r#"{"name":"cpu","tags":[{"key":"host","value":"a"}],"fields":[{"key":"v","value":{"float":1.5}},{"key":"n","value":{"int":-2}},{"key":"u","value":{"uint":3}},{"key":"s","value":{"string":"x"}},{"key":"b","value":{"bool":true}}],"time":1700000000000000000}"#
    );
    let back: Point = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn deserializing_runs_the_same_validation() {
    let dup = r#"{"name":"m","tags":[{"key":"a","value":"1"},{"key":"a","value":"2"}],"fields":[{"key":"v","value":{"int":1}}],"time":null}"#;
    let err = serde_json::from_str::<Point>(dup).unwrap_err().to_string();
    assert!(
        err.contains(&SeriesError::DuplicateTag { key: "a".into() }.to_string()),
        "{err}"
    );
    let empty = r#"{"name":"m","tags":[],"fields":[],"time":null}"#;
    assert!(
        serde_json::from_str::<Point>(empty)
            .unwrap_err()
            .to_string()
            .contains("no fields")
    );
    let nan_key = r#"{"name":"","tags":[],"fields":[{"key":"v","value":{"int":1}}],"time":null}"#;
    assert!(serde_json::from_str::<Point>(nan_key).is_err());
}
