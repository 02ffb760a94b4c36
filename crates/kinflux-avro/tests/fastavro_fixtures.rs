//! Records encoded by Python's fastavro (`fixtures/make_fixtures.py`) decode to the points
//! the script computed from the input data: the garden schema, an evolved schema (field
//! added with a default, field removed), an older schema missing a mapped tag, and
//! logical types.

use std::collections::BTreeMap;
use std::path::Path;

use kinflux_avro::{ConfluentDecoder, Error, Mapping, PlanError, SchemaDir};
use kinflux_series::{FieldValue, Point, PointView, Timestamp};
use serde_json::Value;

fn expected_fields(fields: &Value) -> BTreeMap<String, FieldValue> {
    fields
        .as_object()
        .expect("fields is an object")
        .iter()
        .map(|(key, typed)| {
            let value = &typed["value"];
            let value = match typed["type"].as_str().expect("a type") {
                "float" => FieldValue::Float(value.as_f64().expect("a float")),
                "integer" => FieldValue::Integer(value.as_i64().expect("an integer")),
                "string" => FieldValue::String(value.as_str().expect("a string").to_owned()),
                other => panic!("unknown fixture type {other}"),
            };
            (key.clone(), value)
        })
        .collect()
}

fn fields_of(point: &Point) -> BTreeMap<String, FieldValue> {
    point
        .fields()
        .iter()
        .map(|f| (f.key.as_str().to_owned(), f.value.clone()))
        .collect()
}

#[tokio::test]
async fn fastavro_fixtures_decode_to_the_expected_points() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let mapping: Mapping = serde_json::from_value(case["mapping"].clone()).unwrap();
        let decoder = ConfluentDecoder::new(SchemaDir::new(dir.join("schemas")), mapping);
        let record = std::fs::read(dir.join(file)).unwrap();
        let result = decoder.decode_owned(&record, None).await;
        if let Some(error) = case.get("error") {
            assert_eq!(error, "MissingField", "{file}");
            assert!(
                matches!(result, Err(Error::Plan(PlanError::MissingField { ref path, .. })) if path == "plant"),
                "{file}: {result:?}"
            );
            continue;
        }
        let point = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = &case["point"];
        assert_eq!(point.measurement().as_str(), want["measurement"], "{file}");
        let tags: BTreeMap<&str, &str> = PointView::tags(&point).collect();
        let want_tags: BTreeMap<&str, &str> = want["tags"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        assert_eq!(tags, want_tags, "{file}");
        assert_eq!(
            fields_of(&point),
            expected_fields(&want["fields"]),
            "{file}"
        );
        assert_eq!(
            point.timestamp(),
            Some(Timestamp::from_nanos(want["time"].as_i64().unwrap())),
            "{file}"
        );
    }
}
