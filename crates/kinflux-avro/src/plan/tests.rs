use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};
use kinflux_series::{FieldValueRef, Point, PointView, Timestamp};

use crate::mapping::{BytesMode, CollectionMode, Mapping, MeasurementSource, TimestampSource};
use crate::{DecodeError, DecodePlan, PlanError};

const GARDEN: &str = include_str!("../../../../examples/schemas/garden.avsc");

fn garden_mapping() -> Mapping {
    let mut m = Mapping::new(MeasurementSource::Constant("garden".into()));
    m.tags = vec!["sensor_id".into(), "zone".into(), "plant".into()];
    m.timestamp = Some(TimestampSource {
        field: "time".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    m
}

fn garden_value(ph: Option<f64>, note: Option<&str>) -> Value {
    Value::Record(vec![
        ("sensor_id".into(), Value::String("s-7".into())),
        ("zone".into(), Value::Enum(4, "GREENHOUSE".into())),
        ("plant".into(), Value::String("tomato".into())),
        ("soil_moisture".into(), Value::Double(0.25)),
        ("temperature".into(), Value::Float(21.5)),
        ("light_lux".into(), Value::Long(1200)),
        ("battery".into(), Value::Double(0.9)),
        (
            "ph".into(),
            match ph {
                Some(v) => Value::Union(1, Box::new(Value::Double(v))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        (
            "note".into(),
            match note {
                Some(v) => Value::Union(1, Box::new(Value::String(v.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        ("time".into(), Value::TimestampMillis(1_700_000_000_123)),
    ])
}

fn encode(schema: &Schema, value: Value) -> Vec<u8> {
    to_avro_datum(schema, value).expect("test value matches its schema")
}

fn fields(p: &impl PointView) -> Vec<(String, FieldValueRef<'static>)> {
    p.fields()
        .map(|(k, v)| (k.to_owned(), v.into_owned_static()))
        .collect()
}

trait Static {
    fn into_owned_static(self) -> FieldValueRef<'static>;
}

impl Static for FieldValueRef<'_> {
    fn into_owned_static(self) -> FieldValueRef<'static> {
        match self {
            FieldValueRef::String(s) => FieldValueRef::String(s.into_owned().into()),
            FieldValueRef::Float(f) => FieldValueRef::Float(f),
            FieldValueRef::Integer(i) => FieldValueRef::Integer(i),
            FieldValueRef::UInteger(u) => FieldValueRef::UInteger(u),
            FieldValueRef::Boolean(b) => FieldValueRef::Boolean(b),
            _ => unreachable!("kinflux-series grew a field type"),
        }
    }
}

#[test]
fn garden_record_becomes_the_documented_point() {
    let schema = Schema::parse_str(GARDEN).unwrap();
    let plan = DecodePlan::compile(&schema, &garden_mapping()).unwrap();
    let body = encode(&schema, garden_value(Some(6.5), Some("new leaves")));
    let point = plan.decode(&body, None).unwrap();
    assert_eq!(point.measurement(), "garden");
    assert_eq!(
        PointView::tags(&point).collect::<Vec<_>>(),
        [
            ("plant", "tomato"),
            ("sensor_id", "s-7"),
            ("zone", "GREENHOUSE")
        ]
    );
    assert_eq!(
        fields(&point),
        [
            ("soil_moisture".to_owned(), FieldValueRef::Float(0.25)),
            ("temperature".to_owned(), FieldValueRef::Float(21.5)),
            ("light_lux".to_owned(), FieldValueRef::Integer(1200)),
            ("battery".to_owned(), FieldValueRef::Float(0.9)),
            ("ph".to_owned(), FieldValueRef::Float(6.5)),
            (
                "note".to_owned(),
                FieldValueRef::String("new leaves".into())
            ),
        ]
    );
    assert_eq!(
        point.timestamp(),
        Some(Timestamp::from_nanos(1_700_000_000_123_000_000))
    );
    // The tag and string values borrow from the input: no copy per record.
    let owned: Point = plan.decode_owned(&body, None).unwrap();
    assert_eq!(
        owned.tags().get("plant").map(|v| v.as_str()),
        Some("tomato")
    );
}

#[test]
fn null_in_a_nullable_union_leaves_the_field_out() {
    let schema = Schema::parse_str(GARDEN).unwrap();
    let plan = DecodePlan::compile(&schema, &garden_mapping()).unwrap();
    let body = encode(&schema, garden_value(None, None));
    let point = plan.decode(&body, None).unwrap();
    let keys: Vec<_> = fields(&point).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["soil_moisture", "temperature", "light_lux", "battery"]
    );
}

#[test]
fn time_falls_back_when_unmapped_or_null() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[
            {"name":"v","type":"long"},
            {"name":"t","type":["null","long"]}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.fields = Some(vec!["v".into()]);
    mapping.timestamp = Some(TimestampSource {
        field: "t".into(),
        unit: Some(kinflux_series::Precision::Seconds),
        format: None,
        timezone: None,
    });
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let kafka_time = Some(Timestamp::from_nanos(42));
    let with_time = encode(
        &schema,
        Value::Record(vec![
            ("v".into(), Value::Long(1)),
            ("t".into(), Value::Union(1, Box::new(Value::Long(3)))),
        ]),
    );
    let point = plan.decode(&with_time, kafka_time).unwrap();
    assert_eq!(
        point.timestamp(),
        Some(Timestamp::from_nanos(3_000_000_000))
    );
    assert_eq!(point.measurement(), "r");
    let null_time = encode(
        &schema,
        Value::Record(vec![
            ("v".into(), Value::Long(1)),
            ("t".into(), Value::Union(0, Box::new(Value::Null))),
        ]),
    );
    assert_eq!(
        plan.decode(&null_time, kafka_time).unwrap().timestamp(),
        kafka_time
    );
    // A time that overflows nanoseconds is an error, not a wrapped time.
    let huge = encode(
        &schema,
        Value::Record(vec![
            ("v".into(), Value::Long(1)),
            (
                "t".into(),
                Value::Union(1, Box::new(Value::Long(i64::MAX / 10))),
            ),
        ]),
    );
    assert!(matches!(
        plan.decode(&huge, None),
        Err(DecodeError::Timestamp(_))
    ));
}

#[test]
fn a_schema_without_a_mapped_field_is_a_clear_error_unless_optional() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"Old","namespace":"garden","fields":[
            {"name":"sensor_id","type":"string"},{"name":"v","type":"double"}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::Constant("m".into()));
    mapping.tags = vec!["sensor_id".into(), "zone".into()];
    assert_eq!(
        DecodePlan::compile(&schema, &mapping).unwrap_err(),
        PlanError::MissingField {
            schema: "garden.Old".into(),
            path: "zone".into(),
            role: "a tag"
        }
    );
    mapping.optional = vec!["zone".into()];
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let body = encode(
        &schema,
        Value::Record(vec![
            ("sensor_id".into(), Value::String("a".into())),
            ("v".into(), Value::Double(1.0)),
        ]),
    );
    let point = plan.decode(&body, None).unwrap();
    assert_eq!(
        PointView::tags(&point).collect::<Vec<_>>(),
        [("sensor_id", "a")]
    );
}

const NESTED: &str = r#"{"type":"record","name":"Outer","namespace":"n","fields":[
    {"name":"site","type":{"type":"record","name":"Site","fields":[
        {"name":"name","type":"string"},
        {"name":"pos","type":{"type":"record","name":"Pos","fields":[
            {"name":"lat","type":"double"},{"name":"lon","type":"double"}]}}]}},
    {"name":"other","type":"n.Site"},
    {"name":"blob","type":"bytes"},
    {"name":"raw","type":{"type":"fixed","name":"Raw","size":2}},
    {"name":"list","type":{"type":"array","items":"long"}},
    {"name":"dict","type":{"type":"map","values":"n.Pos"}},
    {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
    {"name":"kind","type":["null","string","long","n.Pos"]}
]}"#;

fn nested_value(kind: Value) -> Value {
    let pos = |lat: f64, lon: f64| {
        Value::Record(vec![
            ("lat".into(), Value::Double(lat)),
            ("lon".into(), Value::Double(lon)),
        ])
    };
    let site = |name: &str| {
        Value::Record(vec![
            ("name".into(), Value::String(name.into())),
            ("pos".into(), pos(1.0, 2.0)),
        ])
    };
    Value::Record(vec![
        ("site".into(), site("home")),
        ("other".into(), site("away")),
        ("blob".into(), Value::Bytes(vec![1, 2, 3])),
        ("raw".into(), Value::Fixed(2, vec![0xff, 0])),
        (
            "list".into(),
            Value::Array(vec![Value::Long(5), Value::Long(6)]),
        ),
        (
            "dict".into(),
            Value::Map([("k".to_owned(), pos(3.0, 4.0))].into_iter().collect()),
        ),
        (
            "price".into(),
            Value::Decimal(apache_avro::Decimal::from(vec![0xfe, 0x0c])),
        ),
        ("kind".into(), kind),
    ])
}

#[test]
fn nested_records_flatten_and_collections_follow_the_configuration() {
    let schema = Schema::parse_str(NESTED).unwrap();
    let mut mapping = Mapping::new(MeasurementSource::Field("kind".into()));
    mapping.tags = vec!["site.name".into()];
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let body = encode(
        &schema,
        nested_value(Value::Union(1, Box::new(Value::String("k1".into())))),
    );
    let point = plan.decode(&body, None).unwrap();
    assert_eq!(point.measurement(), "k1");
    assert_eq!(
        PointView::tags(&point).collect::<Vec<_>>(),
        [("site_name", "home")]
    );
    let keys: Vec<_> = fields(&point).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "site_pos_lat",
            "site_pos_lon",
            "other_name",
            "other_pos_lat",
            "other_pos_lon",
            "price"
        ]
    );
    assert_eq!(fields(&point)[5].1, FieldValueRef::Float(-5.0));

    mapping.bytes = BytesMode::Base64;
    mapping.collections = CollectionMode::Expand;
    mapping.field_separator = ".".into();
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let point = plan.decode(&body, None).unwrap();
    let got = fields(&point);
    let keys: Vec<_> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "site.pos.lat",
            "site.pos.lon",
            "other.name",
            "other.pos.lat",
            "other.pos.lon",
            "blob",
            "raw",
            "list.0",
            "list.1",
            "dict.k.lat",
            "dict.k.lon",
            "price"
        ]
    );
    assert_eq!(got[5].1, FieldValueRef::String("AQID".into()));
    assert_eq!(got[6].1, FieldValueRef::String("/wA=".into()));
    assert_eq!(got[8].1, FieldValueRef::Integer(6));
    assert_eq!(got[10].1, FieldValueRef::Float(4.0));
}

#[test]
fn a_union_branch_that_cannot_fill_its_role_is_a_decode_error() {
    let schema = Schema::parse_str(NESTED).unwrap();
    let mapping = Mapping::new(MeasurementSource::Field("kind".into()));
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let as_long = encode(
        &schema,
        nested_value(Value::Union(2, Box::new(Value::Long(1)))),
    );
    assert_eq!(
        plan.decode(&as_long, None).unwrap_err(),
        DecodeError::Unmappable {
            path: "kind".into(),
            avro_type: "long",
            role: "the measurement"
        }
    );
    let as_null = encode(
        &schema,
        nested_value(Value::Union(0, Box::new(Value::Null))),
    );
    assert_eq!(
        plan.decode(&as_null, None).unwrap_err(),
        DecodeError::NullMeasurement
    );
}

#[test]
fn mapped_fields_of_the_wrong_type_are_refused_at_compile_time() {
    let schema = Schema::parse_str(NESTED).unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.tags = vec!["site".into()];
    assert!(matches!(
        DecodePlan::compile(&schema, &mapping),
        Err(PlanError::WrongType { role: "a tag", .. })
    ));
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.timestamp = Some(TimestampSource {
        field: "site.pos.lat".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    assert!(matches!(
        DecodePlan::compile(&schema, &mapping),
        Err(PlanError::WrongType {
            role: "the timestamp",
            ..
        })
    ));
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.fields = Some(vec!["list".into()]);
    assert!(matches!(
        DecodePlan::compile(&schema, &mapping),
        Err(PlanError::WrongType {
            role: "a field",
            ..
        })
    ));
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[{"name":"t","type":"long"},{"name":"time","type":"long"}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.timestamp = Some(TimestampSource {
        field: "t".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    assert_eq!(
        DecodePlan::compile(&schema, &mapping).unwrap_err(),
        PlanError::NoTimeUnit { path: "t".into() }
    );
    mapping.timestamp = None;
    assert_eq!(
        DecodePlan::compile(&schema, &mapping).unwrap_err(),
        PlanError::ReservedFieldKey {
            path: "time".into()
        }
    );
    mapping.tags = vec!["t".into()];
    mapping.fields = Some(vec!["t".into()]);
    assert!(matches!(
        DecodePlan::compile(&schema, &mapping),
        Err(PlanError::InvalidMapping(_))
    ));
}

#[test]
fn recursive_schemas_are_refused() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"Node","fields":[
            {"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}"#,
    )
    .unwrap();
    assert_eq!(
        DecodePlan::compile(&schema, &Mapping::new(MeasurementSource::RecordName)).unwrap_err(),
        PlanError::RecursiveSchema {
            name: "Node".into()
        }
    );
    assert_eq!(
        DecodePlan::compile(&Schema::Long, &Mapping::new(MeasurementSource::RecordName))
            .unwrap_err(),
        PlanError::NotARecord
    );
}

#[test]
fn bad_bytes_are_typed_errors() {
    let schema = Schema::parse_str(GARDEN).unwrap();
    let plan = DecodePlan::compile(&schema, &garden_mapping()).unwrap();
    let body = encode(&schema, garden_value(Some(1.0), None));
    for cut in 0..body.len() {
        assert!(
            matches!(
                plan.decode(&body[..cut], None),
                Err(DecodeError::Truncated { .. })
            ),
            "cut at {cut}"
        );
    }
    let mut trailing = body.clone();
    trailing.push(0);
    assert_eq!(
        plan.decode(&trailing, None).unwrap_err(),
        DecodeError::TrailingBytes { extra: 1 }
    );
    // sensor_id "s-7" takes 4 bytes, zone is next: symbol 9 of 5.
    let mut bad_enum = body.clone();
    bad_enum[4] = 18;
    assert!(matches!(
        plan.decode(&bad_enum, None),
        Err(DecodeError::BadEnumIndex {
            index: 9,
            symbols: 5,
            ..
        })
    ));
    // The ph union index follows sensor_id, zone, plant, 3 doubles/floats and a long.
    let ph_at = 4 + 1 + 7 + 8 + 4 + 2 + 8;
    let mut bad_branch = body.clone();
    bad_branch[ph_at] = 6;
    assert!(matches!(
        plan.decode(&bad_branch, None),
        Err(DecodeError::BadUnionBranch {
            index: 3,
            branches: 2,
            ..
        })
    ));
    let mut bad_utf8 = body.clone();
    bad_utf8[1] = 0xff;
    assert!(matches!(
        plan.decode(&bad_utf8, None),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
}

#[test]
fn huge_block_counts_of_empty_items_do_not_loop() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":{"type":"array","items":"null"}},{"name":"v","type":"long"}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.collections = CollectionMode::Expand;
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    // Count 2^62 of nulls, end of array, v = 1.
    let body = [
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x02,
    ];
    let point = plan.decode(&body, None).unwrap();
    assert_eq!(
        fields(&point),
        [("v".to_owned(), FieldValueRef::Integer(1))]
    );
    // A huge count of longs ends at the end of the input.
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"array","items":"long"}}]}"#,
    )
    .unwrap();
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    assert!(matches!(
        plan.decode(&body, None),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn a_renamed_field_is_found_by_its_alias() {
    // The writer renamed `temp` to `temperature_c` and kept the old name as an alias;
    // a mapping written for the old schema still finds it, under its old key.
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[
            {"name":"sensor","type":"string","aliases":["sensor_id"]},
            {"name":"temperature_c","type":"double","aliases":["temp"]}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.tags = vec!["sensor_id".into()];
    mapping.fields = Some(vec!["temp".into()]);
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let body = encode(
        &schema,
        Value::Record(vec![
            ("sensor".into(), Value::String("a".into())),
            ("temperature_c".into(), Value::Double(3.5)),
        ]),
    );
    let point = plan.decode(&body, None).unwrap();
    assert_eq!(
        PointView::tags(&point).collect::<Vec<_>>(),
        [("sensor_id", "a")]
    );
    assert_eq!(
        fields(&point),
        [("temp".to_owned(), FieldValueRef::Float(3.5))]
    );
}

#[test]
fn many_tags_come_out_sorted() {
    // More tags than fit on the stack, declared in reverse order.
    let names: Vec<String> = (0..20).rev().map(|i| format!("t{i:02}")).collect();
    let fields: Vec<String> = names
        .iter()
        .map(|n| format!(r#"{{"name":"{n}","type":"string"}}"#))
        .collect();
    let schema = Schema::parse_str(&format!(
        r#"{{"type":"record","name":"r","fields":[{},{{"name":"v","type":"long"}}]}}"#,
        fields.join(",")
    ))
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.tags = names.clone();
    let plan = DecodePlan::compile(&schema, &mapping).unwrap();
    let mut values: Vec<(String, Value)> = names
        .iter()
        .map(|n| (n.clone(), Value::String(format!("v{n}"))))
        .collect();
    values[3].1 = Value::String(String::new()); // t16: empty, left out
    values.push(("v".into(), Value::Long(1)));
    let body = encode(&schema, Value::Record(values));
    let point = plan.decode(&body, None).unwrap();
    let tags: Vec<_> = PointView::tags(&point).map(|(k, _)| k.to_owned()).collect();
    let mut want: Vec<String> = names.into_iter().filter(|n| n != "t16").collect();
    want.sort();
    assert_eq!(tags, want);
    assert_eq!(PointView::tags(&point).next(), Some(("t00", "vt00")));
}

#[test]
fn mapping_errors_inside_unions_still_stop_the_compile() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[
            {"name":"t","type":["null","long"]},{"name":"v","type":"long"}]}"#,
    )
    .unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.timestamp = Some(TimestampSource {
        field: "t".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    assert_eq!(
        DecodePlan::compile(&schema, &mapping).unwrap_err(),
        PlanError::NoTimeUnit { path: "t".into() }
    );
    let empty = Mapping::new(MeasurementSource::Constant(String::new()));
    assert!(matches!(
        DecodePlan::compile(&schema, &empty),
        Err(PlanError::InvalidMapping(_))
    ));
}

#[test]
fn sized_blocks_of_unmapped_collections_are_jumped_over() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":{"type":"array","items":"long"}},
            {"name":"m","type":{"type":"map","values":"string"}},
            {"name":"v","type":"long"}]}"#,
    )
    .unwrap();
    let skip = DecodePlan::compile(&schema, &Mapping::new(MeasurementSource::RecordName)).unwrap();
    let mut expand_mapping = Mapping::new(MeasurementSource::RecordName);
    expand_mapping.collections = CollectionMode::Expand;
    let expand = DecodePlan::compile(&schema, &expand_mapping).unwrap();
    // Array: a block of -2 items in 2 bytes (longs 1 and 2), end. Map: a block of -1
    // entry in 4 bytes ("k" -> "x"), end. v = 3.
    let body = [
        0x03, 0x04, 0x02, 0x04, 0x00, 0x01, 0x08, 0x02, b'k', 0x02, b'x', 0x00, 0x06,
    ];
    let point = skip.decode(&body, None).unwrap();
    assert_eq!(
        fields(&point),
        [("v".to_owned(), FieldValueRef::Integer(3))]
    );
    let point = expand.decode(&body, None).unwrap();
    assert_eq!(
        fields(&point),
        [
            ("a_0".to_owned(), FieldValueRef::Integer(1)),
            ("a_1".to_owned(), FieldValueRef::Integer(2)),
            ("m_k".to_owned(), FieldValueRef::String("x".into())),
            ("v".to_owned(), FieldValueRef::Integer(3)),
        ]
    );
    // A block size past the end is a truncation, not a jump into nowhere.
    let lying = [0x03, 0x7e, 0x02, 0x04, 0x00];
    assert!(matches!(
        skip.decode(&lying, None),
        Err(DecodeError::Truncated { .. })
    ));
}
